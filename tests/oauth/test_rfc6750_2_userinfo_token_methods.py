"""RFC 6750 2 / OpenID Connect Core 5.3.1: userinfo by GET and POST, the access token in the
Authorization header (2.1) or in a form-encoded POST body (2.2); never from the query (2.3, tokens in URLs
leak into logs); two methods at once are refused."""
from __future__ import annotations

import requests


def test_userinfo_token_in_header_or_form_body(idp, user, rp):
    tok = rp.tokens(scope="openid profile")
    url = f"{idp.url}/oauth/userinfo"
    for r in (requests.get(url, headers={"Authorization": f"Bearer {tok['access_token']}"}),
              requests.post(url, headers={"Authorization": f"Bearer {tok['access_token']}"}),
              requests.post(url, data={"access_token": tok["access_token"]})):
        assert r.status_code == 200, r.text
        assert r.json()["sub"] == user["_id"] and r.json()["preferred_username"] == "alice"


def test_bad_or_doubled_tokens_refused(idp, user, rp):
    tok = rp.tokens(scope="openid profile")
    url = f"{idp.url}/oauth/userinfo"
    assert requests.post(url, data={"access_token": "nope"}).status_code == 401
    r = requests.post(url, data={"access_token": tok["access_token"]},
                      headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # the query is not a place for tokens
    assert requests.get(url, params={"access_token": tok["access_token"]}).status_code == 401
