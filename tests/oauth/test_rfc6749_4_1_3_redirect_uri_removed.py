"""RFC 6749 4.1.3: the token request's redirect_uri must be the one the code was issued for — and that URI must
still be registered. An operator removes a redirect URI when its site is lost (a domain lapsed, a host taken
over); a code already delivered there, or delivered by another instance whose copy of the client was a few
seconds old, must not be redeemable after the removal."""
from __future__ import annotations

from .conftest import RP_CALLBACK


def test_a_code_issued_to_a_redirect_uri_removed_since_is_refused(idp, user, rp):
    from idp.oauth import clients
    res, verifier = rp.sign_in_for_code()
    clients.update_client(idp.db, rp.client_id, redirect_uris=["https://rp.example.net/new-callback"])
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert idp.db.tokens.count_documents({"client_id": rp.client_id}) == 0
    # refused before it was consumed: registered again, the URI's code is its holder's once more
    clients.update_client(idp.db, rp.client_id, redirect_uris=[RP_CALLBACK])
    assert rp.redeem(res.params["code"], verifier).status_code == 200


def test_a_code_whose_redirect_uri_stays_registered_is_redeemed(idp, user, rp):
    from idp.oauth import clients
    res, verifier = rp.sign_in_for_code()
    clients.update_client(idp.db, rp.client_id, redirect_uris=[RP_CALLBACK, "https://rp.example.net/other"])
    r = rp.redeem(res.params["code"], verifier)
    assert r.status_code == 200 and r.json()["id_token"], r.text
