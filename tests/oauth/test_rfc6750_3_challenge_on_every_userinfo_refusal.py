"""RFC 6750 §3: when a protected resource request "does not contain an access token that enables access to the
protected resource, the resource server MUST include the HTTP WWW-Authenticate response header field", with the
error code of §3.1 in it. The 401s had it (``test_rfc6750_3_www_authenticate.py``); the userinfo endpoint's other
refusals did not: a token without ``openid`` (403 ``insufficient_scope``, §3.1 "MAY include the scope attribute")
and a token sent two ways at once (400 ``invalid_request``)."""
from __future__ import annotations

import requests

from .test_rfc6750_3_www_authenticate import challenge


def test_rfc6750_3_1_insufficient_scope_at_userinfo_carries_a_bearer_challenge(idp):
    from idp.oauth.clients import create_client
    doc, secret = create_client(idp.db, idp.config, "Batch job", [], scope="openid email",
                                grant_types=["client_credentials"])
    tok = requests.post(f"{idp.url}/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(doc["client_id"], secret)).json()
    for method in ("GET", "POST"):
        r = requests.request(method, f"{idp.url}/oauth/userinfo",
                             headers={"Authorization": f"Bearer {tok['access_token']}"})
        assert r.status_code == 403 and r.json()["error"] == "insufficient_scope", r.text
        scheme, params = challenge(r)
        assert scheme == "bearer" and params["error"] == "insufficient_scope", r.headers["WWW-Authenticate"]
        assert params["scope"] == "openid", r.headers["WWW-Authenticate"]


def test_rfc6750_3_1_token_sent_two_ways_carries_a_bearer_challenge(idp, user, rp):
    tok = rp.tokens(scope="openid")
    r = requests.post(f"{idp.url}/oauth/userinfo", data={"access_token": tok["access_token"]},
                      headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    scheme, params = challenge(r)
    assert scheme == "bearer" and params["error"] == "invalid_request", r.headers["WWW-Authenticate"]
