"""A session id rotated at a sign-in step (or a password change) never signs the browser out: a request of
the same browser still in flight with the old id (a second tab, a page's parallel calls) leaves the new
cookie alone - no Set-Cookie at all, neither a deletion nor a new anonymous session - whether it arrives
after the rotation or had read the session before it. The old id still opens nothing of the session
(fixation), and an ended session (sign-out, "sign out everywhere") still drops the cookie of its requests in
flight.

The requests "in flight" are the real session interface of the served app, opened in a request context of
the same app on the same database before the rotating HTTP request and saved after it: the order a slow
request and a fast one take, made deterministic."""
from __future__ import annotations

import hashlib

import requests
from flask import flash
from flask import session as flask_session

from idp.signin import sign_out
from idp.web.sessions import rotate_session
from oauth.conftest import PASSWORD, csrf_from
from oauth.conftest import cheap_password_hashing, idp, make_server, rp, user  # noqa: F401  (fixtures)

COOKIE = "deepauth_session"
NEW_PASSWORD = "an entirely new passphrase"


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _session_cookies(response) -> list[str]:
    """The Set-Cookie headers of ``response`` (requests' or Flask's) that touch the session cookie."""
    raw = getattr(response, "raw", None)
    headers = raw.headers.getlist("Set-Cookie") if raw is not None else response.headers.getlist("Set-Cookie")
    return [h for h in headers if h.startswith(COOKIE + "=")]


