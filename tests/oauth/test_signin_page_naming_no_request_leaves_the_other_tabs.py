"""One authorization request is pending per browser session. A sign-in page that named no request (tab B: the
account pages sent the browser to sign in, an administrator's face step-up) may be answered after another tab of
the same browser (tab A) started an application's request: the password, the face check and the recovery code of
tab B end where its page meant (the account page, the admin page), never with a code for, nor at the consent page
of, the application tab B did not name; tab A's request is set aside, not answered, and tab A's pages (which name
it) still complete it for the application."""
from __future__ import annotations

import pytest

from urllib.parse import urlencode

from support.html_forms import form_data, forms
from support.oidc import CALLBACK, RelyingParty, UserAgent, enrolled_agent

from .conftest import PASSWORD


def _app(server, face_policy: str = "required") -> RelyingParty:
    return RelyingParty.register(server, server.db, server.config, "App X", [CALLBACK], face_policy=face_policy,
                                 pkce=True, defaults={"scope": "openid", "state": "App X", "nonce": "n"})


def _token(page) -> str:
    """The request a page names (``signin_request``, as its forms or its capture send it; "" for none)."""
    import re
    m = re.search(r'(?:name="signin_request" value|data-signin-request)="([^"]*)"', page.text)
    return m.group(1) if m else ""


def _link(page, text: str) -> str:
    """Where the page's link saying ``text`` leads (the last one)."""
    import html
    import re
    found = re.findall(r'<a [^>]*href="([^"]+)"[^>]*>' + re.escape(text) + "</a>", page.text)
    assert found, (page.url, page.text[:300])
    return html.unescape(found[-1])


def _restarted_for_the_app(server, app: RelyingParty, b: UserAgent, token: str, verifier: str) -> None:
    """Tab A's request, named by its page's ``token`` (its PKCE ``verifier``), was not answered: it goes on (at
    the authorization endpoint, as a page of an ended session starts it) to a code for the application."""
    assert token
    app.verifier = verifier
    page, loc = b.go("/authorize/restart?" + urlencode({"signin_request": token}))
    claims = _code_for(app, b, page, loc)
    assert claims["aud"] == app.client_id


def _post(b: UserAgent, page, action: str, **values):
    """Post the page's form for ``action`` as a browser does: its hidden fields with ``values``."""
    (form,) = [f for f in forms(page.text) if f["action"] == action]
    return b.go(action, "POST", form_data(form, **values))


def _code_for(app: RelyingParty, b: UserAgent, page, loc) -> dict:
    """The redirect ``loc`` to ``app`` (after its consent page ``page`` when shown): its ID token's claims."""
    loc = loc or b.consent_and_code(page)
    assert loc and loc.startswith(CALLBACK) and "state=App+X" in loc, (loc, page.url, page.text[:300])
    code = dict(p.split("=", 1) for p in loc.split("?", 1)[1].split("&"))["code"]
    return app.id_token_claims(code)


def _on_account_page(server, app: RelyingParty, page, loc) -> None:
    """Tab B ended on the account page, and ``app`` got no code."""
    assert loc is None, loc  # no redirect to the application
    assert page.url == server.url + "/account", (page.url, page.text[:300])
    assert "/authorize/consent" not in page.text
    assert server.db.auth_codes.count_documents({"client_id": app.client_id}) == 0


@pytest.mark.slow
@pytest.mark.parametrize("a_starts", ["before_b_password", "before_b_face_check"])
def test_account_signin_ends_on_the_account_page_and_the_other_tabs_request_completes(face_idp, people, a_starts):
    enrolled_agent(face_idp, people)  # (in a browser of alice's own: the tabs below start signed out)
    app = _app(face_idp)
    b = UserAgent(face_idp.url)
    login_b, _ = b.go("/account")  # tab B: the account pages send the browser to sign in, naming no request
    assert login_b.url.endswith("/login") and "App X" not in login_b.text, login_b.url

    if a_starts == "before_b_password":
        page_a, _ = b.go(app.authorize_url())  # tab A: the application's request, at the password page
        assert page_a.url.endswith("/login") and "App X" in page_a.text, page_a.url
    face_b, _ = _post(b, login_b, "/login", username="alice", password=PASSWORD)  # tab B's password
    assert face_b.url.endswith("/face/verify"), face_b.url
    if a_starts == "before_b_face_check":
        page_a, _ = b.go(app.authorize_url())  # tab A: the session is at the face step, so its face page
        assert page_a.url.endswith("/face/verify") and 'data-signin-request=""' not in page_a.text, page_a.url

    result = b.capture(face_b, "verify", people["alice"][5:8])  # tab B's face check
    assert result["ok"], result
    page, loc = b.go(result["redirect"])
    _on_account_page(face_idp, app, page, loc)

    # tab A: its page still completes its request for the application
    if a_starts == "before_b_password":
        page_a, loc = _post(b, page_a, "/login", username="alice", password=PASSWORD)
        assert loc is None and page_a.url.endswith("/face/verify"), (loc, page_a.url)
    result = b.capture(page_a, "verify", people["alice"][5:8])
    assert result["ok"], result
    assert f"client_id={app.client_id}" in result["redirect"], result["redirect"]
    page, loc = b.go(result["redirect"])
    claims = _code_for(app, b, page, loc)
    assert claims["aud"] == app.client_id and claims["amr"] == ["pwd", "face"]


