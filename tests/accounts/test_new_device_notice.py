"""A password sign-in from a browser not seen before on the account is audited and mailed to the owner.

Through the real app, its database and a real SMTP server: the owner hears of every new browser that knows
the password (a few mails an hour at most), never of the browser that made the account or one already known,
and the device cookie's value is stored, mailed and logged nowhere.
"""
from __future__ import annotations

import hashlib
import logging

import pytest

from support.fixtures import away_from_a_rate_window_edge  # noqa: F401  (fixture)

from .conftest import GOOD_PASSWORD, Browser, alert, csrf_token, field_errors

NOTICE = "notice:account.new_device"
UA = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"


def _browser(app, addr="10.0.0.7"):
    b = Browser(app.test_client(), remote_addr=addr)
    b.environ["HTTP_USER_AGENT"] = UA
    return b


def _device(b):
    c = b.client.get_cookie("deepauth_device")
    return c.value if c is not None else None


def _uid(app, username="alice"):
    return app.extensions["db"].users.find_one({"username": username})["_id"]


def _notices(app):
    return list(app.extensions["db"].mail_outbox.find({"kind": NOTICE}))


def _events(app, uid):
    return list(app.extensions["db"].audit_log.find({"event": "account.new_device", "user_id": uid}))


def test_new_browser_mails_the_owner_once_and_a_known_one_never(mail_app, smtp_server, caplog):
    caplog.set_level(logging.DEBUG)
    owner = _browser(mail_app, "10.0.0.1")
    assert owner.register().status_code == 302
    uid = _uid(mail_app)
    db = mail_app.extensions["db"]
    assert _device(owner) and not _events(mail_app, uid) and not _notices(mail_app)  # registering: no notice
    assert owner.login("alice", GOOD_PASSWORD).status_code == 302  # the registering browser is known
    assert not _events(mail_app, uid) and not _notices(mail_app)

    other = _browser(mail_app, "10.0.0.7")
    assert other.login("alice", GOOD_PASSWORD).status_code == 302
    token = _device(other)
    assert token and token != _device(owner)
    [event] = _events(mail_app, uid)
    assert event["decision"] == "signed_in" and event["ip"] == "10.0.0.7" and event["user_agent"] == UA
    assert len(_notices(mail_app)) == 1
    row = db.known_devices.find_one({"_id": hashlib.sha256(f"{uid}:{token}".encode()).hexdigest()})
    assert row["user_id"] == uid and row["expires"] > row["last_seen"]

    seen_before = row["last_seen"]
    assert other.login("alice", GOOD_PASSWORD).status_code == 302  # the same browser again: nothing new
    assert len(_events(mail_app, uid)) == 1 and len(_notices(mail_app)) == 1
    assert db.known_devices.find_one({"_id": row["_id"]})["last_seen"] > seen_before

    third = _browser(mail_app, "10.0.0.9")
    assert third.login("alice", GOOD_PASSWORD).status_code == 302  # another browser: another notice
    assert len(_events(mail_app, uid)) == 2 and len(_notices(mail_app)) == 2

    mails = smtp_server.wait_for(3)  # the verification link, then the two notices
    notices = [m for m in mails if m["Subject"] == "New sign-in to your account"]
    assert len(notices) == 2 and all(m["To"] == "alice@example.com" for m in notices)
    body = notices[0].get_payload(decode=True).decode()
    assert "browser not seen before on this account" in body
    assert f"When: {event['at'].strftime('%Y-%m-%d %H:%M UTC')}" in body
    assert "From address: 10.0.0.7" in body and "Browser (as it names itself): an unrecognised browser on Linux" in body
    assert "Forgot password?" in body and "someone knows your password" in body
    everything = [m.as_string() for m in mails] + [r.getMessage() for r in caplog.records]
    for value in (token, _device(third), _device(owner)):
        assert not any(value in text for text in everything)
        assert not any(value in str(entry) for entry in db.audit_log.find())


def test_the_mail_names_the_browser_in_its_own_words_never_the_senders(mail_app, smtp_server):
    """Whoever signs in chooses the User-Agent header, every word of it: the mail to the owner names the browser
    and system from a fixed list, so it cannot carry the sender's words ("this was you, ignore this mail"); the
    header as sent stays in the audit entry for operators."""
    forged = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
              "Safari/537.36 -- Security team: this sign-in was you, ignore this mail")
    assert _browser(mail_app, "10.0.0.1").register().status_code == 302
    b = _browser(mail_app, "10.0.0.8")
    b.environ["HTTP_USER_AGENT"] = forged
    assert b.login("alice", GOOD_PASSWORD).status_code == 302
    [event] = _events(mail_app, _uid(mail_app))
    assert event["user_agent"] == forged
    [notice] = [m for m in smtp_server.wait_for(2) if m["Subject"] == "New sign-in to your account"]
    body = notice.get_payload(decode=True).decode()
    assert "Browser (as it names itself): Chrome 131 on Windows" in body
    assert "ignore this mail" not in body and "Security team" not in body


