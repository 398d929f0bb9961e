"""The tokens of an account that may no longer sign in are honoured nowhere. Disabling an account and deleting one
end its app tokens in a write after the one that refuses it (the admin page: disable, then end the grants; a
deletion: the claim, then its hooks); a request that died between the two left a disabled (or claimed) account
whose apps kept refreshing and reading its claims (found by a red team). Userinfo and introspection now read the
account with the token (``Token.get_user``, ``is_revoked``), the refresh grant too (its family is revoked then).
Real server over HTTP, real database."""
from __future__ import annotations

import pytest
import requests

from idp.accounts import users


@pytest.mark.parametrize("unusable", ["disabled", "claimed for deletion"])
def test_an_accounts_tokens_stop_when_it_may_not_sign_in_even_if_its_grants_were_not_ended(idp, user, rp, unusable):
    tok = rp.tokens()
    if unusable == "disabled":
        users.set_disabled(idp.db, user["_id"], True)  # the admin view's first write; its second never ran
    else:
        users._claim_deletion(idp.db, user["_id"])  # a deletion's claim; its erasure never ran
    info = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert info.status_code == 401, info.text
    assert rp.introspect(tok["access_token"]) == {"active": False}
    refreshed = rp.refresh(tok["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant", refreshed.text
    assert idp.db.tokens.find_one({"user_id": user["_id"]})["revoked"] is True


def test_an_account_enabled_again_refreshes_again_what_was_not_ended(idp, user, rp):
    """The refusal is the account's state, read at each use: tokens that were never ended work again once the
    account is enabled (an administrator ends them with the disable action's second write)."""
    tok = rp.tokens()
    users.set_disabled(idp.db, user["_id"], True)
    info = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert info.status_code == 401
    users.set_disabled(idp.db, user["_id"], False)
    info = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == user["_id"]
    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 200, r.text
