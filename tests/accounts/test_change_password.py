"""The change-password page (/account/password), through the real app."""
from __future__ import annotations

import hashlib

import pytest

from .conftest import GOOD_PASSWORD, Browser, alert, csrf_token, field_errors, registered_over_http, session_cookie

NEW_PASSWORD = "purple elephant violin sunrise"


def _signed_in(app, username="alice"):
    b = Browser(app.test_client())
    r = b.register(username=username)
    assert r.status_code == 302
    return b


def _change(b, current=GOOD_PASSWORD, new=NEW_PASSWORD, confirm=None):
    return b.submit("/account/password", {"current_password": current, "new_password": new,
                                          "confirm": new if confirm is None else confirm})


def _hash(app, username="alice"):
    return app.extensions["db"].users.find_one({"username": username})["password_hash"]


def _account_key(app, username="alice") -> str:
    """The one throttle key of the account (by user id), shared by every password check."""
    return "pwd:user:" + app.extensions["db"].users.find_one({"username": username})["_id"]


def _signed_in_at_account(b) -> bool:
    r = b.get("/account")
    return r.status_code == 200


def test_account_page_links_to_change_password(app):
    b = _signed_in(app)
    page = b.get("/account")
    assert 'href="/account/password"' in page.text
    form = b.get("/account/password")
    assert form.status_code == 200 and 'name="current_password"' in form.text


def test_success_changes_password_and_signs_out_other_sessions(app):
    db = app.extensions["db"]
    b = _signed_in(app)
    other = Browser(app.test_client(), remote_addr="10.0.0.2")
    assert other.login("alice", GOOD_PASSWORD).status_code == 302
    assert _signed_in_at_account(other)
    bob = _signed_in(app, "bob")  # another account's session is left alone
    uid = db.users.find_one({"username": "alice"})["_id"]
    assert db.sessions.count_documents({"data.auth.uid": uid}) == 2
    old_hash, old_cookie = _hash(app), session_cookie(b.client)

    r = _change(b)
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    new_hash = _hash(app)
    assert new_hash != old_hash and new_hash.startswith("$argon2id$")

    # this session: still signed in, under a new id; nothing of it is left under the old id
    new_cookie = session_cookie(b.client)
    assert new_cookie and new_cookie != old_cookie
    old = db.sessions.find_one({"_id": hashlib.sha256(old_cookie.encode()).hexdigest()})
    assert old is None or "data" not in old, old
    page = b.get("/account")
    assert page.status_code == 200
    assert "Your password was changed. Other sessions and connected apps were signed out." in page.text
    assert db.sessions.count_documents({"data.auth.uid": uid}) == 1

    # the other session of alice is gone; bob's is not
    r = other.get("/account")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert _signed_in_at_account(bob)

    # old password no longer works, the new one does
    fresh = Browser(app.test_client(), remote_addr="10.0.0.3")
    r = fresh.login("alice", GOOD_PASSWORD)
    assert r.status_code == 200 and alert(r.text) == "Invalid username or password."
    fresh = Browser(app.test_client(), remote_addr="10.0.0.4")
    assert fresh.login("alice", NEW_PASSWORD).status_code == 302
    assert _signed_in_at_account(fresh)

    entries = list(db.audit_log.find({"event": "account.password_changed"}))
    assert len(entries) == 1 and entries[0]["user_id"] == uid
    text = repr(entries[0])
    assert GOOD_PASSWORD not in text and NEW_PASSWORD not in text and old_hash not in text


def test_wrong_current_password(app):
    db = app.extensions["db"]
    b = _signed_in(app)
    throttle = app.extensions["accounts"]["user_throttle"]
    before, old_hash = throttle.failures(_account_key(app)), _hash(app)
    r = _change(b, current="not my password at all")
    assert r.status_code == 200
    errors = field_errors(r.text)
    assert list(errors) == ["current_password"]
    assert "not correct" in errors["current_password"][0]
    assert throttle.failures(_account_key(app)) == before + 1
    assert _hash(app) == old_hash
    assert NEW_PASSWORD not in r.text and "not my password at all" not in r.text
    assert db.audit_log.count_documents({"event": "account.password_change_failed"}) == 1
    assert db.audit_log.count_documents({"event": "account.password_changed"}) == 0
    assert _signed_in_at_account(b)


