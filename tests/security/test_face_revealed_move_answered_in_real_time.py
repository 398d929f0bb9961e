"""The move shown mid-capture must be answered in real time, not after a pause of the client's choosing.

At sign-in the next move is shown only once the first was performed (``lv_all_shown``), so that a
recording of the owner that fits the first move is spent before the next is known. That holds only if
the capture cannot wait: a frame's time in the burst (``liveness.frame_time``) is the browser's claim,
bounded by the server's receive time from above only (``CLOCK_SLACK_MS``). A client that pauses after
the answer that shows the next move - to find or make frames that perform it - and then goes on
sending frames stamped as if no time had passed, is judged as if it had answered at once: every time
limit of the decision (cue, challenge window, burst length) is read on the claimed times, and only the
capture's lifetime (``IDP_CAPTURE_TTL``, 300 s by default) bounds the real pause.

Real app, real MongoDB server, real face engine and landmark model on the owner's own clip (d3 turns
left, then right): the only thing the test changes is the real time between two frames.
"""
from __future__ import annotations

import time

from faceweb.test_liveness_web import T0, d3_turn_left  # noqa: F401
from idp.faceweb import liveness
from idp.liveness import LivenessSettings

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, owner_signing_in, people  # noqa: F401

#: A pause longer than the whole challenge window, even lengthened as much as a late answer can lengthen it.
PAUSE_S = (LivenessSettings().challenge_window_ms + liveness.SHOWN_LATE_CAP_MS) / 1000.0 + 1.0


def _frame(b, cap, image, t):
    return b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                 headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t)})


def test_a_pause_after_the_next_move_is_shown_is_not_hidden_by_the_claimed_frame_times(make_app, new_user,
                                                                                        faces_dir, d3_turn_left):
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    pause_s = PAUSE_S
    paused, answers = False, []
    for k, image in enumerate(frames):
        r = _frame(b, cap, image, 1000.0 * k / 7.5)
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
        if not paused and len(answers[-1]["liveness"]["moves"]) == 2:
            paused = True  # the next move was shown: the client takes its time before answering it
            time.sleep(pause_s)
    assert paused, [a["liveness"]["moves"] for a in answers]
    fin = b.finish(cap).get_json()
    # the second move came more than the challenge window (real time) after the first frame
    assert fin["ok"] is False, fin
