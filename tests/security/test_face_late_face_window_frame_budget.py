"""A late first usable face lengthens the filming window; the capture's frame budget must follow.

The moves are shown with the first frame that passes the quality gate; if it comes after the drawn cue,
the cue moves to it and the window (``window_ms`` of the answers) grows by as much, "so a person whose
face was not usable at first loses no time". The page films every ``interval_ms`` and a capture accepts
at most MAX_FRAMES_PER_CAPTURE frames (60 x 150 ms = 9 s), so the frame budget, not the window, ends a
capture revealed late: the person gets seconds less for the moves than promised, and since the capture
is an attempt once its moves were shown, ending short is a counted failure.

Real app, real MongoDB server, real face engine on a shared clip's frame (the no-face frames are noise).
"""
from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    T0, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst,
)

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401


def _noise(k: int) -> bytes:
    """A frame without a face (the camera pointed away), distinct each time."""
    rng = np.random.default_rng(1000 + k)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(buf, "JPEG", quality=70)
    return buf.getvalue()


def test_a_capture_revealed_late_is_filmed_for_its_whole_lengthened_window(make_app, new_user, d3_turn_left,
                                                                          d3_turn_left_other):
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    app = make_app(liveness_enabled=True)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    interval, window = cap["interval_ms"], cap["window_ms"]

    began = time.monotonic()

    def send(k, image):
        # filmed in real time, as the page does (the server bounds frame times by its own clock)
        lag = k * interval / 1000.0 - (time.monotonic() - began)
        if lag > 0:
            time.sleep(lag)
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + k * interval)})
        return r.status_code, r.get_json()

    k = 0
    while (k + 1) * interval < window - interval:  # no usable face until just before the window ends
        status, body = send(k, _noise(k))
        assert status == 200 and not body["done"], body
        k += 1
    status, body = send(k, d3_turn_left_other[0])
    live = body["liveness"]
    assert status == 200 and live["challenge"] and live["window_ms"] > window, body
    promised = live["window_ms"]  # the page films until then
    last = k * interval
    while not body["done"]:
        k += 1
        status, body = send(k, _noise(k))
        if status != 200:
            break
        last = k * interval
    # the capture stopped (frame budget) long before the window it announced: time taken from the moves
    assert last >= promised - interval, {"last_frame_ms": last, "announced_window_ms": promised,
                                         "cue_ms": live["cue_ms"], "frames": k, "status": status,
                                         "error": body.get("error")}
