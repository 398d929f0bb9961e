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
    # the verification, the notice of the intruder's sign-in from a new browser, the reset link
    reset = mail_link(next(m for m in smtp_server.wait_for(3) if m["Subject"] == "Reset your password"), "reset")

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


def _confirmation_right_after_the_write(monkeypatch, intruder, link: str) -> list:
    """The intruder opens the confirmation ``link`` right after the owner's new password is written (at the
    view's next step, where it voids the account's reset links): the answers' status codes."""
    from idp.accounts import emaillinks

    from .test_email_change_pending import _confirm
    real, answers = emaillinks.revoke, []

    def confirm_first(*a, **kw):
        if not answers:
            t = threading.Thread(target=lambda: answers.append(_confirm(intruder, link).status_code))
            t.start()
            t.join(60)
        return real(*a, **kw)
    monkeypatch.setattr(emaillinks, "revoke", confirm_first)
    return answers


def _intruders_pending_change(mail_app, smtp_server):
    """The owner's confirmed account; an intruder with the password asks for a change to INTRUDER (pending):
    (the owner's browser, the intruder's, the confirmation link mailed to INTRUDER)."""
    from tests.conftest import mail_link
    owner = _confirmed_alice(mail_app, smtp_server)
    intruder = Browser(mail_app.test_client(), remote_addr="203.0.113.9")
    assert intruder.login("alice", GOOD_PASSWORD).status_code == 302
    assert intruder.submit("/account/email", {"email": INTRUDER, "current_password": GOOD_PASSWORD}).status_code == 302
    # the verification, the notice of the intruder's sign-in from a new browser, the change's link and notice
    mail = next(m for m in smtp_server.wait_for(4) if m["To"] == INTRUDER)
    return owner, intruder, mail_link(mail, "verify-email")


def test_a_pending_change_confirmed_right_after_the_owners_reset_writes_does_not_take_effect(mail_app, smtp_server,
                                                                                            monkeypatch):
    """The reset drops the pending change in the same write as the new password: before, an intruder who confirmed
    between the two writes took the address."""
    from tests.conftest import mail_link
    owner, _intruder, link = _intruders_pending_change(mail_app, smtp_server)
    assert owner.submit("/forgot", {"login": "alice"}).status_code == 200
    reset = mail_link(next(m for m in smtp_server.wait_for(5) if m["Subject"] == "Reset your password"), "reset")
    answers = _confirmation_right_after_the_write(monkeypatch, Browser(mail_app.test_client()), link)
    r = owner.submit(reset, {"new_password": OWNER_NEW, "confirm": OWNER_NEW})
    monkeypatch.undo()
    assert r.status_code == 302 and answers and answers[0] != 200, (r.status_code, answers)
    user = stored_user(mail_app)
    assert user["email"] == "alice@example.com" and not user.get("pending_email"), user


def test_a_pending_change_confirmed_right_after_the_owners_password_change_does_not_take_effect(
        mail_app, smtp_server, monkeypatch):
    owner, _intruder, link = _intruders_pending_change(mail_app, smtp_server)
    answers = _confirmation_right_after_the_write(monkeypatch, Browser(mail_app.test_client()), link)
    r = owner.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": OWNER_NEW,
                                           "confirm": OWNER_NEW})
    monkeypatch.undo()
    assert r.status_code == 302 and answers and answers[0] != 200, (r.status_code, answers)
    user = stored_user(mail_app)
    assert user["email"] == "alice@example.com" and not user.get("pending_email"), user
