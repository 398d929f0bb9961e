"""RFC 6749 §3.1.2.1 / RFC 9700 §2.6: authorization responses (the code, and with form_post the whole response)
travel to the redirect URI, so a client that registers itself (RFC 7591) may register only https redirect URIs,
or http ones on a loopback address (RFC 8252 §7.3, native apps). Before, anyone holding the initial access
token could register ``http://rp.example/cb`` and have every code of its users sent in the clear.
An http issuer (development) relaxes the rule, as Authlib does for every transport check
(``AUTHLIB_INSECURE_TRANSPORT``); these tests check the production case."""
from __future__ import annotations

import pytest
import requests

from oauth.conftest import cheap_password_hashing, make_server  # noqa: F401

TOKEN = "initial-access-token-0123456789abcdef"


@pytest.fixture
def register(make_server, monkeypatch):
    idp = make_server(registration_access_token=TOKEN)
    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)

    def post(body):
        return requests.post(f"{idp.url}/oauth/register", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    post.idp = idp
    return post


@pytest.mark.parametrize("method", ["client_secret_basic", "none"])
@pytest.mark.parametrize("uri", ["http://rp.example/cb", "http://10.0.0.5/cb", "http://rp.example:443/cb",
                                 "HTTP://rp.example/cb"])
def test_plain_http_redirect_uri_is_refused(register, uri, method):
    r = register({"redirect_uris": ["https://rp.example/cb", uri], "token_endpoint_auth_method": method})
    assert r.status_code == 400 and r.json()["error"] == "invalid_redirect_uri", r.text
    assert register.idp.db.clients.count_documents({}) == 0


@pytest.mark.parametrize("uri", ["https://rp.example/cb", "http://127.0.0.1:8400/cb", "http://[::1]:8400/cb",
                                 "http://localhost:8400/cb"])
def test_https_and_loopback_redirect_uris_are_registered(register, uri):
    r = register({"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert r.status_code == 201, r.text
    assert register.idp.db.clients.find_one({"_id": r.json()["client_id"]})["redirect_uris"] == [uri]
