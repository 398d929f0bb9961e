"""RFC 6749 §4.1.3 / §3.3: a code is redeemed for at most what its client may hold now. When an operator narrows a
client's allowed scopes (it leaked phone numbers, it should no longer keep offline access), a code issued just
before - delivered already, or issued by an instance whose copy of the client was a few seconds old - was redeemed
for the scope it was issued with: the ID token carried the dropped claims (email, phone number), the answer named
the dropped scopes and held a refresh token. Authlib's token generator limits every token by the client's
``get_allowed_scope``; the code grant's own generator did not. The sibling rules for tokens already held and for
refreshes are in test_rfc6749_7_access_after_client_scope_narrowed.py and
test_rfc6749_6_refresh_after_client_scope_narrowed.py."""
from __future__ import annotations

from support.oidc import verified_jwt

SCOPE = "openid profile email phone offline_access"


def test_a_code_issued_before_the_client_lost_scopes_yields_only_the_allowed_ones(idp, user, rp):
    from idp.oauth.clients import update_client
    res, verifier = rp.sign_in_for_code(scope=SCOPE)
    assert res.params.get("code"), res.response.text[:300]
    update_client(idp.db, rp.client_id, scope="openid profile")  # the operator drops email, phone, offline access

    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"].split() == ["openid", "profile"], body
    assert "refresh_token" not in body, body  # OpenID Connect Core 11: none without offline_access
    claims = verified_jwt(idp.url, body["id_token"]).claims
    assert claims["preferred_username"] == "alice"
    assert not {"email", "email_verified", "phone_number", "phone_number_verified"} & set(claims), claims
    family = idp.db.tokens.find_one({"client_id": rp.client_id})
    assert family["scopes"] == ["openid", "profile"] and "refresh_hash" not in family, family


def test_a_code_of_a_client_not_narrowed_yields_its_whole_scope(idp, user, rp):
    res, verifier = rp.sign_in_for_code(scope=SCOPE)
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 200 and r.json()["scope"].split() == SCOPE.split(), r.text
    assert r.json()["refresh_token"]
    claims = verified_jwt(idp.url, r.json()["id_token"]).claims
    assert claims["email"] == "alice@example.org" and claims["phone_number"]
