"""OpenID Connect RP-Initiated Logout 1.0 §2: an ``id_token_hint`` names the session the relying party wants
ended (its ``sid``). An ID token of an earlier sign-in of the same account - one any application the user ever
used still holds - is no hint for the session the browser has now: the sign-out asks the user first instead of
ending it at once and sending the browser to the client's URI."""
from __future__ import annotations

from .conftest import RP_LOGGED_OUT, csrf_from


def _sign_out_with(rp, idp, hint: str):
    return rp.follow(f"{idp.url}/end-session?id_token_hint={hint}&post_logout_redirect_uri={RP_LOGGED_OUT}"
                     f"&state=s1")


def _confirm(rp, idp, page):
    form = {"csrf_token": csrf_from(page.response.text), "confirm": "yes", "client_id": rp.client_id,
            "post_logout_redirect_uri": RP_LOGGED_OUT, "state": "s1"}
    return rp.follow(f"{idp.url}/end-session", "POST", form)


def test_an_id_token_of_an_earlier_sign_in_asks_before_ending_the_current_one(idp, user, rp):
    old = rp.tokens()["id_token"]
    assert _confirm(rp, idp, rp.follow(f"{idp.url}/end-session?client_id={rp.client_id}")).response is not None
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0
    current = rp.tokens()["id_token"]  # signed in again: a new sign-in, a new sid
    page = _sign_out_with(rp, idp, old)
    assert page.location is None and 'name="confirm"' in page.response.text
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1  # nothing ended yet
    # the current sign-in's own ID token still ends it at once
    done = _sign_out_with(rp, idp, current)
    assert done.location == RP_LOGGED_OUT + "?state=s1"
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0
