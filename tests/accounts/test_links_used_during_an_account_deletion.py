"""A verification, reset or undo link used while an administrator deletes the account leaves nothing under the
deleted account. The views check once, before their writes, that no deletion has claimed the account; a deletion that
claimed it after that check and erased it while the view wrote left the view's audit entry, the owner's notice
(mail outbox) and a fresh undo link under the deleted account's id (found by a red team). Like the admin actions,
the views now read the account again after their writes (``users.erased_if_claimed_since``) and answer the link
as invalid. Real app, real database, real SMTP server; the deletion runs, for real, in another thread, held just
before it removes the account document until the view is done."""
from __future__ import annotations

import threading

from idp.accounts import users
from tests.conftest import mail_link
from tests.accounts.test_email_change_pending import _confirm, _confirmed_alice, _mails

from .conftest import GOOD_PASSWORD, Browser, stored_user


def _leftovers(db, uid):
    return {"users": db.users.count_documents({"_id": uid}),
            "audit_log": sorted(d["event"] for d in db.audit_log.find({"user_id": uid})),
            "mail_outbox": sorted(d["subject"] for d in db.mail_outbox.find({"user_id": uid})),
            "email_tokens": sorted(d["purpose"] for d in db.email_tokens.find({"user_id": uid}))}


def _nothing_left(db, uid) -> None:
    left = _leftovers(db, uid)
    assert left["users"] == 0
    assert left["audit_log"] == [] and left["mail_outbox"] == [] and left["email_tokens"] == [], left


def _race(monkeypatch, db, uid, target: str, module=users):
    """Patch ``<module>.<target>`` (``users`` unless given) so that an account deletion starts right after the view's claim check and
    runs up to removing the users document (every other collection already erased); the view then writes, and
    the deletion removes the users document once the view is done."""
    at_last_step, view_done = threading.Event(), threading.Event()
    real_durable, real_target = users.durable, getattr(module, target)
    deleter = {}

    class Blocking:
        def __init__(self, coll):
            self.coll = coll

        def __getattr__(self, name):
            return getattr(self.coll, name)

        def delete_many(self, *a, **kw):
            at_last_step.set()
            assert view_done.wait(30)
            return self.coll.delete_many(*a, **kw)

    def durable(db_, name):
        coll = real_durable(db_, name)
        if name == "users" and threading.current_thread() is deleter.get("thread"):
            return Blocking(coll)
        return coll

    def patched(*a, **kw):
        t = threading.Thread(target=lambda: deleter.setdefault("result", users.delete_user(db, uid)))
        deleter["thread"] = t
        t.start()
        assert at_last_step.wait(30)
        return real_target(*a, **kw)

    monkeypatch.setattr(users, "durable", durable)
    monkeypatch.setattr(module, target, patched)
    return view_done, deleter


def test_a_confirmation_link_used_during_the_deletion_leaves_nothing_of_the_account(mail_app, smtp_server,
                                                                                    monkeypatch):
    owner = _confirmed_alice(mail_app, smtp_server)
    r = owner.submit("/account/email", {"email": "new@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 302
    (link,) = [m for m in _mails(smtp_server, 3) if m["To"] == "new@example.com"]
    db = mail_app.extensions["db"]
    uid = stored_user(mail_app)["_id"]
    view_done, deleter = _race(monkeypatch, db, uid, "confirm_email")
    r = _confirm(Browser(mail_app.test_client()), mail_link(link, "verify-email"))
    view_done.set()
    assert r.status_code == 400 and "Link not valid" in r.text, r.status_code
    deleter["thread"].join(30)
    _nothing_left(db, uid)


def test_a_reset_link_used_during_the_deletion_leaves_nothing_of_the_account(mail_app, smtp_server, monkeypatch):
    _confirmed_alice(mail_app, smtp_server)
    assert Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"}).status_code == 200
    (link,) = [m for m in _mails(smtp_server, 2) if m["Subject"] == "Reset your password"]
    db = mail_app.extensions["db"]
    uid = stored_user(mail_app)["_id"]
    view_done, deleter = _race(monkeypatch, db, uid, "set_password")
    b = Browser(mail_app.test_client())
    path = mail_link(link, "reset")
    new = "a brand new password here"
    r = b.submit(path, {"new_password": new, "confirm": new})
    view_done.set()
    assert r.status_code == 400 and "Link not valid" in r.text, r.status_code
    deleter["thread"].join(30)
    _nothing_left(db, uid)


def test_an_undo_link_used_during_the_deletion_leaves_nothing_of_the_account(mail_app, smtp_server, monkeypatch):
    """(The undo's own write refuses an account claimed for deletion; the deletion claims it right after.)"""
    from idp.accounts import emaillinks

    from .test_email_change_undo import _taken_over, _undo
    owner, _intruder, path = _taken_over(mail_app, smtp_server)
    db = mail_app.extensions["db"]
    uid = stored_user(mail_app)["_id"]
    view_done, deleter = _race(monkeypatch, db, uid, "revoke", module=emaillinks)
    r = _undo(owner, path)
    view_done.set()
    deleter["thread"].join(30)
    assert r.status_code == 400, r.status_code
    _nothing_left(db, uid)