def _opens_nothing(idp, sid: str) -> None:  # noqa: F811
    """No session data is stored under ``sid``, and a browser holding only it is not signed in."""
    doc = idp.db.sessions.find_one({"_id": _key(sid)})
    assert doc is None or set(doc) <= {"_id", "rotated", "next", "expires"}, doc
    r = requests.get(idp.url + "/account", cookies={COOKIE: sid}, allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"], (r.status_code, r.headers.get("Location"))


def _login_page(idp) -> tuple[requests.Session, str]:  # noqa: F811
    browser = requests.Session()
    page = browser.get(idp.url + "/login")
    assert page.status_code == 200
    return browser, csrf_from(page.text)


def _sign_in(idp, browser: requests.Session, token: str) -> None:  # noqa: F811
    r = browser.post(idp.url + "/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD},
                     allow_redirects=False)
    assert r.status_code == 302, r.text[:300]


class _InFlight:
    """A request of the browser that reads its session (cookie ``sid``) now and saves it when told."""

    def __init__(self, idp, sid: str, path: str = "/account"):  # noqa: F811
        self.app = idp.app
        self.ctx = self.app.test_request_context(path, headers={"Cookie": f"{COOKIE}={sid}"})
        with self.ctx:  # opens the session: reads the document now
            self.session = flask_session._get_current_object()

    def step_up(self) -> None:
        """What a sign-in step of this request does to its session (not a new sign-in)."""
        with self.ctx:
            rotate_session()

    def sign_out(self, message: str | None = None) -> None:
        """What a signing-out view does to its session: ``sign_out``, then maybe a flash message."""
        with self.ctx:
            sign_out()
            if message:
                flash(message)

    def save(self):
        with self.ctx:
            response = self.app.response_class()
            self.app.session_interface.save_session(self.app, self.session, response)
            return response


def test_a_request_with_the_rotated_away_id_sets_no_cookie_and_the_new_one_stays_signed_in(idp, rp, user):  # noqa: F811
    browser, token = _login_page(idp)
    old = browser.cookies[COOKIE]
    _sign_in(idp, browser, token)  # the password step rotates the id
    new = browser.cookies[COOKIE]
    assert new != old

    # views that write the session: /authorize stores the pending request, the login page its CSRF token
    r = requests.get(rp.authorize_url(), cookies={COOKIE: old}, allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]  # an anonymous request, no 500
    assert _session_cookies(r) == []
    r = requests.get(idp.url + "/login", cookies={COOKIE: old}, allow_redirects=False)
    assert r.status_code == 200 and _session_cookies(r) == []

    assert browser.get(idp.url + "/account", allow_redirects=False).status_code == 200
    _opens_nothing(idp, old)


def test_a_request_that_read_the_session_before_a_sign_in_step_leaves_the_new_cookie_alone(idp, rp, user):  # noqa: F811
    browser, token = _login_page(idp)
    old = browser.cookies[COOKIE]
    # an idle save would extend this anonymous session's document (little of its lifetime left)
    idp.db.sessions.update_one({"_id": _key(old)}, {"$set": {"expires": idp.db.sessions.find_one(
        {"_id": _key(old)})["expires"] - (idp.app.session_interface.anon_lifetime * 0.9)}})
    writer, idle, stepper = (_InFlight(idp, old, "/authorize") for _ in range(3))
    assert "csrf_token" in writer.session and "csrf_token" in idle.session  # they read the live session

    _sign_in(idp, browser, token)  # meanwhile, the password step of the same browser rotates the id
    assert browser.cookies[COOKIE] != old

    writer.session["next"] = "/account/password"  # the in-flight view writes the session
    assert _session_cookies(writer.save()) == []
    assert _session_cookies(idle.save()) == []
    stepper.step_up()  # a step-up of the copy read before
    assert _session_cookies(stepper.save()) == []

    assert browser.get(idp.url + "/account", allow_redirects=False).status_code == 200
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1  # no second one made
    _opens_nothing(idp, old)


def test_a_request_that_read_the_session_before_a_password_change_leaves_the_new_cookie_alone(idp, user):  # noqa: F811
    browser, token = _login_page(idp)
    _sign_in(idp, browser, token)
    old = browser.cookies[COOKIE]
    inflight = _InFlight(idp, old)
    assert inflight.session["auth"]["uid"] == user["_id"]

    page = browser.get(idp.url + "/account/password")
    r = browser.post(idp.url + "/account/password", allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert r.status_code == 302, r.text[:300]
    assert browser.cookies[COOKIE] != old

    inflight.session["next"] = "/account"
    assert _session_cookies(inflight.save()) == []
    assert browser.get(idp.url + "/account", allow_redirects=False).status_code == 200
    _opens_nothing(idp, old)  # the in-flight copy (signed in) was not written back under the old id


def _ended_by(idp, ending: str, user) -> None:  # noqa: F811
    """Sign in, read the session in two requests in flight, end it with the POST ``ending``; both requests
    (one writes the session, one steps up) drop the cookie when they save, and nothing is stored again."""
    browser, token = _login_page(idp)
    _sign_in(idp, browser, token)
    sid = browser.cookies[COOKIE]
    writer, stepper = _InFlight(idp, sid), _InFlight(idp, sid)
    page = browser.get(idp.url + "/account")
    r = browser.post(idp.url + ending, data={"csrf_token": csrf_from(page.text)}, allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]

    writer.session["next"] = "/account"
    stepper.step_up()  # a step-up of a session ended meanwhile: it stays ended
    for inflight in (writer, stepper):
        dropped = _session_cookies(inflight.save())
        assert len(dropped) == 1 and dropped[0].startswith(f"{COOKIE}=;") and "1970" in dropped[0], dropped
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0
    _opens_nothing(idp, sid)


def test_sign_out_everywhere_still_drops_the_cookie_of_a_request_in_flight(idp, user):  # noqa: F811
    _ended_by(idp, "/account/sign-out-everywhere", user)


def test_sign_out_still_drops_the_cookie_of_a_request_in_flight(idp, user):  # noqa: F811
    _ended_by(idp, "/account/sign-out", user)


def test_a_sign_out_that_stores_a_message_still_ends_the_session(idp, user):  # noqa: F811
    # the message goes into a new anonymous session: the old one ends all the same, no tombstone under it
    browser, token = _login_page(idp)
    _sign_in(idp, browser, token)
    sid = browser.cookies[COOKIE]
    signing_out, writer = _InFlight(idp, sid), _InFlight(idp, sid)
    signing_out.sign_out("You are signed out.")
    response = signing_out.save()
    (cookie,) = _session_cookies(response)
    assert not cookie.startswith(f"{COOKIE}={sid};") and not cookie.startswith(f"{COOKIE}=;")
    assert idp.db.sessions.find_one({"_id": _key(sid)}) is None

    writer.session["next"] = "/account"
    dropped = _session_cookies(writer.save())
    assert len(dropped) == 1 and dropped[0].startswith(f"{COOKIE}=;"), dropped
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0
    _opens_nothing(idp, sid)


def _signed_out_while_another_tab_steps_up(idp, user, message):  # noqa: F811
    """A sign-out that read the session just before a password change in another tab rotated it: the sign-in
    ends all the same - the session it moved to too (the tombstone's ``next``), whichever cookie the browser
    ends up with."""
    browser, token = _login_page(idp)
    _sign_in(idp, browser, token)
    old = browser.cookies[COOKIE]
    signing_out = _InFlight(idp, old)
    assert signing_out.session["auth"]["uid"] == user["_id"]

    page = browser.get(idp.url + "/account/password")  # another tab: a password change rotates the id
    r = browser.post(idp.url + "/account/password", allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert r.status_code == 302 and browser.cookies[COOKIE] != old, r.text[:300]

    signing_out.sign_out(message)
    signing_out.save()
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0
    r = browser.get(idp.url + "/account", allow_redirects=False)  # the newer cookie opens nothing either
    assert r.status_code == 302 and "/login" in r.headers["Location"], r.status_code
    _opens_nothing(idp, old)


def test_a_sign_out_racing_a_rotation_ends_the_session_it_moved_to(idp, user):  # noqa: F811
    _signed_out_while_another_tab_steps_up(idp, user, None)


def test_a_sign_out_with_a_message_racing_a_rotation_ends_the_session_it_moved_to(idp, user):  # noqa: F811
    _signed_out_while_another_tab_steps_up(idp, user, "You are signed out.")


def test_a_sign_out_of_the_anonymous_session_a_sign_in_was_made_over_ends_nothing(idp, user):  # noqa: F811
    """Whoever holds a session id from before the password step (fixation) and had a sign-out read it then ends
    nothing of the sign-in made over it: only a signed-in session's sign-out follows it to its new id."""
    browser, token = _login_page(idp)
    old = browser.cookies[COOKIE]
    signing_out = _InFlight(idp, old)
    assert "auth" not in signing_out.session
    _sign_in(idp, browser, token)
    signing_out.sign_out()
    signing_out.save()
    assert browser.get(idp.url + "/account", allow_redirects=False).status_code == 200
