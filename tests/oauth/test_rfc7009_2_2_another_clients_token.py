"""RFC 7009 §2.1/§2.2: a client revoking a token issued to another client. Authlib answers ``invalid_grant``
(400) while an unknown token gets 200, so the answer told client A whether a string was a token (live, or ever
issued) of another client - the one place where B's refresh token could be tested without B's credentials
(B's token endpoint and introspection answer as for an unknown token). Now it is answered as an invalid token:
200, the same body, and nothing of B's is revoked. Real server over HTTP, real database."""
from __future__ import annotations

import pytest
import requests

from .conftest import RP, register_client


def _revoke(idp, rp, token: str, **extra) -> requests.Response:
    data = {"token": token, **extra}
    if not rp.secret:
        data["client_id"] = rp.client_id
    return requests.post(f"{idp.url}/oauth/revoke", data=data, auth=rp.auth())


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_another_clients_token_is_answered_as_an_unknown_one(idp, user, rp, public, kind, hint):
    doc, secret = register_client(idp.db, idp.config, "Other", public=public, scope="openid")
    other = RP(idp, doc["client_id"], secret)
    victim = rp.tokens()[kind]
    extra = {"token_type_hint": hint} if hint else {}
    unknown = _revoke(idp, other, victim[:-4] + "AAAA", **extra)
    foreign = _revoke(idp, other, victim, **extra)
    assert (foreign.status_code, foreign.content) == (unknown.status_code, unknown.content) == (200, b"{}")
    assert rp.introspect(victim)["active"] is True  # nothing of rp's was revoked
    # its own client still revokes it
    assert _revoke(idp, rp, victim, **extra).status_code == 200
    assert rp.introspect(victim) == {"active": False}


def test_a_revoked_token_of_another_client_is_answered_as_an_unknown_one(idp, user, rp):
    doc, secret = register_client(idp.db, idp.config, "Other", scope="openid")
    other = RP(idp, doc["client_id"], secret)
    victim = rp.tokens()["refresh_token"]
    assert _revoke(idp, rp, victim).status_code == 200
    r = _revoke(idp, other, victim)
    assert (r.status_code, r.content) == (200, b"{}")
