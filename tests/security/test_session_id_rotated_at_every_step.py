"""Session fixation: the session id changes whenever what the session has proven changes - the password
(a new sign-in), the face step and a recovery code (both raise the session's authentication level) - in one
place, ``idp.signin.complete_step``. An id known from before a step (planted, or read off the browser then)
opens nothing afterwards; the browser itself carries on with the new id, and the authorization request it is
signing in for stays pending and is answered (the face step ends in a JSON call of the capture page whose
response sets the new cookie; the page then navigates with it)."""
from __future__ import annotations

import hashlib
import re

import requests

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import PASSWORD, UserAgent, _code, face_rp

COOKIE = "deepauth_session"


def _sid(agent: UserAgent) -> str:
    value = agent.s.cookies.get(COOKIE)
    assert value, "no session cookie"
    return value


def _opens_nothing(live: str, app, sid: str) -> None:
    """The old id: no session data stored under it (at most the short-lived mark that it was rotated away), and
    a browser holding only it is not signed in."""
    doc = get_db(app).sessions.find_one({"_id": hashlib.sha256(sid.encode()).hexdigest()})
    assert doc is None or set(doc) <= {"_id", "rotated", "next", "expires"}, doc
    stale = requests.Session()
    stale.cookies.set(COOKIE, sid)
    r = stale.get(live + "/account", allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"], (r.status_code, r.headers.get("Location"))


def _pending_rid(app, sid: str) -> str:
    doc = get_db(app).sessions.find_one({"_id": hashlib.sha256(sid.encode()).hexdigest()})
    return doc["data"]["authz"]["rid"]


def test_face_step_rotates_the_session_id_and_the_request_is_answered(app, live, enrolled, people):
    required = face_rp(live, app, "required")
    b = UserAgent(live)
    page, _ = b.go(required.authorize_url())
    before_password = _sid(b)
    page, loc = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert loc is None and page.url.endswith("/face/verify")
    after_password = _sid(b)
    assert after_password != before_password
    _opens_nothing(live, app, before_password)
    rid = _pending_rid(app, after_password)

    result = b.capture(page, "verify", people["alice"][5:8])  # the finish call's response sets the new cookie
    assert result["ok"], result
    after_face = _sid(b)
    assert after_face != after_password
    _opens_nothing(live, app, after_password)
    assert _pending_rid(app, after_face) == rid  # the same authorization request, still pending

    page, loc = b.go(result["redirect"])
    claims = required.id_token_claims(_code(loc or b.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "face"] and claims["sub"] == enrolled[0]["_id"]


def test_recovery_code_rotates_the_session_id(app, live, enrolled, people):
    user, owner = enrolled
    code = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", owner.get("/face/enroll/done").text)[0]
    optional = face_rp(live, app, "optional")
    b = UserAgent(live)
    page, _ = b.go(optional.authorize_url())
    page, loc = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert loc is None and page.url.endswith("/face/verify")  # enrolled: the face step applies
    after_password = _sid(b)
    rid = _pending_rid(app, after_password)

    page, _ = b.go("/face/recover")
    page, _ = b.submit(page, "/face/recover", {"code": code})
    assert page.url.endswith("/face/enroll"), page.url
    after_code = _sid(b)
    assert after_code != after_password
    _opens_nothing(live, app, after_password)
    assert _pending_rid(app, after_code) == rid
    doc = get_db(app).sessions.find_one({"_id": hashlib.sha256(after_code.encode()).hexdigest()})
    assert doc["data"]["auth"]["amr"] == ["pwd", "otp"] and doc["data"]["auth"]["uid"] == user["_id"]
