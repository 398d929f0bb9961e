"""OpenID Connect Core 1.0 §3.1.3.6 (ID Token of the authorization code flow): ``at_hash`` is the base64url
encoding of the left-most half of the hash of the access token's ASCII octets, with the hash function of the ID
token's ``alg`` (SHA-256 for RS256 and ES256). Computed here from the bytes with hashlib, not with the provider's
or Authlib's helper. The refresh response (§12.2) carries no ID token.
``c_hash`` (§3.3.2.11) exists only in hybrid flows, which the provider does not offer (§3.3 is checked refused)."""
from __future__ import annotations

import base64
import hashlib

import pytest
import requests
from support.oidc import CALLBACK, RelyingParty, verified_jwt


def left_half_hash(value: str, alg: str) -> str:
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_core_3_1_3_6_at_hash_is_the_left_half_of_the_access_token_hash(idp, user, alg):
    rp = RelyingParty.register(idp, idp.db, idp.config, f"{alg} RP", id_token_signed_response_alg=alg)
    tok = rp.tokens(scope="openid profile", nonce="n-0S6_WzA2Mj")
    token = verified_jwt(idp.url, tok["id_token"], [alg])
    assert token.header["alg"] == alg
    assert token.claims["at_hash"] == left_half_hash(tok["access_token"], alg)
    assert len(base64.urlsafe_b64decode(token.claims["at_hash"] + "==")) == 16  # half of SHA-256
    # a different access token has a different at_hash: the claim binds this one
    other = rp.tokens(scope="openid profile")
    assert other["access_token"] != tok["access_token"]
    assert verified_jwt(idp.url, other["id_token"], [alg]).claims["at_hash"] != token.claims["at_hash"]


def test_core_12_2_refresh_response_carries_no_id_token_to_hold_a_stale_at_hash(idp, user, rp):
    """§12.2 lets the refresh response omit the ID token; this provider does, so no ID token ever holds the
    at_hash of an access token other than the one issued with it."""
    tok = rp.tokens(scope="openid offline_access")
    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["access_token"] != tok["access_token"] and "id_token" not in new


def test_core_3_3_no_hybrid_flow_so_no_c_hash(idp, user, rp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["response_types_supported"] == ["code"]
    res = rp.follow(rp.authorize_url(response_type="code id_token", nonce="n"))
    assert res.location and res.location.startswith(CALLBACK), res.response.status_code
    assert res.params["error"] == "unsupported_response_type" and "code" not in res.params
    assert "id_token" not in res.location  # nothing in a fragment either
    tok = rp.tokens(scope="openid", nonce="n")
    assert "c_hash" not in verified_jwt(idp.url, tok["id_token"]).claims
