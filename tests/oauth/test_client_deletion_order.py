"""Deleting a client (`idp clients delete`, the admin page): what it holds ends, whatever runs beside it or stops it.

Before, the client's row was deleted first, then its consents, codes and tokens. A deletion stopped after the row
(a crash, a lost connection) left the rest for good: the client could no longer be deleted ("no client"), its
token families stayed stored unrevoked. A redemption in flight (the code consumed, the tokens not yet stored) that
met the deletion stored its tokens after the deletion passed the tokens, and its client got them. Now the client
is disabled first, its codes end with a tombstone for each redeemed one (as a sign-out does), then what it holds is
deleted and the row last. Real server, real database."""
from __future__ import annotations

import pymongo.collection
import pytest
import requests

from idp.oauth import clients, tokens

from .test_grant_end_during_redemption import _in_flight, _store

SCOPE = "openid profile offline_access"


def _nothing_left(db, client_id: str) -> None:
    assert db.clients.find_one({"_id": client_id}) is None
    for name in ("tokens", "auth_codes", "consents", "rp_sessions"):
        assert db[name].count_documents({"client_id": client_id}) == 0, name


def test_a_redemption_in_flight_stores_nothing(idp, user, rp):
    code = _in_flight(idp, rp, SCOPE)
    assert clients.delete_client(idp.db, rp.client_id) is True
    with pytest.raises(tokens.FamilyRevoked):
        _store(idp, code)
    _nothing_left(idp.db, rp.client_id)
    tomb = idp.db.tokens.find_one({"_id": code["family"]})
    assert tomb["revoked"] is True and tomb["revoked_reason"] == "client_deleted" and "access_hash" not in tomb


def test_the_client_gets_no_tokens_when_deleted_during_its_redemption(idp, user, rp, monkeypatch):
    """Over HTTP: the deletion forced between the code's consumption and the tokens' storage. Before, the answer was
    200 with tokens and an ID token for a client that no longer exists."""
    res, verifier = rp.sign_in_for_code(scope="openid profile offline_access")
    store = tokens.issue

    def deleted_first(db, config, **kw):
        clients.delete_client(db, kw["client_id"])
        return store(db, config, **kw)
    monkeypatch.setattr(tokens, "issue", deleted_first)
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and "id_token" not in r.json(), r.text
    _nothing_left(idp.db, rp.client_id)


@pytest.mark.parametrize("step", ["consents", "tokens"])
def test_a_deletion_stopped_half_way_leaves_nothing_usable_and_can_be_run_again(idp, user, rp, monkeypatch, step):
    """``step``: where the connection is lost - after the client's tokens and codes went (its consents), or before
    its tokens went (what keeps them dead then is the disable the deletion starts with)."""
    tok = rp.tokens(scope="openid profile offline_access")
    res, verifier = rp.sign_in_for_code(scope="openid profile")  # a code not yet redeemed
    # the database connection is lost at one of the deletion's middle steps
    real = pymongo.collection.Collection.delete_many

    def lost(self, flt, *a, **kw):
        if self.name == step:
            raise pymongo.errors.AutoReconnect("connection lost")
        return real(self, flt, *a, **kw)
    monkeypatch.setattr(pymongo.collection.Collection, "delete_many", lost)
    with pytest.raises(pymongo.errors.AutoReconnect):
        clients.delete_client(idp.db, rp.client_id)
    monkeypatch.setattr(pymongo.collection.Collection, "delete_many", real)
    # nothing the client held is usable meanwhile
    assert requests.get(f"{idp.url}/oauth/userinfo",
                        headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 401
    assert rp.refresh(tok["refresh_token"]).status_code in (400, 401)
    assert rp.redeem(res.params["code"], verifier).status_code in (400, 401)
    # and the operator finishes the deletion by running it again
    assert clients.delete_client(idp.db, rp.client_id) is True
    _nothing_left(idp.db, rp.client_id)
    assert idp.db.audit_log.count_documents({"event": "oauth.client_deleted", "client_id": rp.client_id}) == 1
    assert clients.delete_client(idp.db, rp.client_id) is False


def test_a_redemption_in_flight_when_the_client_is_disabled_stores_nothing(idp, user, rp):
    """The same race with a disable: the tokens stored after the disable's revocation were dead only while the
    client stayed disabled (``Token.is_revoked``) and came alive when an operator enabled it again. Now the disable
    ends the client's codes as the deletion does, so they are never stored, and its unredeemed codes die too."""
    code = _in_flight(idp, rp, SCOPE)
    res, verifier = rp.sign_in_for_code(scope="openid profile")  # a code not yet redeemed
    assert clients.disable_client(idp.db, rp.client_id) is True
    with pytest.raises(tokens.FamilyRevoked):
        _store(idp, code)
    assert clients.enable_client(idp.db, rp.client_id) is True
    assert idp.db.tokens.count_documents({"client_id": rp.client_id, "revoked": False}) == 0
    r = rp.redeem(res.params["code"], verifier)  # enabled again: a code from before the disable stays dead
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
