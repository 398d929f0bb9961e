"""A password-reset link stands for the account as it was when it was made, its address included: the link is
refused once the address changed. The check ran when the form was read; an address change that landed between it
and the new password's write (an intruder with the password moving a never-confirmed address to their own mailbox)
let the reset succeed: the owner was told "your password was reset" and the account now sent its reset links to
the intruder (found in review). The write is now conditional on the address too. Real app, real database, real
SMTP server; the intruder's change runs, for real, right before the reset's write."""
from __future__ import annotations

import threading

from idp.accounts import users
from tests.conftest import mail_link

from .conftest import GOOD_PASSWORD, Browser, stored_user

INTRUDER = "mallory@evil.example"
OWNER_NEW = "the owner secured this account"


def test_an_address_changed_while_the_reset_link_is_used_makes_the_link_fail(mail_app, smtp_server, monkeypatch):
    owner = Browser(mail_app.test_client())
    assert owner.register().status_code == 302  # its address is never confirmed
    intruder = Browser(mail_app.test_client(), remote_addr="203.0.113.9")
    assert intruder.login("alice", GOOD_PASSWORD).status_code == 302
    assert owner.submit("/forgot", {"login": "alice"}).status_code == 200
    # the verification, the notice of the intruder's sign-in from a new browser, the reset link
    reset = mail_link([m for m in smtp_server.wait_for(3) if m["Subject"] == "Reset your password"][0], "reset")
    real, moved = users.set_password, []

    def intruder_first(*a, **kw):
        def move():
            r = intruder.submit("/account/email", {"email": INTRUDER, "current_password": GOOD_PASSWORD})
            moved.append(r.status_code)
        t = threading.Thread(target=move)
        t.start()
        t.join(60)
        return real(*a, **kw)
    monkeypatch.setattr(users, "set_password", intruder_first)
    r = owner.submit(reset, {"new_password": OWNER_NEW, "confirm": OWNER_NEW})
    monkeypatch.undo()
    assert moved == [302], moved  # the address moved (an unconfirmed one is replaced at once)
    assert r.status_code == 400 and "Link not valid" in r.text, r.status_code
    user = stored_user(mail_app)
    assert user["email"] == INTRUDER and not user.get("email_verified"), user
    assert Browser(mail_app.test_client()).login("alice", GOOD_PASSWORD).status_code == 302  # nothing reset
