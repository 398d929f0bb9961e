"""The account owner's security notice does not depend on the audit log being writable: when the
audit insert fails (here the real database refuses every audit document through a collection validator),
the listeners still get the event, so the mail goes out, and the failure is logged without secrets."""
from __future__ import annotations

import logging

from tests.accounts.conftest import GOOD_PASSWORD, Browser, make_app  # noqa: F401  (fixtures)

NEW_PASSWORD = "purple elephant violin sunrise"


def _refuse_audit_inserts(db) -> None:
    """Every insert into ``audit_log`` (and only there) fails on the server: Document failed validation."""
    db.command("collMod", "audit_log", validator={"event": {"$exists": False}})


def test_password_change_notice_is_mailed_when_the_audit_insert_fails(make_app, smtp_server, caplog):  # noqa: F811
    app = make_app(smtp_url=smtp_server.url)
    db = app.extensions["db"]
    b = Browser(app.test_client())
    assert b.register().status_code == 302
    smtp_server.wait_for(1)  # the verification mail
    _refuse_audit_inserts(db)
    stored = db.audit_log.count_documents({})
    caplog.set_level(logging.INFO, logger="idp.audit")

    r = b.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD,
                                       "confirm": NEW_PASSWORD})
    assert r.status_code == 302  # the change itself went through

    assert db.audit_log.count_documents({}) == stored  # the audit write really failed
    notice = smtp_server.wait_for(2)[1]
    assert notice["Subject"] == "Your password was changed" and notice["To"] == "alice@example.com"
    failures = [rec for rec in caplog.records if rec.name == "idp.audit" and "audit write failed" in rec.getMessage()]
    assert failures and all(getattr(rec, "event", None) == "account.password_changed" for rec in failures)
    logged = "\n".join(rec.getMessage() + repr(rec.__dict__) for rec in caplog.records)
    assert NEW_PASSWORD not in logged and GOOD_PASSWORD not in logged


def test_face_recovery_notice_is_queued_when_the_audit_insert_fails(make_app, smtp_server):  # noqa: F811
    """The same through the audit writer itself, for a face event: the real notice listener queues the mail
    in the outbox with the document that could not be stored."""
    from idp import audit
    from idp.accounts import users
    app = make_app(smtp_url=smtp_server.url, mail_sender=False)
    db = app.extensions["db"]
    uid = users.create_user(db, "bob", "bob@example.com", GOOD_PASSWORD)["_id"]
    _refuse_audit_inserts(db)

    result = audit.record(db, audit.FACE_RECOVERY, user_id=uid, decision="accepted", ip="192.0.2.7",
                          details={"codes_left": 9})

    assert result is None and db.audit_log.count_documents({"event": audit.FACE_RECOVERY}) == 0
    queued = list(db.mail_outbox.find({"user_id": uid}))
    assert [m["subject"] for m in queued] == ["A recovery code was used on your account"]
    assert queued[0]["to"] == "bob@example.com" and "192.0.2.7" in queued[0]["body"]
