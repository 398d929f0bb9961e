"""Red-team finding (fixed): the extra time for a next move "shown late" could be had on a server that keeps up.

``liveness.shown_late_ms`` first measured how late the answer showing the next move was as the server's time
since the first frame arrived less the frame's time in the burst - the client's claim, which may lag the
server's clock by the frame-time slack (``IDLE_SLACK_MS``, 2 s). A client that spent that slack before its
first move (it waits 2.2 s after its first frame and stamps the next as if no time had passed) made the
answer look about 2.2 s late on any server (``lv_next_late`` 2143-2500 measured), and the next move got as
much more burst time. A pause once the move is shown filled it: here 8 frames of the held pose 0.5 s apart
(never a gap the burst checks refuse; each counted in full by the paced clock, the slack being spent), about
6 s of real time in which the client shows nothing but a held pose: the move completed at about 6960 ms
within a window of about 8140 ms and the sign-in was accepted (4 of 4 runs); before the lateness was
credited the window ended at 6000 ms. Now the lateness is the server's own time on the capture's frames
(the page's queue by Lindley's recursion on them, plus its time on the frame): a client's wait is none of
it.

Real app, real MongoDB server, real face engine and landmark model on the owner's own clip (d3 turns
left, then right)."""
from __future__ import annotations

import time

from faceweb.test_liveness_web import d3_turn_left  # noqa: F401  (fixture)
from idp.faceweb.liveness import IDLE_SLACK_MS, INTERVAL_MS, SHOWN_LATE_CAP_MS

from ._face import (  # noqa: F401
    app, cheap_password_hashing, engine, make_app, new_user, owner_signing_in, people, still_frame,
)
from .test_face_revealed_move_answered_in_real_time import _frame

#: The wait after the first frame: the whole frame-time slack, and a little more (counted as burst time).
SPEND_S = IDLE_SLACK_MS / 1000.0 + 0.2
#: The pause once the next move is shown: keepalive frames this far apart (under the largest gap the burst
#: checks allow), each counted in full as burst time once the slack is spent.
KEEPALIVES, KEEPALIVE_S = 8, 0.5


def test_a_pause_after_the_next_move_is_not_paid_for_by_the_slack_spent_before_it(make_app, new_user, faces_dir,
                                                                                 d3_turn_left):
    """The time credited is the server's own: the page's queue the server's times on the frames explain
    (measured here around each request: the test client calls the app in-process, so a request's duration is
    the server's time on it), not the client's 2.2 s wait. Whether the sign-in is then accepted depends on the
    machine's load (a server genuinely slower than the filming credits everyone its lateness), so it is the
    credit that is checked; on this host's quiet runs the attack above was refused once the credit went."""
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    paused, extra_ms, answers, queue, explained = False, 0.0, [], 0.0, None
    for k, image in enumerate(frames):
        began = time.monotonic()
        r = _frame(b, cap, image, 1000.0 * k / 7.5 + extra_ms)
        took = (time.monotonic() - began) * 1000.0
        if r.status_code == 409 and r.get_json().get("error") == "replayed_frame":
            break  # refused (a capture that runs on reaches frames near the enrollment's): not accepted
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
        if k == 0:
            time.sleep(SPEND_S)  # the slack spent: the next frames stamped as if no time had passed
        if not paused and len(answers[-1]["liveness"]["moves"]) == 2:
            explained = queue + took  # the answer's delay the server's own times explain
            paused = True  # the next move was shown: a pause, frames of the held pose sent during it
            for n in range(1, KEEPALIVES + 1):
                time.sleep(KEEPALIVE_S)
                r = _frame(b, cap, still_frame(image, n), 1000.0 * k / 7.5 + extra_ms + 5.0 * n)
                assert r.status_code == 200, r.get_json()
            extra_ms += 5.0 * KEEPALIVES + 5.0
        queue = max(0.0, queue + took - INTERVAL_MS)  # the page's queue, had it filmed every interval
    assert paused, [a["liveness"]["moves"] for a in answers]
    late = db.capture_sessions.find_one({"_id": cap["capture_id"]})["lv_next_late"]
    # the wait bought nothing (it would add 2.2 s, up to the cap): at most what the server's times explain
    assert late <= min(explained, SHOWN_LATE_CAP_MS) + 50.0, {"credited": late, "explained": round(explained)}
    b.finish(cap)
