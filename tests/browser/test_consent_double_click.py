"""The consent page in Chromium: a double click on "Allow" sends one post (the page disables its buttons
once the post is under way) that still carries the clicked button's decision, and ends at the application
with the one code. With JavaScript off the double click posts twice, and the server sends both posts the
same code (tests/oauth/test_consent_double_submit.py covers the server side)."""
from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from support.fixtures import cheap_password_hashing  # noqa: F401  (autouse here)
from support.oidc import PASSWORD, RelyingParty, register_client
from support.servers import IdPServer, LiveServer

from .conftest import NAV_TIMEOUT_MS
from .harness import CHROMIUM, CHROMIUM_ARGS



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


def _double_click(page, selector: str) -> None:
    """A person's double click (real mouse input at the button) while the server is slow to answer: the
    first click's post reaches the server, and its answer reaches the page only after the second click
    (with a fast answer, the second click would land on the next page; with no post sent yet, the browser
    would merge the two submissions into one)."""
    from playwright.sync_api import Error
    held = []

    def first_post_answered_late(route):
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch(max_redirects=0)))
    page.route(CONSENT_POST, first_post_answered_late)
    box = page.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    for _ in range(600):  # the route handler runs while the page is driven: until the server answered it
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the first click posted nothing"
    page.mouse.click(x, y)
    page.wait_for_timeout(100)  # lets a second submission, if the page allows one, get under way
    for route, response in held:
        with contextlib.suppress(Error):  # the navigation of a post the browser gave up for the second one
            route.fulfill(response=response)


def test_a_double_click_on_allow_posts_once_with_the_decision(idp, consent_page, shots):
    page, posts, at_callback = consent_page()
    _double_click(page, "button[value=allow]")
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
    _double_click(page, "button[value=allow]")
    page.wait_for_url(at_callback)
    assert len(posts) == 2 and all("decision=allow" in p for p in posts), posts
    assert _params(page.url)["code"]
    assert idp.db.auth_codes.count_documents({}) == 1
