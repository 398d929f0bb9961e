"""The face step inside real OpenID Connect sign-ins, over HTTP: per-client policy, acr_values, amr/acr
claims in the ID token, enrollment before the sign-in completes, prompt=login re-running both steps."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from idp import get_db

from support.oidc import CALLBACK, RelyingParty, UserAgent
from support.servers import IdPServer

from .conftest import PASSWORD, notice_version

ACR_PWD, ACR_PWD_FACE = "urn:deepauth:acr:pwd", "urn:deepauth:acr:pwd+face"


@pytest.fixture
def live(app):
    """The app over HTTP, its issuer the served URL; yields the base URL."""
    server = IdPServer(app)
    yield server.url
    server.stop()


def face_rp(live, app, face_policy) -> RelyingParty:
    """A confidential client with this face policy; authorization requests carry PKCE, scope openid, a nonce."""
    return RelyingParty.register(live, get_db(app), app.config["IDP"], f"RP {face_policy}", [CALLBACK],
                                 face_policy=face_policy, pkce=True,
                                 defaults={"scope": "openid", "state": "s", "nonce": "n"})


def _code(loc):
    assert loc and loc.startswith(CALLBACK), loc
    return parse_qs(urlsplit(loc).query)["code"][0]


def sign_in(agent: UserAgent, rp: RelyingParty, username: str, face_photos=None) -> dict:
    """A fresh sign-in of ``username`` at ``rp`` through ``agent``: the password, then, with
    ``face_photos``, the face step (which must come); the ID token's claims."""
    page, loc = agent.go(rp.authorize_url())
    page, loc = agent.submit(page, "/login", {"username": username, "password": PASSWORD})
    if face_photos is not None:
        assert loc is None and page.url.endswith("/face/verify")
        result = agent.capture(page, "verify", face_photos)
        page, loc = agent.go(result["redirect"])
    return rp.id_token_claims(_code(loc or agent.consent_and_code(page)))


@pytest.mark.slow
def test_face_required_client_enrolls_then_verifies_and_gets_pwd_face(app, live, new_user, people):
    user = new_user("alice")
    required = face_rp(live, app, "required")
    optional = face_rp(live, app, "optional")
    b = UserAgent(live)

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
    claims = sign_in(UserAgent(live), optional, "alice", people["alice"][5:8])
    assert claims["amr"] == ["pwd", "face"] and claims["acr"] == ACR_PWD_FACE

    # 5. A user who never enrolled: the optional client gets the password alone, amr pwd and acr pwd ...
    new_user("bob")
    d = UserAgent(live)
    claims = sign_in(d, optional, "bob")
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


def _enrolled_during_sign_in(live, rp, people):
    """A browser that started signing in to ``rp`` as alice, gave the password and the biometric consent and
    enrolled her face: ``(browser, the enrollment's answer)``."""
    b = UserAgent(live)
    page, _ = b.go(rp.authorize_url())
    page, _ = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    page, _ = b.submit(page, "/face/consent", {"consent": "yes", "notice_version": notice_version()})
    return b, b.capture(page, "enroll", people["alice"][:5])


def test_failed_face_check_never_reaches_the_client(app, live, new_user, people):
    new_user("alice")
    rp = face_rp(live, app, "required")
    b, enrolled = _enrolled_during_sign_in(live, rp, people)
    assert enrolled["ok"]
    page, _ = b.go("/face/continue")
    result = b.capture(page, "verify", people["mallory"][:3])
    assert result["ok"] is False and "redirect" not in result
    # Going back to the authorization request lands on the face step again, never at the client.
    page, loc = b.go(rp.authorize_url())
    assert loc is None and page.url.endswith("/face/verify")


@pytest.mark.slow
def test_the_enrollment_page_again_after_enrolling_continues_the_sign_in(app, live, new_user, people):
    """The browser's Back button from the recovery codes reloads /face/enroll. With a sign-in pending it
    goes on with that sign-in (the face check, then the client), not to the account's face page, from
    which the face check led to the account and the client's sign-in was dropped."""
    new_user("alice")
    required = face_rp(live, app, "required")
    b, result = _enrolled_during_sign_in(live, required, people)
    assert result["ok"] and result["redirect"] == "/face/enroll/done"
    b.go(result["redirect"])
    page, loc = b.go("/face/enroll")  # Back
    assert page.url.endswith("/face/verify"), page.url
    result = b.capture(page, "verify", people["alice"][5:8])
    assert result["ok"] and "/authorize?" in result["redirect"] and "_rid=" in result["redirect"], result
    page, loc = b.go(result["redirect"])
    claims = required.id_token_claims(_code(b.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "face"]
