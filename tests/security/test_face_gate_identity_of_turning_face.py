"""At sign-in the next move is shown only once the shown ones were performed *with the owner's face*.

The gate (``CaptureService._face_matches_since``) asks the engine whether the capture's good frames
match the enrolled template with one of them filmed after the turn began. A turning head's frames are
rarely good (head_turned, blurry): they carry the landmarks the liveness decision reads, but no
embedding. So the identity check never sees the face that turned, only the frames around it. Someone
else can turn their own (out-of-focus) head, then hold up a still photo of the owner: the photo's frames
are the only good ones, they match, one is after the turn, and the hidden move is shown.

Real app, real MongoDB server, real face engine, landmark model and shared clips: d3 is the owner
(alice), d12 someone else.
"""
from __future__ import annotations

import io

from PIL import Image

from faceweb.test_liveness_web import T0, clip_frames, d3_turn_left, enroll_with, held_still  # noqa: F401
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people, out_of_focus  # noqa: F401

TWO = "turn_left+turn_right"


def _frame(b, cap, image, t):
    return b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                 headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t)})


def test_someone_elses_turn_then_a_photo_of_the_owner_does_not_show_the_next_move(make_app, new_user, faces_dir,
                                                                                  d3_turn_left):
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    app = make_app(liveness_enabled=True, liveness_challenges=TWO)
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    # d12 turns left (13 degrees at ~0.8 s into this part) and back, out of focus: no good frame
    impostor = out_of_focus(clip_frames(faces_dir, "d12", 0.4, 2.0))
    # then a still photo of alice (one frame of another clip of hers), hand-held in front of the camera
    photo = held_still(Image.open(io.BytesIO(clip_frames(faces_dir, "d3", 0.0, 1.0)[3])), count=12, shift=True)
    cap = b.start("verify").get_json()
    db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 200}})
    answers = []
    for k, image in enumerate(impostor + photo):
        r = _frame(b, cap, image, 1000.0 * k / 7.5)
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
    live = [a["liveness"] for a in answers]
    assert any(lv["moves_done"] == 1 for lv in live[:len(impostor)])  # d12 performed the shown (first) move
    assert not any(a["ok"] for a in answers[:len(impostor)])  # none of d12's frames was usable for identity
    # the face that turned was never the owner's: the second move must stay hidden
    assert all(lv["moves"] == ["turn_left"] for lv in live), [lv["moves"] for lv in live]
    assert not db.capture_sessions.find_one({"_id": cap["capture_id"]}).get("lv_all_shown")