@pytest.mark.slow
def test_a_recovery_code_of_the_account_signin_ends_on_the_account_page(face_idp, people):
    _, codes = enrolled_agent(face_idp, people)
    app = _app(face_idp, "optional")  # a recovery code is enough for it
    b = UserAgent(face_idp.url)
    login_b, _ = b.go("/account")  # tab B: the account sign-in
    face_b, _ = _post(b, login_b, "/login", username="alice", password=PASSWORD)
    assert face_b.url.endswith("/face/verify"), face_b.url
    page_a, _ = b.go(app.authorize_url())  # tab A: the application's request (its face page: password done)
    assert page_a.url.endswith("/face/verify"), page_a.url
    token_a, verifier_a = _token(page_a), app.verifier
    recover_b, _ = b.go(_link(face_b, "Use a recovery code"))  # tab B's face page's link
    assert _token(recover_b) == ""
    page_a1, _ = b.go(app.authorize_url())  # tab A: the application asks again before tab B's code
    assert page_a1.url.endswith("/face/verify"), page_a1.url
    verifier_a1 = app.verifier

    page, loc = _post(b, recover_b, "/face/recover", code=codes[0])  # tab B's recovery code
    assert loc is None and page.url.endswith("/face/enroll"), (loc, page.url)
    assert _token(page) == ""  # enrolling again, for the account pages
    result = b.capture(page, "enroll", people["alice"][:5])
    assert result["ok"], result
    page, _ = b.go(result["redirect"])  # the enrollment's end: its Continue link goes on with the sign-in
    page_a2, _ = b.go(app.authorize_url())  # tab A: the application asks again before tab B continues
    assert "/authorize/consent" in page_a2.text, page_a2.url
    verifier_a2 = app.verifier
    page, loc = b.go(_link(page, "Continue"))
    _on_account_page(face_idp, app, page, loc)
    _restarted_for_the_app(face_idp, app, b, token_a, verifier_a)  # tab A's requests: set aside, not answered
    _restarted_for_the_app(face_idp, app, b, _token(page_a1), verifier_a1)
    _restarted_for_the_app(face_idp, app, b, _token(page_a2), verifier_a2)


@pytest.mark.slow
def test_an_admin_face_step_up_ends_on_the_admin_page(face_idp, people):
    from idp.accounts.users import create_user
    create_user(face_idp.db, "root", "root@example.org", PASSWORD, is_admin=True)  # no face yet: password only
    app = _app(face_idp, "optional")
    b = UserAgent(face_idp.url)
    page, _ = b.go("/login")
    page, _ = b.submit(page, "/login", {"username": "root", "password": PASSWORD})
    assert page.url.endswith("/account"), page.url
    page_a, _ = b.go(app.authorize_url())  # tab A: the application's request, at its consent page
    assert "/authorize/consent" in page_a.text, page_a.url
    token_a, verifier_a = _token(page_a), app.verifier

    page, _ = b.go("/admin/clients/")  # tab B: the administration pages need the face: the step-up
    assert page.url.endswith("/face/enroll"), page.url
    assert _token(page) == ""
    page, _ = _post(b, page, "/face/consent", consent="yes")
    assert b.capture(page, "enroll", people["alice"][:5])["ok"]
    page, _ = b.go("/face/continue")
    assert page.url.endswith("/face/verify"), page.url
    result = b.capture(page, "verify", people["alice"][5:8])
    assert result["ok"] and result["redirect"] == "/admin/clients/", result
    assert face_idp.db.auth_codes.count_documents({"client_id": app.client_id}) == 0
    _restarted_for_the_app(face_idp, app, b, token_a, verifier_a)
