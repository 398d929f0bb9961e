"""Double clicks in Chromium. The sign-in form: a double click on "Sign in" sends one post and the sign-in goes
on (before, it posted twice: two sessions, and the page the browser showed belonged to the second, whose
pending request the first had taken). The consent page: a double click on "Allow" sends one post (the page disables its buttons
once the post is under way) that still carries the clicked button's decision, and ends at the application
with the one code. With JavaScript off the double click posts twice, and the server sends both posts the
same code (tests/oauth/test_consent_double_submit.py covers the server side)."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from support.fixtures import cheap_password_hashing  # noqa: F401  (autouse here)
from support.oidc import PASSWORD, RelyingParty, register_client
from support.servers import IdPServer, LiveServer

from .conftest import NAV_TIMEOUT_MS
from .harness import CHROMIUM, CHROMIUM_ARGS, double_click



@pytest.fixture(scope="module")
def chromium(playwright_instance):
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                                  timeout=NAV_TIMEOUT_MS)
    yield browser
    browser.close()


@pytest.fixture
def idp(db, mongo_uri, tmp_path):
    from idp import create_app
    from idp.accounts.users import create_user
    from idp.config import Config
    config = Config(mongodb_uri=mongo_uri, db_name=db.name, data_dir=tmp_path, face_enabled=False,
                    extra={"auto_migrate": True, "keep_logging": True})
    server = IdPServer(create_app(config))
    create_user(server.db, "alice", "alice@example.org", PASSWORD)
    yield server
    server.stop()
    server.app.extensions["db"].client.close()


@pytest.fixture
def application():
    """The relying party's callback: a page that says where the browser arrived."""
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the application"]
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def consent_page(idp, chromium, shots, application):
    """``consent_page(javascript=True)``: a page at the consent page of a signed-in browser, and the bodies of
    the consent posts it sends."""
    callback = application.url + "/callback"
    doc, secret = register_client(idp.db, idp.config, "Example RP", [callback], scope="openid profile")
    rp = RelyingParty(idp, doc["client_id"], secret, redirect_uri=callback)
    contexts = []

    def make(javascript: bool = True):
        ctx = chromium.new_context(java_script_enabled=javascript)
        ctx.set_default_timeout(NAV_TIMEOUT_MS)
        contexts.append(ctx)
        page = shots.watch(ctx.new_page())
        page.goto(rp.authorize_url(prompt="consent", scope="openid profile", state="st-b"))
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_selector("button[value=allow]")
        shots(page, "consent")
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.post_data or "")
                if r.method == "POST" and r.url.endswith("/authorize/consent") else None)
        return page, posts, re.compile("^" + re.escape(callback + "?"))

    yield make
    for ctx in contexts:
        ctx.close()


def _params(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


CONSENT_POST = re.compile(r"/authorize/consent$")


def test_a_double_click_on_allow_posts_once_with_the_decision(idp, consent_page, shots):
    page, posts, at_callback = consent_page()
    double_click(page, "button[value=allow]", CONSENT_POST)
    page.wait_for_url(at_callback)
    shots(page, "at-the-application")
    assert len(posts) == 1, posts
    assert "decision=allow" in posts[0]
    answer = _params(page.url)
    assert answer["state"] == "st-b" and answer["code"]
    assert idp.db.auth_codes.count_documents({}) == 1


def test_deny_posts_its_decision(idp, consent_page):
    page, posts, at_callback = consent_page()
    page.click("button[value=deny]")
    page.wait_for_url(at_callback)
    assert len(posts) == 1 and "decision=deny" in posts[0]
    assert _params(page.url)["error"] == "access_denied"
    assert idp.db.auth_codes.count_documents({}) == 0


def test_without_javascript_a_double_click_ends_with_the_one_code(idp, consent_page):
    page, posts, at_callback = consent_page(javascript=False)
    double_click(page, "button[value=allow]", CONSENT_POST)
    page.wait_for_url(at_callback)
    assert len(posts) == 2 and all("decision=allow" in p for p in posts), posts
    assert _params(page.url)["code"]
    assert idp.db.auth_codes.count_documents({}) == 1


LOGIN_POST = re.compile(r"/login(\?.*)?$")


def test_a_double_click_on_sign_in_posts_once_and_the_sign_in_goes_on(idp, chromium, application, shots):
    callback = application.url + "/callback"
    doc, secret = register_client(idp.db, idp.config, "Example RP", [callback], scope="openid profile")
    rp = RelyingParty(idp, doc["client_id"], secret, redirect_uri=callback)
    ctx = chromium.new_context()
    ctx.set_default_timeout(NAV_TIMEOUT_MS)
    try:
        page = shots.watch(ctx.new_page())
        page.goto(rp.authorize_url(prompt="consent", scope="openid profile", state="st-l"))
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url)
                if r.method == "POST" and LOGIN_POST.search(r.url) else None)
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        double_click(page, 'form[action*="/login"] [type=submit]', LOGIN_POST)
        page.wait_for_load_state()
        assert len(posts) == 1, posts
        page.click("button[value=allow]")
        page.wait_for_url(re.compile("^" + re.escape(callback + "?")))
        assert _params(page.url)["code"] and _params(page.url)["state"] == "st-l"
        assert idp.db.sessions.count_documents({"data.auth.uid": {"$exists": True}}) == 1
    finally:
        ctx.close()
