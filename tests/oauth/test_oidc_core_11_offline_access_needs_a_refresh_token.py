"""OpenID Connect Core 11: offline_access is access while the user is away, given as a refresh token. A client
registered with the scope offline_access but without the refresh_token grant (``idp clients create --no-refresh``,
the admin form, or RFC 7591 ``grant_types: ["authorization_code"]``) got no refresh token, yet its grant was stored
with offline_access, so a sign-out (``tokens.end_session_grants``) kept its access token alive after the sign-in
ended and after the app was told so (found by a red team). Such a client is not given offline_access
(``clients.allowed_scope``): its grant is an online one and ends with the sign-in."""
from __future__ import annotations

import requests

from .conftest import RP, register_client


def _userinfo(idp, at):
    return requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {at}"}).status_code


def test_access_token_of_a_grant_without_refresh_token_ends_with_the_sign_in(idp, user):
    doc, secret = register_client(idp.db, idp.config, "No refresh grant", scope="openid profile offline_access",
                                  grant_types=["authorization_code"])
    rp = RP(idp, doc["client_id"], secret)
    tok = rp.tokens(scope="openid profile offline_access")
    assert "refresh_token" not in tok and "offline_access" not in tok["scope"].split(), tok
    assert _userinfo(idp, tok["access_token"]) == 200
    rp.sign_out_at_idp()
    assert _userinfo(idp, tok["access_token"]) == 401


def test_a_self_registered_client_without_the_refresh_grant_gets_an_online_grant(make_server, user):
    """RFC 7591: grant_types [authorization_code] with scope offline_access: the same."""
    token = "initial-access-token-0123456789abcdef"
    idp = make_server(registration_access_token=token)
    r = requests.post(f"{idp.url}/oauth/register", headers={"Authorization": f"Bearer {token}"},
                      json={"client_name": "Self", "redirect_uris": ["https://rp.example/callback"],
                            "grant_types": ["authorization_code"], "scope": "openid profile offline_access"})
    assert r.status_code == 201, r.text
    reg = r.json()
    from idp.oauth.clients import update_client
    update_client(idp.db, reg["client_id"], face_policy="optional")  # (face sign-in is off on this test server)
    rp = RP(idp, reg["client_id"], reg["client_secret"])
    tok = rp.tokens(scope="openid profile offline_access")
    assert "refresh_token" not in tok
    rp.sign_out_at_idp()
    assert _userinfo(idp, tok["access_token"]) == 401
