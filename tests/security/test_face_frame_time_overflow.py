"""Red-team finding (fixed): a frame time that overflowed put NaN into the burst.

``X-Frame-Time`` is accepted when finite (``views._client_time``), but ``liveness.frame_time`` subtracts
it from the first frame's: 1e308 then -1e308 gives -inf, the shift becomes +inf and the frame's time in
the burst NaN. The order check (``t_ms < last_t or t_ms < 0``) is false for NaN, so the frame is stored
with ``t_ms`` NaN, and every later frame's time becomes the server's receive time + CLOCK_SLACK_MS. In
the decision a NaN time in the middle of a burst hides every gap (``np.diff(...).max()`` is NaN, and NaN
> max_gap_ms is false) and is never inside the next-move gate's span. In this probe the capture still
failed (bad_timing, all later frames NaN too), so no bypass was shown. Now a time beyond any clock reading
is ignored like a missing one (the server's receive time places the frame), and a time that still cannot be
placed is refused. Real app, real MongoDB, real face engine and landmark model, the shared clip d3.
"""
from __future__ import annotations

import math


from faceweb.test_liveness_web import clip_frames, d3_turn_left, enroll_with  # noqa: F401
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401


def test_a_frame_time_that_is_no_clock_reading_is_ignored_and_no_burst_time_is_nan(make_app, new_user, faces_dir, d3_turn_left):
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left")
    enroll_with(app, new_user, d3_turn_left)
    b = Browser(app)
    b.login("alice")
    frames = clip_frames(faces_dir, "d3", 3.0, 0.5)
    cap = b.start("verify").get_json()
    answers = []
    for image, when in zip(frames, ("1e308", "-1e308")):
        answers.append(b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                             headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": when}))
    assert answers[0].status_code == 200
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    assert len(doc["frames"]) == 2 and all(math.isfinite(f["t_ms"]) for f in doc["frames"]), doc["frames"]
    assert answers[1].status_code == 200, answers[1].get_json()  # placed by the server's receive time
