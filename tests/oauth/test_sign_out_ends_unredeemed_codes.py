"""OpenID Connect Back-Channel Logout 1.0 §2 / RP-Initiated Logout: when a sign-in ends (the user signs out
here, or an application logs them out), the relying parties of that session are told it ended. A code issued
in that session and not redeemed yet would give a relying party a fresh session for an ended sign-in — after
its logout token went out. Before, such a code was still redeemed (200) after the sign-out; now signing out
deletes the session's unredeemed codes. Codes of the user's other sign-ins (another browser) are kept.

OpenID Connect Core 11: only ``offline_access`` grants access while the user is not signed in. The access tokens
of a sign-in granted without it end with the sign-in (before, they stayed valid for their hour: userinfo 200 after
the sign-out); tokens with offline access, and every token of the user's other sign-ins, stay."""
from __future__ import annotations

import requests

from .conftest import RP, RP_LOGGED_OUT


def test_code_of_a_signed_out_session_is_not_redeemed(idp, user, rp):
    res, verifier = rp.sign_in_for_code()
    rp.sign_out_at_idp()
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_rp_initiated_logout_ends_the_sessions_codes_and_keeps_other_sessions(idp, user, rp):
    other_browser = RP(idp, rp.client_id, rp.secret)
    tok = rp.tokens()
    res, verifier = rp.sign_in_for_code(prompt="none")
    kept, kept_verifier = other_browser.sign_in_for_code()  # the same user, another browser
    r = rp.browser.get(f"{idp.url}/end-session", params={"id_token_hint": tok["id_token"],
                                                           "post_logout_redirect_uri": RP_LOGGED_OUT},
                       allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(RP_LOGGED_OUT), r.text[:300]
    assert rp.redeem(res.params["code"], verifier).json()["error"] == "invalid_grant"
    assert other_browser.redeem(kept.params["code"], kept_verifier).status_code == 200
    # tokens already issued are not touched by a sign-out (offline_access: RFC 6749 / OIDC Core 11)
    assert requests.post(f"{idp.url}/oauth/token", auth=rp.auth(), data={
        "grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}).status_code == 200


def _userinfo(idp, access_token: str) -> int:
    return requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_sign_out_ends_the_sessions_tokens_without_offline_access(idp, user, rp):
    other_browser = RP(idp, rp.client_id, rp.secret)
    online = rp.tokens(scope="openid profile")
    offline = rp.tokens()  # the same sign-in (no password asked again), offline_access consented
    elsewhere = other_browser.tokens(scope="openid profile")
    assert "refresh_token" not in online and "refresh_token" in offline
    assert {_userinfo(idp, t["access_token"]) for t in (online, offline, elsewhere)} == {200}
    rp.sign_out_at_idp()
    assert _userinfo(idp, online["access_token"]) == 401
    assert _userinfo(idp, offline["access_token"]) == 200
    assert _userinfo(idp, elsewhere["access_token"]) == 200
    introspected = requests.post(f"{idp.url}/oauth/introspect", auth=rp.auth(),
                                 data={"token": online["access_token"]})
    assert introspected.status_code == 200 and introspected.json()["active"] is False


def test_another_account_signing_in_over_a_sign_in_ends_it(idp, user, rp):
    """A shared computer: Bob signs in (prompt=login) in the browser where Alice is signed in, without her
    signing out. Her sign-in ended there, as if she had signed out: her tokens without offline access stop
    working (before, they stayed valid for their hour, and Bob's later sign-out ended only his own)."""
    from idp.accounts.users import create_user

    create_user(idp.db, "bob", "bob@example.org", "bob's long passphrase 42")
    alices = rp.tokens(scope="openid profile")
    assert _userinfo(idp, alices["access_token"]) == 200
    page = rp.follow(rp.authorize_url(prompt="login", scope="openid profile"))
    res = rp.login(page, username="bob", password="bob's long passphrase 42")
    if res.location is None:
        res = rp.consent(res)
    assert res.location and "code" in res.params, res.response.text[:300]
    assert _userinfo(idp, alices["access_token"]) == 401


def test_signing_in_again_as_the_same_account_keeps_the_sign_in_that_a_sign_out_ends(idp, user, rp):
    """The same account signing in again in the same browser (``prompt=login``, ``max_age``, or the login page
    posted again) re-authenticates the sign-in; it does not start a second one beside it. Before, it was given a
    new ``sid`` and the earlier one was forgotten without being ended: after the sign-out, the tokens issued
    before the re-authentication (no offline access) stayed valid, a code issued before it was still redeemed,
    and its relying parties were never told (their back-channel logout names the earlier ``sid``)."""
    from support.oidc import jwt_claims

    before = rp.tokens(scope="openid profile")
    pending, verifier = rp.sign_in_for_code(scope="openid profile")  # a code not redeemed yet
    page = rp.follow(rp.authorize_url(prompt="login", scope="openid profile"))
    again = rp.login(page)
    assert again.location and "code" in again.params, again.response.text[:300]
    after = rp.id_token_claims(again.params["code"])
    assert _userinfo(idp, before["access_token"]) == 200
    rp.sign_out_at_idp()
    assert _userinfo(idp, before["access_token"]) == 401
    assert rp.redeem(pending.params["code"], verifier).json()["error"] == "invalid_grant"
    assert after["sid"] == jwt_claims(before["id_token"])["sid"]  # one sign-in, re-authenticated
