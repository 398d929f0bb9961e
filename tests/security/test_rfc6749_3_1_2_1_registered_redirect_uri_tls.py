"""RFC 6749 §3.1.2.1 / RFC 9700 §2.6: authorization responses (the code, and with form_post the whole response)
travel to the redirect URI, so a client that registers itself (RFC 7591) may register only https redirect URIs,
or http ones on a loopback address (RFC 8252 §7.3, native apps). Before, anyone holding the initial access
token could register ``http://rp.example/cb`` and have every code of its users sent in the clear.
The rule holds whatever the issuer: an http issuer (development, loopback only) sets ``AUTHLIB_INSECURE_TRANSPORT``,
which turns Authlib's transport checks off, and the registration check was Authlib's, so there any http redirect URI
was accepted; it is now the project's own (``clients.tls_or_loopback``). Each test runs with the variable unset
(an https issuer) and set (an http one)."""
from __future__ import annotations

import pytest
import requests

from oauth.conftest import cheap_password_hashing, make_server  # noqa: F401

TOKEN = "initial-access-token-0123456789abcdef"


@pytest.fixture(params=["https issuer", "http issuer"])
def register(make_server, monkeypatch, request):
    idp = make_server(registration_access_token=TOKEN)  # http://127.0.0.1:<port>: sets AUTHLIB_INSECURE_TRANSPORT
    if request.param == "http issuer":
        monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    else:
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


def test_public_client_http_post_logout_uri_is_refused(register):
    r = register({"redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "none",
                  "post_logout_redirect_uris": ["http://rp.example/"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", r.text
    assert register.idp.db.clients.count_documents({}) == 0
