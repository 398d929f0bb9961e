"""RFC 6749 §6 / OpenID Connect Core 11: a refresh yields at most what the client may hold now. When an operator
narrows a client's allowed scopes, its existing refresh tokens are narrowed at their next refresh (the
client's ``get_allowed_scope``, which Authlib's token generator applies to every token): the new access token,
the response's ``scope`` and every later refresh carry only the allowed part, also after the client's scopes
are widened again. A client that may no longer hold ``offline_access`` (or ``openid``) gets no refresh at all:
the grant is revoked."""
from __future__ import annotations

import requests

from idp.oauth.clients import update_client


def _userinfo(idp, access_token: str) -> dict:
    r = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_refresh_after_the_client_lost_a_scope_yields_only_the_allowed_scopes(idp, user, rp):
    tok = rp.tokens(scope="openid profile email offline_access")
    assert "email" in _userinfo(idp, tok["access_token"])
    update_client(idp.db, rp.client_id, scope="openid profile offline_access")  # the operator drops "email"

    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"].split() == ["openid", "profile", "offline_access"], body  # RFC 6749 5.1: differs: named
    assert rp.introspect(body["access_token"])["scope"].split() == ["openid", "profile", "offline_access"]
    assert "email" not in _userinfo(idp, body["access_token"])

    # narrowed for good: widening the client again does not give the old grant its scope back
    update_client(idp.db, rp.client_id, scope="openid profile email offline_access")
    again = rp.refresh(body["refresh_token"])
    assert again.status_code == 200, again.text
    assert "email" not in rp.introspect(again.json()["access_token"])["scope"].split()
    # asking for the dropped scope explicitly: not granted any more
    wider = rp.token(grant_type="refresh_token", refresh_token=again.json()["refresh_token"], scope="openid email")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope", wider.text


def test_refresh_after_the_client_lost_offline_access_is_refused(idp, user, rp):
    tok = rp.tokens(scope="openid profile offline_access")
    update_client(idp.db, rp.client_id, scope="openid profile email")
    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert rp.introspect(tok["access_token"])["active"] is False  # the grant was revoked
    update_client(idp.db, rp.client_id, scope="openid profile email offline_access")
    assert rp.refresh(tok["refresh_token"]).status_code == 400  # and stays so


def test_unnarrowed_clients_refresh_as_before(idp, user, rp):
    tok = rp.tokens(scope="openid profile offline_access")
    update_client(idp.db, rp.client_id, scope="openid profile email phone offline_access")  # widened only
    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 200 and r.json().get("scope", "openid profile offline_access").split() == [
        "openid", "profile", "offline_access"], r.text
    assert rp.introspect(r.json()["access_token"])["scope"].split() == ["openid", "profile", "offline_access"]
