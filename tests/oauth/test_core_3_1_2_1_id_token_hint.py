"""OpenID Connect Core 3.1.2.1, id_token_hint: with prompt=none, the hint names the End-User the relying
party expects; when the browser is signed in as someone else, the answer is an error (login_required), not
a silent code for the other account (which a relying party refreshing its session in the background would
take as the same person's). So is a hint that cannot be read as an ID token of this provider (whose it is
cannot be told). Real server over HTTP, real sign-ins."""
from __future__ import annotations

import requests

from support.oidc import jwt_claims

from .conftest import PASSWORD, RP_CALLBACK, pkce_pair


def _signed_in_tokens(rp, username: str) -> dict:
    """A fresh browser signs ``username`` in through the RP (consent given); returns the token response."""
    rp.browser = requests.Session()
    verifier, challenge = pkce_pair()
    res = rp.follow(rp.authorize_url(code_challenge=challenge, code_challenge_method="S256"))
    res = rp.login(res, username=username)
    if res.location is None:
        res = rp.consent(res)
    assert res.location.startswith(RP_CALLBACK), res.response.text[:300]
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 200, r.text
    return r.json()


def test_prompt_none_with_a_hint_for_another_user_is_login_required(idp, user, rp):
    from idp.accounts.users import create_user
    create_user(idp.db, "bob", "bob@example.org", PASSWORD)
    bobs = _signed_in_tokens(rp, "bob")["id_token"]
    alices = _signed_in_tokens(rp, "alice")["id_token"]  # the browser is now alice's
    res = rp.follow(rp.authorize_url(prompt="none", id_token_hint=bobs, state="s1"))
    assert res.location and res.location.startswith(RP_CALLBACK)
    assert res.params.get("error") == "login_required" and "code" not in res.params, res.params
    assert res.params["state"] == "s1"
    # the signed-in user's own hint: a code, as without a hint
    res = rp.follow(rp.authorize_url(prompt="none", id_token_hint=alices))
    assert "code" in res.params, res.params


def test_prompt_none_with_a_hint_that_is_not_ours_is_login_required(idp, user, rp):
    alices = _signed_in_tokens(rp, "alice")["id_token"]
    header, payload, signature = alices.split(".")
    forged = ".".join((header, payload, signature[::-1]))
    for hint in (forged, "not-a-jwt"):
        res = rp.follow(rp.authorize_url(prompt="none", id_token_hint=hint))
        assert res.params.get("error") == "login_required" and "code" not in res.params, res.params


def test_a_hint_signed_by_a_replaced_key_still_published_is_read(idp, user, rp):
    """A key rotation does not turn the hints signed before it into login_required: the replaced key stays
    published (until its ID tokens have expired), and a hint under it still names its user. Once the key is
    no longer published, whose the hint is cannot be told: login_required."""
    import base64
    import json
    from datetime import datetime, timedelta, timezone

    from idp.oauth import keys

    def kid(token: str) -> str:
        header = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]

    old = _signed_in_tokens(rp, "alice")["id_token"]
    keys.rotate(idp.db, idp.config)
    now = datetime.now(timezone.utc)
    idp.db.signing_keys.update_many({"active": True}, {"$set": {"activate_at": now}})  # the new keys sign now
    idp.app.extensions["oauth_keys"].invalidate()
    verifier, challenge = pkce_pair()
    res = rp.follow(rp.authorize_url(prompt="none", id_token_hint=old, code_challenge=challenge,
                                     code_challenge_method="S256"))
    assert "code" in res.params, res.params
    assert kid(rp.redeem(res.params["code"], verifier).json()["id_token"]) != kid(old)  # the new key signs
    idp.db.signing_keys.update_many({"active": False}, {"$set": {"retire_after": now - timedelta(seconds=1)}})
    idp.app.extensions["oauth_keys"].invalidate()
    res = rp.follow(rp.authorize_url(prompt="none", id_token_hint=old))
    assert res.params.get("error") == "login_required" and "code" not in res.params, res.params


def _interactive(rp, hint: str, username: str | None, **params):
    """An interactive request with ``hint`` (PKCE); signs ``username`` in when the login page is shown."""
    verifier, challenge = pkce_pair()
    res = rp.follow(rp.authorize_url(id_token_hint=hint, code_challenge=challenge, code_challenge_method="S256",
                                     **params))
    if username is not None and res.location is None and "/login" in res.response.url:
        res = rp.login(res, username=username)
    if res.location is None and '/authorize/consent"' in res.response.text:
        res = rp.consent(res)
    return res, verifier


def test_an_interactive_request_hinting_another_user_asks_for_a_sign_in_and_issues_only_the_hinted_users_code(
        idp, user, rp):
    """Before, an interactive request whose hint named bob, from a browser where alice was signed in, was
    answered at once with alice's code (an RP re-authenticating bob took it as bob's). Now the hinted user may
    sign in by the request (a new sign-in is asked for); if another account signs in, the answer is
    login_required, never that account's code."""
    from idp.accounts.users import create_user
    create_user(idp.db, "bob", "bob@example.org", PASSWORD)
    bobs = _signed_in_tokens(rp, "bob")["id_token"]
    _signed_in_tokens(rp, "alice")  # the browser is now alice's
    res, _ = _interactive(rp, bobs, None, state="s2")
    assert res.location is None and "/login" in res.response.url, (res.location, res.params)  # no silent code
    res = rp.login(res, username="alice")  # alice signs in again instead
    if res.location is None and '/authorize/consent"' in res.response.text:
        res = rp.consent(res)
    assert res.location and res.location.startswith(RP_CALLBACK), res.response.text[:300]
    assert res.params.get("error") == "login_required" and "code" not in res.params, res.params
    assert res.params["state"] == "s2"
    # bob signs in by the request: his code
    res, verifier = _interactive(rp, bobs, "bob")
    assert "code" in res.params, res.params
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 200, r.text
    assert jwt_claims(r.json()["id_token"])["sub"] == idp.db.users.find_one({"username": "bob"})["_id"]


def test_an_interactive_request_with_a_hint_that_is_not_ours_is_invalid(idp, user, rp):
    alices = _signed_in_tokens(rp, "alice")["id_token"]
    header, payload, signature = alices.split(".")
    for hint in (".".join((header, payload, signature[::-1])), "not-a-jwt"):
        res = rp.follow(rp.authorize_url(id_token_hint=hint))
        assert res.params.get("error") == "invalid_request" and "code" not in res.params, res.params
    res, _ = _interactive(rp, alices, None)  # the signed-in user's own hint: a code, as without a hint
    assert "code" in res.params, res.params
