"""A sign-in whose password was checked against the old hash does not outlive a password change or reset that
lands while it completes: the change ends every other session of the account, but a sign-in checked just
before it and stored just after it (a session is inserted by the request that signs in) kept the intruder
signed in with the password the owner had just changed (here made certain by holding the sign-in at its audit
event, after the check and before the session is stored; a loop of sign-ins meets the change by itself)."""
from __future__ import annotations

import threading

import pytest
import requests

from idp import audit
from oauth.conftest import PASSWORD, csrf_from
from oauth.conftest import cheap_password_hashing, idp, make_server, rp, user  # noqa: F401  (fixtures)

COOKIE = "deepauth_session"
NEW_PASSWORD = "an entirely new passphrase"


def _held_sign_in(idp, release: threading.Event):
    """Start the intruder's sign-in with the current password in a thread; it is held once the password was
    checked (at its ``account.login`` event) until ``release``. Returns (thread, its session, entered)."""
    entered = threading.Event()

    def hold(db, doc):
        if doc.get("event") == audit.LOGIN and not entered.is_set():
            entered.set()
            release.wait(20)
    audit.listen("test-hold-sign-in", hold)
    intruder = requests.Session()
    page = intruder.get(idp.url + "/login")
    result = {}

    def sign_in():
        result["r"] = intruder.post(idp.url + "/login", allow_redirects=False, data={
            "csrf_token": csrf_from(page.text), "username": "alice", "password": PASSWORD})
    t = threading.Thread(target=sign_in)
    t.start()
    assert entered.wait(20), "the sign-in never reached its audit event"
    return t, intruder, result


def _still_signed_in(idp, s: requests.Session) -> bool:
    r = s.get(idp.url + "/account", allow_redirects=False)
    return r.status_code == 200


def _dropped_once(idp, user) -> None:
    """The audit log says the sign-in did not stand (its ``account.login`` was written before the check),
    with the address it came from."""
    dropped = list(idp.db.audit_log.find({"event": audit.LOGIN_DROPPED}))
    assert [d["user_id"] for d in dropped] == [user["_id"]], dropped
    assert dropped[0].get("ip")


@pytest.fixture
def held():
    yield
    audit._LISTENERS.pop("test-hold-sign-in", None)


def test_sign_in_checked_before_a_password_change_ends_with_it(idp, user, held):  # noqa: F811
    owner = requests.Session()
    page = owner.get(idp.url + "/login")
    assert owner.post(idp.url + "/login", allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "username": "alice", "password": PASSWORD}).status_code == 302
    page = owner.get(idp.url + "/account/password")
    release = threading.Event()
    t, intruder, result = _held_sign_in(idp, release)
    try:
        r = owner.post(idp.url + "/account/password", allow_redirects=False, data={
            "csrf_token": csrf_from(page.text), "current_password": PASSWORD, "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD})
        assert r.status_code == 302, r.text[:300]
    finally:
        release.set()
        t.join(30)
    assert not _still_signed_in(idp, intruder), "a sign-in with the old password outlived the change"
    assert _still_signed_in(idp, owner)
    _dropped_once(idp, user)  # the owner's own sign-in stood: only the intruder's is audited as dropped


def test_sign_in_checked_before_a_password_reset_ends_with_it(idp, user, held):  # noqa: F811
    from idp.accounts import emaillinks
    token = emaillinks.issue(idp.db, emaillinks.RESET, user["_id"], user["email"], password_hash=user["password_hash"])
    anyone = requests.Session()
    page = anyone.get(f"{idp.url}/reset/{token}")
    assert page.status_code == 200, page.text[:300]
    release = threading.Event()
    t, intruder, result = _held_sign_in(idp, release)
    try:
        r = anyone.post(f"{idp.url}/reset/{token}", allow_redirects=False, data={
            "csrf_token": csrf_from(page.text), "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert r.status_code == 302, r.text[:300]
    finally:
        release.set()
        t.join(30)
    assert not _still_signed_in(idp, intruder), "a sign-in with the old password outlived the reset"
    _dropped_once(idp, user)
