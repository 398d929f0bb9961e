"""Deleting the face data asks for the password, as re-enrolling does. Without it, whoever holds a signed-in
browser session (an unattended computer, a stolen cookie) but not the password could delete the owner's
face data and then enroll their own face as the account's "first" enrollment, in the same session: a new
set of recovery codes for them, the owner's codes gone, no cooling-off, and the owner's own face refused
at their next sign-in. Real app, real database, real face engine and photos."""
from __future__ import annotations

from faceweb.conftest import PASSWORD, Browser, enrolled, make_app, new_user, people  # noqa: F401  (fixtures)
from faceweb.conftest import app, engine  # noqa: F401  (fixtures)
from idp import get_db


def _face_session(app, people):
    """The owner's browser after password and face (amr pwd, face): the session a thief would hold."""
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]
    return b


def test_a_session_alone_cannot_delete_the_face_data(app, enrolled, people):
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    thief = _face_session(app, people)
    codes = db.recovery_codes.count_documents({"user_id": uid, "used_at": None})
    for data in ({"confirm": "yes"}, {"confirm": "yes", "password": "not the password"}):
        thief.form("/account/face/delete", data, page="/account/face")
        assert db.face_templates.count_documents({"_id": uid}) == 1, data
        assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == codes
    assert db.audit_log.count_documents({"event": "face.delete"}) == 0
    # so the thief cannot enroll a face of their own in place of the owner's
    r = thief.start("enroll")
    assert r.status_code == 403 and r.get_json()["error"] == "enroll_not_allowed"
    # a wrong password counts on the account's password counter, like every password check
    assert db.throttles.find_one({"_id": f"pwd:user:{uid}"})["failures"] >= 1


def test_the_owner_deletes_with_the_password(app, enrolled, people):
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    b = _face_session(app, people)
    r = b.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert r.status_code == 302
    assert db.face_templates.count_documents({"_id": uid}) == 0
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10  # no deletion voids them
    assert db.audit_log.count_documents({"event": "face.delete", "user_id": uid}) == 1


def test_a_throttled_password_check_deletes_nothing(make_app, new_user, people):
    """Once wrong passwords have throttled the account, even the right password deletes nothing until the
    wait is over (it is not checked at all): the page says to wait."""
    from faceweb.conftest import enroll_user
    app = make_app(login_free_failures=1)
    user, _ = enroll_user(app, new_user, people["alice"])
    uid = user["_id"]
    db = get_db(app)
    b = _face_session(app, people)
    for password in ("not the password", "still not it", PASSWORD):
        b.form("/account/face/delete", {"confirm": "yes", "password": password}, page="/account/face")
    assert db.face_templates.count_documents({"_id": uid}) == 1
    assert db.audit_log.count_documents({"event": "face.delete"}) == 0
    page = b.get("/account/face").get_data(as_text=True)
    assert "Too many wrong passwords. Please wait" in page


def test_the_face_data_deleted_by_several_posts_at_once_is_audited_and_mailed_once(app, enrolled, people):
    """A double submit (or the form in two tabs) at once: the template's atomic delete tells which request
    deleted the face; only that one writes the audit entry and so the owner's notice (before, each post wrote
    its own "face.delete" and mailed the owner once per post)."""
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    answers = _delete_posted_at_once(app, _face_session(app, people))
    assert [r.status_code for r in answers] == [302] * 3
    assert db.face_templates.count_documents({"_id": uid}) == 0
    assert db.audit_log.count_documents({"event": "face.delete", "user_id": uid}) == 1
    assert db.mail_outbox.count_documents({"kind": "notice:face.delete", "user_id": uid}) == 1


def _consented_session(app, new_user):
    """An account that gave its consent to the biometric notice and enrolled no face (consent alone)."""
    user = new_user("alice")
    b = Browser(app)
    b.login("alice")
    b.consent()
    assert get_db(app).face_status.find_one({"_id": user["_id"]})["consent"]
    return user, b


