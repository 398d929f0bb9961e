"""A sign-in that completes while the account is being deleted (``delete_user`` has claimed it and is erasing
its sessions, codes and tokens collection by collection) gets nothing from the authorization and token
endpoints: no code for a session of the account, no tokens for a code issued before. Before, the claim was read
by nothing, so a code or token made after the erasure had passed its collection outlived the account.
Real server over HTTP, real database."""
from __future__ import annotations

from idp.accounts import users


def test_a_session_of_an_account_being_deleted_gets_no_code(idp, user, rp):
    rp.tokens()  # signed in and consented; then the deletion starts
    codes = idp.db.auth_codes.count_documents({"user_id": user["_id"]})
    users._claim_deletion(idp.db, user["_id"])
    res, _ = rp.sign_in_for_code()  # the error page; the session ends with it
    assert res.location is None and res.response.status_code == 400, res.location
    quiet, _ = rp.sign_in_for_code(prompt="none")
    assert quiet.params.get("error") == "login_required" and "code" not in quiet.params
    # none made; the one before went with the rest of the account's rows when its session came back
    assert codes == 1 and idp.db.auth_codes.count_documents({"user_id": user["_id"]}) == 0


def test_a_code_issued_before_the_deletion_gives_no_tokens(idp, user, rp):
    res, verifier = rp.sign_in_for_code()
    assert res.params.get("code")
    users._claim_deletion(idp.db, user["_id"])
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert idp.db.tokens.count_documents({"user_id": user["_id"]}) == 0


def test_prompt_none_right_after_the_claim_answers_the_relying_party(idp, user, rp):
    """The first request of the session after the claim signs the browser out and erases what is left under the
    account; a relying party's silent request still gets its protocol answer, not the sign-in page."""
    rp.tokens()
    users._claim_deletion(idp.db, user["_id"])
    quiet, _ = rp.sign_in_for_code(prompt="none")
    assert quiet.location and quiet.params.get("error") == "login_required" and "code" not in quiet.params
