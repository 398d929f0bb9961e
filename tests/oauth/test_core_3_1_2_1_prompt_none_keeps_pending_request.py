"""OpenID Connect Core 3.1.2.1, ``prompt=none``: a silent request is answered on its own and touches nothing
else. A relying party's cross-site ``prompt=none`` navigation (or any other request answered at once: an error,
a silent code) must not end the sign-in the user has half finished in another tab for another authorization
request: that request stays pending in the session and is completed after the password (and consent)."""
from __future__ import annotations

import re

from .conftest import RP_CALLBACK, register_client


def test_prompt_none_error_leaves_another_tabs_sign_in_pending(idp, user, rp):
    tab = rp.follow(rp.authorize_url(state="tab-1"))  # the login page of request "tab-1"
    assert tab.location is None and "/login" in tab.response.url
    # meanwhile, in the same browser: a silent request (not signed in yet: login_required), and a request that
    # is refused at once (an error redirected to the client)
    quiet = rp.follow(rp.authorize_url(prompt="none", state="silent"))
    assert quiet.params["error"] == "login_required" and quiet.params["state"] == "silent"
    bad = rp.follow(rp.authorize_url(scope="admin", state="bad"))
    assert bad.params["error"] == "invalid_scope" and bad.params["state"] == "bad"
    # the first tab's sign-in goes on to its own request's answer
    res = rp.login(tab)
    if res.location is None:
        res = rp.consent(res)
    assert res.location and res.location.startswith(RP_CALLBACK), res.response.url
    assert res.params["state"] == "tab-1" and res.params.get("code"), res.params


def test_silent_code_leaves_another_tabs_consent_pending(idp, user, rp):
    rp.tokens(scope="openid profile")  # signed in; consent for these scopes remembered
    other_doc, other_secret = register_client(idp.db, idp.config, "Other app", [RP_CALLBACK], scope="openid email")
    other = type(rp)(idp, other_doc["client_id"], other_secret)
    other.browser = rp.browser  # the same browser, another tab
    page = other.follow(other.authorize_url(state="tab-2", scope="openid email"))
    assert page.location is None and '/authorize/consent"' in page.response.text  # waiting for "Allow"
    quiet = rp.follow(rp.authorize_url(prompt="none", scope="openid profile", state="silent"))
    assert quiet.params.get("code") and quiet.params["state"] == "silent", quiet.params
    res = other.consent(page)
    assert res.location and res.params["state"] == "tab-2" and res.params.get("code"), \
        re.sub(r"\s+", " ", res.response.text)[:300]
