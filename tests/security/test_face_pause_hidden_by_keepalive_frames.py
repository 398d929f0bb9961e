"""A pause after the next move is shown cannot be hidden by sending frames during it, nor by sending one
frame's body slowly over it.

``liveness.frame_time`` counts the server's wait between answering one frame and receiving the next
(less ``IDLE_SLACK_MS``, 2 s) as burst time, so a client that stops sending after the answer that shows
the next move cannot hide the pause (``test_face_revealed_move_answered_in_real_time.py``). The slack was
granted per frame: a client that kept sending a frame every 1.8 s while it paused, each stamped a few
milliseconds after the previous one, was never idle for longer than the slack, and the pause disappeared
from the burst (up to ``MAX_UPLOAD_LAG_MS``, 30 s). Now each request accounts for its pace (up to a frame
interval) and the server's wait beyond an interval, summed over the capture (``liveness.paced_ms``), and
the slack is one budget for the whole capture.

The receive time of a frame was taken when its headers arrived (``views._note_arrival``), so a client that
sent the headers of its next frame at once and its body over the pause was never idle. Now the time its
body took to come in is added (the client's time, as a proxy that buffers request bodies, nginx's default,
makes it anyway): a slow upload counts as a paused one.

Real app, real MongoDB server, real face engine and landmark model on the owner's own clip (d3 turns
left, then right): the only things the test changes are the real time between two frames and the
frames sent meanwhile (the frame shown last, re-encoded).
"""
from __future__ import annotations

import http.client
import io
import json
import time

from PIL import Image

from faceweb.test_liveness_web import T0, d3_turn_left  # noqa: F401
from idp.faceweb.liveness import IDLE_SLACK_MS

from ._face import app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401
from ._face import owner_signing_in
from .test_face_revealed_move_answered_in_real_time import PAUSE_S, _frame


def _again(image: bytes, k: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(image)).save(buf, "JPEG", quality=70 + k)
    return buf.getvalue()


def test_a_pause_after_the_next_move_is_shown_is_not_hidden_by_frames_sent_during_it(make_app, new_user,
                                                                                      faces_dir, d3_turn_left):
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    pause_s = PAUSE_S
    keepalive_s = (IDLE_SLACK_MS - 200) / 1000.0
    paused, answers, extra_ms, replayed = False, [], 0.0, False
    for k, image in enumerate(frames):
        r = _frame(b, cap, image, 1000.0 * k / 7.5 + extra_ms)
        if paused and r.status_code == 409 and r.get_json().get("error") == "replayed_frame":
            # a capture that runs on after the pause reaches frames near copies of the enrollment's (from 7.2 s
            # of the same clip) and is refused as a replay: a refusal, though not this rule's
            replayed = True
            break
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
        if not paused and len(answers[-1]["liveness"]["moves"]) == 2:
            paused = True  # the next move was shown: the client takes its time, sending a frame now and then
            started, n = time.monotonic(), 0
            while time.monotonic() - started < pause_s:
                time.sleep(keepalive_s)
                n += 1
                r = _frame(b, cap, _again(image, n), 1000.0 * k / 7.5 + extra_ms + 5.0 * n)
                assert r.status_code == 200, r.get_json()
            extra_ms += 5.0 * n + 5.0
            # the pause moved the burst's clock, less the slack and the server's work on the frames sent
            # during it (under 1 s each even on a loaded machine); it moved nothing when the slack was per frame
            shift = float(db.capture_sessions.find_one({"_id": cap["capture_id"]}).get("lv_shift") or 0.0)
            assert shift >= 1000.0 * pause_s - IDLE_SLACK_MS - 1000.0 * n - 5.0 * n > 0, (shift, n)
    assert paused, [a["liveness"]["moves"] for a in answers]
    if not replayed:
        fin = b.finish(cap).get_json()
        # the second move came more than the challenge window (real time) after the first frame
        assert fin["ok"] is False, fin


def test_a_pause_after_the_next_move_is_shown_is_not_hidden_by_a_frame_body_sent_slowly(make_app, new_user,
                                                                                       faces_dir, d3_turn_left):
    from support.servers import IdPServer
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    server = IdPServer(b.app)  # the same app over real HTTP, for the body sent slowly
    try:
        cookie = b.client.get_cookie("deepauth_session").value
        pause_s = PAUSE_S
        paused, answers = False, []
        for k, image in enumerate(frames):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            conn.putrequest("POST", cap["frames_url"])
            for name, value in (("Cookie", f"deepauth_session={cookie}"), ("X-CSRFToken", b._token()),
                                ("Accept", "application/json"), ("Content-Type", "image/jpeg"),
                                ("Content-Length", str(len(image))), ("X-Capture-Nonce", cap["nonce"]),
                                ("X-Frame-Time", str(T0 + 1000.0 * k / 7.5))):
                conn.putheader(name, value)
            conn.endheaders()
            if paused is None:  # the frame after the next move was shown: its body over the pause
                paused = True
                step = len(image) // 8 + 1
                for i in range(0, len(image), step):
                    time.sleep(pause_s / 8)
                    conn.send(image[i:i + step])
            else:
                conn.send(image)
            r = conn.getresponse()
            body = json.loads(r.read())
            conn.close()
            assert r.status == 200, body
            answers.append(body)
            if answers[-1]["done"]:
                break
            if paused is False and len(answers[-1]["liveness"]["moves"]) == 2:
                paused = None  # the next move was shown: the client takes its time sending the next frame
        assert paused, [a["liveness"]["moves"] for a in answers]
        fin = b.finish(cap).get_json()
    finally:
        server.stop()
    # the second move came more than the challenge window (real time) after the first frame
    assert fin["ok"] is False, fin
