"""New recovery codes come only from an enrollment from a sign-in that proved the face (or the account's first
enrollment), and only once none is left (test_recovery_codes_never_voided_by_a_face_match.py). Someone with the
password and one stolen recovery code can enroll a face (cooled off), but cannot mint a fresh set of codes, even
once the owner's are used up, and keep the account; nor can an enrollment through an administrator's reset. The
page says so."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import PASSWORD, Browser


def _codes_on(page_text: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", page_text)


def owners_codes_of(app, enrolled) -> tuple[str, object, list[str]]:
    """The enrolled owner's id, the database and the recovery codes their first enrollment showed."""
    user, owner = enrolled
    return user["_id"], get_db(app), _codes_on(owner.get("/face/enroll/done").text)


def _code_works(app, code: str) -> bool:
    """A fresh sign-in types the code on the recovery page (the real check); True when it was accepted."""
    b = Browser(app)
    b.login("alice")
    return b.form("/face/recover", {"code": code}).status_code == 302


def _code_session(app, code: str):
    """A fresh sign-in with alice's password and the recovery code ``code`` (accepted)."""
    b = Browser(app)
    b.login("alice")
    assert b.form("/face/recover", {"code": code}).status_code == 302
    return b


def _reenroll_with_face(app, people, face: str = "alice") -> str:
    """A fresh sign-in with alice's face re-enrolls (password re-check, face match) with ``face``'s photos; the
    done page's text (the new codes, or why none were made)."""
    c = Browser(app)
    c.login("alice")
    assert c.capture("verify", people["alice"][5:8]).get_json()["ok"]
    c.form("/account/face/reenroll", {"password": PASSWORD}, page="/account/face")
    assert c.capture("verify", people["alice"][5:8]).get_json()["ok"]
    assert c.capture("enroll", people[face][2:7]).get_json()["ok"]
    return c.get("/face/enroll/done").text


def test_a_recovery_code_session_cannot_replace_the_recovery_codes(app, enrolled, people):
    uid, db, owners_codes = owners_codes_of(app, enrolled)
    assert len(owners_codes) == 10

    attacker = _code_session(app, owners_codes[0])  # the password and one recovery code
    result = attacker.capture("enroll", people["mallory"][:5]).get_json()
    assert result["ok"] and result["redirect"] == "/face/enroll/done"  # the face is enrolled (cooled off)

    page = attacker.get("/face/enroll/done")
    assert page.status_code == 200 and _codes_on(page.text) == []
    assert 'id="codes-not-replaced"' in page.text and "not replaced" in page.text
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 9
    assert db.face_status.find_one({"_id": uid})["cooloff_until"].replace(tzinfo=timezone.utc) > datetime.now(timezone.utc)
    assert _code_works(app, owners_codes[1])  # the owner's remaining codes still work


def test_an_admin_reset_enrollment_does_not_replace_the_recovery_codes(app, enrolled, people):
    from idp.faceweb import reenrollment
    uid, db, owners_codes = owners_codes_of(app, enrolled)
    reenrollment.grant_reset(db, uid, "some-admin")

    b = Browser(app)  # the password alone, with the reset grant
    b.login("alice")
    assert b.capture("enroll", people["mallory"][:5]).get_json()["ok"]
    assert _codes_on(b.get("/face/enroll/done").text) == []
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10
    assert _code_works(app, owners_codes[2])


def test_a_code_session_with_no_code_left_makes_none_and_after_the_cooloff_a_face_sign_in_does(app, enrolled, people):
    """The way to new codes stays open to the owner: re-enrollment from a sign-in that matched the face, once the
    cooling-off period has run, and not to the recovery-code session, even with no unused code left."""
    uid, db, owners_codes = owners_codes_of(app, enrolled)
    b = _code_session(app, owners_codes[0])  # the password and one recovery code
    db.recovery_codes.update_many({"user_id": uid}, {"$set": {"used_at": datetime.now(timezone.utc)}})  # none left
    assert b.capture("enroll", people["alice"][:5]).get_json()["ok"]
    page = b.get("/face/enroll/done").text
    assert _codes_on(page) == [] and "You have no recovery codes left" in page
    db.face_status.update_one({"_id": uid}, {"$set": {"cooloff_until": datetime.now(timezone.utc) - timedelta(seconds=1)}})

    fresh = _codes_on(_reenroll_with_face(app, people))
    assert len(fresh) == 10 and not set(fresh) & set(owners_codes)
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10


def test_deleting_face_data_from_a_recovery_code_session_keeps_the_owners_codes(app, enrolled, people):
    """The detour through deletion: password + one stolen code, delete the face data, enroll a new face.
    The owner's unused codes survive the deletion and the enrollment, and still work."""
    uid, db, owners_codes = owners_codes_of(app, enrolled)

    attacker = _code_session(app, owners_codes[0])  # the password and one recovery code
    assert 'id="delete-cools-off"' in attacker.get("/account/face").text  # the page says a waiting period follows
    assert 'id="delete-cools-off"' not in enrolled[1].get("/account/face").text
    r = attacker.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert r.status_code == 302
    assert db.face_templates.count_documents({"_id": uid}) == 0  # the biometric data is gone
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 9
    assert "recovery codes were kept" in attacker.get("/account/face").text
    attacker.consent()  # the deletion took the consent with it
    assert attacker.capture("enroll", people["mallory"][:5]).get_json()["ok"]
    page = attacker.get("/face/enroll/done").text
    assert _codes_on(page) == [] and 'id="codes-not-replaced"' in page
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 9
    assert _code_works(app, owners_codes[1])


def test_an_unused_reset_grant_does_not_make_a_face_confirmed_re_enrollment_a_reset(app, enrolled, people):
    """An administrator's reset the user never needed (they could still sign in with their face): their
    re-enrollment confirmed by a face match is an ordinary one - no cooling-off, and new codes once none is left
    (here an administrator voided them)."""
    from idp.faceweb import reenrollment
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    reenrollment.grant_reset(db, uid, "some-admin")
    db.recovery_codes.delete_many({"user_id": uid})
    db.face_status.update_one({"_id": uid}, {"$set": {"reset.at": datetime.now(timezone.utc) - timedelta(days=30)}})

    assert len(_codes_on(_reenroll_with_face(app, people))) == 10
    assert reenrollment.cooloff_until(db, uid) is None
    entry = db.audit_log.find_one({"user_id": uid, "event": "face.enroll"}, sort=[("at", -1)])
    assert entry["details"]["via"] != "admin_reset" and entry["details"]["codes_issued"] is True
