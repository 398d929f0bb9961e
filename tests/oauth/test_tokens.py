"""Token endpoint: PKCE, single-use codes (also under concurrency), expiry, refresh rotation and reuse,
client authentication."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import RP, RP_CALLBACK


def _code(rp, **params):
    res, verifier = rp.sign_in_for_code(**params)
    assert "code" in res.params, res.params
    return res.params["code"], verifier


def test_wrong_pkce_verifier(idp, user, rp):
    code, verifier = _code(rp)
    r = rp.redeem(code, "x" * 50)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # the failed attempt does not consume the code: the holder of the verifier still redeems it, once
    assert rp.redeem(code, verifier).status_code == 200
    assert rp.redeem(code, verifier).json()["error"] == "invalid_grant"


def test_missing_verifier_when_challenge_was_sent(idp, user, rp):
    code, _ = _code(rp)
    r = rp.redeem(code, None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_confidential_client_without_pkce_is_accepted(idp, user, rp):
    res, _ = rp.sign_in_for_code(code_challenge=None, code_challenge_method=None)
    r = rp.redeem(res.params["code"], None)
    assert r.status_code == 200, r.text
    # ...but a verifier for a code issued without a challenge is refused (RFC 9700 4.8)
    res, _ = rp.sign_in_for_code(code_challenge=None, code_challenge_method=None)
    assert rp.redeem(res.params["code"], "v" * 50).status_code == 400


def test_public_client_must_send_verifier(idp, user, public_rp):
    code, verifier = _code(public_rp)
    r = public_rp.redeem(code, None)
    assert r.status_code == 400
    code, verifier = _code(public_rp)
    assert public_rp.redeem(code, verifier).status_code == 200


def test_code_redeemed_concurrently_at_most_once_and_reuse_revokes(idp, user, rp):
    code, verifier = _code(rp)
    results = []
    barrier = threading.Barrier(10)

    def redeem():
        barrier.wait()
        results.append(rp.redeem(code, verifier))

    threads = [threading.Thread(target=redeem) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.status_code == 200]
    assert len(results) == 10
    # at most one wins; none when a loser revoked the winner's family before its tokens were stored (they
    # would be dead on arrival, so none are sent)
    assert len(ok) <= 1 and all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)
    # the losers' redemptions revoked what the winner got (whatever the interleaving)
    for tok in (r.json() for r in ok):
        assert rp.introspect(tok["access_token"]) == {"active": False}
        assert rp.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"
    assert idp.db.auth_codes.find_one({})["reused"] is True


def test_second_redemption_revokes_first_tokens(idp, user, rp):
    code, verifier = _code(rp)
    first = rp.redeem(code, verifier)
    assert first.status_code == 200
    tok = first.json()
    assert rp.introspect(tok["access_token"])["active"] is True
    second = rp.redeem(code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert rp.introspect(tok["access_token"]) == {"active": False}
    assert rp.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"


def test_reuse_before_the_first_redemption_stored_its_tokens(idp, user, rp):
    """The interleaving the concurrent test may or may not hit: the winner has redeemed the code but not
    stored its tokens when the reuse comes. The reuse leaves a revoked tombstone under the winner's family
    id, so the winner stores nothing and its tokens are dead on arrival."""
    import pytest

    from idp.oauth import tokens
    code, _ = _code(rp)
    won = tokens.redeem_code(idp.db, code, rp.client_id)
    assert won is not None and won["family"]
    assert tokens.redeem_code(idp.db, code, rp.client_id) is None
    access, refresh = tokens.make_token(won["family"]), tokens.make_token(won["family"])
    with pytest.raises(tokens.FamilyRevoked):
        tokens.issue(idp.db, idp.config, family=won["family"], client_id=rp.client_id, user_id=won["user_id"],
                     scope=won["scope"], access_token=access, refresh_token=refresh, auth_time=None, amr=[],
                     acr=None, code_id=won["_id"])
    doc = idp.db.tokens.find_one({"_id": won["family"]})
    assert doc["revoked"] is True and doc["revoked_reason"] == "code_reuse" and "access_hash" not in doc
    assert rp.introspect(access) == {"active": False}
    assert rp.refresh(refresh).json()["error"] == "invalid_grant"


def test_api_endpoints_ignore_the_browser_session(idp, user, rp):
    """The token endpoint (and the other RP-facing endpoints) neither read nor write the browser's
    session, even when its cookie is sent along."""
    code, verifier = _code(rp)
    cookie = next(c for c in rp.browser.cookies if c.name in ("deepauth_session", "__Host-session"))
    before = list(idp.db.sessions.find({}))
    r = rp.browser.post(f"{idp.url}/oauth/token", auth=rp.auth(), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    assert "Set-Cookie" not in r.headers
    assert list(idp.db.sessions.find({})) == before
    assert rp.browser.cookies.get(cookie.name) == cookie.value
    for path in ("/.well-known/openid-configuration", "/jwks.json"):
        assert "Set-Cookie" not in rp.browser.get(f"{idp.url}{path}").headers


def test_expired_code(idp, user, rp):
    code, verifier = _code(rp)
    idp.db.auth_codes.update_many({}, {"$set": {"expires": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    r = rp.redeem(code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_lifetime_from_config(make_server):
    idp = make_server(code_lifetime_s=7)
    from idp.accounts.users import create_user
    from .conftest import register_client
    from .conftest import PASSWORD
    create_user(idp.db, "alice", "alice@example.org", PASSWORD)
    doc, secret = register_client(idp.db, idp.config, "RP", [RP_CALLBACK], skip_consent=True)
    rp = RP(idp, doc["client_id"], secret)
    _code(rp)
    stored = idp.db.auth_codes.find_one({})
    assert (stored["expires"] - stored["created_at"]).total_seconds() == 7
    assert "code" not in stored and len(stored["code_hash"]) == 64  # only the hash is stored


def test_code_bound_to_client_and_redirect_uri(idp, user, rp):
    from .conftest import register_client
    doc, secret = register_client(idp.db, idp.config, "Other", [RP_CALLBACK, RP_CALLBACK + "2"])
    other = RP(idp, doc["client_id"], secret)
    code, verifier = _code(rp)
    assert other.redeem(code, verifier).json()["error"] == "invalid_grant"
    code, verifier = _code(rp)
    r = rp.token(grant_type="authorization_code", code=code, redirect_uri=RP_CALLBACK + "2", code_verifier=verifier)
    assert r.json()["error"] == "invalid_grant"


def test_wrong_client_secret(idp, user, rp):
    code, verifier = _code(rp)
    r = requests.post(f"{idp.url}/oauth/token", auth=(rp.client_id, "wrong-secret"),
                      data={"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK,
                            "code_verifier": verifier})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = requests.post(f"{idp.url}/oauth/token",
                      data={"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK,
                            "code_verifier": verifier, "client_id": rp.client_id, "client_secret": "nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"  # RFC 6749 §5.2 allows 400 or 401
    # confidential client without any secret
    r = requests.post(f"{idp.url}/oauth/token",
                      data={"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK,
                            "code_verifier": verifier, "client_id": rp.client_id})
    assert r.json()["error"] == "invalid_client"
    # client_secret_post with the right secret works
    r = requests.post(f"{idp.url}/oauth/token",
                      data={"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK,
                            "code_verifier": verifier, "client_id": rp.client_id, "client_secret": rp.secret})
    assert r.status_code == 200, r.text


def test_refresh_reuse_revokes_family(idp, user, rp):
    tok = rp.tokens()
    r1 = rp.refresh(tok["refresh_token"]).json()
    r2 = rp.refresh(r1["refresh_token"]).json()
    assert rp.introspect(r2["access_token"])["active"] is True
    # replay of the first (rotated) refresh token: rejected and the whole family is revoked
    replay = rp.refresh(tok["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert rp.introspect(r2["access_token"]) == {"active": False}
    assert rp.refresh(r2["refresh_token"]).json()["error"] == "invalid_grant"
    doc = idp.db.tokens.find_one({})
    assert doc["revoked"] is True and doc["revoked_reason"] == "refresh_reuse"


def test_refresh_bound_to_client_and_scope(idp, user, rp):
    from .conftest import register_client
    tok = rp.tokens()
    doc, secret = register_client(idp.db, idp.config, "Other", [RP_CALLBACK])
    other = RP(idp, doc["client_id"], secret)
    assert other.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"
    # wider scope than granted: refused, and the refresh token is still usable
    r = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], scope="openid phone")
    assert r.json()["error"] == "invalid_scope"
    r = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], scope="openid email")
    assert r.status_code == 200 and r.json()["scope"] == "openid email"
    assert rp.introspect(r.json()["access_token"])["scope"] == "openid email"
    # without a scope parameter the granted scope comes back (omitted from the response, RFC 6749 5.1)
    r = rp.refresh(r.json()["refresh_token"])
    full = "openid profile email offline_access"
    assert r.status_code == 200 and r.json().get("scope", full) == full
    assert rp.introspect(r.json()["access_token"])["scope"] == full


def test_no_refresh_token_without_grant_type(idp, user):
    from .conftest import register_client
    doc, secret = register_client(idp.db, idp.config, "No refresh", [RP_CALLBACK], grant_types=["authorization_code"])
    tok = RP(idp, doc["client_id"], secret).tokens()
    assert "refresh_token" not in tok and tok["access_token"]
    assert idp.db.tokens.find_one({})["expires"] == idp.db.tokens.find_one({})["access_expires"]


def test_tokens_stored_hashed_with_expiry(idp, user, rp):
    tok = rp.tokens()
    doc = idp.db.tokens.find_one({})
    text = repr(doc)
    assert tok["access_token"] not in text and tok["refresh_token"] not in text
    assert doc["expires"] >= doc["refresh_expires"] and doc["family"] == doc["_id"]
    assert doc["amr"] == ["pwd"] and doc["acr"] == "urn:deepauth:acr:pwd" and doc["auth_time"]


def test_es256_client_id_token(idp, user):
    from .conftest import register_client
    doc, secret = register_client(idp.db, idp.config, "EC RP", [RP_CALLBACK], id_token_signed_response_alg="ES256")
    tok = RP(idp, doc["client_id"], secret).tokens()
    keys = KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json").json())
    t = jwt.decode(tok["id_token"], keys, algorithms=["ES256"])
    assert t.header["alg"] == "ES256" and t.claims["aud"] == doc["client_id"]


def test_unsupported_grant_type(idp, rp):
    r = rp.token(grant_type="password", username="alice", password="x")
    assert r.json()["error"] == "unsupported_grant_type"
    # client_credentials exists, but this client is not registered for it
    r = rp.token(grant_type="client_credentials")
    assert r.json()["error"] == "unauthorized_client"


