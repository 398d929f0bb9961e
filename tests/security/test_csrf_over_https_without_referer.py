"""CSRF protection over https, as browsers send forms: every page says ``Referrer-Policy: no-referrer``, so a
browser posts the page's forms (and the pages' JSON calls) without a ``Referer`` header. Flask-WTF's "SSL
strict" mode refused every such https POST ("The referrer header is missing"): behind a TLS proxy, configured
as the README says (``IDP_TRUSTED_PROXIES``, ``X-Forwarded-Proto: https``), nobody could sign in, register,
consent or sign out. The session-bound CSRF token is the protection; the session cookie is ``__Host-`` (set
only over https by this host, never by a sibling domain or a network attacker over http), so the Referer check
added nothing and cannot be met."""
from __future__ import annotations

from accounts.conftest import GOOD_PASSWORD, csrf_token
from accounts.conftest import make_app  # noqa: F401  (fixture)

# What a TLS proxy in front of the provider adds to each request it forwards (the app listens on plain http).
BEHIND_TLS_PROXY = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "https",
                    "HTTP_X_FORWARDED_FOR": "203.0.113.7"}


def _browser(app):
    client = app.test_client()
    get = lambda path: client.get(path, base_url="http://idp.example", environ_base=BEHIND_TLS_PROXY)  # noqa: E731

    def post(path, data):  # no Referer: the page that holds the form said no-referrer
        return client.post(path, data=data, base_url="http://idp.example", environ_base=BEHIND_TLS_PROXY)
    return get, post


def test_sign_in_and_sign_out_over_https_without_referer(make_app):  # noqa: F811
    from idp.accounts import users
    app = make_app(issuer="https://idp.example", trusted_proxies="1")
    users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)
    get, post = _browser(app)

    page = get("/login")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "__Host-session=" in page.headers["Set-Cookie"] and "Secure" in page.headers["Set-Cookie"]
    r = post("/login", {"csrf_token": csrf_token(page.text), "username": "alice", "password": GOOD_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/account", (r.status_code, r.text[:400])

    account = get("/account")
    assert account.status_code == 200 and account.headers["Referrer-Policy"] == "no-referrer"
    r = post("/account/sign-out", {"csrf_token": csrf_token(account.text)})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert get("/account").headers["Location"] == "/login"  # signed out


def test_a_post_without_the_sessions_token_is_still_refused_over_https(make_app):  # noqa: F811
    from idp.accounts import users
    app = make_app(issuer="https://idp.example", trusted_proxies="1")
    users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)
    get, post = _browser(app)
    get("/login")
    r = post("/login", {"username": "alice", "password": GOOD_PASSWORD})
    assert r.status_code == 400 and "Form expired" in r.text
    other_get, _ = _browser(app)  # a token of another session (an attacker's own page) does not count either
    r = post("/login", {"csrf_token": csrf_token(other_get("/login").text), "username": "alice",
                        "password": GOOD_PASSWORD})
    assert r.status_code == 400 and "Form expired" in r.text
