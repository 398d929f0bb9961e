"""A sign-out in one tab ends the browser's sign-in whatever another tab is doing: a re-authentication of the
same account (the sign-in page posted again, ``prompt=login``) that read the session just before the sign-out
and stores it just after must not bring the sign-in back. It kept the sign-in's OIDC ``sid``, which the
sign-out had just ended at the apps (back-channel logout, codes and tokens of that ``sid``): a live session
with an ended ``sid``. In the other order (the sign-out read the session before the re-authentication rotated
it) the sign-out already ended the session it moved to; both orders now end alike."""
from __future__ import annotations

import re
import threading

import pytest
import requests

from idp import audit
from oauth.conftest import PASSWORD, csrf_from
from support.oidc import account_from
from oauth.conftest import cheap_password_hashing, idp, make_server, rp, user  # noqa: F401  (fixtures)

from .test_session_end import COOKIE, _signed_in


@pytest.fixture
def held():
    yield
    audit._LISTENERS.pop("test-hold-re-authentication", None)


def _held_re_authentication(idp, cookie: str, login_token: str):  # noqa: F811
    """The sign-in page posted again with ``cookie`` (a re-authentication), in a thread started here and held
    once the password was checked (its account.login event): after its session was read, before it is stored.
    Returns the thread, the event set once it is held, the one that releases it, and ``{"r": its response}``."""
    entered, release = threading.Event(), threading.Event()

    def hold(db, doc):
        if doc.get("event") == audit.LOGIN and not entered.is_set():
            entered.set()
            release.wait(20)
    audit.listen("test-hold-re-authentication", hold)
    result = {}

    def re_authenticate():
        result["r"] = requests.post(idp.url + "/login", cookies={COOKIE: cookie}, allow_redirects=False, data={
            "csrf_token": login_token, "username": "alice", "password": PASSWORD})
    t = threading.Thread(target=re_authenticate)
    t.start()
    return t, entered, release, result


def test_a_re_authentication_racing_a_sign_out_in_another_tab_does_not_outlive_it(idp, user, held):  # noqa: F811
    browser = _signed_in(idp)
    cookie = browser.cookies[COOKIE]
    (before,) = idp.db.sessions.find({"data.auth.uid": user["_id"]})
    sid = before["data"]["auth"]["sid"]
    login_token = csrf_from(browser.get(idp.url + "/login").text)
    account_token = csrf_from(browser.get(idp.url + "/account").text)

    # tab B posts the sign-in page again
    t, entered, release, result = _held_re_authentication(idp, cookie, login_token)
    try:
        assert entered.wait(20), "the re-authentication never reached its audit event"
        # tab A signs out meanwhile
        r = requests.post(idp.url + "/account/sign-out", cookies={COOKIE: cookie},
                          data={"csrf_token": account_token}, allow_redirects=False)
        assert r.status_code == 302
    finally:
        release.set()
        t.join(30)
    assert result["r"].status_code == 302

    live = list(idp.db.sessions.find({"data.auth.uid": user["_id"]}))
    assert [d["data"]["auth"]["sid"] for d in live if d["data"]["auth"].get("sid") == sid] == [], \
        "a live session carries the sid the sign-out ended"
    assert live == [], "the sign-in outlived the sign-out"
    new_cookie = result["r"].cookies.get(COOKIE)
    if new_cookie:
        r = requests.get(idp.url + "/account", cookies={COOKIE: new_cookie}, allow_redirects=False)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_another_account_signing_in_over_a_sign_in_that_a_step_just_rotated_ends_it(idp, user):  # noqa: F811
    """Another account signing in over the browser's sign-in ends it (its ``sid`` at the apps, as a sign-out
    does). When a step of the first sign-in in another tab (here a step-up's rotation) had moved the session
    after the new sign-in read it, the sign-in it moved to lived on, with the ``sid`` just ended: a live session
    of the first account nobody signed out of, whose cookie the browser holds if that tab's answer arrives last.
    (The requests are the served app's own session handling, opened and saved in this order.)"""
    from idp.accounts.users import create_user
    from idp.signin import complete_step
    from security.test_session_rotation_never_signs_the_browser_out import _InFlight
    bob = create_user(idp.db, "bob", "bob@example.org", PASSWORD)
    cookie = _signed_in(idp).cookies[COOKIE]
    signing_in, stepping = _InFlight(idp, cookie), _InFlight(idp, cookie)  # both read the session
    stepping.step_up()
    assert stepping.save().headers.get("Set-Cookie", "").startswith(COOKIE + "=")  # alice's sign-in moved
    with signing_in.ctx:
        complete_step(bob["_id"], "pwd", new_login=True)
    assert signing_in.save().headers.get("Set-Cookie", "").startswith(COOKIE + "=")
    assert list(idp.db.sessions.find({"data.auth.uid": user["_id"]})) == [], "alice's sign-in outlived its end"
    assert idp.db.sessions.count_documents({"data.auth.uid": bob["_id"]}) == 1


