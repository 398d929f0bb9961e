"""OpenID Connect Core 3.1.2.1, id_token_hint: with prompt=none, the hint names the End-User the relying
party expects; when the browser is signed in as someone else, the answer is an error (login_required), not
a silent code for the other account (which a relying party refreshing its session in the background would
take as the same person's). So is a hint that cannot be read as an ID token of this provider (whose it is
cannot be told). Real server over HTTP, real sign-ins."""
from __future__ import annotations

import requests

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
