"""Registration rate limit per client IP (``register:ip:<ip>`` on the shared Throttle)."""
from __future__ import annotations

from .conftest import Browser


def _register(app, username, ip="10.0.0.1"):
    return Browser(app.test_client(), remote_addr=ip).register(username=username)


def test_registrations_limited_per_ip(make_app):
    app = make_app(register_ip_limit=3, register_ip_window_s=600)
    for i in range(3):
        r = _register(app, f"user{i}")
        assert r.status_code == 302, r.text[:300]
    r = _register(app, "user3")
    assert r.status_code == 429
    assert 0 < int(r.headers["Retry-After"]) <= 600
    assert "Too many registration attempts from your network" in r.text and "10 minutes" in r.text
    db = app.extensions["db"]
    assert db.users.count_documents({}) == 3 and db.users.find_one({"username": "user3"}) is None
    assert db.audit_log.count_documents({"event": "account.register_throttled"}) == 1
    # another IP is not affected; the blocked IP still sees the form
    assert _register(app, "user4", ip="10.0.0.2").status_code == 302
    assert Browser(app.test_client(), remote_addr="10.0.0.1").get("/register").status_code == 200


def test_invalid_forms_do_not_count_but_every_hashing_attempt_does(make_app):
    app = make_app(register_ip_limit=2)
    browser = Browser(app.test_client(), remote_addr="10.0.0.3")
    for _ in range(4):  # refused by the form rules: no password hashing, not counted
        assert browser.register(username="x", password="short", confirm="short").status_code == 200
    assert _register(app, "dup", ip="10.0.0.3").status_code == 302
    # a taken username is refused after hashing the password: it counts like a registration
    assert Browser(app.test_client(), remote_addr="10.0.0.3").register(username="dup").status_code == 200
    assert _register(app, "second", ip="10.0.0.3").status_code == 429


def test_default_limit_and_block_expiry(make_app):
    app = make_app()
    for i in range(10):
        assert _register(app, f"dflt{i}").status_code == 302
    r = _register(app, "dflt10")
    assert r.status_code == 429 and 3590 <= int(r.headers["Retry-After"]) <= 3600
    # the block ends after the window: the next registration is allowed
    from datetime import datetime, timedelta, timezone
    db = app.extensions["db"]
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    db.throttles.update_one({"_id": "register:ip:10.0.0.1"}, {"$set": {"blocked_until": past}})
    assert _register(app, "dflt10").status_code == 302


def test_json_clients_get_json_429(make_app):
    app = make_app(register_ip_limit=1)
    assert _register(app, "json0").status_code == 302
    browser = Browser(app.test_client(), remote_addr="10.0.0.1")
    r = browser.submit("/register", {"name": "J", "username": "json1", "email": "json1@example.com", "phone": "",
                                     "password": "correct horse battery staple",
                                     "confirm": "correct horse battery staple"},
                       headers={"Accept": "application/json"})
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert r.get_json()["error"] == "too_many_registrations"


def test_limit_zero_turns_it_off(make_app):
    app = make_app(register_ip_limit=0)
    for i in range(12):
        assert _register(app, f"zero{i}").status_code == 302
