"""An email change asked for with the old password does not outlive the owner's new password. A reset (or a change)
of the password ends every other session and drops a pending email change, so that whoever secures the account
after a compromise does not see a change asked for with the old password take effect later. A change request
checks the password first and writes the pending address after; one whose write came after the owner's new
password was stored kept its pending address (found by a red team): the intruder confirmed it from their own
mailbox, with no session, and took the reset channel. Now the write is conditional on the password hash the
request checked. Real app, real database, real SMTP server; the owner's reset or change runs, for real, between
the intruder's password check and its write."""
from __future__ import annotations

import threading

from idp.accounts import users

from .conftest import GOOD_PASSWORD, Browser, field_errors, stored_user
from .test_email_change_pending import INTRUDER, _confirmed_alice

OWNER_NEW = "the owner secured this account"


def _request_with_the_owners_step_first(monkeypatch, intruder, owners_step) -> tuple:
    """The intruder asks for a change to INTRUDER; ``owners_step()`` runs, in another thread, after the request has
    checked the old password and before it writes. (the intruder's answer, the owner's)"""
    real, outcome = users.request_email_change, []

    def owner_first(*a, **kw):
        t = threading.Thread(target=lambda: outcome.append(owners_step()))
        t.start()
        t.join(60)
        return real(*a, **kw)
    monkeypatch.setattr(users, "request_email_change", owner_first)
    r = intruder.submit("/account/email", {"email": INTRUDER, "current_password": GOOD_PASSWORD})
    monkeypatch.undo()
    assert outcome, "the owner's step did not run"
    return r, outcome[0]


def test_a_change_asked_with_the_old_password_is_not_stored_after_the_owners_reset(mail_app, smtp_server,
                                                                                   monkeypatch):
    from tests.conftest import mail_link
    _confirmed_alice(mail_app, smtp_server)
    intruder = Browser(mail_app.test_client(), remote_addr="203.0.113.9")
    assert intruder.login("alice", GOOD_PASSWORD).status_code == 302
    owner = Browser(mail_app.test_client())
    assert owner.submit("/forgot", {"login": "alice"}).status_code == 200
    reset = mail_link(smtp_server.wait_for(2)[1], "reset")

    def reset_password():
        r = owner.submit(reset, {"new_password": OWNER_NEW, "confirm": OWNER_NEW})
        return r.status_code, r.headers.get("Location")
    r, reset_answer = _request_with_the_owners_step_first(monkeypatch, intruder, reset_password)
    assert reset_answer == (302, "/login"), reset_answer
    assert r.status_code == 409, r.status_code
    assert "changed meanwhile" in " ".join(field_errors(r.text).get("email", [])), field_errors(r.text)
    user = stored_user(mail_app)
    assert user["email"] == "alice@example.com" and not user.get("pending_email"), user
    assert not [m for m in smtp_server.messages if m["To"] == INTRUDER]


def test_a_change_asked_with_the_old_password_is_not_stored_after_the_owners_password_change(mail_app, smtp_server,
                                                                                             monkeypatch):
    owner = _confirmed_alice(mail_app, smtp_server)
    intruder = Browser(mail_app.test_client(), remote_addr="203.0.113.9")
    assert intruder.login("alice", GOOD_PASSWORD).status_code == 302

    def change_password():
        return owner.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": OWNER_NEW,
                                                  "confirm": OWNER_NEW}).status_code
    r, changed = _request_with_the_owners_step_first(monkeypatch, intruder, change_password)
    assert changed == 302, changed
    assert r.status_code == 409, r.status_code
    user = stored_user(mail_app)
    assert user["email"] == "alice@example.com" and not user.get("pending_email"), user
    assert not [m for m in smtp_server.messages if m["To"] == INTRUDER]