def test_deleting_a_consent_without_a_template_is_audited_and_mailed_once(app, new_user):
    """Before, the template's delete decided which request audits: with no template, no request did, so the
    withdrawal of the consent was neither audited nor mailed to the owner."""
    user, b = _consented_session(app, new_user)
    uid = user["_id"]
    db = get_db(app)
    data = {"csrf_token": b.page_csrf("/account/face"), "confirm": "yes", "password": PASSWORD}
    for _ in range(2):  # the second submit, after the first finished, finds nothing left: not audited again
        r = b.client.post("/account/face/delete", data=data)
        assert r.status_code == 302
    assert not (db.face_status.find_one({"_id": uid}) or {}).get("consent")
    [entry] = db.audit_log.find({"event": "face.delete", "user_id": uid})
    assert entry["decision"] == "deleted" and entry["details"]["consent"] == 1 and entry["details"]["template"] == 0
    [mail] = db.mail_outbox.find({"kind": "notice:face.delete", "user_id": uid})
    assert mail["subject"] == "Your face sign-in data was deleted"


def test_a_consent_without_a_template_deleted_by_several_posts_at_once_is_audited_once(app, new_user):
    user, b = _consented_session(app, new_user)
    uid = user["_id"]
    db = get_db(app)
    answers = _delete_posted_at_once(app, b)
    assert [r.status_code for r in answers] == [302] * 3
    assert not (db.face_status.find_one({"_id": uid}) or {}).get("consent")
    assert db.audit_log.count_documents({"event": "face.delete", "user_id": uid}) == 1
    assert db.mail_outbox.count_documents({"kind": "notice:face.delete", "user_id": uid}) == 1


def test_of_deletions_at_once_exactly_one_reports_also_without_a_template(db):
    """The repository itself, calls released together: the claim on ``face_status`` makes exactly one call
    erase and report (the one that audits), with or without a template; a claim whose process died is taken
    over once it is older than ``ERASE_CLAIM_S``."""
    from datetime import timedelta

    from idp.faceweb import erasure, notice
    from idp.faceweb.face_status import utcnow
    from idp.store import migrate
    from support.concurrency import at_once
    migrate.apply(db)
    for uid, template in (("consent-only", False), ("enrolled", True)):
        notice.record_consent(db, uid)
        if template:
            db.face_templates.insert_one({"_id": uid, "ciphertext": b"x"})
        results = at_once([lambda uid=uid: erasure.delete_face_data(db, uid)] * 4)
        reported = [r for r in results if r is not None]
        assert len(reported) == 1, results
        assert reported[0]["consent"] == 1 and reported[0]["template"] == int(template)
        assert db.face_status.count_documents({"_id": uid}) == 0 and db.face_templates.count_documents({}) == 0
    notice.record_consent(db, "interrupted")
    assert erasure._claim(db, "interrupted") is not None  # a deletion whose process died right after its claim
    assert erasure.delete_face_data(db, "interrupted") is None  # its claim is live
    db.face_status.update_one({"_id": "interrupted"}, {"$set": {
        "erasing.at": utcnow() - timedelta(seconds=erasure.ERASE_CLAIM_S + 1)}})
    assert erasure.delete_face_data(db, "interrupted")["consent"] == 1
    assert db.face_status.count_documents({}) == 0


def _delete_posted_at_once(app, b, n: int = 3) -> list:
    """The face-deletion form of browser session ``b``, confirmed with the password, posted ``n`` times at
    once over real HTTP (a double submit, several tabs); the answers."""
    import requests
    from faceweb.conftest import USER_AGENT
    from support.concurrency import at_once
    from support.servers import LiveServer

    data = {"csrf_token": b.page_csrf("/account/face"), "confirm": "yes", "password": PASSWORD}
    cookies = {"deepauth_session": b.client.get_cookie("deepauth_session").value}
    server = LiveServer(app)

    def post():
        return requests.post(f"{server.url}/account/face/delete", data=data, cookies=cookies,
                             headers={"User-Agent": USER_AGENT}, allow_redirects=False)
    try:
        return at_once([post] * n)
    finally:
        server.stop()
