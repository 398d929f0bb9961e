"""One authorization request is pending per browser session. A sign-in page that named no request (tab B: the
account pages sent the browser to sign in) may be answered after another tab of the same browser (tab A) started
an application's request: the password and the face check of tab B end on the account page, never with a code
for, nor at the consent page of, the application tab B did not name; tab A's request is set aside, not answered,
and tab A's pages (which name it) still complete it for the application."""
from __future__ import annotations

import pytest

from support.html_forms import form_data, forms
from support.oidc import CALLBACK, RelyingParty, UserAgent

from .conftest import PASSWORD


def _enroll_alice(server, people) -> None:
    """alice, with a face template enrolled in a browser of her own (the tabs below start signed out)."""
    from idp.accounts.users import create_user
    from idp.faceweb.notice import NOTICE_VERSION
    create_user(server.db, "alice", "alice@example.org", PASSWORD)
    e = UserAgent(server.url)
    page, _ = e.go("/login")
    e.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    page, _ = e.go("/face/enroll")
    page, _ = e.submit(page, "/face/consent", {"consent": "yes", "notice_version": NOTICE_VERSION})
    assert e.capture(page, "enroll", people["alice"][:5])["ok"]


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
    assert loc is None, loc  # no redirect to the application
    assert page.url == server.url + "/account", (page.url, page.text[:300])
    assert "/authorize/consent" not in page.text
    assert server.db.auth_codes.count_documents({"client_id": app.client_id}) == 0


@pytest.mark.slow
@pytest.mark.parametrize("a_starts", ["before_b_password", "before_b_face_check"])
def test_account_signin_ends_on_the_account_page_and_the_other_tabs_request_completes(face_idp, people, a_starts):
    _enroll_alice(face_idp, people)
    app = RelyingParty.register(face_idp, face_idp.db, face_idp.config, "App X", [CALLBACK], face_policy="required",
                                pkce=True, defaults={"scope": "openid", "state": "App X", "nonce": "n"})
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
