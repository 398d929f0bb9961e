"""RFC 9700 §4.11.2, the authorization server as open redirector: a client registered through dynamic client
registration (RFC 7591) chooses its own redirect URI, so an authorization request made to fail on purpose (a
scope it does not have, an unsupported response_type, a malformed parameter) must not send the user's browser
there by itself. The error is shown at the IdP with a button the user may press (carrying the same error
response); an operator's client still gets its errors redirected, and so does a self-registered client the
signed-in user has already authorized. The answer to prompt=none that interaction is needed goes back to
every client (OpenID Connect Core 3.1.2.6: a relying party's silent sign-in waits for it)."""
from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from oauth.conftest import PASSWORD, RP, RP_CALLBACK, UserAgent, register_client
from oauth.conftest import cheap_password_hashing, make_server  # noqa: F401  (fixtures)

TOKEN = "initial-access-token-0123456789abcdef"
EVIL = "https://evil.example/landing"


@pytest.fixture
def idp(make_server):
    """The provider with dynamic registration on, and the account "alice"."""
    from idp.accounts.users import create_user
    server = make_server(registration_access_token=TOKEN)
    create_user(server.db, "alice", "alice@example.org", PASSWORD)
    return server


def _self_registered(idp, **metadata) -> RP:
    r = requests.post(f"{idp.url}/oauth/register", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"client_name": "Look-alike app", "redirect_uris": [EVIL],
                            "scope": "openid profile email", **metadata})
    assert r.status_code == 201, r.text
    reg = r.json()
    from idp.oauth.clients import update_client
    update_client(idp.db, reg["client_id"], face_policy="optional")  # this server has face sign-in off
    return RP(idp, reg["client_id"], reg.get("client_secret"), redirect_uri=EVIL)


def _assert_shown_not_redirected(r: requests.Response, error: str, state: str) -> str:
    """The page instead of the redirect; returns the button's link."""
    assert r.status_code == 400 and "Location" not in r.headers, (r.status_code, r.headers.get("Location"))
    assert r.headers["Content-Type"].startswith("text/html") and "<script" not in r.text.split("</main>")[0]
    assert "https://evil.example" in r.text and "Look-alike app" in r.text
    link = re.search(r'<a class="button" rel="noreferrer" href="([^"]+)"', r.text)
    assert link, r.text[:800]
    href = unescape(link.group(1))
    assert href.startswith(EVIL + "?") and f"error={error}" in href and f"state={state}" in href, href
    return href


def test_errors_of_a_self_registered_client_are_shown_not_redirected(idp):
    rp = _self_registered(idp)
    for params, error in (({"scope": "admin"}, "invalid_scope"),
                          ({"scope": "profile"}, "invalid_scope"),
                          ({"response_type": "token"}, "unsupported_response_type"),
                          ({"max_age": "soon"}, "invalid_request"),
                          ({"prompt": "none", "scope": "admin"}, "invalid_scope")):
        r = requests.get(rp.authorize_url(state="s-1", **params), allow_redirects=False)
        _assert_shown_not_redirected(r, error, "s-1")


