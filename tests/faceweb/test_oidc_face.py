"""The face step inside real OpenID Connect sign-ins, over HTTP: per-client policy, acr_values, amr/acr
claims in the ID token, enrollment before the sign-in completes, prompt=login re-running both steps."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from idp import get_db

from .conftest import CSRF_INPUT, CSRF_META, PASSWORD, notice_version

CALLBACK = "https://rp.example/callback"
ACR_PWD, ACR_PWD_FACE = "urn:deepauth:acr:pwd", "urn:deepauth:acr:pwd+face"


@pytest.fixture
def live(app):
    from werkzeug.serving import make_server
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{httpd.server_port}"
    app.config["IDP"].issuer = url
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield url
    httpd.shutdown()
    thread.join(5)


class RelyingParty:
    def __init__(self, url, app, face_policy):
        from idp.oauth.clients import create_client
        doc, self.secret = create_client(get_db(app), app.config["IDP"], f"RP {face_policy}", [CALLBACK],
                                         face_policy=face_policy)
        self.client_id, self.url = doc["client_id"], url

    def authorize_url(self, **extra):
        self.verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": CALLBACK,
                  "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
                  "code_challenge_method": "S256", **extra}
        return f"{self.url}/authorize?{urlencode(params)}"

    def id_token_claims(self, code):
        r = requests.post(f"{self.url}/oauth/token", auth=(self.client_id, self.secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "code_verifier": self.verifier})
        assert r.status_code == 200, r.text
        payload = r.json()["id_token"].split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class HttpBrowser:
    """A user agent over real HTTP that does what the pages and face-capture.js do."""

    def __init__(self, url):
        self.url = url
        self.s = requests.Session()
        self.s.headers["User-Agent"] = "Mozilla/5.0 (faceweb http tests)"

    def go(self, url, method="GET", data=None):
        """Follow redirects inside the IdP; returns (final response, redirect leaving the IdP or None)."""
        url = url if url.startswith("http") else self.url + url
        resp = self.s.request(method, url, data=data, allow_redirects=False)
        while resp.status_code in (301, 302, 303):
            loc = resp.headers["Location"]
            loc = self.url + loc if loc.startswith("/") else loc
            if not loc.startswith(self.url):
                return resp, loc
            resp = self.s.get(loc, allow_redirects=False)
        return resp, None

    def submit(self, resp, action, data):
        token = CSRF_INPUT.search(resp.text).group(1)
        return self.go(action, "POST", {"csrf_token": token, **data})

    def capture(self, page, purpose, images):
        """On a capture page: start, frames until done, finish; returns the finish JSON."""
        assert f'data-purpose="{purpose}"' in page.text
        headers = {"X-CSRFToken": CSRF_META.search(page.text).group(1), "Accept": "application/json"}
        start = re.search(r'data-start-url="([^"]+)"', page.text).group(1)
        r = self.s.post(self.url + start, json={}, headers=headers)
        assert r.status_code == 201, r.text
        cap = r.json()
        for image in images:
            body = self.s.post(self.url + cap["frames_url"], data=image, headers={
                **headers, "Content-Type": "image/jpeg", "X-Capture-Nonce": cap["nonce"]}).json()
            if body["done"]:
                break
        return self.s.post(self.url + cap["finish_url"], headers={**headers, "X-Capture-Nonce": cap["nonce"]}).json()

    def consent_and_code(self, resp):
        if resp.headers.get("Location") is None and '/authorize/consent"' in resp.text:
            rid = re.search(r'name="rid" value="([^"]+)"', resp.text).group(1)
            resp, loc = self.submit(resp, "/authorize/consent", {"rid": rid, "decision": "allow"})
        else:
            loc = None
        return loc


def _code(loc):
    assert loc and loc.startswith(CALLBACK), loc
    return parse_qs(urlsplit(loc).query)["code"][0]


def test_face_required_client_enrolls_then_verifies_and_gets_pwd_face(app, live, new_user, people):
    user = new_user("alice")
    required = RelyingParty(live, app, "required")
    optional = RelyingParty(live, app, "optional")
    b = HttpBrowser(live)

    # 1. A face-required client, a user without a template: password → enrollment → face check → consent.
    page, loc = b.go(required.authorize_url())
    assert page.url.endswith("/login")
    page, loc = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert page.url.endswith("/face/enroll") and 'id="consent-checkbox"' in page.text
    assert "Not now" not in page.text  # the client requires face: no skipping
    page, loc = b.submit(page, "/face/consent", {"consent": "yes", "notice_version": notice_version()})
    assert page.url.endswith("/face/enroll")
    result = b.capture(page, "enroll", people["alice"][:5])
    assert result["ok"] and result["redirect"] == "/face/enroll/done"
    page, _ = b.go(result["redirect"])
    assert len(re.findall(r"<li><code>", page.text)) == 10
    # Enrollment alone is not a face verification: the face step comes next.
    page, loc = b.go("/face/continue")
    assert page.url.endswith("/face/verify")
    result = b.capture(page, "verify", people["alice"][5:8])
    assert result["ok"] and "/authorize?" in result["redirect"] and "_rid=" in result["redirect"]
    page, loc = b.go(result["redirect"])
    claims = required.id_token_claims(_code(b.consent_and_code(page)))
    assert claims["sub"] == user["_id"] and claims["amr"] == ["pwd", "face"] and claims["acr"] == ACR_PWD_FACE

    # 2. Same session, face-optional client: already signed in with both factors.
    page, loc = b.go(optional.authorize_url())
    claims = optional.id_token_claims(_code(loc or b.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "face"]

    # 3. prompt=login: a fresh password clears amr, so the face step runs again.
    page, loc = b.go(required.authorize_url(prompt="login"))
    page, loc = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert page.url.endswith("/face/verify")
    result = b.capture(page, "verify", people["alice"][5:8])
    page, loc = b.go(result["redirect"])
    claims = required.id_token_claims(_code(loc or b.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "face"] and claims["acr"] == ACR_PWD_FACE

    # 4. A new browser with the optional client: alice enrolled (opted in), so she gets the face step too.
    c = HttpBrowser(live)
    page, loc = c.go(optional.authorize_url())
    page, loc = c.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert loc is None and page.url.endswith("/face/verify")
    result = c.capture(page, "verify", people["alice"][5:8])
    page, loc = c.go(result["redirect"])
    claims = optional.id_token_claims(_code(loc or c.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "face"] and claims["acr"] == ACR_PWD_FACE

    # 5. A user who never enrolled: the optional client gets the password alone, amr pwd and acr pwd ...
    new_user("bob")
    d = HttpBrowser(live)
    page, loc = d.go(optional.authorize_url())
    page, loc = d.submit(page, "/login", {"username": "bob", "password": PASSWORD})
    claims = optional.id_token_claims(_code(loc or d.consent_and_code(page)))
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_PWD
    # ... and a step-up (acr_values pwd+face) runs enrollment and the face step in the same session.
    page, loc = d.go(optional.authorize_url(acr_values=ACR_PWD_FACE))
    assert page.url.endswith("/face/enroll")
    page, _ = d.submit(page, "/face/consent", {"consent": "yes", "notice_version": notice_version()})
    assert d.capture(page, "enroll", people["mallory"][:5])["ok"]
    page, loc = d.go("/face/continue")
    assert page.url.endswith("/face/verify")
    result = d.capture(page, "verify", people["mallory"][5:8])
    page, loc = d.go(result["redirect"])
    claims = optional.id_token_claims(_code(loc or d.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "face"] and claims["acr"] == ACR_PWD_FACE

    # The verifications were audited with the client they were for.
    verifies = list(get_db(app).audit_log.find({"event": "face.verify", "decision": "match"}))
    assert {e["client_id"] for e in verifies} == {required.client_id, optional.client_id}


def test_failed_face_check_never_reaches_the_client(app, live, new_user, people):
    new_user("alice")
    rp = RelyingParty(live, app, "required")
    b = HttpBrowser(live)
    page, _ = b.go(rp.authorize_url())
    page, _ = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    page, _ = b.submit(page, "/face/consent", {"consent": "yes", "notice_version": notice_version()})
    assert b.capture(page, "enroll", people["alice"][:5])["ok"]
    page, _ = b.go("/face/continue")
    result = b.capture(page, "verify", people["mallory"][:3])
    assert result["ok"] is False and "redirect" not in result
    # Going back to the authorization request lands on the face step again, never at the client.
    page, loc = b.go(rp.authorize_url())
    assert loc is None and page.url.endswith("/face/verify")