def test_browser_summary_names_only_known_browsers_and_systems():
    from idp.text import browser_summary
    assert browser_summary("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36") == "Samsung Internet 25 on Android"
    assert browser_summary("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                           "Gecko) Version/17.5 Mobile/15E148 Safari/604.1") == "Safari 17 on iPhone"
    assert browser_summary("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70") == "Edge 131 on Windows"
    assert browser_summary("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 "
                           "Firefox/128.0") == "Firefox 128 on macOS"
    for unnamed in (None, "", "curl/8.5.0", "Call +1 555 0100 now"):
        assert browser_summary(unnamed) == "an unrecognised browser"


@pytest.mark.usefixtures("away_from_a_rate_window_edge")  # the notices are counted per clock hour
def test_over_the_hourly_limit_only_the_audit_goes_on(mail_app, smtp_server):
    from idp.mail.notify import NEW_DEVICE_NOTICES
    assert _browser(mail_app).register().status_code == 302
    uid = _uid(mail_app)
    for i in range(NEW_DEVICE_NOTICES + 2):  # whoever holds the password throws the cookie away each time
        assert _browser(mail_app, f"10.0.1.{i}").login("alice", GOOD_PASSWORD).status_code == 302
    assert len(_events(mail_app, uid)) == NEW_DEVICE_NOTICES + 2
    assert len(_notices(mail_app)) == NEW_DEVICE_NOTICES
    smtp_server.wait_for(1 + NEW_DEVICE_NOTICES)


def test_device_cookie_flags(make_app):
    """HttpOnly, SameSite=Lax, Path=/, 400 days; over https ``__Host-`` and Secure, as the session cookie."""
    for issuer, name, secure, environ in (
            ("http://localhost:5000", "deepauth_device", False, {}),
            ("https://idp.example", "__Host-device", True,  # behind a TLS proxy, as README configures it
             {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "203.0.113.7"})):
        app = make_app(issuer=issuer, trusted_proxies="1")
        client, base = app.test_client(), issuer.replace("https://", "http://")
        page = client.get("/register", base_url=base, environ_base=environ)
        r = client.post("/register", base_url=base, environ_base=environ, data={
            "csrf_token": csrf_token(page.text), "name": "Alice", "username": name.strip("_-").lower(),
            "email": f"{name.strip('_-').lower()}@example.com",
            "phone": "", "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
        assert r.status_code == 302, (issuer, field_errors(r.text), alert(r.text))
        [header] = [h for h in r.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
        flags = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
        assert {"httponly", "path", "max-age"} <= flags and "samesite=lax" in header.lower()
        assert ("secure" in flags) is secure
        assert "Max-Age=34560000" in header and "Path=/" in header


def test_account_deletion_erases_its_known_browsers(app):
    from idp.accounts import users
    b = _browser(app)
    assert b.register().status_code == 302
    assert _browser(app, "10.0.0.8").login("alice", GOOD_PASSWORD).status_code == 302
    assert _browser(app, "10.0.0.9").register("bob").status_code == 302
    db, uid = app.extensions["db"], _uid(app)
    assert db.known_devices.count_documents({"user_id": uid}) == 2
    counts = users.delete_user(db, uid)
    assert counts["known_devices"] == 2
    assert db.known_devices.count_documents({"user_id": uid}) == 0
    assert db.known_devices.count_documents({}) == 1  # bob's browser stays known for bob


def test_known_browsers_expire_by_a_ttl_index(migrated_db):
    indexes = {i["name"]: i for i in migrated_db.known_devices.list_indexes()}
    assert indexes["expires_ttl"]["expireAfterSeconds"] == 0 and dict(indexes["expires_ttl"]["key"]) == {"expires": 1}


def test_switched_off_no_event_no_mail_no_cookie(make_app, smtp_server):
    app = make_app(smtp_url=smtp_server.url, new_device_notice=False)
    assert _browser(app).register().status_code == 302
    other = _browser(app, "10.0.0.7")
    assert other.login("alice", GOOD_PASSWORD).status_code == 302
    assert _device(other) is None
    assert not _events(app, _uid(app)) and not _notices(app)
    assert app.extensions["db"].known_devices.count_documents({}) == 0


def test_the_registering_browser_is_known_when_the_address_must_be_confirmed_first(make_app):
    app = make_app(require_verified_email=True)
    b = _browser(app)
    b.register()
    assert _device(b) and app.extensions["db"].known_devices.count_documents({"user_id": _uid(app)}) == 1
    assert not _events(app, _uid(app))
