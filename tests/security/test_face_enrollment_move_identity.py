"""Red-team finding (fixed): at enrollment, the face that performed the liveness moves was never compared with the
face the template was built from.

The template is built from the capture's good frames only (``FaceEngine.enroll``: frames that passed the quality
gate), and liveness reads the moves from every face frame. A turning head is seldom a good frame (turned, blurred),
and a live head filmed out of focus never is. So a live accomplice could perform the moves out of focus while a
printed photo of the victim, held up after them, supplied every frame of the template: the enrollment passed
liveness and stored the victim's face, which then signs in as the victim's account's owner. Now each move's frames
(``liveness.move_spans``) must match the new template, judged as at sign-in (``CaptureService._moves_made_by_owner``,
the engine's one decision), or the enrollment is refused (``inconsistent_frames``) and nothing is written (a
re-enrollment after an admin reset keeps the stored template, the grant and the recovery codes).

Real app, real MongoDB server, real face engine and landmark model, real photos: the victim is an LFW colour photo
(Vladimir_Putin, held up where the accomplice's face was: no jump between the frames), the accomplice the shared
clip d12 turning left, out of focus (no good frame, landmarks still found; mirrored for a right turn). The tests
failed before the fix (the enrollment was accepted and the photo's template stored).
"""
from __future__ import annotations

import pytest

from faceweb.test_liveness_web import clip_frames, send_burst, signed_in
from idp import get_db

from ._face import (app, cheap_password_hashing, engine, make_app, new_user, out_of_focus, people,  # noqa: F401
                    still_frame)
from .test_face_last_move_identity import _mirrored
from .test_face_move_evidence_identity import _aligned


@pytest.fixture(scope="module")
def accomplice_turning_left(faces_dir) -> list[bytes]:
    return out_of_focus(clip_frames(faces_dir, "d12", 0.4, 2.0))  # d12 turns left: no good frame


@pytest.mark.parametrize("challenge", ["turn_left", "turn_left+turn_right"])
def test_moves_by_a_live_accomplice_and_a_photo_of_the_victim_do_not_enroll(
        make_app, new_user, people, engine, accomplice_turning_left, challenge):
    app = make_app(liveness_enabled=True, liveness_challenges=challenge)
    db = get_db(app)
    b = signed_in(app, new_user)  # the attacker's own account (or one whose password it knows)
    uid = db.users.find_one({"username": "alice"})["_id"]
    turns = {"turn_left": accomplice_turning_left, "turn_right": _mirrored(accomplice_turning_left)}
    moves = [frame for move in challenge.split("+") for frame in turns[move]]
    status = db.face_status.find_one({"_id": uid})  # the consent only
    # the victim's photo, held up where the accomplice's face was (no jump), a new frame each time
    held = _aligned(engine, people["alice"][0], moves[-1])
    photo = [still_frame(held, k) for k in range(16)]
    _, answers, fin = send_burst(b, "enroll", moves + photo)
    assert not any(a["ok"] for a in answers[:len(moves)])  # the template never saw the face that turned
    assert answers[-1]["liveness"]["moves_done"] == len(challenge.split("+"))  # liveness saw every move performed
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is False, body
    assert body["reasons"] == ["inconsistent_frames"] and "yourself" in body["message"], body
    # nothing written: no template, no face hashes, no recovery codes, the face status as it was (no cooling-off)
    assert db.face_templates.count_documents({"_id": uid}) == 0
    assert db.liveness_face_hashes.count_documents({"user_id": uid}) == 0
    assert db.recovery_codes.count_documents({"user_id": uid}) == 0
    assert db.face_status.find_one({"_id": uid}) == status
    entry = db.audit_log.find_one({"event": "face.enroll", "user_id": uid}, sort=[("_id", -1)])
    assert entry["decision"] == "rejected" and entry["reasons"] == ["inconsistent_frames"], entry
    assert entry["details"]["move_face_matched"] is False


def test_a_re_enrollment_whose_moves_another_face_performed_keeps_the_stored_template(
        make_app, new_user, people, engine, accomplice_turning_left):
    from idp.faceweb import reenrollment

    from ._face import Browser, enroll_user
    enroll_user(make_app(liveness_enabled=False), new_user, people["alice"])  # the owner's template
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left")
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    reenrollment.grant_reset(db, uid, "some-admin")  # an admin reset: a new face may be enrolled after the password
    template, status = db.face_templates.find_one({"_id": uid}), db.face_status.find_one({"_id": uid})
    codes = list(db.recovery_codes.find({"user_id": uid}))
    b = Browser(app)
    b.login("alice")
    photo = [still_frame(_aligned(engine, people["mallory"][0], accomplice_turning_left[-1]), k) for k in range(16)]
    _, _, fin = send_burst(b, "enroll", accomplice_turning_left + photo)
    assert fin.get_json()["ok"] is False and fin.get_json()["reasons"] == ["inconsistent_frames"], fin.get_json()
    # the stored template, the reset grant (no cooling-off started), the recovery codes: all as they were
    assert db.face_templates.find_one({"_id": uid}) == template
    assert db.face_status.find_one({"_id": uid}) == status
    assert list(db.recovery_codes.find({"user_id": uid})) == codes
    assert db.liveness_face_hashes.count_documents({"user_id": uid}) == 0
