"""A grant that ends (sign-out, password change, the app removed) while one of its codes is being redeemed. The
token endpoint marks the code used, then stores the tokens. Before, an end that ran between the two found no
unredeemed code to delete and no stored family to revoke, so the tokens stored a moment later stayed valid.
Now the end leaves a revoked tombstone under the family id the redemption was given, and storing fails
(``FamilyRevoked``): the tokens are dead on arrival. Tokens with ``offline_access`` are kept by a sign-out
(OpenID Connect Core 11), in flight or not."""
from __future__ import annotations

import pytest

from idp.oauth import consents, tokens


def _in_flight(idp, rp, scope: str) -> dict:
    """A code of a fresh sign-in, consumed by the token endpoint's first half (its tokens not stored yet)."""
    res, _ = rp.sign_in_for_code(scope=scope)
    code = tokens.redeem_code(idp.db, res.params["code"], rp.client_id)
    assert code is not None and code["family"]
    return code


def _store(idp, code: dict) -> dict:
    """The token endpoint's second half: store the tokens of the consumed ``code``."""
    return tokens.issue(idp.db, idp.config, family=code["family"], client_id=code["client_id"],
                        user_id=code["user_id"], scope=code["scope"],
                        access_token=tokens.make_token(code["family"]), refresh_token=None,
                        auth_time=code["auth_time"], amr=code["amr"], acr=code["acr"], code_id=code["_id"],
                        sid=code["sid"])


def _dead_on_arrival(idp, code: dict, reason: str) -> None:
    with pytest.raises(tokens.FamilyRevoked):
        _store(idp, code)
    doc = idp.db.tokens.find_one({"_id": code["family"]})
    assert doc["revoked"] is True and doc["revoked_reason"] == reason and "access_hash" not in doc


def test_sign_out_during_a_redemption(idp, user, rp):
    code = _in_flight(idp, rp, "openid profile")
    assert tokens.end_session_grants(idp.db, user["_id"], code["sid"]) == 0
    _dead_on_arrival(idp, code, "signed_out")


def test_sign_out_keeps_an_offline_access_redemption(idp, user, rp):
    code = _in_flight(idp, rp, "openid profile offline_access")
    tokens.end_session_grants(idp.db, user["_id"], code["sid"])
    assert _store(idp, code)["revoked"] is False


def test_password_change_during_a_redemption(idp, user, rp):
    code = _in_flight(idp, rp, "openid profile offline_access")
    tokens.end_user_grants(idp.db, user["_id"])
    _dead_on_arrival(idp, code, "user")


def test_app_removed_during_a_redemption(idp, user, rp):
    code = _in_flight(idp, rp, "openid profile offline_access")
    assert consents.revoke(idp.db, user["_id"], rp.client_id) is True
    _dead_on_arrival(idp, code, "consent_removed")


def test_an_end_after_the_tokens_were_stored_revokes_them_once(idp, user, rp):
    """The other order: the tokens are stored, then the sign-in ends. The stored family is revoked (and
    counted) as before; the tombstone step leaves it alone."""
    code = _in_flight(idp, rp, "openid profile")
    _store(idp, code)
    assert tokens.end_session_grants(idp.db, user["_id"], code["sid"]) == 1
    doc = idp.db.tokens.find_one({"_id": code["family"]})
    assert doc["revoked"] is True and doc["revoked_reason"] == "signed_out" and doc["access_hash"]


def test_the_client_gets_no_id_token_for_a_grant_that_ended_during_its_redemption(idp, user, rp, monkeypatch):
    """Over HTTP: the sign-out forced between the code's consumption and the tokens' storage. Before, the
    answer was 200 with a dead access token and a valid ID token - a session for the relying party after it
    may have received the back-channel logout. Now it is ``invalid_grant``."""
    res, verifier = rp.sign_in_for_code(scope="openid profile")
    store = tokens.issue

    def signed_out_first(db, config, **kw):
        tokens.end_session_grants(db, kw["user_id"], kw["sid"])
        return store(db, config, **kw)
    monkeypatch.setattr(tokens, "issue", signed_out_first)
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and "id_token" not in r.json(), r.text


def test_account_deleted_during_a_redemption(idp, user, rp):
    """``delete_user`` without the admin page's own grant ending (as ``idp users delete`` calls it): the
    redemption in flight stores nothing after the erasure passed the tokens."""
    from idp.accounts.users import delete_user

    code = _in_flight(idp, rp, "openid profile offline_access")
    assert delete_user(idp.db, user["_id"])["users"] == 1
    with pytest.raises(tokens.FamilyRevoked):
        _store(idp, code)
    assert idp.db.tokens.count_documents({"user_id": user["_id"]}) == 0
