"""OpenID Connect RP-Initiated Logout 1.0 §2: the OP validates that it issued the ``id_token_hint``. Several instances
sign ID tokens, each by its own clock; a hint issued by one whose clock runs a second ahead of the instance that
reads it carries an ``iat`` "in the future" there. It used to be refused for that (Authlib's check of the hint has no
leeway), so the relying party's sign-out was answered with the confirmation page for an unnamed session instead of
ending the session and returning to the client. A hint is now read with ``server.CLOCK_LEEWAY_S`` of leeway on its
time claims, as every reading of a hint is (``IdPAuthorizationServer.id_token_hint_claims``); one from further ahead
is still no hint."""
from __future__ import annotations

import time

from joserfc import jwt

from idp.oauth import server as oauth_server

from .conftest import RP_LOGGED_OUT
from support.oidc import jwt_claims


def _reissued(idp, id_token: str, ahead_s: int) -> str:
    """``id_token`` as an instance whose clock runs ``ahead_s`` seconds ahead would have signed it (the
    provider's own signing key, the same claims, ``iat`` and ``exp`` from that clock)."""
    claims = jwt_claims(id_token)
    now = int(time.time()) + ahead_s
    claims.update(iat=now, exp=now + idp.config.id_token_lifetime_s)
    kid, key = idp.app.extensions["oauth_server"].keys.signing_key("RS256")
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, key, algorithms=["RS256"])


def _sign_out_with(rp, idp, hint: str):
    return rp.follow(f"{idp.url}/end-session?id_token_hint={hint}&post_logout_redirect_uri={RP_LOGGED_OUT}"
                     f"&state=s1")


def test_a_hint_from_an_instance_a_few_seconds_ahead_ends_the_session(idp, user, rp):
    hint = _reissued(idp, rp.tokens()["id_token"], ahead_s=5)
    done = _sign_out_with(rp, idp, hint)
    assert done.location == RP_LOGGED_OUT + "?state=s1", done.response.text[:300]
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0


def test_a_hint_from_beyond_the_leeway_is_no_hint(idp, user, rp):
    hint = _reissued(idp, rp.tokens()["id_token"], ahead_s=oauth_server.CLOCK_LEEWAY_S + 30)
    page = _sign_out_with(rp, idp, hint)
    assert page.location is None and 'name="confirm"' in page.response.text
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1  # nothing ended
