"""The challenge on every 401. RFC 6750 §3 (bearer-protected resources: userinfo, client registration): a 401
carries ``WWW-Authenticate: Bearer``; §3.1: a request with no bearer token at all (none sent, sent in the query,
or another scheme) gets the challenge *without* an error code, a bad token gets ``error="invalid_token"``.
RFC 6749 §5.2 (token, revocation, introspection): a client that authenticated with the ``Authorization`` header
and failed gets 401 ``invalid_client`` with a challenge for the scheme it used (Basic)."""
from __future__ import annotations

import re

import requests


def challenge(r) -> tuple[str, dict]:
    """(scheme in lower case, auth-params) of the response's WWW-Authenticate header (RFC 7235 §4.1)."""
    header = r.headers.get("WWW-Authenticate")
    assert header, (r.status_code, dict(r.headers))
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'([A-Za-z_]+)="([^"]*)"', rest))


def test_rfc6750_3_1_userinfo_without_a_bearer_token_gets_a_challenge_without_error(idp, user, rp):
    tok = rp.tokens(scope="openid")
    url = f"{idp.url}/oauth/userinfo"
    for how, r in (("nothing", requests.get(url)),
                   ("query", requests.get(url, params={"access_token": tok["access_token"]})),  # §2.3: not read
                   ("basic", requests.get(url, auth=(rp.client_id, rp.secret))),
                   ("empty bearer", requests.get(url, headers={"Authorization": "Bearer "}))):
        assert r.status_code == 401, how
        scheme, params = challenge(r)
        assert scheme == "bearer" and "error" not in params, (how, r.headers["WWW-Authenticate"])


def test_rfc6750_3_1_userinfo_with_a_bad_token_gets_invalid_token(idp, user, rp):
    tok = rp.tokens(scope="openid")
    url = f"{idp.url}/oauth/userinfo"
    assert requests.post(f"{idp.url}/oauth/revoke", data={"token": tok["access_token"]},
                         auth=rp.auth()).status_code == 200
    for method in ("GET", "POST"):
        for token in ("not-a-token", tok["access_token"]):  # unknown, revoked
            r = requests.request(method, url, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and r.json()["error"] == "invalid_token", (method, token)
            scheme, params = challenge(r)
            assert scheme == "bearer" and params["error"] == "invalid_token", r.headers["WWW-Authenticate"]


def test_rfc6750_3_registration_challenges_for_the_initial_access_token(make_server):
    idp = make_server(registration_access_token="initial-access-token-0123456789abcdef")
    url = f"{idp.url}/oauth/register"
    body = {"client_name": "RP", "redirect_uris": ["https://rp.example/callback"]}
    r = requests.post(url, json=body)
    assert r.status_code == 401
    scheme, params = challenge(r)
    assert scheme == "bearer" and "error" not in params, r.headers["WWW-Authenticate"]
    r = requests.post(url, json=body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    scheme, params = challenge(r)
    assert scheme == "bearer" and params["error"] == "invalid_token", r.headers["WWW-Authenticate"]


def test_rfc6749_5_2_invalid_client_with_basic_gets_401_and_a_basic_challenge(idp, user, rp):
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        for auth in ((rp.client_id, "wrong-secret"), ("no-such-client", "x")):
            r = requests.post(f"{idp.url}{path}", auth=auth,
                              data={"grant_type": "authorization_code", "code": "x", "token": "y"})
            assert r.status_code == 401 and r.json()["error"] == "invalid_client", (path, auth, r.text)
            scheme, params = challenge(r)
            assert scheme == "basic" and params["error"] == "invalid_client", r.headers["WWW-Authenticate"]
            assert "access_token" not in r.text and "active" not in r.text
