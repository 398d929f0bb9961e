"""RFC 9207: the ``iss`` parameter in every authorization response (success and error redirects)."""
from __future__ import annotations

import requests

from .conftest import RP_CALLBACK, RP_LOGGED_OUT, pkce_pair


def test_discovery_advertises_iss_parameter(idp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["authorization_response_iss_parameter_supported"] is True
    from authlib.oauth2 import rfc8414, rfc9207
    rfc8414.AuthorizationServerMetadata(meta).validate(metadata_classes=[rfc9207.AuthorizationServerMetadata])


def test_iss_on_code_response(idp, user, rp):
    res, verifier = rp.sign_in_for_code(state="s1")
    assert res.location.startswith(RP_CALLBACK + "?")
    assert res.params["iss"] == idp.url and res.params["state"] == "s1" and res.params["code"]
    assert rp.redeem(res.params["code"], verifier).status_code == 200
    # again without the consent page (remembered consent): still there, exactly once
    res, _ = rp.sign_in_for_code()
    assert res.params["iss"] == idp.url and res.location.count("iss=") == 1


def test_iss_on_consent_denied(idp, user, rp):
    res = rp.login(rp.follow(rp.authorize_url(state="d1", code_challenge=pkce_pair()[1],
                                              code_challenge_method="S256")))
    res = rp.consent(res, decision="deny")
    assert res.params["error"] == "access_denied" and res.params["state"] == "d1"
    assert res.params["iss"] == idp.url and res.location.count("iss=") == 1


def test_iss_on_error_redirects(idp, user, rp, public_rp):
    cases = [
        (rp, {"response_type": "token"}, "unsupported_response_type"),
        (rp, {"scope": "admin"}, "invalid_scope"),
        (public_rp, {}, "invalid_request"),  # no PKCE
        (rp, {"prompt": "none"}, "login_required"),
        (rp, {"request": "x"}, "request_not_supported"),
    ]
    for client, params, error in cases:
        r = requests.get(client.authorize_url(state="e1", **params), allow_redirects=False)
        assert r.status_code == 302, (params, r.text[:200])
        res = client.follow(client.authorize_url(state="e1", **params))
        assert res.params["error"] == error and res.params["state"] == "e1", params
        assert res.params["iss"] == idp.url and res.location.count("iss=") == 1, params


def test_no_iss_on_error_pages_or_logout(idp, user, rp):
    # an unverified redirect URI gets an error page, never a redirect (with or without iss)
    r = requests.get(rp.authorize_url(redirect_uri="https://evil.example/cb"), allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    # RP-initiated logout is not an authorization response
    tok = rp.tokens()
    res = rp.follow(f"{idp.url}/end-session?id_token_hint={tok['id_token']}"
                    f"&post_logout_redirect_uri={RP_LOGGED_OUT}&state=bye")
    assert res.location == RP_LOGGED_OUT + "?state=bye"
