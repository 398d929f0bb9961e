"""A password-reset link works only for the account as it was when the link was made: its address and its
password. An email change voids every link (a reset link in the previous mailbox must not take the account
back) and a password change voids reset links, by deleting them; a "Forgot password?" request that read the
account before such a change and stored its link just after it (the change's deletion ran in between) mailed
the previous address a link that still reset the password. Here the request is held at its audit event,
after it read the account and before it stores the link, while the change runs."""
from __future__ import annotations

import threading

import pytest

from accounts.conftest import GOOD_PASSWORD, Browser, mail_app, make_app, stored_user  # noqa: F401  (fixtures)
from idp import audit
from tests.conftest import mail_link

NEW_PASSWORD = "purple elephant violin sunrise"
OWNERS_NEW_PASSWORD = "the owner chose this one at last"


@pytest.fixture
def held():
    yield
    audit._LISTENERS.pop("test-hold-forgot", None)


def _forgot_held_while(app, change) -> None:
    """Ask for a reset link of "alice" from another browser, and run ``change()`` while the request is held
    between reading the account and storing the link."""
    entered, release = threading.Event(), threading.Event()

    def hold(db, doc):
        if doc.get("event") == audit.PASSWORD_RESET_REQUESTED and not entered.is_set():
            entered.set()
            release.wait(20)
    audit.listen("test-hold-forgot", hold)
    asker = Browser(app.test_client(), remote_addr="10.0.0.7")
    page = asker.get("/forgot")
    result = {}

    def forgot():
        from accounts.conftest import csrf_token
        result["r"] = asker.client.post("/forgot", data={"csrf_token": csrf_token(page.text), "login": "alice"},
                                        environ_base=asker.environ)
    t = threading.Thread(target=forgot)
    t.start()
    try:
        assert entered.wait(20), "the request never reached its audit event"
        change()
    finally:
        release.set()
        t.join(30)
    assert result["r"].status_code == 200


def _link_resets(app, smtp_server, count) -> bool:
    mails = smtp_server.wait_for(count)
    (reset,) = [m for m in mails if m["Subject"] == "Reset your password"]
    b = Browser(app.test_client(), remote_addr="10.0.0.8")
    path = mail_link(reset, "reset")
    if b.get(path).status_code == 400:  # "This link is not valid"
        return False
    r = b.submit(path, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    return r.status_code == 302


def test_a_reset_link_made_across_an_email_change_does_not_reset(mail_app, smtp_server, held):  # noqa: F811
    owner = Browser(mail_app.test_client())
    assert owner.register().status_code == 302
    smtp_server.wait_for(1)

    def change_email():
        r = owner.submit("/account/email", {"email": "new@example.com", "current_password": GOOD_PASSWORD})
        assert r.status_code == 302, r.text[:300]
    _forgot_held_while(mail_app, change_email)
    # the verification mail, the new address's, and the reset link (to the previous address)
    assert not _link_resets(mail_app, smtp_server, 3)
    assert owner.login("alice", GOOD_PASSWORD).status_code == 302  # the password stands


def test_a_reset_link_made_across_a_password_change_does_not_reset(mail_app, smtp_server, held):  # noqa: F811
    owner = Browser(mail_app.test_client())
    assert owner.register().status_code == 302
    smtp_server.wait_for(1)

    def change_password():
        r = owner.submit("/account/password", {"current_password": GOOD_PASSWORD,
                                                "new_password": OWNERS_NEW_PASSWORD, "confirm": OWNERS_NEW_PASSWORD})
        assert r.status_code == 302, r.text[:300]
    _forgot_held_while(mail_app, change_password)
    # the verification mail, the password-changed notice, and the reset link
    assert not _link_resets(mail_app, smtp_server, 3)
    assert stored_user(mail_app) is not None
    assert Browser(mail_app.test_client()).login("alice", OWNERS_NEW_PASSWORD).status_code == 302


def test_a_reset_link_still_resets_an_unchanged_account(mail_app, smtp_server):  # noqa: F811
    assert Browser(mail_app.test_client()).register().status_code == 302
    smtp_server.wait_for(1)
    assert Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"}).status_code == 200
    assert _link_resets(mail_app, smtp_server, 2)
