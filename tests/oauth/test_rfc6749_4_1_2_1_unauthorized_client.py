"""RFC 6749 §4.1.2.1: a client not registered for the authorization code grant (one registered for
client_credentials only) is not authorized to request a code: the authorization endpoint answers
``unauthorized_client`` before any sign-in step. Before, the user signed in, was asked to consent (the consent
was stored) and a code was issued that the client could never redeem."""
from __future__ import annotations

from .conftest import RP, RP_CALLBACK


def test_machine_client_cannot_start_a_sign_in(idp, user):
    machine = RP.register(idp, idp.db, idp.config, "Machine", [RP_CALLBACK], scope="openid profile",
                          grant_types=["client_credentials"])
    res = machine.follow(machine.authorize_url(scope="openid profile"))
    assert res.location is not None and res.location.startswith(RP_CALLBACK), res.response.url
    assert res.params["error"] == "unauthorized_client", res.params
    assert "code" not in res.params
    assert idp.db.auth_codes.count_documents({}) == 0 and idp.db.consents.count_documents({}) == 0
    # the grant it is registered for still works
    assert machine.token(grant_type="client_credentials").status_code == 200


def test_code_clients_are_unaffected(idp, user, rp):
    assert rp.tokens()["id_token"]
