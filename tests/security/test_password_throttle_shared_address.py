"""The per-address password counter must not lock everyone behind a shared address out of their own accounts.

Twenty wrong passwords from an office, campus or carrier NAT (one IPv4 address, or one IPv6 /64) blocked the
address, and the block refused the right password too, for everyone there: each further wrong password once
a block ended doubled it (up to an hour), so one request an hour kept every account behind the address from
signing in, for nothing but the address. A browser in which the account signed in before (a signed cookie
naming it) or a session signed in as it is not held back by the address's counter; the account's own
counter still holds, and browsers that never signed in are held back as before."""
from __future__ import annotations

import pytest

from accounts.conftest import GOOD_PASSWORD, Browser
from accounts.conftest import make_app  # noqa: F401  (fixture)
from support.fixtures import away_from_a_rate_window_edge  # noqa: F401  (fixture)


def _known_browser(app) -> Browser:
    """A browser where alice's password was right, whose session then ended: it stays a known browser."""
    alice = Browser(app.test_client())
    assert alice.login("alice", GOOD_PASSWORD).status_code == 302
    alice.client.delete_cookie("deepauth_session")
    return alice


def test_wrong_passwords_from_a_shared_address_do_not_lock_out_its_known_browsers(make_app):
    from idp.accounts import users
    app = make_app(login_ip_free_failures=3)
    db = app.extensions["db"]
    users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    users.create_user(db, "bob", "bob@example.com", GOOD_PASSWORD)
    alice = _known_browser(app)

    attacker = Browser(app.test_client())  # the same address (127.0.0.1)
    for i in range(3):
        assert attacker.login(f"victim{i}", "wrong").status_code == 200
    assert attacker.login("victim9", "wrong").status_code == 429  # the address is held back
    assert attacker.login("alice", GOOD_PASSWORD).status_code == 429  # the cookie is what counts, not the name

    assert alice.login("alice", GOOD_PASSWORD).status_code == 302  # was 429: locked out by the address
    assert Browser(app.test_client()).login("bob", GOOD_PASSWORD).status_code == 429  # no known browser: as before
    # the known browser's wrong guesses count on the account's own counter (5 free)
    alice.client.delete_cookie("deepauth_session")
    for i in range(5):
        assert alice.login("alice", f"wrong {i}").status_code == 200
    assert alice.login("alice", GOOD_PASSWORD).status_code == 429


@pytest.mark.usefixtures("away_from_a_rate_window_edge")  # the reset-mail limit counts per clock hour
def test_reset_mails_asked_for_from_a_shared_address_do_not_keep_its_known_browsers_from_one(make_app, smtp_server):
    """The same for the reset-mail limit per address (``IDP_RESET_IP_LIMIT``): ten requests an hour from the
    address kept everyone behind it from a reset link; a known browser's request counts on its account only."""
    from idp.accounts import users
    app = make_app(smtp_url=smtp_server.url, reset_ip_limit=2)
    db = app.extensions["db"]
    users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    alice = _known_browser(app)

    attacker = Browser(app.test_client())
    for name in ("nobody1", "nobody2"):
        assert attacker.submit("/forgot", {"login": name}).status_code == 200
    assert attacker.submit("/forgot", {"login": "nobody3"}).status_code == 429
    assert attacker.submit("/forgot", {"login": "alice"}).status_code == 429

    assert alice.submit("/forgot", {"login": "alice"}).status_code == 200  # was 429
    assert db.mail_outbox.count_documents({"to": "alice@example.com", "kind": "reset_password"}) == 1


