"""Red-team finding (fixed): with three or more moves per challenge (``IDP_LIVENESS_MOVES=3``, or a configured pool
of longer sequences), the moves between the first and the last were performed by anyone.

The face of a move was judged twice: at sign-in the next-move gate judged the last *shown* move (the first: the
others are shown together once it was performed), and the finish judged the *last* move of the challenge
(``move_from_ms`` .. ``move_until_ms`` of the decision: the last move's frames only). A middle move was judged by
nothing but the liveness checks; its frames, turned or tilted, seldom pass the quality gate, so identity at the
finish did not see them either. So a recording of the owner for the first and the last move and the attacker's own
head, out of focus, for the middle one gave ``amr ["pwd","face"]``, against the claim that the face that performed
each move matched. Now the finish judges every move of the challenge the same way (``liveness.move_spans``).

Real app, real MongoDB server, real face engine and landmark model, shared clips: d3 is the owner (alice, enrolled
without liveness from frames facing the camera, so that no frame of her turns is in the replay store), d12 the
attacker. The test failed before the fix (``face`` was given).
"""
from __future__ import annotations

from faceweb.conftest import enroll_user
from faceweb.test_liveness_web import clip_frames, d3_turn_left  # noqa: F401
from idp import get_db

from ._face import (Browser, app, cheap_password_hashing, engine, make_app, new_user, out_of_focus,  # noqa: F401
                    people, session_auth)
from .test_face_last_move_identity import _mirrored, _sign_in_capture


def test_a_middle_move_performed_by_someone_else_does_not_give_face(make_app, new_user, faces_dir, d3_turn_left):
    enroll_user(make_app(liveness_enabled=False), new_user, clip_frames(faces_dir, "d3", 0.0, 1.5))
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left+turn_right+turn_left")
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    b = Browser(app)
    b.login("alice")  # the attacker knows alice's password
    first = clip_frames(faces_dir, "d3", 3.0, 2.5)  # a recording of alice turning left (the gate opens)
    middle = _mirrored(out_of_focus(clip_frames(faces_dir, "d12", 0.4, 2.0)))  # the attacker turns right
    last = d3_turn_left  # another recording of alice turning left
    answers, fin = _sign_in_capture(b, first + middle + last)
    # the recording of alice opened the gate; the attacker's turn was the second move, never a good frame
    assert any(a["liveness"]["moves"] == ["turn_left", "turn_right", "turn_left"] for a in answers[:len(first)])
    assert not any(a["ok"] for a in answers[len(first):len(first) + len(middle)])
    assert answers[-1]["liveness"]["moves_done"] == 3  # liveness saw every move performed
    assert fin.get_json()["ok"] is False, fin.get_json()
    assert "face" not in session_auth(b)["amr"]
    verdicts = list(db.audit_log.find({"event": "face.verify", "user_id": uid}))
    assert [v["decision"] for v in verdicts] == ["no_match"]
    assert verdicts[0]["details"]["move_face_matched"] is False
