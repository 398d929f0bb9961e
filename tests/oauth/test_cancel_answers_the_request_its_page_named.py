""""Cancel and return to <app>" answers the request its page was shown for, with ``access_denied``, even when
another tab of the same browser started another application's request since (one is kept per session): before,
the cancelled request was started again as if its session had ended (its page shown once more, the other tab's
request dropped), and Cancel had to be pressed twice."""
from __future__ import annotations

from support.html_forms import form_data, forms

from .conftest import RP, RP_CALLBACK, register_client


def test_cancel_answers_the_request_of_its_page_not_the_other_tabs(idp, rp, user):
    other_doc, other_secret = register_client(idp.db, idp.config, "Other App", [RP_CALLBACK])
    other = RP(idp, other_doc["client_id"], other_secret)
    other.browser = rp.browser  # the same browser
    page_x = rp.follow(rp.authorize_url(state="sx"))  # tab A: the login page for Example RP
    page_y = other.follow(other.authorize_url(state="sy"))  # tab B (same browser): another app's request
    assert "Other App" in page_y.response.text

    (cancel,) = [f for f in forms(page_x.response.text) if f["action"] == "/authorize/cancel"]
    done = rp.follow(idp.url + "/authorize/cancel", "POST", form_data(cancel))
    assert done.location and done.location.startswith(RP_CALLBACK + "?"), done.response.text[:300]
    assert done.params["error"] == "access_denied" and done.params["state"] == "sx"
    assert idp.db.auth_codes.count_documents({}) == 0
