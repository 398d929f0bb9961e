"""Red-team finding (fixed): a face "found late" by the frames' own times lengthened the window without a wait.

A capture's moves are shown with its first frame with a face; when that frame comes after the drawn cue, the
cue moves to it and the filming window and time limits grow by as much (a camera still starting loses no
time). That moment was the frame's time in the burst alone: the client's claim, which may run ahead of the
server's clock by ``CLOCK_SLACK_MS`` (2 s, for an honest page whose first upload was slower than the next).
A client that sent a frame without a face and then at once its first face frame stamped 1.9 s later (one more
frame without a face in between, under the burst checks' largest gap) had the window lengthened by 1.6 s (the
cue drawn at 300 ms) while the moves were shown within half a second of its first frame (measured: 1799 ms
for a face frame stamped 2.1 s, sent 181 ms after the first frame): up to CLOCK_SLACK_MS more for the moves,
on top of the frame-time slack, to pause once a move is shown. Now the moment is the frame's time, but no later than the
server's own time since the capture's first frame arrived, when the frame reached it.

Real app, real MongoDB server, real face engine and landmark model on the owner's own clip (d3)."""
from __future__ import annotations

import time

from faceweb.test_liveness_web import d3_turn_left  # noqa: F401  (fixture)
from idp.faceweb import liveness
from idp.faceweb.liveness import CLOCK_SLACK_MS

from ._face import app, cheap_password_hashing, engine, make_app, new_user, owner_signing_in, people  # noqa: F401
from .test_face_challenge_reveal import _blank
from .test_face_revealed_move_answered_in_real_time import _frame

#: The claimed times of the frames without a face, then of the first face frame: 1.9 s after the first frame,
#: no gap over 1.5 s, within CLOCK_SLACK_MS of the server's clock when sent at once.
NO_FACE_MS, FACE_MS = (0.0, 1400.0), 1900.0


def test_a_face_found_late_by_its_claimed_time_alone_lengthens_nothing(make_app, new_user, faces_dir,
                                                                      d3_turn_left):
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    began = time.monotonic()
    for k, t in enumerate(NO_FACE_MS):
        r = _frame(b, cap, _blank(k), t)
        assert r.status_code == 200 and not r.get_json()["liveness"]["challenge"], r.get_json()
    # the server's time from the first frame's arrival to the face frame's (measured around it: at least that)
    waited = (time.monotonic() - began) * 1000.0
    assert FACE_MS - waited > 1000.0 and FACE_MS < waited + CLOCK_SLACK_MS, waited  # the claim runs ahead
    r = _frame(b, cap, frames[0], FACE_MS)
    assert r.status_code == 200, r.get_json()
    live = r.get_json()["liveness"]
    assert live["challenge"] == "turn_left", live  # the moves are shown now
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    # the window's growth for the face found late (the rest is the answer's own lateness, lv_cue_late)
    found_late = live["window_ms"] - liveness.window_ms(doc["challenge"]) - doc["lv_cue_late"]
    assert found_late <= max(0.0, waited - doc["cue_ms"]) + 50.0, {
        "lengthened": round(found_late), "face_found_after_ms": round(waited), "cue_ms": doc["cue_ms"]}
    # the cue: no later than the server saw the face frame (its own receive time in the burst, as stored; the
    # client's clock around the requests is no bound of it: a loaded server notes a request's arrival late)
    seen = float(doc["lv_arrived"]) - float(doc["lv_t0"]["server"])
    assert FACE_MS - seen > 500.0, seen  # the claim runs well ahead of it: a cue at the claim would fail below
    assert live["cue_ms"] <= max(seen, doc["cue_ms"]) + 1.0, (live, seen)
