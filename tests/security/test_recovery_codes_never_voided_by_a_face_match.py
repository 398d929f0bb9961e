"""A face match never voids the owner's recovery codes. Whoever passes the face step without being the owner (a
client that injects one photograph rendered as a head: docs/security.md "Still open") and knows the password
could re-enroll with a fresh face match, which made a fresh set of codes voiding the owner's, or delete the face
data from that session, which deleted them: the owner, warned by the enrollment's notice, was left with an
administrator as the only way back. Now unused codes go only by their use, an administrator or the account's
deletion; a new set is made only when none is left. Real app, real database, real face engine and photos; the
impostor's face step is stood in for by the owner's own photos, since what is under test is what a passed face
step may do, not how it was passed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


from ._face import *  # noqa: F401,F403
from ._face import PASSWORD, Browser
from .test_recovery_codes_not_replaced_without_face import (_code_session, _code_works, _codes_on, _reenroll_with_face,
                                                          owners_codes_of)


def _face_session(app, people) -> Browser:
    """A fresh sign-in that passed alice's face step just now (password, face match)."""
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]
    return b


def _unused(db, uid) -> int:
    return db.recovery_codes.count_documents({"user_id": uid, "used_at": None})


def test_a_face_confirmed_re_enrollment_of_another_face_keeps_the_owners_codes_and_way_back(app, enrolled, people):
    uid, db, owners_codes = owners_codes_of(app, enrolled)
    assert len(owners_codes) == 10

    page = _reenroll_with_face(app, people, "mallory")  # the account's face is now someone else's
    assert _codes_on(page) == [] and 'id="codes-not-replaced"' in page and "10 remaining codes" in page
    assert _unused(db, uid) == 10
    entry = db.audit_log.find_one({"user_id": uid, "event": "face.enroll"}, sort=[("at", -1)])
    assert entry["decision"] == "enrolled" and entry["details"]["codes_issued"] is False

    # the owner's way back: the password (reset, in the real world) and one of their codes, then their own face
    back = _code_session(app, owners_codes[0])
    assert back.capture("enroll", people["alice"][:5]).get_json()["ok"]  # cooled off, as any enrollment by a code
    db.face_status.update_one({"_id": uid}, {"$set": {"cooloff_until": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    _face_session(app, people)  # alice's face signs in again
    assert _code_works(app, owners_codes[1])


def test_a_face_proven_deletion_keeps_the_codes_and_the_next_enrollment_makes_none(app, enrolled, people):
    uid, db, owners_codes = owners_codes_of(app, enrolled)
    b = _face_session(app, people)
    assert 'id="delete-cools-off"' not in b.get("/account/face").text  # a fresh face: no waiting period after it
    r = b.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert r.status_code == 302 and db.face_templates.count_documents({"_id": uid}) == 0
    assert "recovery codes were kept" in b.get("/account/face").text
    assert _unused(db, uid) == 10
    deleted = db.audit_log.find_one({"user_id": uid, "event": "face.delete"})
    assert "recovery_codes" not in deleted["details"]

    b.consent()  # the deletion took the consent with it
    assert b.capture("enroll", people["mallory"][:5]).get_json()["ok"]  # trusted as a "first" enrollment ...
    page = b.get("/face/enroll/done").text
    assert _codes_on(page) == [] and 'id="codes-not-replaced"' in page  # ... but it makes no codes
    assert _unused(db, uid) == 10 and _code_works(app, owners_codes[0])


def test_a_new_set_once_none_is_left(app, enrolled, people):
    """The way to new codes stays open: once the codes are used up or voided by an administrator, the owner's
    next face-confirmed re-enrollment makes a new set (and the page shows it)."""
    uid, db, owners_codes = owners_codes_of(app, enrolled)
    db.recovery_codes.update_many({"user_id": uid}, {"$set": {"used_at": datetime.now(timezone.utc)}})  # used up
    fresh = _codes_on(_reenroll_with_face(app, people))
    assert len(fresh) == 10 and not set(fresh) & set(owners_codes)
    assert _unused(db, uid) == 10
    assert _code_works(app, fresh[0])


def test_codes_under_a_secret_key_no_longer_configured_count_as_none_left(app, enrolled, people):
    """Codes issued under a secret key since dropped from IDP_SECRET_KEYS_RETIRED cannot be used: they are not
    counted as left (the account page says 0), so the next face-confirmed re-enrollment makes a new set."""
    from idp import get_config
    from idp.faceweb import recovery
    uid, db, _ = owners_codes_of(app, enrolled)
    db.recovery_codes.delete_many({"user_id": uid})  # the account's codes all date from the dropped key
    dead = recovery.issue_recovery_codes(db, uid, "a-secret-key-no-longer-configured")
    assert _unused(db, uid) == 10 and not _code_works(app, dead[0])
    assert '<dd id="codes-left">0</dd>' in _face_session(app, people).get("/account/face").text
    fresh = _codes_on(_reenroll_with_face(app, people))
    assert len(fresh) == 10 and _code_works(app, fresh[0])
    assert recovery.remaining_recovery_codes(db, uid, get_config(app).secret_key) == 9
