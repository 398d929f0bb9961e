"""OpenID Connect Core 3.1.2.1: the authorization endpoint accepts POST (form-encoded) as well as GET; the
POST is answered with a 303 to the same request as a GET (no session touched), so the flow continues with
the browser's own session."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from .conftest import RP_CALLBACK, pkce_pair


def test_post_authorize_runs_the_same_flow(idp, user, rp):
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": RP_CALLBACK,
              "scope": "openid profile", "state": "post-state", "code_challenge": challenge,
              "code_challenge_method": "S256", "nonce": "n1"}
    r = rp.browser.post(f"{idp.url}/authorize", data=params, allow_redirects=False)
    assert r.status_code == 303
    assert "Set-Cookie" not in r.headers
    loc = r.headers["Location"]
    assert {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()} == params
    res = rp.follow(idp.url + loc if loc.startswith("/") else loc)
    res = rp.login(res)
    if res.location is None:
        res = rp.consent(res)
    assert res.location.startswith(RP_CALLBACK) and res.params["state"] == "post-state"
    assert rp.redeem(res.params["code"], verifier).status_code == 200


def test_post_authorize_needs_a_form_body(idp, rp):
    import requests
    r = requests.post(f"{idp.url}/authorize", json={"client_id": rp.client_id}, allow_redirects=False)
    assert r.status_code == 400
    r = requests.post(f"{idp.url}/authorize", data=urlencode({"state": "x" * 9000}),
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, allow_redirects=False)
    assert r.status_code == 400
