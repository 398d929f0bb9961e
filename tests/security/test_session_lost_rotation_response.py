"""A browser whose sign-in response never arrived (the connection dropped, the user navigated away, a form
submitted twice) still holds the id the sign-in rotated away. A request with that id arriving just after the
rotation is taken for one of the browser's requests in flight (it leaves the cookie alone: the sibling test
test_session_rotation_never_signs_the_browser_out.py); a minute later it cannot be one (``ROTATED_OPEN_S``),
and the browser must be able to sign in again rather than being kept out (every login form refused for a CSRF
token its session could never store) until the rotated id is forgotten (``ROTATED_GRACE_S``)."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import requests

from idp.web.sessions import ROTATED_GRACE_S
from oauth.conftest import PASSWORD, csrf_from
from oauth.conftest import cheap_password_hashing, idp, make_server, user  # noqa: F401  (fixtures)

COOKIE = "deepauth_session"


def _sign_in(idp, browser: requests.Session) -> requests.Response:  # noqa: F811
    page = browser.get(idp.url + "/login")
    assert page.status_code == 200
    return browser.post(idp.url + "/login", allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "username": "alice", "password": PASSWORD})


def test_a_browser_that_lost_its_sign_in_response_can_sign_in_again(idp, user):  # noqa: F811
    browser = requests.Session()
    page = browser.get(idp.url + "/login")
    old = browser.cookies[COOKIE]
    lost = requests.post(idp.url + "/login", cookies={COOKIE: old}, allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "username": "alice", "password": PASSWORD})
    assert lost.status_code == 302  # signed in and rotated; the browser never sees this response
    assert browser.cookies[COOKIE] == old
    key = hashlib.sha256(old.encode()).hexdigest()
    tomb = idp.db.sessions.find_one({"_id": key})
    assert tomb is not None and "data" not in tomb

    # the user tries again a minute later (the rotated id is still known as such for two more)
    assert ROTATED_GRACE_S > 90
    idp.db.sessions.update_one({"_id": key}, {"$set": {"rotated": tomb["expires"] - timedelta(
        seconds=ROTATED_GRACE_S + 60)}})
    r = _sign_in(idp, browser)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert browser.cookies[COOKIE] != old
    assert browser.get(idp.url + "/account", allow_redirects=False).status_code == 200
    # the old id still opens nothing
    r = requests.get(idp.url + "/account", cookies={COOKIE: old}, allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
