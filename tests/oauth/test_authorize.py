"""Authorization endpoint: errors at the IdP vs. redirected errors, prompt, max_age, consent."""
from __future__ import annotations

import re

import requests

from .conftest import RP_CALLBACK, age_session, pkce_pair


def test_unknown_client_shows_error_page(idp, rp):
    r = requests.get(rp.authorize_url(client_id="no-such-client"), allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")
    assert "not registered" in r.text


def test_redirect_uri_mismatch_shows_error_page(idp, rp):
    for uri in ("https://evil.example/callback", RP_CALLBACK + "/x", RP_CALLBACK + "?a=1", None):
        r = requests.get(rp.authorize_url(redirect_uri=uri), allow_redirects=False)
        assert r.status_code == 400 and "Location" not in r.headers, uri
        assert r.headers["Content-Type"].startswith("text/html")


def test_errors_redirected_to_client_with_state(idp, rp, public_rp):
    cases = [
        (rp, {"response_type": "token"}, "unsupported_response_type"),
        (rp, {"response_type": "code id_token"}, "unsupported_response_type"),
        (rp, {"scope": "admin"}, "invalid_scope"),
        (rp, {"scope": "profile"}, "invalid_scope"),
        (rp, {"code_challenge": pkce_pair()[1], "code_challenge_method": "plain"}, "invalid_request"),
        (rp, {"code_challenge": pkce_pair()[1]}, "invalid_request"),  # no method = plain
        (public_rp, {}, "invalid_request"),  # public client without PKCE
        (rp, {"prompt": "none login"}, "invalid_request"),
        (rp, {"max_age": "soon"}, "invalid_request"),
        (rp, {"request": "eyJ..."}, "request_not_supported"),
    ]
    for client, params, error in cases:
        res = client.follow(client.authorize_url(state="s-42", **params))
        assert res.location and res.location.startswith(RP_CALLBACK), (params, res.response.text[:300])
        assert res.params["error"] == error, (params, res.params)
        assert res.params["state"] == "s-42"


def test_prompt_none_without_session_is_login_required(idp, rp):
    res = rp.follow(rp.authorize_url(prompt="none", state="x"))
    assert res.location.startswith(RP_CALLBACK + "?")
    assert res.params["error"] == "login_required" and res.params["state"] == "x" and "code" not in res.params
    assert idp.db.sessions.count_documents({}) == 0  # nothing remembered for a silent request


def test_prompt_none_with_session(idp, user, rp):
    rp.tokens()  # signs in and consents
    verifier, challenge = pkce_pair()
    res = rp.follow(rp.authorize_url(prompt="none", code_challenge=challenge, code_challenge_method="S256"))
    assert "code" in res.params
    assert rp.redeem(res.params["code"], verifier).status_code == 200
    # more scopes than consented → consent_required
    res = rp.follow(rp.authorize_url(prompt="none", scope="openid profile email phone"))
    assert res.params["error"] == "consent_required"


def test_prompt_login_forces_password_again(idp, user, rp):
    rp.tokens()  # and at once (usually within the same second as that sign-in): prompt=login
    res = rp.follow(rp.authorize_url(prompt="login"))
    assert res.location is None and "/login" in res.response.url
    res = rp.login(res)  # after the new password step: straight back to the client (consent remembered)
    assert res.location and "code" in res.params


def test_max_age(idp, user, rp):
    first = rp.tokens()
    age_session(idp, 120)
    # still within max_age: no login page
    ok, verifier = rp.sign_in_for_code(max_age="3600")
    assert "code" in ok.params
    # older than max_age: login again, and the ID token's auth_time is fresh
    res = rp.follow(rp.authorize_url(max_age="60"))
    assert "/login" in res.response.url
    verifier, challenge = pkce_pair()
    res = rp.follow(rp.authorize_url(max_age="60", code_challenge=challenge, code_challenge_method="S256"))
    res = rp.login(res)
    tok = rp.redeem(res.params["code"], verifier).json()
    from joserfc import jwt
    from joserfc.jwk import KeySet
    keys = KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json").json())
    claims = jwt.decode(tok["id_token"], keys).claims
    old = jwt.decode(first["id_token"], keys).claims
    assert claims["auth_time"] > old["auth_time"] - 120


def test_consent_deny(idp, user, rp):
    res = rp.follow(rp.authorize_url(state="d1", code_challenge=pkce_pair()[1], code_challenge_method="S256"))
    res = rp.login(res)
    assert "Example RP" in res.response.text and "See your email address" in res.response.text
    res = rp.consent(res, decision="deny")
    assert res.params["error"] == "access_denied" and res.params["state"] == "d1"


def test_consent_post_without_csrf_rejected(idp, user, rp):
    res = rp.login(rp.follow(rp.authorize_url(code_challenge=pkce_pair()[1], code_challenge_method="S256")))
    bad = rp.consent(res, with_csrf=False)
    assert bad.location is None and bad.response.status_code == 400
    assert idp.db.consents.count_documents({}) == 0


def test_consent_remembered_and_revoked_on_connected_apps(idp, user, rp):
    tok = rp.tokens()
    assert idp.db.consents.count_documents({"user_id": user["_id"], "client_id": rp.client_id}) == 1
    # second time: no consent page
    res, _ = rp.sign_in_for_code()
    assert "code" in res.params
    # prompt=consent always asks
    res = rp.follow(rp.authorize_url(prompt="consent"))
    assert '/authorize/consent"' in res.response.text
    # connected apps page lists the client; removing access revokes consent and tokens
    page = rp.browser.get(f"{idp.url}/account/apps")
    assert page.status_code == 200 and "Example RP" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = rp.browser.post(f"{idp.url}/account/apps/{rp.client_id}/remove", data={"csrf_token": token})
    assert r.status_code == 200 and "Example RP" not in r.text
    assert idp.db.consents.count_documents({}) == 0
    assert rp.introspect(tok["access_token"]) == {"active": False}
    assert rp.refresh(tok["refresh_token"]).status_code == 400
    res = rp.follow(rp.authorize_url())
    assert '/authorize/consent"' in res.response.text  # asks again


def test_connected_apps_requires_sign_in(idp, rp):
    r = requests.get(f"{idp.url}/account/apps", allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_skip_consent_first_party(idp, user):
    from .conftest import register_client
    from .conftest import RP
    doc, secret = register_client(idp.db, idp.config, "First party", [RP_CALLBACK], skip_consent=True)
    fp = RP(idp, doc["client_id"], secret)
    res, verifier = fp.sign_in_for_code()
    assert "code" in res.params  # no consent page in between


def test_disabled_client_is_unknown(idp, user, rp):
    from idp.oauth.clients import disable_client
    disable_client(idp.db, rp.client_id)
    r = requests.get(rp.authorize_url(), allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers


def test_login_hint_prefills_login_page(idp, user, rp):
    res = rp.follow(rp.authorize_url(login_hint="alice@example.org"))
    assert 'value="alice@example.org"' in res.response.text


def test_acr_values_kept_in_pending_request(idp, rp):
    # (acr pwd+face is refused on this face-off server: test_core_3_1_2_6_unmet_authentication_requirements)
    res = rp.follow(rp.authorize_url(acr_values="urn:deepauth:acr:pwd urn:deepauth:acr:pwd+otp"))
    assert "/login" in res.response.url
    doc = idp.db.sessions.find_one({"data.authz": {"$exists": True}})
    assert doc["data"]["authz"]["acr_values"] == ["urn:deepauth:acr:pwd", "urn:deepauth:acr:pwd+otp"]
    assert doc["data"]["authz"]["client_id"] == rp.client_id


def test_login_page_after_authorize_does_not_write_the_session_again(idp, user, rp):
    """/authorize creates the session with the pending request and the login form's CSRF token, so
    showing the login page changes nothing (no second session write); the form still works."""
    page = rp.follow(rp.authorize_url())
    assert "/login" in page.response.url and page.response.status_code == 200
    assert "Set-Cookie" not in page.response.headers
    res = rp.login(page)
    assert res.location is not None or '/authorize/consent"' in res.response.text
