"""RFC 8414 §3: an authorization server that publishes metadata makes it available at its issuer with the
well-known suffix ``/.well-known/oauth-authorization-server`` (the default for OAuth clients; OpenID Connect's
``openid-configuration`` is the suffix of one application of it). An OAuth client that reads only RFC 8414
metadata (RFC 9207's ``authorization_response_iss_parameter_supported`` is defined there) found a 404. Both
documents are the same one: one list of what is supported."""
from __future__ import annotations

import requests


def test_rfc8414_3_metadata_at_the_oauth_well_known_uri(idp):
    r = requests.get(f"{idp.url}/.well-known/oauth-authorization-server")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("Access-Control-Allow-Origin") == "*"  # browser-based clients read it too
    meta = r.json()
    # §3.3: the issuer in the document is the one the URL was built from
    assert meta["issuer"] == idp.url
    assert meta == requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    from authlib.oauth2 import rfc8414, rfc9207
    rfc8414.AuthorizationServerMetadata(meta).validate(metadata_classes=[rfc9207.AuthorizationServerMetadata])
