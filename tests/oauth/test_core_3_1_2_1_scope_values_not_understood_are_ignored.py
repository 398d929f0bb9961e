"""OpenID Connect Core 3.1.2.1 (and 5.4): "Scope values used that are not understood by an implementation SHOULD
be ignored." A relying party asking for ``openid profile address`` (``address`` is a standard OpenID Connect scope
this provider does not offer) or a scope of its own got ``invalid_scope`` and no sign-in at all; a supported scope
the client is not registered for was already left out that way. What is granted is what the token response's
``scope`` names (RFC 6749 §3.3). ``openid`` is still required, and a refresh may still not widen the grant."""
from __future__ import annotations

from .conftest import RP_CALLBACK


def test_core_3_1_2_1_unknown_scope_values_are_left_out(idp, user, rp):
    res, verifier = rp.sign_in_for_code(scope="openid profile address urn:example:custom", state="u1")
    assert res.location and res.location.startswith(RP_CALLBACK + "?"), res.response.text[:300]
    assert res.params.get("code") and res.params["state"] == "u1", res.params
    tok = rp.redeem(res.params["code"], verifier).json()
    assert tok["scope"] == "openid profile", tok
    consent = idp.db.consents.find_one({"client_id": rp.client_id})
    assert set(consent["scopes"]) == {"openid", "profile"}, consent


def test_core_3_1_2_1_openid_still_required_and_refresh_not_widened(idp, user, rp):
    res = rp.follow(rp.authorize_url(scope="profile address", state="u2"))
    assert res.params["error"] == "invalid_scope" and res.params["state"] == "u2", res.params
    tok = rp.tokens(scope="openid offline_access")
    r = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], scope="openid address")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
