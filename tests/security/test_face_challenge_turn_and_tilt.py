"""Every challenge the default configuration gives holds a turn and a tilt.

Paper bends one way at a time: a print curved about its vertical axis turns like a head and tilts like a
flat sheet, one curved about its horizontal axis the other way round. A challenge of turns alone (or tilts
alone) let such a print perform every move, and the pending sign-in challenge stays the same until the user
matches, so an attacker who had one look could bend his print for it (docs/liveness.md, "One turn and one
tilt"). A challenge drawn before this rule, still pending, is drawn again at the next start.

Real app, real MongoDB server.
"""
from __future__ import annotations

from idp import get_db
from idp.liveness import challenge_moves

from ._face import Browser, app, cheap_password_hashing, engine, enrolled, make_app, new_user, people  # noqa: F401


def _axes(challenge: str) -> set[str]:
    return {"turn" if m.startswith("turn") else "tilt" for m in challenge_moves(challenge)}


def test_sign_in_challenges_hold_a_turn_and_a_tilt(enrolled, make_app):
    user, _ = enrolled
    app = make_app(liveness_enabled=True)  # the default configuration
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    seen = set()
    for _ in range(12):
        b.start("verify")
        pending = db.face_status.find_one({"_id": user["_id"]})["pending_challenge"]
        assert _axes(pending) == {"turn", "tilt"}, pending
        seen.add(pending)
        # drawn again for the next start, as after a match
        db.face_status.update_one({"_id": user["_id"]}, {"$unset": {"pending_challenge": ""}})
    assert len(seen) >= 2  # 12 draws of 8: one value only with probability 8**-11


def test_a_pending_challenge_of_turns_alone_is_drawn_again(enrolled, make_app):
    user, _ = enrolled
    app = make_app(liveness_enabled=True)
    db = get_db(app)
    for old in ("turn_left+turn_right", "look_up+look_down", "turn_right+turn_right"):
        db.face_status.update_one({"_id": user["_id"]}, {"$set": {"pending_challenge": old}}, upsert=True)
        b = Browser(app)
        b.login("alice")
        assert b.start("verify").status_code == 201
        pending = db.face_status.find_one({"_id": user["_id"]})["pending_challenge"]
        assert pending != old and _axes(pending) == {"turn", "tilt"}, (old, pending)