def test_a_password_change_or_reset_ends_what_other_browsers_vouched_for(make_app):
    """A known browser vouches for the password that was right in it: once the password changes (the answer to a
    password someone else knew, which signs every other session out too), a browser that knew the old one is
    held back by the address like any other; the browser where the change was made stays a known one."""
    from idp.accounts import users
    app = make_app(login_ip_free_failures=3)
    db = app.extensions["db"]
    uid = users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)["_id"]
    old, changer = Browser(app.test_client()), Browser(app.test_client())
    for b in (old, changer):
        assert b.login("alice", GOOD_PASSWORD).status_code == 302
    new_password = GOOD_PASSWORD + " anew"
    r = changer.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": new_password,
                                             "confirm": new_password})
    assert r.status_code == 302, r.text[:300]
    for b in (old, changer):
        b.client.delete_cookie("deepauth_session")

    attacker = Browser(app.test_client())
    for i in range(3):
        assert attacker.login(f"victim{i}", "wrong").status_code == 200
    assert attacker.login("victim9", "wrong").status_code == 429
    assert old.login("alice", new_password).status_code == 429  # was 302: its cookie outlived the old password
    assert changer.login("alice", new_password).status_code == 302
    users.set_password(db, uid, GOOD_PASSWORD)  # a reset, by link or by an administrator
    changer.client.delete_cookie("deepauth_session")
    assert changer.login("alice", GOOD_PASSWORD).status_code == 429


def test_a_known_browser_vouches_for_its_own_account_only(make_app):
    """The cookie exempts the one account it names: from a browser known to alice, guesses at other accounts
    count on the address and are held back by it as from any browser (else one account's password, the
    attacker's own, would open the address to spraying over every other account)."""
    from idp.accounts import users
    app = make_app(login_ip_free_failures=3)
    db = app.extensions["db"]
    for name in ("alice", "bob"):
        users.create_user(db, name, f"{name}@example.com", GOOD_PASSWORD)
    alice = _known_browser(app)
    for i in range(3):
        assert alice.login(f"victim{i}", "wrong").status_code == 200
    assert alice.login("victim9", "wrong").status_code == 429  # counted on, and held back by, the address
    assert alice.login("bob", GOOD_PASSWORD).status_code == 429
    assert alice.login("alice", GOOD_PASSWORD).status_code == 302


def test_the_browser_that_resets_the_password_is_a_known_one(make_app, smtp_server):
    """A reset ends what other browsers vouched for; the browser that set the new password knows it, so it
    vouches for the account (else a reset behind a blocked shared address would leave its owner locked out)."""
    from tests.conftest import mail_link

    from idp.accounts import users
    app = make_app(smtp_url=smtp_server.url, login_ip_free_failures=3)
    db = app.extensions["db"]
    users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    alice = _known_browser(app)
    attacker = Browser(app.test_client())
    for i in range(3):
        assert attacker.login(f"victim{i}", "wrong").status_code == 200
    assert attacker.login("victim9", "wrong").status_code == 429

    assert alice.submit("/forgot", {"login": "alice"}).status_code == 200
    # after the notice of alice's sign-in from a browser new to the account
    mail = [m for m in smtp_server.wait_for(2) if m["Subject"] == "Reset your password"][-1]
    new_password = GOOD_PASSWORD + " anew"
    path = mail_link(mail, "reset")
    assert alice.submit(path, {"new_password": new_password, "confirm": new_password}).status_code == 302
    assert alice.login("alice", new_password).status_code == 302  # was 429
    assert attacker.login("alice", new_password).status_code == 429


def test_a_password_changed_while_the_old_one_is_checked_is_not_vouched_for(make_app):
    """The cookie vouches for the password that was right in the browser: one set by someone else (a reset)
    while the old one was being checked - after the check, before the answer - is not known to the browser."""
    from flask import request

    from idp.accounts import users
    app = make_app(login_ip_free_failures=3)
    db = app.extensions["db"]
    uid = users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)["_id"]
    new_password = GOOD_PASSWORD + " anew"

    resets = [new_password]

    @app.after_request  # runs before the accounts' own (after-request functions run last registered first)
    def _reset_meanwhile(response):
        if request.path == "/login" and request.method == "POST" and resets:
            users.set_password(db, uid, resets.pop())
        return response

    old = Browser(app.test_client())
    assert old.login("alice", GOOD_PASSWORD).status_code == 302
    old.client.delete_cookie("deepauth_session")
    attacker = Browser(app.test_client())
    for i in range(3):
        assert attacker.login(f"victim{i}", "wrong").status_code == 200
    assert attacker.login("victim9", "wrong").status_code == 429
    assert old.login("alice", new_password).status_code == 429  # was 302: signed for the password stored later
