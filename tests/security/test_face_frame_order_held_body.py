"""Red-team finding (fixed): a frame whose body was held back went into the capture out of filming order.

A frame's request reads its capture when it arrives, before its body; the filming-order check compared the
frame's time with the frames of that read. A client that sent a frame's headers, held its body while later
frames were served, then sent the body had it stored after them with an earlier time (the burst the
decision reads out of order, its content chosen after seeing their answers). Now the store itself refuses a
frame filmed before one the capture holds (``lv_last_t``, in the same atomic update). (On a machine slow
enough that the later frames take longer than the upload lag ``frame_time`` allows (``MAX_UPLOAD_LAG_MS``),
the held frame's wait is read as a pause instead and its time moves after theirs: stored last, in order.)

Real app, real MongoDB server, real face engine and landmark model on the owner's clip."""
from __future__ import annotations

import threading

from faceweb.test_liveness_web import FPS, T0, d3_turn_left, d3_turn_left_other, enroll_with, live_app  # noqa: F401
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user  # noqa: F401


class HeldBody:
    """A request body that is not sent until ``release`` is set (a client holding its upload)."""

    def __init__(self, data: bytes, release: threading.Event):
        self.data, self.release, self.pos = data, release, 0
        self.reading = threading.Event()  # the app reads the body: the request was checked, its capture read

    def tell(self):
        return self.pos

    def seek(self, off, whence=0):
        self.pos = len(self.data) + off if whence == 2 else off
        return self.pos

    def read(self, n=-1):
        self.reading.set()
        assert self.release.wait(60)
        n = len(self.data) - self.pos if n is None or n < 0 else n
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def readline(self, *_):
        return self.read()


def test_a_frame_held_back_behind_later_ones_is_refused(live_app, new_user, d3_turn_left, d3_turn_left_other):
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left_other)
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    token = b._token()

    def send(i, body=None):
        h = {"X-CSRFToken": token, "Accept": "application/json", "X-Capture-Nonce": cap["nonce"],
             "X-Frame-Time": str(T0 + i * 1000.0 / FPS)}
        if body is None:
            return b.client.post(cap["frames_url"], data=d3_turn_left[i], content_type="image/jpeg", headers=h)
        return b.client.post(cap["frames_url"], input_stream=body, content_type="image/jpeg",
                             headers={**h, "Content-Length": str(len(d3_turn_left[i]))})

    for i in range(4):
        assert send(i).status_code == 200
    release, held = threading.Event(), {}
    body = HeldBody(d3_turn_left[4], release)
    opened = threading.Thread(target=lambda: held.update(r=send(4, body)))
    opened.start()
    try:
        assert body.reading.wait(60)  # the request is in and read its capture; its body is held
        for i in range(5, 9):  # later frames served meanwhile
            assert send(i).status_code == 200
    finally:
        release.set()
        opened.join(60)
    r = held["r"]
    frames = db.capture_sessions.find_one({"_id": cap["capture_id"]})["frames"]
    times = [f["t_ms"] for f in frames]
    assert times == sorted(times), times
    if r.status_code == 200:
        # The server took so long over the later frames (a loaded machine) that the held frame's wait is more
        # upload lag than liveness.frame_time allows: read as a pause, its time moved past theirs, so it went
        # in last, in order - what a frame sent after them would be. Either way nothing is reordered.
        assert len(frames) == 9 and frames[-1]["client_ts"] == T0 + 4 * 1000.0 / FPS, times
    else:
        assert r.status_code == 400 and r.get_json()["error"] == "frame_out_of_order", (r.status_code, r.get_json())
        assert len(frames) == 8, times
