"""Sessions and tokens end when they should: a save never re-creates a signed-out session, a password
change (and "sign out everywhere") ends the apps' tokens, and anonymous sessions are short-lived."""
from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone

import requests

from oauth.conftest import PASSWORD, csrf_from
from oauth.conftest import cheap_password_hashing, idp, make_server, rp, user  # noqa: F401  (fixtures)

COOKIE = "deepauth_session"
NEW_PASSWORD = "an entirely new passphrase"


def _signed_in(idp) -> requests.Session:  # noqa: F811
    s = requests.Session()
    page = s.get(idp.url + "/login")
    r = s.post(idp.url + "/login", data={"csrf_token": csrf_from(page.text), "username": "alice",
                                         "password": PASSWORD}, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    return s


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def test_requests_in_flight_during_sign_out_never_resurrect_the_session(idp, rp, user):  # noqa: F811
    # Each hammering request writes the session (GET /authorize remembers the pending request), so a save
    # that could insert would bring the signed-out session back.
    url = rp.authorize_url()
    for run in range(20):
        victim = _signed_in(idp)
        sid = victim.cookies[COOKIE]
        token = csrf_from(victim.get(idp.url + "/account").text)
        stop, started = threading.Event(), threading.Barrier(9)

        def hammer():
            started.wait()
            while not stop.is_set():
                requests.get(url, cookies={COOKIE: sid}, allow_redirects=False, timeout=30)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        started.wait()
        r = victim.post(idp.url + "/account/sign-out", data={"csrf_token": token}, allow_redirects=False)
        assert r.status_code == 302
        stop.set()
        for t in threads:
            t.join(30)
        assert idp.db.sessions.find_one({"_id": _key(sid)}) is None, f"resurrected in run {run}"
        r = requests.get(idp.url + "/account", cookies={COOKIE: sid}, allow_redirects=False)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_requests_in_flight_during_password_change_never_resurrect_the_other_session(idp, rp, user):  # noqa: F811
    url = rp.authorize_url()
    password = PASSWORD
    for run in range(5):
        stolen = _signed_in(idp) if run == 0 else _login_with(idp, password)
        owner = _login_with(idp, password)
        sid = stolen.cookies[COOKIE]
        stop, started = threading.Event(), threading.Barrier(5)

        def hammer():
            started.wait()
            while not stop.is_set():
                requests.get(url, cookies={COOKIE: sid}, allow_redirects=False, timeout=30)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        started.wait()
        new = f"{NEW_PASSWORD} {run}"
        page = owner.get(idp.url + "/account/password")
        r = owner.post(idp.url + "/account/password", allow_redirects=False, data={
            "csrf_token": csrf_from(page.text), "current_password": password, "new_password": new, "confirm": new})
        assert r.status_code == 302, r.text[:300]
        password = new
        stop.set()
        for t in threads:
            t.join(30)
        assert idp.db.sessions.find_one({"_id": _key(sid)}) is None, f"resurrected in run {run}"


def _login_with(idp, password) -> requests.Session:
    s = requests.Session()
    page = s.get(idp.url + "/login")
    r = s.post(idp.url + "/login", data={"csrf_token": csrf_from(page.text), "username": "alice",
                                         "password": password}, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    return s


def _userinfo(idp, access_token) -> int:
    return requests.get(idp.url + "/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_password_change_ends_the_apps_tokens(idp, rp, user):  # noqa: F811
    tokens = rp.tokens()
    assert _userinfo(idp, tokens["access_token"]) == 200
    page = rp.browser.get(idp.url + "/account/password")
    r = rp.browser.post(idp.url + "/account/password", allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert _userinfo(idp, tokens["access_token"]) == 401
    r = rp.refresh(tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # a new sign-in with the new password gets working tokens again
    rp.browser = requests.Session()
    res, verifier = rp.sign_in_for_code()
    assert res.location is None  # the login page
    fresh = rp.follow(res.response.url, "POST", {"csrf_token": csrf_from(res.response.text), "username": "alice",
                                                 "password": NEW_PASSWORD})
    if fresh.location is None:
        fresh = rp.consent(fresh)
    assert rp.redeem(fresh.params["code"], verifier).status_code == 200


def test_sign_out_everywhere_ends_every_session_and_token(idp, rp, user):  # noqa: F811
    tokens = rp.tokens()
    other = _signed_in(idp)
    me = _signed_in(idp)
    page = me.get(idp.url + "/account")
    assert "Sign out everywhere" in page.text
    # a POST without the CSRF token changes nothing
    r = me.post(idp.url + "/account/sign-out-everywhere", data={}, allow_redirects=False)
    assert r.status_code == 400
    assert _userinfo(idp, tokens["access_token"]) == 200
    assert other.get(idp.url + "/account", allow_redirects=False).status_code == 200
    r = me.post(idp.url + "/account/sign-out-everywhere", data={"csrf_token": csrf_from(page.text)},
                allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert "signed out everywhere" in me.get(idp.url + "/login").text
    for browser in (me, other, rp.browser):
        assert browser.get(idp.url + "/account", allow_redirects=False).status_code == 302
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0
    assert _userinfo(idp, tokens["access_token"]) == 401
    assert rp.refresh(tokens["refresh_token"]).status_code == 400
    assert idp.db.audit_log.count_documents({"event": "account.signed_out_everywhere", "user_id": user["_id"]}) == 1


def test_anonymous_sessions_are_short_lived(idp, user):  # noqa: F811
    lifetime = 900  # "within minutes" (the default IDP_ANON_SESSION_LIFETIME is 600 s)
    assert 0 < idp.config.anon_session_lifetime_s <= lifetime
    for _ in range(200):
        assert requests.get(idp.url + "/login").status_code == 200
    horizon = datetime.now(timezone.utc) + timedelta(seconds=lifetime)
    long_lived = idp.db.sessions.count_documents({"expires": {"$gt": horizon}})
    assert long_lived == 0, f"{long_lived} anonymous sessions live longer than {lifetime} s"
    # signing in gives the session the full lifetime
    s = _signed_in(idp)
    doc = idp.db.sessions.find_one({"_id": _key(s.cookies[COOKIE])})
    assert doc["expires"] > datetime.now(timezone.utc) + timedelta(seconds=idp.config.session_lifetime_s - 60)


def test_an_anonymous_session_in_use_is_extended_not_dropped(idp, user):  # noqa: F811
    s = requests.Session()
    page = s.get(idp.url + "/login")
    key = _key(s.cookies[COOKIE])
    # pretend the login page was opened long ago: a few seconds of the short lifetime are left
    soon = datetime.now(timezone.utc) + timedelta(seconds=5)
    idp.db.sessions.update_one({"_id": key}, {"$set": {"expires": soon}})
    s.get(idp.url + "/login")
    assert idp.db.sessions.find_one({"_id": key})["expires"] > soon + timedelta(seconds=60)
    r = s.post(idp.url + "/login", data={"csrf_token": csrf_from(page.text), "username": "alice",
                                         "password": PASSWORD}, allow_redirects=False)
    assert r.status_code == 302  # the CSRF token of the extended session is still good


def test_a_signed_in_session_ends_its_lifetime_after_the_sign_in_however_much_it_is_used(make_server):  # noqa: F811
    """``IDP_SESSION_LIFETIME`` is how long a sign-in lasts, counted from the password step. Before, every
    request that wrote the session (an authorization request, a flash message) gave it the whole lifetime
    again, so a browser in use - or a stolen cookie kept busy by a relying party's sign-ins - stayed signed in
    for good and got codes without a password: with a 3 s lifetime, a code at 5 s."""
    import time

    from idp.accounts.users import create_user
    from support.oidc import RelyingParty

    lifetime = 3
    idp = make_server(session_lifetime_s=lifetime, anon_session_lifetime_s=lifetime)
    create_user(idp.db, "alice", "alice@example.org", PASSWORD)
    rp = RelyingParty.register(idp, idp.db, idp.config, scope="openid profile",
                               defaults={"scope": "openid profile"})
    signing_in = time.monotonic()
    rp.tokens()
    signed_in = time.monotonic()  # the password step lies between the two, however slow the machine
    while time.monotonic() - signed_in < lifetime + 2:
        used = rp.follow(rp.authorize_url())  # each one writes the session (the pending request)
        if time.monotonic() - signing_in < lifetime - 1:
            assert used.location and "code" in used.params, used.response.text[:300]
        time.sleep(0.4)
    silent = rp.follow(rp.authorize_url(prompt="none"))
    assert silent.params.get("error") == "login_required" and "code" not in silent.params, silent.location
    page = rp.follow(rp.authorize_url())
    assert page.location is None and "/login" in page.response.url


def test_a_stored_session_past_its_sign_in_lifetime_opens_nothing(idp, user):  # noqa: F811
    """A session stored with an end beyond its sign-in's lifetime (saved by the version that extended it at every
    write) opens nothing once the lifetime since its password step has passed."""
    s = _signed_in(idp)
    key = _key(s.cookies[COOKIE])
    assert s.get(idp.url + "/account", allow_redirects=False).status_code == 200
    long_ago = datetime.now(timezone.utc).timestamp() - idp.config.session_lifetime_s - 10
    idp.db.sessions.update_one({"_id": key}, {"$set": {
        "data.auth.at": long_ago, "data.auth.auth_time": int(long_ago),
        "expires": datetime.now(timezone.utc) + timedelta(hours=8)}})
    r = s.get(idp.url + "/account", allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
