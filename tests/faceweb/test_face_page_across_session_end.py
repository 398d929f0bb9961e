"""The face step's page left open while its session ends (expired, signed out in another tab): its calls are
refused (CSRF, sign-in needed) and face-capture.js offers to sign in again at the page's ``data-signin-url``,
which starts the application's request again rather than the bare sign-in page that lost it."""
from __future__ import annotations

import html
import re
from urllib.parse import urlencode

from support.oidc import CALLBACK, register_client

from .conftest import CSRF_INPUT, CSRF_META, PASSWORD, Browser


def _face_page_of_an_apps_sign_in(app, b, state: str):
    """``b`` signs in with its password for a face-required client's request (``state``): the face page and the
    page's ``data-signin-url``."""
    from idp import get_db
    from idp.parsing import fits_request_line
    doc, _ = register_client(get_db(app), app.config["IDP"], "Face App", [CALLBACK], face_policy="required")
    query = urlencode({"response_type": "code", "client_id": doc["client_id"], "redirect_uri": CALLBACK,
                       "scope": "openid", "state": state})
    assert fits_request_line(f"/authorize?{query}")  # the request itself reaches the server
    r = b.client.get(f"/authorize?{query}")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    page = b.client.get("/login")
    r = b.client.post("/login", data={"csrf_token": CSRF_INPUT.search(page.text).group(1), "username": "alice",
                                       "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/verify"), r.headers.get("Location")
    face = b.client.get("/face/verify")
    return face, html.unescape(re.search(r'data-signin-url="([^"]+)"', face.text).group(1))


def test_the_face_page_of_an_apps_sign_in_sends_an_ended_session_back_into_the_request(app, enrolled):
    from idp import get_db
    b = Browser(app)
    face, url = _face_page_of_an_apps_sign_in(app, b, "st8")
    assert url.startswith("/authorize/restart?signin_request=")

    get_db(app).sessions.delete_many({})  # the session ends while the page is open
    r = b.client.post("/api/face/verify/captures", json={}, headers={
        "X-CSRFToken": CSRF_META.search(face.text).group(1), "Accept": "application/json"})
    assert r.status_code == 400 and r.get_json()["error"] == "csrf_failed"  # what the page's script reacts to

    r = b.client.get(url)
    assert r.status_code == 302 and r.headers["Location"].startswith("/authorize?")
    assert "state=st8" in r.headers["Location"]
    r = b.client.get(r.headers["Location"])
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    login = b.client.get("/login")
    assert "Face App" in login.text and "was not used" in login.text


def test_the_face_page_without_an_apps_request_signs_in_at_the_sign_in_page(app, enrolled):
    b = Browser(app)
    b.login("alice")
    face = b.client.get("/face/verify")
    assert 'id="capture"' in face.text and 'data-signin-url="/login"' in face.text, face.text[:500]


def test_a_request_too_large_for_a_url_is_not_offered_as_a_restart_link(app, enrolled):
    """A request that (nearly) filled the server's request line: signed into the page's restart link it is
    longer than the server accepts (``idp.parsing.MAX_REQUEST_LINE``: a 400 before the app), so the page falls
    back to the sign-in page."""
    import secrets

    from idp.parsing import fits_request_line
    _, url = _face_page_of_an_apps_sign_in(app, Browser(app), secrets.token_urlsafe(5950))
    assert fits_request_line(url) and url == "/login", len(url)
