"""Rotating IDP_SECRET_KEY and IDP_TEMPLATE_KEY with the old values retired loses nobody's sign-in: an
enrolled face still verifies, recovery codes issued before still work, a form opened before still posts,
freshly issued codes still show. Once the old secret key is dropped, what it alone signs or keys is
refused (CSRF tokens, recovery codes); sessions and emailed links never depended on it (server-side
random ids), so they survive. Real app, real SecantusDB, real face engine and photos."""
from __future__ import annotations

import re
import secrets

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import CSRF_INPUT, PASSWORD, Browser

COOKIE = "deepauth_session"


def _moved(browser: Browser, app) -> Browser:
    """The same browser (its session cookie and the token of the page it has open) talking to ``app``."""
    other = Browser(app)
    other.client.set_cookie(COOKIE, browser.client.get_cookie(COOKIE).value)
    other.csrf = browser.csrf
    return other


def _open_login_form(app) -> tuple[Browser, str]:
    b = Browser(app)
    token = CSRF_INPUT.search(b.get("/login").text).group(1)
    return b, token


def _codes(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", html)


def _recover(app, code: str):
    b = Browser(app)
    b.login("alice")
    return b.form("/face/recover", {"code": code})


def test_retired_keys_keep_face_sign_in_recovery_codes_and_open_forms(app, make_app, enrolled, people):
    user, owner = enrolled
    old = app.config["IDP"]
    login_page, login_token = _open_login_form(app)  # a sign-in form left open across the rotation
    rotated = make_app(secret_key=secrets.token_hex(32), secret_keys_retired=old.secret_key,
                       template_key=secrets.token_hex(32), template_keys_retired=old.template_key)

    # the codes shown once after enrollment were stashed under the old secret key
    codes = _codes(_moved(owner, rotated).get("/face/enroll/done").text)
    assert len(codes) == 10

    # the open form posts; the template sealed under the old template key verifies
    b = _moved(login_page, rotated)
    r = b.client.post("/login", data={"csrf_token": login_token, "username": "alice", "password": PASSWORD})
    assert r.status_code == 302, r.text[:300]
    result = b.capture("verify", people["alice"][5:8]).get_json()
    assert result["ok"], result
    from idp.face import TemplateCipher
    assert get_db(app).face_templates.find_one({"_id": user["_id"]})["key_id"] == TemplateCipher(old.template_key).key_id

    # a recovery code issued under the old secret key is accepted
    r = _recover(rotated, codes[0])
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/enroll")


def test_without_the_retired_secret_key_old_tokens_and_codes_are_refused_sessions_survive(app, make_app, enrolled):
    from idp.accounts import emaillinks
    user, owner = enrolled
    old = app.config["IDP"]
    codes = _codes(owner.get("/face/enroll/done").text)
    login_page, login_token = _open_login_form(app)
    link = emaillinks.issue(get_db(app), emaillinks.RESET, user["_id"], user["email"],
                           password_hash=user["password_hash"])
    new_secret = secrets.token_hex(32)
    strict = make_app(secret_key=new_secret, template_key=old.template_key)

    b = _moved(login_page, strict)
    r = b.client.post("/login", data={"csrf_token": login_token, "username": "alice", "password": PASSWORD})
    assert r.status_code == 400  # the CSRF token was signed with a key no longer configured
    r = _recover(strict, codes[1])
    assert r.status_code == 400 and "not valid" in r.text
    # not tied to the secret key: the signed-in session and the emailed link
    r = _moved(owner, strict).get("/account")  # signed in, at the face step (as on the old instance)
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/verify"), r.headers.get("Location")
    assert Browser(strict).get("/account").headers["Location"].split("?")[0].endswith("/login")
    assert Browser(strict).get(f"/reset/{link}").status_code == 200

    # new tokens are signed with the new key only: an instance still on the old key alone refuses them
    fresh, token = _open_login_form(strict)
    r = _moved(fresh, app).client.post("/login", data={"csrf_token": token, "username": "alice",
                                                       "password": PASSWORD})
    assert r.status_code == 400
    # and with the old key retired, the unused code works again (it was never consumed)
    again = make_app(secret_key=new_secret, secret_keys_retired=old.secret_key, template_key=old.template_key)
    r = _recover(again, codes[1])
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/enroll")