def test_prompt_none_gets_its_answer_at_any_clients_redirect_uri(idp):
    """OpenID Connect Core 3.1.2.6: a silent sign-in (prompt=none, often in a hidden frame) must get its
    login_required back, whoever registered the client; a page would leave the relying party waiting."""
    rp = _self_registered(idp)
    r = requests.get(rp.authorize_url(state="s-6", prompt="none"), allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(EVIL + "?"), (r.status_code, r.text[:300])
    assert "error=login_required" in r.headers["Location"] and "state=s-6" in r.headers["Location"]


def test_form_post_error_is_a_form_the_user_submits(idp):
    rp = _self_registered(idp)
    r = requests.get(rp.authorize_url(state="s-2", scope="admin", response_mode="form_post"),
                     allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    assert "<script" not in r.text.split("</main>")[0] and "document.forms" not in r.text  # not auto-submitted
    form = re.search(r'<form method="post" action="([^"]+)"', r.text)
    assert form and unescape(form.group(1)) == EVIL
    assert 'name="error" value="invalid_scope"' in r.text and 'name="state" value="s-2"' in r.text


def test_operator_clients_keep_their_error_redirects(idp):
    doc, secret = register_client(idp.db, idp.config, "Operator app", [RP_CALLBACK], scope="openid profile")
    rp = RP(idp, doc["client_id"], secret)
    for params, error in (({"scope": "admin"}, "invalid_scope"), ({"response_type": "token"},
                          "unsupported_response_type"), ({"prompt": "none"}, "login_required")):
        res = rp.follow(rp.authorize_url(state="s-3", **params))
        assert res.location and res.location.startswith(RP_CALLBACK), res.response.text[:300]
        assert res.params["error"] == error and res.params["state"] == "s-3"


def test_a_self_registered_client_the_user_authorized_gets_prompt_none_errors(idp):
    """The signed-in user allowed this application before: its silent re-authentication gets its
    answer (consent_required for scopes not allowed yet) at its redirect URI as usual."""
    rp = _self_registered(idp)
    res, _ = rp.sign_in_for_code(scope="openid profile")
    assert res.location and res.params.get("code"), res.response.text[:300]
    quiet = rp.follow(rp.authorize_url(prompt="none", scope="openid profile email", state="s-4"))
    assert quiet.location and quiet.location.startswith(EVIL), quiet.response.text[:300]
    assert quiet.params["error"] == "consent_required" and quiet.params["state"] == "s-4"
    # another browser, not signed in, that the client sends a scope it does not have: shown, not redirected
    stranger = UserAgent(idp.url)
    r = stranger.s.get(rp.authorize_url(prompt="none", scope="admin", state="s-5"), allow_redirects=False)
    _assert_shown_not_redirected(r, "invalid_scope", "s-5")


EVIL_LOGGED_OUT = "https://evil.example/bye"


def test_end_session_does_not_send_a_stranger_to_a_self_registered_clients_site(idp):
    """RP-Initiated Logout is the same open redirector unless guarded: the registrant signs in to its own
    application for an ID token of its own, and a link with it as id_token_hint sends anyone not signed in
    (no session whose account could differ from the hint's) to its post_logout_redirect_uri. For a
    self-registered client that takes the user's confirmation; the RP's own user, signed in as the hint's
    subject, is still signed out and sent back at once."""
    rp = _self_registered(idp, post_logout_redirect_uris=[EVIL_LOGGED_OUT])
    own = rp.tokens()  # the registrant's own sign-in ("alice") at its own application
    link = (f"{idp.url}/end-session?id_token_hint={own['id_token']}"
            f"&post_logout_redirect_uri={EVIL_LOGGED_OUT}&state=x")
    stranger = UserAgent(idp.url)
    r = stranger.s.get(link, allow_redirects=False)
    assert r.status_code == 200 and "Location" not in r.headers, (r.status_code, r.headers.get("Location"))
    assert 'name="confirm"' in r.text and "Look-alike app" in r.text
    assert "taken to <strong>https://evil.example</strong>" in r.text  # where confirming leads, named
    # the stranger's own choice: after confirming, back to the application (the link named no client_id)
    from oauth.conftest import csrf_from
    done = stranger.s.post(f"{idp.url}/end-session", allow_redirects=False, data={
        "csrf_token": csrf_from(r.text), "confirm": "yes", **{k: unescape(v) for k, v in re.findall(
            r'<input type="hidden" name="([^"]+)" value="([^"]*)">', r.text.split('name="csrf_token"')[1])}})
    assert done.status_code == 302 and done.headers["Location"] == EVIL_LOGGED_OUT + "?state=x", done.text[:300]
    # the relying party's own user: signed out and sent back without a question
    res = rp.follow(link)
    assert res.location == EVIL_LOGGED_OUT + "?state=x", (res.response.status_code, res.response.text[:300])
    assert idp.db.sessions.count_documents({"data.auth.uid": {"$exists": True, "$ne": None}}) == 0


def test_end_session_of_an_operator_client_keeps_its_redirect_without_a_session(idp):
    """An operator's client is trusted: its logout with a valid hint redirects even when this browser's
    IdP session has already ended (the usual case of an RP signing out after the IdP session expired)."""
    from oauth.conftest import RP_LOGGED_OUT
    doc, secret = register_client(idp.db, idp.config, "Operator app", [RP_CALLBACK], scope="openid profile",
                                  post_logout_redirect_uris=[RP_LOGGED_OUT])
    rp = RP(idp, doc["client_id"], secret)
    own = rp.tokens()
    stranger = UserAgent(idp.url)
    r = stranger.s.get(f"{idp.url}/end-session?id_token_hint={own['id_token']}"
                       f"&post_logout_redirect_uri={RP_LOGGED_OUT}&state=y", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == RP_LOGGED_OUT + "?state=y"