def test_throttled_user_cannot_try_current_password(app):
    b = _signed_in(app)
    throttle = app.extensions["accounts"]["user_throttle"]
    for _ in range(throttle.free_failures + 1):
        throttle.reserve(_account_key(app))  # each counts as a failure (never released)
    old_hash = _hash(app)
    r = _change(b)  # even the right password is refused while blocked
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in field_errors(r.text)["current_password"][0]
    assert _hash(app) == old_hash


@pytest.mark.parametrize("new, confirm, field, message", [
    ("short1", None, "new_password", "at least 8"),
    ("password123", None, "new_password", "too common"),
    (NEW_PASSWORD, "something different", "confirm", "do not match"),
])
def test_new_password_rules(app, new, confirm, field, message):
    b = _signed_in(app)
    throttle = app.extensions["accounts"]["user_throttle"]
    old_hash = _hash(app)
    r = _change(b, new=new, confirm=confirm)
    assert r.status_code == 200
    errors = field_errors(r.text)
    assert list(errors) == [field], errors
    assert any(message in m for m in errors[field]), errors
    assert _hash(app) == old_hash
    assert throttle.failures(_account_key(app)) == 0
    assert GOOD_PASSWORD not in r.text


def test_new_password_may_not_be_the_username_or_email(app):
    b = _signed_in(app, "bobby.tables")
    r = _change(b, new="bobby.tables")
    assert "username or email" in field_errors(r.text)["new_password"][0]
    r = _change(b, new="bobby.tables@example.com")
    assert "new_password" in field_errors(r.text)


def test_missing_csrf_is_rejected(app):
    b = _signed_in(app)
    old_hash = _hash(app)
    r = b.client.post("/account/password", data={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD,
                                                 "confirm": NEW_PASSWORD}, environ_base=b.environ)
    assert r.status_code == 400
    assert _hash(app) == old_hash


def test_not_signed_in_is_redirected_to_login(client):
    r = client.get("/account/password")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = client.post("/account/password", data={})
    assert r.status_code == 400  # no CSRF token: refused first
    token = csrf_token(client.get("/login").text)
    r = client.post("/account/password", data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_concurrent_changes_of_one_password_let_exactly_one_through(make_app):
    """Several posts of the form at once (two tabs, a double submit), each with the right current password and
    a different new one: the write is a compare-and-set on the hash each request checked, so exactly one new
    password is stored and the others are told it changed meanwhile - never a 500, never a silent overwrite
    of the change that won (before, every post succeeded and the last write won)."""
    import requests
    from support.concurrency import at_once
    from support.servers import LiveServer

    # the password throttle is not under test here: room for every parallel check on the account counter
    app = make_app(login_free_failures=50)
    server = LiveServer(app)
    try:
        s = registered_over_http(server.url)
        token = csrf_token(s.get(f"{server.url}/account/password").text)
        cookies = s.cookies.get_dict()
        news = [f"{NEW_PASSWORD} number {i}" for i in range(5)]

        def post(new):
            return lambda: requests.post(f"{server.url}/account/password", cookies=cookies, allow_redirects=False,
                                         data={"csrf_token": token, "current_password": GOOD_PASSWORD,
                                               "new_password": new, "confirm": new})
        answers = dict(zip(news, at_once([post(new) for new in news])))
    finally:
        server.stop()
    statuses = {new: r.status_code for new, r in answers.items()}
    won = [new for new, r in answers.items() if r.status_code == 302 and r.headers["Location"] == "/account"]
    assert len(won) == 1, statuses
    for new, r in answers.items():
        if new != won[0]:
            assert r.status_code == 200, statuses
            # checked after the winner's write: "not correct"; checked before it: "changed meanwhile"
            assert any("not correct" in m or "changed meanwhile" in m
                       for m in field_errors(r.text).get("current_password", [])), r.text[:500]
    db = app.extensions["db"]
    from idp.accounts import passwords
    stored = db.users.find_one({"username": "alice"})["password_hash"]
    assert passwords.check_password(stored, won[0])
    assert db.audit_log.count_documents({"event": "account.password_changed"}) == 1
