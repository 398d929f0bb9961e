"""One authorization request is pending per browser session. A face check page shown for one application's
request (tab A) may be answered after another tab of the same browser started another application's request
(tab B): the face check passed in tab A resumes the request its page was shown for (the page sends it with the
capture's finish), never the other tab's, so the user is not sent with a code into an application tab A did not
name."""
from __future__ import annotations

import pytest

from support.oidc import CALLBACK, RelyingParty, UserAgent, enrolled_agent

from .conftest import PASSWORD


def _face_rp(server, name: str) -> RelyingParty:
    return RelyingParty.register(server, server.db, server.config, name, [CALLBACK], face_policy="required",
                                 pkce=True, defaults={"scope": "openid", "state": name, "nonce": "n"})


def _enrolled_alice_on_face_page(server, people, rp: RelyingParty) -> tuple[UserAgent, object]:
    """alice signs in to ``rp`` (password, first enrollment); returns her browser and the face check page."""
    from idp.accounts.users import create_user
    from idp.faceweb.notice import NOTICE_VERSION
    create_user(server.db, "alice", "alice@example.org", PASSWORD)
    b = UserAgent(server.url)
    page, _ = b.go(rp.authorize_url())
    page, _ = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert page.url.endswith("/face/enroll"), page.url
    page, _ = b.submit(page, "/face/consent", {"consent": "yes", "notice_version": NOTICE_VERSION})
    assert b.capture(page, "enroll", people["alice"][:5])["ok"]
    page, _ = b.go("/face/continue")
    assert page.url.endswith("/face/verify"), page.url
    return b, page


@pytest.mark.slow
def test_a_face_check_resumes_the_request_its_page_was_shown_for(face_idp, people):
    app_x, app_y = _face_rp(face_idp, "App X"), _face_rp(face_idp, "App Y")
    b, page_x = _enrolled_alice_on_face_page(face_idp, people, app_x)
    page_y, _ = b.go(app_y.authorize_url())  # tab B: another application's request replaces the pending one
    assert page_y.url.endswith("/face/verify"), page_y.url

    result = b.capture(page_x, "verify", people["alice"][5:8])  # tab A's face check
    assert result["ok"], result
    assert f"client_id={app_x.client_id}" in result["redirect"], result["redirect"]
    page, loc = b.go(result["redirect"])
    loc = loc or b.consent_and_code(page)
    assert loc and loc.startswith(CALLBACK) and "state=App+X" in loc, (loc, page.text[:300])
    code = dict(p.split("=", 1) for p in loc.split("?", 1)[1].split("&"))["code"]
    claims = app_x.id_token_claims(code)
    assert claims["aud"] == app_x.client_id and claims["amr"] == ["pwd", "face"]
    assert face_idp.db.auth_codes.count_documents({"client_id": app_y.client_id}) == 0


@pytest.mark.slow
def test_a_recovery_code_resumes_the_request_its_page_was_shown_for(face_idp, people):
    b, codes = enrolled_agent(face_idp, people)
    optional = {"face_policy": "optional", "pkce": True}
    app_x = RelyingParty.register(face_idp, face_idp.db, face_idp.config, "App X", [CALLBACK], **optional,
                                  defaults={"scope": "openid", "state": "App X", "nonce": "n"})
    app_y = RelyingParty.register(face_idp, face_idp.db, face_idp.config, "App Y", [CALLBACK], **optional,
                                  defaults={"scope": "openid", "state": "App Y", "nonce": "n"})
    page, _ = b.go(app_x.authorize_url(prompt="login"))
    page, _ = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert page.url.endswith("/face/verify"), page.url
    recover_x, _ = b.go("/face/recover")  # tab A: the recovery code page, for App X
    page_y, _ = b.go(app_y.authorize_url())  # tab B: another application's request
    assert page_y.url.endswith("/face/verify"), page_y.url

    page, _ = b.submit(recover_x, "/face/recover", {"code": codes[0],
                                                    **_signin_request(recover_x.text)})
    assert page.url.endswith("/face/enroll"), page.url  # accepted; "Not now" continues the sign-in
    page, loc = b.go("/face/continue")
    loc = loc or b.consent_and_code(page)
    assert loc and loc.startswith(CALLBACK) and "state=App+X" in loc, (loc, page.text[:300])
    assert face_idp.db.auth_codes.count_documents({"client_id": app_y.client_id}) == 0


def _signin_request(html: str) -> dict:
    import re
    m = re.search(r'name="signin_request" value="([^"]+)"', html)
    assert m, "the page names no request"
    return {"signin_request": m.group(1)}
