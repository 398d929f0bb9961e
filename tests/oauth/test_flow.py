"""The whole OpenID Connect code flow over real HTTP, driven by requests + joserfc (not Authlib)."""
from __future__ import annotations

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import RP_CALLBACK, RP_LOGGED_OUT


def verify_id_token(idp, id_token: str) -> dict:
    jwks = requests.get(f"{idp.url}/jwks.json").json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    return token.header, dict(token.claims)


def test_full_flow(idp, user, rp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["issuer"] == idp.url
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_endpoint"] == f"{idp.url}/authorize"
    assert "registration_endpoint" not in meta  # off by default

    nonce = "n-0S6_WzA2Mj"
    res, verifier = rp.sign_in_for_code(nonce=nonce, state="st-123", login_hint="alice",
                                        scope="openid profile email phone offline_access")
    assert res.location.startswith(RP_CALLBACK + "?")
    assert res.params["state"] == "st-123"
    code = res.params["code"]

    r = requests.post(meta["token_endpoint"], auth=(rp.client_id, rp.secret),
                      data={"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK,
                            "code_verifier": verifier})
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["refresh_token"] and tok["access_token"]

    header, claims = verify_id_token(idp, tok["id_token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == idp.url
    assert claims["aud"] == rp.client_id
    assert claims["nonce"] == nonce
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "urn:deepauth:acr:pwd"
    assert claims["sub"] == user["_id"] and claims["sub"] != "alice"
    assert isinstance(claims["auth_time"], int) and claims["iat"] >= claims["auth_time"]
    assert claims["exp"] > claims["iat"]
    assert claims["email"] == "alice@example.org"

    # userinfo, GET and POST
    info = requests.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {tok['access_token']}"}).json()
    assert info["sub"] == user["_id"]
    assert info["name"] == "Alice Liddell" and info["preferred_username"] == "alice"
    assert info["email"] == "alice@example.org" and info["email_verified"] is False
    assert info["phone_number"] == "+44 20 7946 0000"
    info2 = requests.post(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert info2.status_code == 200 and info2.json()["sub"] == user["_id"]
    assert requests.get(meta["userinfo_endpoint"], headers={"Authorization": "Bearer nope"}).status_code == 401

    # refresh with rotation
    r2 = rp.refresh(tok["refresh_token"])
    assert r2.status_code == 200, r2.text
    tok2 = r2.json()
    assert tok2["refresh_token"] != tok["refresh_token"] and tok2["access_token"] != tok["access_token"]
    assert rp.introspect(tok2["access_token"])["active"] is True
    intro = rp.introspect(tok2["refresh_token"])
    assert intro["active"] is True and intro["sub"] == user["_id"] and intro["client_id"] == rp.client_id

    # revoke → inactive everywhere
    rv = requests.post(meta["revocation_endpoint"], data={"token": tok2["refresh_token"],
                                                          "token_type_hint": "refresh_token"},
                       auth=(rp.client_id, rp.secret))
    assert rv.status_code == 200
    assert rp.introspect(tok2["access_token"]) == {"active": False}
    assert rp.introspect(tok2["refresh_token"]) == {"active": False}
    assert rp.refresh(tok2["refresh_token"]).json()["error"] == "invalid_grant"
    assert requests.get(meta["userinfo_endpoint"],
                        headers={"Authorization": f"Bearer {tok2['access_token']}"}).status_code == 401

    # RP-initiated logout with a valid id_token_hint: no confirmation, exact post-logout redirect with state
    res = rp.follow(f"{meta['end_session_endpoint']}?id_token_hint={tok['id_token']}"
                    f"&post_logout_redirect_uri={RP_LOGGED_OUT}&state=bye")
    assert res.location == RP_LOGGED_OUT + "?state=bye"
    # the session is gone: a new authorization request asks for the password again
    again = rp.follow(rp.authorize_url())
    assert again.location is None and "/login" in again.response.url


def test_public_client_pkce_flow(idp, user, public_rp):
    tok = public_rp.tokens()
    assert "id_token" in tok
    assert public_rp.refresh(tok["refresh_token"]).status_code == 200


def test_cors_for_browser_clients(idp):
    pre = requests.options(f"{idp.url}/oauth/userinfo", headers={
        "Origin": "https://spa.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 200 and pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    r = requests.post(f"{idp.url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x.y",
                                                      "client_id": "nope"})
    assert r.headers["Access-Control-Allow-Origin"] == "*" and r.json()["error"] == "invalid_client"
    assert "Access-Control-Allow-Origin" not in requests.get(f"{idp.url}/authorize").headers
