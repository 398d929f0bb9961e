"""OpenID Connect Core 3.1.2.1, ``prompt=select_account``: the OP SHOULD let the user choose the account; if it
cannot obtain a choice made by the user it MUST return an error. The value used to be accepted and ignored: a browser
signed in to one account got a code for it at once, so a user who wanted another account could not pick one. Now a
browser signed in is shown a page to continue as that account or use another one (then the login page); a browser
signed in to no account, or a request that needs a new login anyway, gets the login page, where any account may sign
in; ``prompt=none`` with it is an error (``prompt=none`` with any other value)."""
from __future__ import annotations

import re

import requests

from support.oidc import account_from, jwt_claims

from .conftest import PASSWORD, RP_CALLBACK, csrf_from


def _choose(rp, page, choice: str):
    rid = re.search(r'name="rid" value="([^"]+)"', page.response.text).group(1)
    return rp.follow(f"{rp.url}/authorize/account", "POST",
                     {"csrf_token": csrf_from(page.response.text), "rid": rid, "choice": choice,
                      "account": account_from(page.response.text)})


def _is_choice_page(page, username: str) -> bool:
    html = page.response.text
    return (page.location is None and "/authorize/account" in html and f"Continue as {username}" in html
            and 'value="another"' in html)


def test_a_signed_in_browser_is_asked_which_account(idp, user, rp):
    rp.tokens()  # alice signed in, consent on record
    page = rp.follow(rp.authorize_url(prompt="select_account", state="s1"))
    assert _is_choice_page(page, "alice"), (page.location, page.response.text[:300])
    done = _choose(rp, page, "continue")
    assert done.location and done.location.startswith(RP_CALLBACK) and done.params["state"] == "s1", done.params
    r = rp.redeem(done.params["code"], None)
    assert r.status_code == 200 and jwt_claims(r.json()["id_token"])["sub"] == user["_id"]


def test_using_another_account_goes_to_the_login_page(idp, user, rp):
    from idp.accounts.users import create_user
    bob = create_user(idp.db, "bob", "bob@example.org", PASSWORD)
    rp.tokens()  # alice signed in
    page = rp.follow(rp.authorize_url(prompt="select_account"))
    assert _is_choice_page(page, "alice")
    login = _choose(rp, page, "another")
    assert login.location is None and "/login" in login.response.url
    res = rp.login(login, username="bob")
    if res.location is None:
        res = rp.consent(res)
    assert res.location.startswith(RP_CALLBACK) and "code" in res.params, res.params
    r = rp.redeem(res.params["code"], None)
    assert r.status_code == 200 and jwt_claims(r.json()["id_token"])["sub"] == bob["_id"]
    # alice's sign-in ended: the browser is bob's
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0


def test_the_same_account_signing_in_again_on_the_login_page_is_the_choice(idp, user, rp):
    rp.tokens()
    page = rp.follow(rp.authorize_url(prompt="select_account"))
    res = rp.login(_choose(rp, page, "another"), username="alice")
    assert res.location and "code" in res.params, res.response.text[:300]


def test_a_browser_signed_in_to_no_account_gets_the_login_page_only(idp, user, rp):
    page = rp.follow(rp.authorize_url(prompt="select_account"))
    assert page.location is None and "/login" in page.response.url
    res = rp.login(page)
    if res.location is None:
        assert "/authorize/account" not in res.response.text  # the login was the choice: no second question
        res = rp.consent(res)
    assert res.location.startswith(RP_CALLBACK) and "code" in res.params, res.params


def test_the_choice_holds_for_its_request_only(idp, user, rp):
    rp.tokens()
    page = rp.follow(rp.authorize_url(prompt="select_account"))
    assert _choose(rp, page, "continue").location
    assert _is_choice_page(rp.follow(rp.authorize_url(prompt="select_account")), "alice")
    # and without the prompt, no question
    assert "code" in rp.follow(rp.authorize_url()).params


def test_prompt_none_with_select_account_is_an_error(idp, user, rp):
    rp.tokens()
    res = rp.follow(rp.authorize_url(prompt="none select_account", state="s1"))
    assert res.location and res.location.startswith(RP_CALLBACK)
    assert res.params.get("error") == "invalid_request" and "code" not in res.params and res.params["state"] == "s1"


def test_discovery_lists_select_account(idp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert "select_account" in meta["prompt_values_supported"]
