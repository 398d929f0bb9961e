"""RFC 6749 §4.1.2.1 and §5.2: a request "missing a required parameter" is ``invalid_request``. A request with no
``response_type`` at all was answered ``unsupported_response_type`` and a token request with no ``grant_type``
``unsupported_grant_type`` (Authlib's "no grant matched"), which tell a client that the value it sent is not
supported, when it sent none. Unsupported values keep their own codes."""
from __future__ import annotations

import requests

from .conftest import RP_CALLBACK


def test_rfc6749_4_1_2_1_no_response_type_is_invalid_request(idp, rp):
    res = rp.follow(rp.authorize_url(response_type=None, state="m1"))
    assert res.location and res.location.startswith(RP_CALLBACK + "?"), res.response.text[:300]
    assert res.params["error"] == "invalid_request" and res.params["state"] == "m1", res.params
    assert res.params["iss"] == idp.url
    # an unsupported one is still unsupported_response_type
    res = rp.follow(rp.authorize_url(response_type="token", state="m2"))
    assert res.params["error"] == "unsupported_response_type" and res.params["state"] == "m2", res.params
    # no client to send it to: a page, as before
    r = requests.get(rp.authorize_url(response_type=None, client_id="no-such-client"), allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers


def test_rfc6749_5_2_no_grant_type_is_invalid_request(idp, rp):
    r = rp.token(code="x", redirect_uri=RP_CALLBACK)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert r.headers["Cache-Control"] == "no-store"
    r = rp.token(grant_type="password", username="alice", password="x")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type", r.text
