"""RFC 7009 §2.1 (revocation) and RFC 7662 §2.1 (introspection) requests, read as strictly as the token
endpoint's (RFC 6749 §3.2: parameters "MUST NOT be included more than once").

A relying party that sends ``token`` twice (a buggy client library, a form built by hand) was answered 200 for
the first value alone: for a revocation, "revoked" while the token it meant stayed valid (the client believes
it signed the user out of its resources; nothing ended), for an introspection ``active: false`` for a live
token. Such a request is now refused as a whole (400 ``invalid_request``), nothing revoked. An unknown
``token_type_hint`` was ``unsupported_token_type`` with status 401 and no ``WWW-Authenticate`` (Authlib's
error class is a 401), telling a client whose credentials were right that they were not; it is a 400 (RFC 7009
§2.2.1, RFC 6749 §5.2). Real server over HTTP, real database."""
from __future__ import annotations

import pytest
import requests


def _userinfo(idp, access_token: str) -> int:
    return requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


@pytest.mark.parametrize("endpoint", ["revoke", "introspect"])
@pytest.mark.parametrize("repeated", ["token", "token_type_hint"])
def test_a_repeated_parameter_is_refused_and_nothing_is_revoked(idp, user, rp, endpoint, repeated):
    tokens = rp.tokens()
    access = tokens["access_token"]
    body = {"token": [access + "x", access], "token_type_hint": ["access_token"]}
    if repeated == "token_type_hint":
        body = {"token": [access], "token_type_hint": ["refresh_token", "access_token"]}
    form = [(name, value) for name, values in body.items() for value in values]
    r = requests.post(f"{idp.url}/oauth/{endpoint}", data=form, auth=rp.auth())
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert _userinfo(idp, access) == 200  # the token the client meant is untouched: nothing was done
    # the same parameter once in the query and once in the body counts twice, as at the token endpoint
    r = requests.post(f"{idp.url}/oauth/{endpoint}", params={"token": access}, data={"token": access}, auth=rp.auth())
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    # the well-formed request still works
    r = requests.post(f"{idp.url}/oauth/{endpoint}", data={"token": access}, auth=rp.auth())
    assert r.status_code == 200, r.text
    if endpoint == "revoke":
        assert _userinfo(idp, access) == 401


@pytest.mark.parametrize("endpoint", ["revoke", "introspect"])
def test_an_unknown_token_type_hint_is_a_400_not_a_401(idp, user, rp, endpoint):
    access = rp.tokens()["access_token"]
    r = requests.post(f"{idp.url}/oauth/{endpoint}", data={"token": access, "token_type_hint": "id_token"},
                      auth=rp.auth())
    assert r.status_code == 400 and r.json()["error"] == "unsupported_token_type", (r.status_code, r.text)
    assert _userinfo(idp, access) == 200