def test_a_re_authentication_racing_a_step_in_another_tab_still_signs_in(idp, user, held):  # noqa: F811
    """Not ended but moved: a step of the same sign-in in another tab rotated the session while the
    re-authentication ran. The sign-in lives (same account, same ``sid``), so the re-authentication stands:
    the browser is not sent back to the password form it has just filled in."""
    from security.test_session_rotation_never_signs_the_browser_out import _InFlight
    browser = _signed_in(idp)
    cookie = browser.cookies[COOKIE]
    (before,) = idp.db.sessions.find({"data.auth.uid": user["_id"]})
    login_token = csrf_from(browser.get(idp.url + "/login").text)
    stepping = _InFlight(idp, cookie)
    t, entered, release, result = _held_re_authentication(idp, cookie, login_token)
    try:
        assert entered.wait(20), "the re-authentication never reached its audit event"
        stepping.step_up()
        stepping.save()
    finally:
        release.set()
        t.join(30)
    new_cookie = result["r"].cookies.get(COOKIE)
    assert new_cookie and new_cookie != cookie, result["r"].headers
    r = requests.get(idp.url + "/account", cookies={COOKIE: new_cookie}, allow_redirects=False)
    assert r.status_code == 200
    (doc,) = [d for d in idp.db.sessions.find({"data.auth.uid": user["_id"]})
              if d["data"]["auth"]["at"] > before["data"]["auth"]["at"]]
    assert doc["data"]["auth"]["sid"] == before["data"]["auth"]["sid"]


