"""Registration, the password step, the account page and sign-out, through the real app."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from .conftest import GOOD_PASSWORD, Browser, alert, csrf_token, field_errors, session_cookie


def test_register_signs_in_and_shows_account(browser, app):
    r = browser.register(username="Alice", email="Alice@Example.com", phone="+1 555 123 4567")
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    db = app.extensions["db"]
    user = db.users.find_one({"username": "alice"})
    assert user["email"] == "alice@example.com" and user["password_hash"].startswith("$argon2id$")
    page = browser.get("/account")
    assert page.status_code == 200
    for text in ("Alice Example", "alice", "alice@example.com", "+1 555 123 4567", 'href="/account/apps"',
                 "Sign out"):
        assert text in page.text


def test_post_without_csrf_token_is_rejected(client, app):
    client.get("/register")
    r = client.post("/register", data={"name": "X", "username": "mallory", "email": "m@example.com",
                                       "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert r.status_code == 400
    # the page says what happened to this form (its heading was "Sign-in request not valid" on every page)
    assert "<h1>Form expired</h1>" in r.text and "Sign-in request" not in r.text
    assert app.extensions["db"].users.count_documents({}) == 0
    r = client.post("/login", data={"username": "mallory", "password": GOOD_PASSWORD})
    assert r.status_code == 400
    r = client.post("/account/sign-out")
    assert r.status_code == 400


@pytest.mark.parametrize("overrides, field, message", [
    ({"password": "short1"}, "password", "at least 8"),
    ({"password": "password123"}, "password", "too common"),
    ({"password": "bobby.tables", "username": "bobby.tables"}, "password", "username or email"),
    ({"confirm": "something different"}, "confirm", "do not match"),
    ({"email": "not-an-email"}, "email", "valid email"),
    ({"email": "a b@example.com"}, "email", "valid email"),
    ({"username": "ab"}, "username", "3 to 32"),
    ({"username": "no spaces"}, "username", "3 to 32"),
    ({"username": "x" * 33}, "username", "3 to 32"),
    ({"phone": "call me maybe"}, "phone", "phone number"),
    ({"name": ""}, "name", "Enter your name"),
    ({"name": "Dave\x00Smith"}, "name", "control characters"),
    ({"name": "Dave\nBcc: x"}, "name", "control characters"),
    ({"name": "Dave\u2028Smith"}, "name", "control characters"),  # a line separator
    ({"name": "Dave \u202egnikaB"}, "name", "control characters"),  # a right-to-left override
])
def test_per_field_errors(browser, app, overrides, field, message):
    args = {"username": "dave", "email": "dave@example.com", **overrides}
    r = browser.register(**args)
    assert r.status_code == 200
    errors = field_errors(r.text)
    assert field in errors and any(message in m for m in errors[field]), errors
    assert list(errors) == [field]  # only the offending field is marked
    assert app.extensions["db"].users.count_documents({}) == 0
    assert GOOD_PASSWORD not in r.text  # passwords are never echoed back


def test_duplicate_username_and_email(client, app):
    Browser(client).register(username="erin", email="erin@example.com")
    other = Browser(app.test_client())
    r = other.register(username="ERIN", email="new@example.com")
    assert "taken" in field_errors(r.text)["username"][0]
    r = other.register(username="erin2", email="Erin@Example.com")
    assert "already exists" in field_errors(r.text)["email"][0]
    assert app.extensions["db"].users.count_documents({}) == 1


def _stub_authorize_endpoint(app):
    """The OAuth feature owns /authorize; when it is not installed, give the flow a target to build."""
    if "oauth.authorize" not in app.view_functions:
        from flask import Blueprint
        bp = Blueprint("oauth", __name__)
        bp.add_url_rule("/authorize", "authorize", lambda: "authorize")
        app.register_blueprint(bp)


def _set_pending(client, args):
    with client.session_transaction() as s:
        s["authz"] = {"rid": "rid123", "args": args, "created": 1, "min_auth_time": None, "client_id": "rp",
                      "acr_values": []}


def test_registration_keeps_pending_authorization_request(app, client):
    _stub_authorize_endpoint(app)
    browser = Browser(client)
    browser.get("/register")
    _set_pending(client, {"client_id": "rp", "response_type": "code", "scope": "openid"})
    r = browser.register(username="newcomer")
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith("/authorize?") and "_rid=rid123" in location and "client_id=rp" in location


def test_login_success_rotates_session_and_redirects(browser, client, app):
    browser.register(username="frank")
    r = client.post("/account/sign-out", data={"csrf_token": csrf_token(browser.get("/account").text)})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    page = browser.get("/login")
    before = session_cookie(client)
    assert before
    r = client.post("/login", data={"csrf_token": csrf_token(page.text), "username": "frank",
                                    "password": GOOD_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    after = session_cookie(client)
    assert after and after != before
    assert browser.get("/account").status_code == 200
    # The pre-login session id is dead.
    stale = app.test_client()
    stale.set_cookie("deepauth_session", before)
    r = stale.get("/account")
    assert r.status_code == 302 and r.headers["Location"] == "/login"


def test_login_by_email(browser):
    browser.register(username="gina", email="gina@example.com")
    b2 = Browser(browser.client.application.test_client())
    r = b2.login("GINA@example.com", GOOD_PASSWORD)
    assert r.status_code == 302 and r.headers["Location"] == "/account"


def test_generic_error_for_wrong_password_and_unknown_user(browser, app):
    browser.register(username="hank")
    b = Browser(app.test_client())
    wrong = b.login("hank", "not the password")
    unknown = b.login("nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 200
    assert alert(wrong.text) == alert(unknown.text) == "Invalid username or password."
    assert session_cookie(b.client) is not None
    assert b.get("/account").status_code == 302


def test_login_hint_prefills_username(app, client):
    browser = Browser(client)
    browser.get("/login")
    _set_pending(client, {"client_id": "rp", "login_hint": "ivy@example.com"})
    page = browser.get("/login")
    tag = re.search(r'<input[^>]*name="username"[^>]*>', page.text).group(0)
    assert 'value="ivy@example.com"' in tag


def _throttle_doc(app, key):
    return app.extensions["db"].throttles.find_one({"_id": key})


def _end_block(app, key):
    app.extensions["db"].throttles.update_one(
        {"_id": key}, {"$set": {"blocked_until": datetime.now(timezone.utc) - timedelta(seconds=1)}})


def test_throttling_per_account(browser, app):
    browser.register(username="judy")
    b = Browser(app.test_client())
    for _ in range(5):
        assert alert(b.login("judy", "wrong password!").text) == "Invalid username or password."
    # 6th attempt: blocked even with the right password, and the password is not checked.
    r = b.login("judy", GOOD_PASSWORD)
    judy_key = "pwd:user:" + app.extensions["db"].users.find_one({"username": "judy"})["_id"]
    assert r.status_code == 429 and int(r.headers["Retry-After"]) <= 30
    m = re.search(r"wait (\d+) seconds", alert(r.text))
    assert m and 0 < int(m.group(1)) <= 30
    assert b.get("/account").status_code == 302
    # An unknown username is throttled identically (no enumeration through the throttle).
    for _ in range(5):
        b.login("ghost", "wrong password!")
    r2 = b.login("ghost", "wrong password!")
    assert r2.status_code == 429 and alert(r2.text) == alert(r.text).replace(m.group(1), re.search(
        r"wait (\d+) seconds", alert(r2.text)).group(1))
    # The delay grows: after the block ends, one more failure blocks for 60 s.
    _end_block(app, judy_key)
    assert alert(b.login("judy", "wrong password!").text) == "Invalid username or password."
    r = b.login("judy", GOOD_PASSWORD)
    wait = int(re.search(r"wait (\d+) seconds", alert(r.text)).group(1))
    assert 30 < wait <= 60
    assert _throttle_doc(app, judy_key)["failures"] == 6
    # Success (once allowed again) resets the account's counter.
    _end_block(app, judy_key)
    r = b.login("judy", GOOD_PASSWORD)
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    assert _throttle_doc(app, judy_key) is None
    b2 = Browser(app.test_client())
    assert alert(b2.login("judy", "wrong password!").text) == "Invalid username or password."


def test_throttling_per_ip(make_app):
    app = make_app(login_free_failures=50, login_ip_free_failures=6)
    Browser(app.test_client()).register(username="kate")
    attacker = Browser(app.test_client(), remote_addr="203.0.113.9")
    for i in range(6):  # spraying: a different account each time
        assert attacker.login(f"user{i}", "Password spray 1").status_code == 200
    r = attacker.login("kate", GOOD_PASSWORD)
    assert r.status_code == 429 and "wait" in alert(r.text)
    # Another address is not affected.
    r = Browser(app.test_client(), remote_addr="198.51.100.7").login("kate", GOOD_PASSWORD)
    assert r.status_code == 302


def test_index_redirects_to_account(client):
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    r = client.get("/account")
    assert r.status_code == 302 and r.headers["Location"] == "/login"


def test_sign_out(browser, app):
    browser.register(username="leo")
    page = browser.get("/account")
    r = browser.client.post("/account/sign-out", data={"csrf_token": csrf_token(page.text)})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert browser.get("/account").status_code == 302
    uid = app.extensions["db"].users.find_one({"username": "leo"})["_id"]
    assert app.extensions["db"].sessions.count_documents({"data.auth.uid": uid}) == 0


def test_register_and_login_over_http(live_server):
    import requests
    s = requests.Session()
    page = s.get(live_server + "/register")
    assert page.status_code == 200
    r = s.post(live_server + "/register", data={
        "csrf_token": csrf_token(page.text), "name": "Mia", "username": "mia", "email": "mia@example.com",
        "phone": "", "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD}, allow_redirects=False)
    assert r.status_code == 302
    cookie = r.cookies.get("deepauth_session")
    set_cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    account = s.get(live_server + "/account")
    assert account.status_code == 200 and "mia@example.com" in account.text
    signout = s.post(live_server + "/account/sign-out", data={"csrf_token": csrf_token(account.text)},
                     allow_redirects=False)
    assert signout.status_code == 302
    login = s.get(live_server + "/login")
    r = s.post(live_server + "/login", data={"csrf_token": csrf_token(login.text), "username": "mia",
                                             "password": GOOD_PASSWORD}, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    assert r.cookies.get("deepauth_session") not in (None, cookie)
