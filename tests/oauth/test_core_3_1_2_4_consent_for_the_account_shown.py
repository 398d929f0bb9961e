"""OpenID Connect Core 3.1.2.4: the consent is the End-User's, for the account the page showed. The consent and
account choice pages carry the account they were shown for; when another account signed in to the browser
meanwhile (on the login page in another window), an answer posted from the older page gives nothing for the
account now signed in - no code, no consent on record, no choice - and the request's page is shown again, for
that account. Before, "Allow" on a page saying "signed in as alice" issued bob's code and recorded bob's consent."""
from __future__ import annotations

import re

from support.oidc import account_from, jwt_claims

from .conftest import PASSWORD, RP_CALLBACK, csrf_from

from idp.oauth.views import ACCOUNT_CHANGED


def _bob_signs_in_in_another_window(idp, rp):
    from idp.accounts.users import create_user
    create_user(idp.db, "bob", "bob@example.org", PASSWORD)
    other = rp.follow(idp.url + "/login")
    return rp.login(other, username="bob", password=PASSWORD)


def _post(rp, path: str, html: str, **fields):
    rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
    return rp.follow(f"{rp.url}{path}", "POST", {"csrf_token": csrf_from(html), "rid": rid,
                                                  "account": account_from(html), **fields})


def test_allow_on_a_page_shown_for_another_account_gives_no_code(idp, user, rp):
    alices = rp.login(rp.follow(rp.authorize_url(prompt="consent", state="s1")))
    assert "signed in as <strong>alice</strong>" in alices.response.text
    bobs = _bob_signs_in_in_another_window(idp, rp)
    assert "signed in as <strong>bob</strong>" in bobs.response.text, bobs.response.text[:300]

    again = _post(rp, "/authorize/consent", alices.response.text, decision="allow")
    assert again.location is None, again.params
    assert ACCOUNT_CHANGED in again.response.text and "signed in as <strong>bob</strong>" in again.response.text
    assert idp.db.auth_codes.count_documents({}) == 0 and idp.db.consents.count_documents({}) == 0
    done = rp.consent(again)  # bob answers his own page
    assert done.location.startswith(RP_CALLBACK) and done.params["state"] == "s1"
    r = rp.redeem(done.params["code"], None)
    assert jwt_claims(r.json()["id_token"])["sub"] != user["_id"]


def test_continue_on_a_choice_shown_for_another_account_is_no_choice(idp, user, rp):
    rp.tokens()  # alice signed in, consent on record
    alices = rp.follow(rp.authorize_url(prompt="select_account", state="s1"))
    assert "Continue as alice" in alices.response.text
    _bob_signs_in_in_another_window(idp, rp)
    codes = idp.db.auth_codes.count_documents({})
    again = _post(rp, "/authorize/account", alices.response.text, choice="continue")
    assert again.location is None, again.params
    assert ACCOUNT_CHANGED in again.response.text and idp.db.auth_codes.count_documents({}) == codes


def test_an_unknown_choice_is_refused(idp, user, rp):
    rp.tokens()
    page = rp.follow(rp.authorize_url(prompt="select_account"))
    codes = idp.db.auth_codes.count_documents({})
    res = _post(rp, "/authorize/account", page.response.text, choice="whatever")
    assert res.location is None and res.response.status_code == 400
    assert idp.db.auth_codes.count_documents({}) == codes
