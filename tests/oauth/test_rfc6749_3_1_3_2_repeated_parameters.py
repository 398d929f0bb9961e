"""RFC 6749 §3.1 (authorization endpoint) and §3.2 (token endpoint): "Request and response parameters MUST NOT
be included more than once." A request repeating any parameter is refused as a whole: at the authorization
endpoint with an error page at the provider (no redirect: which ``redirect_uri`` or ``state`` to trust is
exactly what is ambiguous), at the token endpoint with 400 ``invalid_request`` (§5.2) — and in both cases
nothing is issued or consumed: the well-formed request that follows still works."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
from support.oidc import CALLBACK, pkce_pair

AUTHORIZE_PARAMS = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                    "code_challenge_method", "prompt", "max_age", "acr_values", "response_mode"]


def _authorize_query(rp, repeat: str) -> str:
    _, challenge = pkce_pair()
    params = [("response_type", "code"), ("client_id", rp.client_id), ("redirect_uri", CALLBACK),
              ("scope", "openid profile"), ("state", "s1"), ("nonce", "n1"), ("code_challenge", challenge),
              ("code_challenge_method", "S256"), ("prompt", "login"), ("max_age", "600"),
              ("acr_values", "urn:deepauth:acr:pwd"), ("response_mode", "query")]
    value = dict(params)[repeat]
    return urlencode([*params, (repeat, value if repeat in ("client_id", "response_type") else value + "x")])


def test_rfc6749_3_1_repeated_authorization_parameter_is_refused(idp, user, rp):
    # Signed in already, so a request that were accepted would go straight to a code.
    rp.tokens(scope="openid profile")
    for param in AUTHORIZE_PARAMS:  # one provider and sign-in for all: each refusal leaves nothing behind
        res = rp.follow(f"{idp.url}/authorize?{_authorize_query(rp, param)}")
        assert res.location is None, (param, res.location)  # no redirect to the client, with or without a code
        assert res.response.status_code == 400 and param in res.response.text, (param, res.response.text[:300])
        assert idp.db.auth_codes.count_documents({}) == 1, param  # only the one of the sign-in above


@pytest.mark.parametrize("param", ["response_type", "redirect_uri", "state"])
def test_rfc6749_3_1_repeated_parameter_posted_to_the_authorization_endpoint_is_refused(idp, user, rp, param):
    r = rp.browser.post(f"{idp.url}/authorize", data=_authorize_query(rp, param),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400, r.status_code
    assert all(not h.headers.get("Location", "").startswith(CALLBACK) for h in r.history)
    assert r.url.startswith(f"{idp.url}/authorize") and param in r.text


TOKEN_PARAMS = ["grant_type", "code", "redirect_uri", "code_verifier", "client_id"]


def test_rfc6749_3_2_repeated_token_parameter_is_invalid_request(idp, user, public_rp):
    for param in TOKEN_PARAMS:
        res, verifier = public_rp.sign_in_for_code()
        code = res.params["code"]
        fields = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK),
                  ("code_verifier", verifier), ("client_id", public_rp.client_id)]
        body = urlencode([*fields, (param, dict(fields)[param])])  # even the same value twice
        r = requests.post(f"{idp.url}/oauth/token", data=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", (param, r.text)
        assert "access_token" not in r.text, param
        # the code was not consumed by the refused request
        ok = public_rp.redeem(code, verifier)
        assert ok.status_code == 200 and ok.json()["access_token"], (param, ok.text)


def test_rfc6749_3_2_repeated_refresh_token_is_invalid_request(idp, user, rp):
    tok = rp.tokens(scope="openid offline_access")
    body = urlencode([("grant_type", "refresh_token"), ("refresh_token", tok["refresh_token"]),
                      ("refresh_token", tok["refresh_token"])])
    r = requests.post(f"{idp.url}/oauth/token", data=body, auth=rp.auth(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    # nothing rotated: the refresh token still works, once
    assert rp.refresh(tok["refresh_token"]).status_code == 200


def test_rfc6749_3_2_parameter_in_both_query_and_body_is_invalid_request(idp, user, rp):
    res, verifier = rp.sign_in_for_code()
    code = res.params["code"]
    r = requests.post(f"{idp.url}/oauth/token?code={code}", auth=rp.auth(), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert rp.redeem(code, verifier).status_code == 200


def test_rfc6749_3_2_any_repeated_name_is_invalid_request_not_an_error(idp, rp):
    for name in ("\x1f", "é", "a b", "x" * 300):
        r = requests.post(f"{idp.url}/oauth/token?{urlencode({name: '1'})}", auth=rp.auth(),
                          data={"grant_type": "client_credentials", name: "2"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", (name, r.text)


@pytest.mark.parametrize("endpoint", ["token", "revoke", "introspect"])
def test_the_repeat_check_takes_linear_time_in_the_number_of_parameters(idp, endpoint):
    """The repeat check runs first, before any client authentication: anyone may send it a body of many
    distinct parameter names (30,000 here, 0.2 MB: within ``IDP_MAX_FORM_BYTES``). Each name was counted
    over the whole list, quadratic: about 30 s of a worker's CPU with the GIL held for this request (minutes for
    a 2 MB body), for no credentials at all. It must be answered at once, as any repeated parameter is."""
    import time

    body = "&".join(f"p{i}=" for i in range(30000)) + "&token=a&token=b"
    started = time.monotonic()
    r = requests.post(f"{idp.url}/oauth/{endpoint}", data=body, timeout=15,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    elapsed = time.monotonic() - started
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text[:300]
    assert elapsed < 5, elapsed
