"""Removing an application on the Connected apps page ends everything it holds for the user: its token
families are revoked and an authorization code issued to it but not yet redeemed can no longer be redeemed
(before, a code issued a moment earlier was still exchanged for fresh tokens after the removal)."""
from __future__ import annotations

from .conftest import csrf_from


def _remove(rp, idp):
    page = rp.browser.get(f"{idp.url}/account/apps")
    r = rp.browser.post(f"{idp.url}/account/apps/{rp.client_id}/remove", data={"csrf_token": csrf_from(page.text)},
                        allow_redirects=False)
    assert r.status_code == 302, r.text


def test_code_issued_before_removal_is_not_redeemed(idp, user, rp):
    res, verifier = rp.sign_in_for_code()
    code = res.params["code"]
    _remove(rp, idp)
    r = rp.redeem(code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert idp.db.tokens.count_documents({"revoked": False}) == 0


def test_tokens_end_and_other_apps_keep_theirs(idp, user, rp):
    from .conftest import RP, RP_CALLBACK
    other = RP.register(idp, idp.db, idp.config, "Other RP", [RP_CALLBACK], scope="openid offline_access")
    other.browser = rp.browser  # the same signed-in user
    kept = other.tokens(scope="openid offline_access")
    res, verifier = other.sign_in_for_code(scope="openid offline_access")
    tok = rp.tokens()
    _remove(rp, idp)
    assert rp.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"
    assert rp.introspect(tok["access_token"]) == {"active": False}
    assert other.refresh(kept["refresh_token"]).status_code == 200
    assert other.redeem(res.params["code"], verifier).status_code == 200
