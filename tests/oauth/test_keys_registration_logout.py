"""Signing keys (encrypted at rest, rotation, JWKS), RP-initiated logout, dynamic registration."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import RP, RP_CALLBACK, RP_LOGGED_OUT, csrf_from


# --- keys ------------------------------------------------------------------------------------

def test_keys_created_on_start_and_encrypted(idp):
    import base64

    from idp.oauth import keys
    docs = list(idp.db.signing_keys.find({}))
    assert sorted(d["alg"] for d in docs) == ["ES256", "RS256"]
    for d in docs:
        assert d["active"] is True
        ct = bytes(d["private_enc"]["ct"])
        # Not the private JWK in clear: neither its JSON nor its private part "d" (as text or as bytes). (A
        # 3-byte probe such as b'"d"' turns up by chance in ~1.9 kB of ciphertext about once in 9,000 runs.)
        private_d = keys.unseal(idp.config, d["_id"], d["private_enc"])["d"]
        raw_d = base64.urlsafe_b64decode(private_d + "=" * (-len(private_d) % 4))
        assert b'"kty"' not in ct and private_d.encode() not in ct and raw_d not in ct
        assert set(d) >= {"public_jwk", "private_enc"}
        assert not any(k in d for k in ("private_jwk", "pem", "d"))  # no private key material in clear
        assert "d" not in d["public_jwk"]
    jwks = requests.get(f"{idp.url}/jwks.json").json()
    assert {k["kid"] for k in jwks["keys"]} == {d["_id"] for d in docs}
    assert {k["kty"] for k in jwks["keys"]} == {"RSA", "EC"}
    assert all("d" not in k for k in jwks["keys"])


def test_key_encryption_roundtrip_and_wrong_kek(idp):
    import pytest
    from idp.config import Config
    from idp.oauth import keys
    doc = idp.db.signing_keys.find_one({"alg": "RS256"})
    jwk = keys.unseal(idp.config, doc["_id"], doc["private_enc"])
    assert jwk["kty"] == "RSA" and jwk["d"]
    other = Config(data_dir=idp.config.data_dir, key_encryption_key="f" * 64)
    with pytest.raises(keys.SealedKeyError):
        keys.unseal(other, doc["_id"], doc["private_enc"])


def test_rotation_keeps_old_kid_published_until_retired(idp, user, rp):
    from idp.oauth import keys
    tok = rp.tokens()
    old_kid = jwt.decode(tok["id_token"], KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json").json())).header["kid"]
    new_kids = keys.rotate(idp.db, idp.config)
    idp.app.extensions["oauth_keys"].invalidate()  # other instances pick it up within the cache TTL
    jwks = requests.get(f"{idp.url}/jwks.json").json()
    kids = {k["kid"] for k in jwks["keys"]}
    assert old_kid in kids and set(new_kids) <= kids
    # once the new keys are due (pre-publication, see test_key_prepublication), new tokens are signed with
    # them; the old token still verifies
    idp.db.signing_keys.update_many({"_id": {"$in": new_kids}}, {"$set": {"activate_at": datetime.now(timezone.utc)}})
    idp.app.extensions["oauth_keys"].invalidate()
    tok2 = rp.tokens()
    keyset = KeySet.import_key_set(jwks)
    assert jwt.decode(tok2["id_token"], keyset).header["kid"] in new_kids
    assert jwt.decode(tok["id_token"], keyset).claims["sub"] == user["_id"]
    old = idp.db.signing_keys.find_one({"_id": old_kid})
    assert old["active"] is False
    assert (old["retire_after"] - old["rotated_at"]).total_seconds() >= idp.config.id_token_lifetime_s
    # past its retirement the old key leaves the JWKS
    idp.db.signing_keys.update_one({"_id": old_kid}, {"$set": {"retire_after": datetime.now(timezone.utc)
                                                                - timedelta(seconds=1)}})
    idp.app.extensions["oauth_keys"].invalidate()
    kids = {k["kid"] for k in requests.get(f"{idp.url}/jwks.json").json()["keys"]}
    assert old_kid not in kids and set(new_kids) <= kids


# --- end session ---------------------------------------------------------------------------------

def test_end_session_without_hint_asks_confirmation(idp, user, rp):
    rp.tokens()
    url = f"{idp.url}/end-session?client_id={rp.client_id}&post_logout_redirect_uri={RP_LOGGED_OUT}&state=s1"
    page = rp.follow(url)
    assert page.location is None and "Sign out" in page.response.text
    # still signed in: nothing happened yet
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1
    form = {"csrf_token": csrf_from(page.response.text), "confirm": "yes", "client_id": rp.client_id,
            "post_logout_redirect_uri": RP_LOGGED_OUT, "state": "s1"}
    done = rp.follow(f"{idp.url}/end-session", "POST", form)
    assert done.location == RP_LOGGED_OUT + "?state=s1"
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0


def test_end_session_confirmation_needs_csrf(idp, user, rp):
    rp.tokens()
    r = rp.browser.post(f"{idp.url}/end-session", data={"confirm": "yes"}, allow_redirects=False)
    assert r.status_code == 400
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1


def test_end_session_unregistered_post_logout_uri_not_followed(idp, user, rp):
    tok = rp.tokens()
    res = rp.follow(f"{idp.url}/end-session?id_token_hint={tok['id_token']}"
                    f"&post_logout_redirect_uri=https://evil.example/&state=x")
    assert res.location is None and res.response.status_code == 200
    assert "signed out" in res.response.text
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0


def test_end_session_bad_hint_asks_confirmation(idp, user, rp):
    tok = rp.tokens()
    forged = tok["id_token"][:-4] + ("AAAA" if not tok["id_token"].endswith("AAAA") else "BBBB")
    res = rp.follow(f"{idp.url}/end-session?id_token_hint={forged}&post_logout_redirect_uri={RP_LOGGED_OUT}")
    assert res.location is None and 'name="confirm"' in res.response.text
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1


def test_discovery_advertises_end_session(idp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["end_session_endpoint"] == f"{idp.url}/end-session"


# --- dynamic registration ----------------------------------------------------------------------------

def test_registration_off_by_default(idp):
    r = requests.post(f"{idp.url}/oauth/register", json={"redirect_uris": [RP_CALLBACK]},
                      headers={"Authorization": "Bearer anything"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"  # no registration endpoint at all
    assert idp.db.clients.count_documents({}) == 0


def test_registration_with_initial_access_token(make_server, user):
    idp = make_server(registration_access_token="initial-access-token-0123456789abcdef")
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["registration_endpoint"] == f"{idp.url}/oauth/register"
    body = {"client_name": "Registered RP", "redirect_uris": [RP_CALLBACK],
            "post_logout_redirect_uris": [RP_LOGGED_OUT], "scope": "openid email"}
    # RFC 7591 §3: the initial access token is an OAuth bearer token, so RFC 6750 §3.1's errors apply:
    # 401 with a Bearer challenge, invalid_token for a missing or wrong one.
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        bad = requests.post(meta["registration_endpoint"], json=body, headers=headers)
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_token", bad.text
        assert bad.headers["WWW-Authenticate"].split()[0].lower() == "bearer", bad.headers
    assert idp.db.clients.count_documents({}) == 0
    r = requests.post(meta["registration_endpoint"], json=body,
                      headers={"Authorization": "Bearer initial-access-token-0123456789abcdef"})
    assert r.status_code == 201, r.text
    reg = r.json()
    assert reg["client_id"] and reg["client_secret"] and reg["client_name"] == "Registered RP"
    doc = idp.db.clients.find_one({"_id": reg["client_id"]})
    assert doc["secret_hash"] != reg["client_secret"] and doc["created_via"] == "registration"
    # a registered client gets the default face policy, "required": on this server (face sign-in off) its
    # sign-ins are refused (shown at the IdP, not redirected by itself: the registrant chose the redirect URI,
    # RFC 9700 4.11.2); once an operator makes it password-only it works end to end
    registered = RP(idp, reg["client_id"], reg["client_secret"])
    refused = registered.follow(registered.authorize_url(scope="openid email"))
    assert refused.location is None and refused.response.status_code == 400
    assert "error=unmet_authentication_requirements" in refused.response.text, refused.response.text[:500]
    from idp.oauth.clients import update_client
    update_client(idp.db, reg["client_id"], face_policy="optional")
    tok = registered.tokens(scope="openid email")
    assert tok["id_token"]
    # public client registration: no secret
    r = requests.post(meta["registration_endpoint"], headers={"Authorization": "Bearer initial-access-token-0123456789abcdef"},
                      json={"redirect_uris": [RP_CALLBACK], "token_endpoint_auth_method": "none"})
    assert r.status_code == 201 and "client_secret" not in r.json()
    # invalid metadata
    r = requests.post(meta["registration_endpoint"], headers={"Authorization": "Bearer initial-access-token-0123456789abcdef"},
                      json={"redirect_uris": [RP_CALLBACK], "response_types": ["token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"
    r = requests.post(meta["registration_endpoint"], headers={"Authorization": "Bearer initial-access-token-0123456789abcdef"},
                      json={"client_name": "x"})
    assert r.status_code == 400


def test_keystore_rereads_after_ttl(db, tmp_path):
    """A rotation made elsewhere (CLI, another instance) reaches the in-memory cache after its TTL."""
    from idp.config import Config
    from idp.oauth import keys
    from idp.store import migrate
    migrate.apply(db)
    config = Config(data_dir=tmp_path).ensure_secrets()
    store = keys.KeyStore(db, config, ttl=3600)
    kid1, _ = store.signing_key("RS256")  # creates the first keys
    new = keys.rotate(db, config, ("RS256",))
    assert new[0] not in {k["kid"] for k in store.jwks()["keys"]}  # cached
    store.ttl = 0
    assert {kid1, new[0]} <= {k["kid"] for k in store.jwks()["keys"]}
    assert store.signing_key("RS256")[0] == kid1  # published, not due yet
    db.signing_keys.update_one({"_id": new[0]}, {"$set": {"activate_at": datetime.now(timezone.utc)}})
    assert store.signing_key("RS256")[0] == new[0]


def test_registration_refuses_a_client_name_with_control_characters(make_server):
    """RFC 7591 metadata is anyone's input with the initial access token; the name reaches every sign-in
    and consent page of the client: a NUL or a line break is invalid_client_metadata, nothing stored."""
    idp = make_server(registration_access_token="initial-access-token-0123456789abcdef")
    for name in ("Bank\x00", "Bank\nSecurity team", "Bank\u0085Security team", "Bank \u202etsurT",
                 "Bank\u2029Security team"):
        r = requests.post(f"{idp.url}/oauth/register", headers={"Authorization": "Bearer initial-access-token-0123456789abcdef"},
                          json={"client_name": name, "redirect_uris": [RP_CALLBACK]})
        assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", r.text
    assert idp.db.clients.count_documents({}) == 0