@pytest.mark.parametrize("ending", ["sign-out", "another account signs in"])
def test_a_code_issued_while_another_tab_ends_the_sign_in_is_not_redeemed(idp, user, rp, held, ending):  # noqa: F811
    """The consent ("Allow") posted in one tab while the sign-in ends in another (a sign-out, or another account
    signing in over it): the end ends the sign-in's codes, but a code stored just after that (its request read
    the session before) reached the application and was redeemed for tokens of a sign-in whose end the apps had
    been told."""
    from urllib.parse import parse_qs, urlsplit

    from idp.accounts.users import create_user
    create_user(idp.db, "bob", "bob@example.org", PASSWORD)
    url = rp.authorize_url(prompt="consent", scope="openid profile email")  # no offline access: ends with the sign-in
    consent_page = rp.login(rp.follow(url))
    html = consent_page.response.text
    assert '/authorize/consent"' in html
    rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
    account_token = csrf_from(rp.browser.get(idp.url + "/account").text)
    login_token = csrf_from(rp.browser.get(idp.url + "/login").text)
    cookies = rp.browser.cookies.get_dict()
    entered, release = threading.Event(), threading.Event()

    def hold(db, doc):
        if doc.get("event") == audit.CONSENT_GRANTED and not entered.is_set():
            entered.set()
            release.wait(20)
    audit.listen("test-hold-re-authentication", hold)
    result = {}

    def allow():
        result["r"] = requests.post(idp.url + "/authorize/consent", cookies=cookies, allow_redirects=False, data={
            "csrf_token": csrf_from(html), "rid": rid, "decision": "allow",
            "account": account_from(html)})
    t = threading.Thread(target=allow)
    t.start()
    try:
        assert entered.wait(20), "the consent never reached its audit event"
        if ending == "sign-out":
            r = requests.post(idp.url + "/account/sign-out", cookies=cookies, data={"csrf_token": account_token},
                              allow_redirects=False)
        else:
            r = requests.post(idp.url + "/login", cookies=cookies, allow_redirects=False, data={
                "csrf_token": login_token, "username": "bob", "password": PASSWORD})
        assert r.status_code == 302
    finally:
        release.set()
        t.join(30)
    location = result["r"].headers.get("Location", "")
    code = parse_qs(urlsplit(location).query).get("code", [None])[0]
    if code is not None:
        r = rp.redeem(code, None)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def _code_of_a_consent_across(idp, rp, event: str, token_page: str, path: str, form: dict):  # noqa: F811
    """Alice allows a consent (a code of her sign-in is made), held at its audit event; then another request of
    her browser (a POST of ``form`` to ``path``, with the CSRF token of ``token_page``) runs up to its audit
    ``event`` and is held there; meanwhile the consent goes on, so its code is stored and checked before the
    other request's save. The other request's response and the consent's code (None when it gave none)."""
    from urllib.parse import parse_qs, urlsplit

    consent_page = rp.login(rp.follow(rp.authorize_url(prompt="consent", scope="openid profile email")))
    html = consent_page.response.text
    rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
    token = csrf_from(rp.browser.get(idp.url + token_page).text)
    cookies = rp.browser.cookies.get_dict()
    other_in, alice_in, release_other, release_alice = (threading.Event() for _ in range(4))

    def hold(db, doc):
        if doc.get("event") == event and not other_in.is_set():
            other_in.set()
            release_other.wait(20)
        elif doc.get("event") == audit.CONSENT_GRANTED and not alice_in.is_set():
            alice_in.set()
            release_alice.wait(20)
    audit.listen("test-hold-re-authentication", hold)
    result = {}

    def allow():
        result["alice"] = requests.post(idp.url + "/authorize/consent", cookies=cookies, allow_redirects=False,
                                        data={"csrf_token": csrf_from(html), "rid": rid, "decision": "allow",
            "account": account_from(html)})

    def other():
        result["other"] = requests.post(idp.url + path, cookies=cookies, allow_redirects=False,
                                        data={"csrf_token": token, **form})
    threads = [threading.Thread(target=allow), threading.Thread(target=other)]
    threads[0].start()
    try:
        assert alice_in.wait(20), "the consent never reached its audit event"
        threads[1].start()
        assert other_in.wait(20), f"{path} never reached its audit event {event}"
        release_alice.set()
        threads[0].join(30)  # the code is stored and checked before the other request's save
    finally:
        release_alice.set()
        release_other.set()
        for t in threads:
            t.join(30)
    code = parse_qs(urlsplit(result["alice"].headers.get("Location", "")).query).get("code", [None])[0]
    return result["other"], code


def test_a_code_issued_between_another_accounts_sign_in_and_its_save_is_not_redeemed(idp, user, rp, held):  # noqa: F811
    """Another account's sign-in ends the first account's sign-in in its view (its hooks end the codes) and
    moves the session at its save: a code of the first sign-in stored and checked in between saw its session
    still in place, and was redeemed."""
    from idp.accounts.users import create_user
    create_user(idp.db, "bob", "bob@example.org", PASSWORD)
    bob, code = _code_of_a_consent_across(idp, rp, audit.LOGIN, "/login", "/login",
                                          {"username": "bob", "password": PASSWORD})
    assert bob.status_code == 302
    if code is not None:
        r = rp.redeem(code, None)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_a_code_issued_between_a_sign_outs_hooks_and_its_save_is_not_redeemed(idp, user, rp, held):  # noqa: F811
    """A sign-out ends its session before its hooks end the sign-in's codes (``end_session_now``): a code of the
    sign-in stored and checked after those hooks ran, but before the sign-out's save, sees the session gone.
    Ended only at the save, the session was still in place for that check, and the code was redeemed."""
    out, code = _code_of_a_consent_across(idp, rp, audit.SIGN_OUT, "/account", "/account/sign-out", {})
    assert out.status_code == 302
    assert code is not None  # the consent read its session before the sign-out: it answered with a code
    r = rp.redeem(code, None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
