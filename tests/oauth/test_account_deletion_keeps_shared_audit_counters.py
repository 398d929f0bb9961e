"""Deleting an account erases the repeat counters of its own audit events (``audit.record``'s ``repeat_key``
naming the account), never a counter its events share with others: an ``oauth.authentication_unmet`` event is
counted per client and network, whoever is signed in, so the counter the first signed-in request made holds
the other accounts' and the anonymous requests' events too. Deleting that account must not reset the
network's cap on the audit log (``audit`` module: a loop cannot grow the log past a few entries an hour)."""
from __future__ import annotations

import pytest
import requests

from idp import audit
from idp.accounts import users
from idp.oauth.clients import create_client
from support.fixtures import away_from_a_rate_window_edge  # noqa: F401  (fixture)

from .conftest import RP, RP_CALLBACK


@pytest.mark.usefixtures("away_from_a_rate_window_edge")  # one counter per clock hour: the three in the same one
def test_deleting_an_account_keeps_the_shared_repeat_counter_of_its_unmet_requests(idp, user, rp):
    doc, secret = create_client(idp.db, idp.config, "Face RP", [RP_CALLBACK])  # face "required": unmet here
    required = RP(idp, doc["client_id"], secret)
    rp.tokens()  # alice signs in (password only) at a face-optional client
    required.browser = rp.browser  # the same browser: its unmet request is alice's event
    res, _ = required.sign_in_for_code(state="signed-in")
    assert res.params["error"] == "unmet_authentication_requirements"
    for state in ("anon-1", "anon-2"):  # anonymous browsers of the same network: the same counter
        required.browser = requests.Session()
        res, _ = required.sign_in_for_code(state=state)
        assert res.params["error"] == "unmet_authentication_requirements"
    assert idp.db.audit_log.count_documents({"event": audit.AUTHENTICATION_UNMET}) == 3
    prefix = f"^audit:{audit.AUTHENTICATION_UNMET}:{doc['client_id']}\\|"
    (counter,) = idp.db.throttles.find({"_id": {"$regex": prefix}})
    assert counter["count"] == 3

    assert users.delete_user(idp.db, user["_id"]) is not None
    kept = idp.db.throttles.find_one({"_id": counter["_id"]})
    assert kept is not None and kept["count"] == 3, kept  # the network's count stands
