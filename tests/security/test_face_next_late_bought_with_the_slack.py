"""The extra time for a next move "shown late" can be had on a server that keeps up (open, measured).

``liveness.shown_late_ms`` measures how late the answer showing the next move is as the server's time
since the first frame arrived less the frame's time in the burst - the client's claim, which may lag the
server's clock by the frame-time slack (``IDLE_SLACK_MS``, 2 s). A client that spends that slack before its
first move (it waits 2.2 s after its first frame and stamps the next as if no time had passed) makes the
answer look about 2.2 s late on any server (``lv_next_late`` 2143-2500 measured), and the next move gets as
much more burst time. A pause once the move is shown fills it: here 8 frames of the held pose 0.5 s apart
(never a gap the burst checks refuse; each counted in full by the paced clock, the slack being spent), about
6 s of real time in which the client shows nothing but a held pose. Measured: before the lateness was
credited (f2ffcf0) the window ended at 6000 ms before the next move (``challenge_not_performed``); now the
move completes at about 6960 ms within a window of about 8140 ms and the sign-in is accepted (4 of 4 runs,
on e47846f and f870da8).
The honest page needs the extension only when the server is slower than its filming (its frames queue);
the frame times cannot tell the two apart, though the server's own idle time can (the 2.2 s here is a wait
for the client, counted in ``lv_paced``; a queue keeps the server busy).

Real app, real MongoDB server, real face engine and landmark model on the owner's own clip (d3 turns
left, then right)."""
from __future__ import annotations

import time

import pytest

from faceweb.test_liveness_web import d3_turn_left  # noqa: F401  (fixture)
from idp.faceweb.liveness import IDLE_SLACK_MS

from ._face import (  # noqa: F401
    app, cheap_password_hashing, engine, make_app, new_user, owner_signing_in, people, still_frame,
)
from .test_face_revealed_move_answered_in_real_time import _frame

#: The wait after the first frame: the whole frame-time slack, and a little more (counted as burst time).
SPEND_S = IDLE_SLACK_MS / 1000.0 + 0.2
#: The pause once the next move is shown: keepalive frames this far apart (under the largest gap the burst
#: checks allow), each counted in full as burst time once the slack is spent.
KEEPALIVES, KEEPALIVE_S = 8, 0.5


@pytest.mark.xfail(strict=True, reason="the lateness of the answer showing the next move is measured against "
                   "the client's frame time, whose slack a client can spend before its first move: 2.5 s more "
                   "for the next move on a server that keeps up (docs/liveness.md, 'Moves shown late')")
def test_a_pause_after_the_next_move_is_not_paid_for_by_the_slack_spent_before_it(make_app, new_user, faces_dir,
                                                                                 d3_turn_left):
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    paused, extra_ms, answers = False, 0.0, []
    for k, image in enumerate(frames):
        r = _frame(b, cap, image, 1000.0 * k / 7.5 + extra_ms)
        if r.status_code == 409 and r.get_json().get("error") == "replayed_frame":
            break  # refused (a capture that runs on reaches frames near the enrollment's): not accepted
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
        if k == 0:
            time.sleep(SPEND_S)  # the slack spent: the next frames stamped as if no time had passed
        if not paused and len(answers[-1]["liveness"]["moves"]) == 2:
            paused = True  # the next move was shown: a pause, frames of the held pose sent during it
            for n in range(1, KEEPALIVES + 1):
                time.sleep(KEEPALIVE_S)
                r = _frame(b, cap, still_frame(image, n), 1000.0 * k / 7.5 + extra_ms + 5.0 * n)
                assert r.status_code == 200, r.get_json()
            extra_ms += 5.0 * KEEPALIVES + 5.0
    assert paused, [a["liveness"]["moves"] for a in answers]
    fin = b.finish(cap).get_json()
    assert fin["ok"] is False, (fin, db.capture_sessions.find_one({"_id": cap["capture_id"]}, {"lv_next_late": 1}))
