"""Deleting the face data counts as "face proven" (the next enrollment a trusted one) only
when this session matched the face within the re-enrollment window, as replacing the template asks. Before,
any session that had passed the face at some time did: whoever holds such a session (a stolen cookie, an
unattended computer hours later) and the password deleted the owner's face data and then enrolled their own
face as the account's "first": no fresh face match, no cooling-off, a new set of recovery codes for them and
the owner's gone - the re-enrollment that the fresh face match guards, by another door. Real app, real
database, real face engine and photos."""
from __future__ import annotations

import hashlib

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import PASSWORD, Browser


def _age_session(app, browser: Browser, seconds: float) -> None:
    """Move every time this browser's server-side session recorded (password step, face check) ``seconds``
    into the past: the session as it is that much later (stolen, or left open)."""
    db = get_db(app)
    key = hashlib.sha256(browser.client.get_cookie("deepauth_session").value.encode()).hexdigest()
    data = db.sessions.find_one({"_id": key})["data"]
    data["auth"]["at"] -= seconds
    data["auth"]["auth_time"] -= int(seconds)
    for value in data.values():
        if isinstance(value, dict) and isinstance(value.get("at"), (int, float)) and value is not data["auth"]:
            value["at"] -= seconds
    db.sessions.update_one({"_id": key}, {"$set": {"data": data}})


def test_a_face_session_of_an_hour_ago_cannot_delete_and_enroll_another_face_as_trusted(app, enrolled, people):
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    thief = Browser(app)
    thief.login("alice")
    assert thief.capture("verify", people["alice"][5:8]).get_json()["ok"]  # the owner's face, an hour ago
    _age_session(app, thief, 3600)
    page = thief.get("/account/face").text

    r = thief.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert r.status_code == 302 and db.face_templates.count_documents({"_id": uid}) == 0
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10  # the owner's codes stay

    thief.consent()
    assert thief.capture("enroll", people["mallory"][:5]).get_json()["ok"]
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10  # no new set for the thief
    c = Browser(app)
    c.login("alice")
    r = c.start("verify")
    assert r.status_code == 403 and r.get_json()["error"] == "face_cooloff"  # the thief's face gives no amr face
    assert db.audit_log.find_one({"event": "face.cooloff", "user_id": uid})["details"]["via"] == "deleted"
    assert "delete-cools-off" in page  # the page said a waiting period follows


def test_a_fresh_face_check_still_deletes_everything(app, enrolled, people):
    """The owner who has just matched the face deletes every piece of face data and enrolls again without a
    waiting time; the recovery codes stay (no deletion voids them)."""
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    _age_session(app, b, 3600)  # a sign-in of an hour ago ...
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]  # ... whose face step ran just now
    assert "delete-cools-off" not in b.get("/account/face").text
    r = b.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert r.status_code == 302
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10
    assert db.face_status.count_documents({"_id": uid}) == 0
