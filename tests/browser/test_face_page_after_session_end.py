"""The face step's page in Chromium once its session has ended (here: expired while the page was open): the
capture is refused (the form's CSRF token belongs to the ended session) and face-capture.js offers to sign in
again at the page's ``data-signin-url``, which starts the application's request again: the sign-in page names
the application and says why. No capture runs, so the feed is the test pattern."""
from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from support.oidc import CALLBACK, register_client

from .test_face_signin import login, path_of


def test_the_face_page_of_an_ended_session_leads_back_into_the_apps_request(no_face_feed, new_page, shots, idp_server,
                                                                             make_account, liveness):
    liveness(True, "turn_left")
    account = make_account()
    doc, _ = register_client(idp_server.db, idp_server.config, "Session End App", [CALLBACK], face_policy="required")
    page = new_page(no_face_feed)
    page.goto(idp_server.url + "/authorize?" + urlencode({
        "response_type": "code", "client_id": doc["client_id"], "redirect_uri": CALLBACK, "scope": "openid",
        "state": "s1"}))
    login(page, shots, account)
    page.wait_for_url("**/face/verify")
    (cookie,) = [c["value"] for c in page.context.cookies() if c["name"] == "deepauth_session"]
    idp_server.db.sessions.delete_one({"_id": hashlib.sha256(cookie.encode()).hexdigest()})  # the session ends

    page.click("#start-camera")
    link = page.get_by_role("link", name="Sign in again")
    link.wait_for(timeout=15_000)
    assert link.get_attribute("href").startswith("/authorize/restart?signin_request="), link.get_attribute("href")
    shots(page, "face-page-session-ended")
    link.click()
    page.wait_for_url("**/login")
    assert path_of(page.url) == "/login"
    text = page.locator("main").inner_text()
    assert "Session End App" in text and "was not used" in text, text
