"""A busy server shows the next move late: the person loses none of the time for it.

At sign-in the next move is shown in the answer to the frame that completed the one before. A page films
every interval and sends its frames one at a time; when the server takes longer on each frame than the
filming interval, the frames queue on the page and that answer reaches it late (1.4-2.3 s measured on a
loaded server), and the person starts the move that much later. The time limits used to count from the
first frame alone, so such a person was refused (``challenge_too_late``, or the window over before the
move) and charged an attempt. The server now measures how late its answer is from its own time on the
capture's frames (``liveness.shown_late_ms``: the page's queue by Lindley's recursion on the server's times,
plus its time on this frame) and lengthens the time limits, the filming window and the frame budget by as
much (at most ``SHOWN_LATE_CAP_MS`` over the capture).

Real app, real MongoDB server, real face engine and landmark model; the owner's own clip (d3 turns left,
then right). The server is made busy for real: until the next move is shown, the worker's face slot is kept
taken by other work (0.3 s at a time, as another account's frames would), so each of the owner's frames
waits for it; after the answer showing the next move, the owner holds still facing the camera until she
reads it, then turns.
"""
from __future__ import annotations

import threading
import time

from faceweb.test_liveness_web import FPS, T0, d3_turn_left  # noqa: F401
from idp.faceweb import liveness
from idp.faceweb.capture_sessions import CaptureError
from idp.liveness import LivenessSettings

from security._face import (  # noqa: F401
    app, cheap_password_hashing, engine, make_app, new_user, owner_signing_in, people, session_auth, still_frame,
)

#: Other work holding the worker's face slot, at a time (under the frame's wait for a slot, IDP_FACE_BUSY_WAIT).
OTHER_WORK_S = 0.3
STEP_MS = 1000.0 / FPS
#: d3 from 4.0 s: its right turn completes (the decision's ``challenge_time_ms``) this long after the frame
#: whose answer shows it
TURN_AFTER_MS = 1900.0


def test_a_next_move_shown_late_by_a_busy_server_keeps_its_time(make_app, new_user, faces_dir, d3_turn_left):
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    window = LivenessSettings().challenge_window_ms

    def send(image, t):
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t)})
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    slots, busy = b.app.extensions["faceweb"]["slots"], threading.Event()

    def other_work():  # a busy server: the face slot taken by others while the owner's frames come
        while busy.is_set():
            try:
                slots.run(lambda: time.sleep(OTHER_WORK_S), ("user:someone-else",))
            except CaptureError:  # "busy": the owner's frame held the slot past the wait; the others try again
                pass

    busy.set()
    loader = threading.Thread(target=other_work, daemon=True)
    loader.start()
    t, k, answer = 0.0, 0, None
    try:
        while k < len(frames):
            answer = send(frames[k], t)
            k, t = k + 1, t + STEP_MS
            if answer["done"] or len(answer["liveness"]["moves"]) == 2:
                break
    finally:
        busy.clear()
        loader.join()
    assert len(answer["liveness"]["moves"]) == 2, "the next move was never shown"
    # the next move is shown (late); the person reads it only now: she keeps facing the camera long enough
    # that the clip's right turn completes half the lateness after the usual window
    shown = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert 1000.0 <= shown["lv_next_late"] <= liveness.SHOWN_LATE_CAP_MS, shown["lv_next_late"]
    # (with the first answer's own lateness, if any: the server answered it after the cue)
    late = min(liveness.SHOWN_LATE_CAP_MS, shown["lv_next_late"] + shown["lv_cue_late"])
    assert answer["liveness"]["window_ms"] == int(window + late)
    hold = max(0.0, window + late / 2 - TURN_AFTER_MS - (t - STEP_MS))
    for j in range(int(hold // STEP_MS)):
        answer = send(still_frame(frames[k - 1], j), t)
        t += STEP_MS
    while k < len(frames) and not answer["done"]:
        answer = send(frames[k], t)
        k, t = k + 1, t + STEP_MS
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    scores = liveness.evaluate(doc).result.scores  # the decision the finish makes
    fin = b.finish(cap).get_json()
    assert fin["ok"] is True, (fin, scores)
    assert "face" in session_auth(b)["amr"]
    # the move itself came after the window an answer on time gives, within the one lengthened by the lateness
    assert window < scores["challenge_time_ms"] <= window + late, scores
