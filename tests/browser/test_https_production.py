"""End to end in Chromium over real TLS, in the production configuration: the issuer is
``https://127.0.0.1:<port>``, the app listens on plain http behind a TLS-terminating proxy that adds
``X-Forwarded-For`` and ``X-Forwarded-Proto: https``, trusted through ``IDP_TRUSTED_PROXIES`` (the README's
deployment), so the session cookie is ``__Host-session`` with ``Secure`` and every page sends HSTS and
``Referrer-Policy: no-referrer``. The certificate is made for the test run; Chromium trusts exactly its key
(``--ignore-certificate-errors-spki-list``), the demo relying party verifies it as its CA bundle
(``REQUESTS_CA_BUNDLE``).

What a browser does over https that the http tests never see: it sends no ``Referer`` with the pages' form
posts and JSON calls (the pages say no-referrer; a form post's ``Origin`` is then ``null`` too, only the
fetch() calls name the provider's origin), and keeps the ``Secure`` cookie to https. Before Flask-WTF's
SSL-strict Referer check was turned off, every such post was refused and nobody could register or sign in.

The face step runs with the liveness checks off, as in test_face_signin.py: the looping fake webcam cannot
follow a random head-movement instruction (test_liveness.py covers them).
"""
from __future__ import annotations

import contextlib
import os
import re

import pytest

from .conftest import NAV_TIMEOUT_MS, PASSWORD, Account, LiveIdP, fresh_contexts, running_demo
from .harness import (CHROMIUM, TLSProxy, chromium_args, create_account, free_port, self_signed_certificate,
                      serve, wait_http)
from .test_face_signin import (allow_consent, demo_claims, give_consent, login, path_of, record_callbacks, register,
                               run_capture)

HSTS = "max-age=31536000"


class HttpsIdP(LiveIdP):
    """The provider as its clients reach it: through ``proxy`` (its url is the proxy's)."""

    def __init__(self, app, server, thread, proxy: TLSProxy):
        super().__init__(app, server, thread, proxy.url)
        self.proxy = proxy

    def posts(self, since: int = 0, browser: bool = True) -> list[dict]:
        """The POSTs the browser (``browser=False``: the relying party's back channel) sent to the provider,
        as the proxy received them, from request ``since``."""
        return [r for r in self.proxy.seen[since:] if r["method"] == "POST"
                and r["headers"].get("user-agent", "").startswith("Mozilla/") == browser]


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_idp(browser_requirements, mongo_server, face_data_dir, tls):
    """The IdP (face enabled) behind a TLS proxy on 127.0.0.1, its issuer the proxy's https URL."""
    from idp import create_app
    from idp.config import Config

    cert, key, _ = tls
    port = free_port()
    config = Config(issuer=f"https://127.0.0.1:{port}", trusted_proxies="127.0.0.1/32", data_dir=face_data_dir,
                    mongodb_uri=mongo_server.uri, db_name="https_" + os.urandom(4).hex(), face_enabled=True,
                    liveness_enabled=False, log_format="text", log_level="WARNING",
                    extra={"auto_migrate": True, "keep_logging": True})
    assert config.secure_cookies
    app = create_app(config)
    for warm_up in app.extensions.get("idp_warmups", []):  # the face models, shared by the session's apps
        warm_up()
    backend = free_port()
    server, thread = serve(app, backend)
    wait_http(f"http://127.0.0.1:{backend}/.well-known/openid-configuration")
    proxy = TLSProxy(f"http://127.0.0.1:{backend}", port, cert, key)
    live = HttpsIdP(app, server, thread, proxy)
    yield live
    proxy.stop()
    server.shutdown()
    thread.join(10)
    with contextlib.suppress(Exception):
        live.db.client.drop_database(config.db_name)
    live.db.client.close()


@pytest.fixture(scope="module")
def https_demo(https_idp, tls, tmp_path_factory):
    """The demo relying party, signing in through the https issuer (discovery, token and userinfo requests
    verified against the test certificate). Face "optional": a user without a face template signs in with
    the password alone, an enrolled one passes the face step."""
    with running_demo(https_idp, tmp_path_factory.mktemp("demo-https"), scope="openid profile email offline_access",
                      face_policy="optional", env={"REQUESTS_CA_BUNDLE": str(tls[0])}) as demo:
        yield demo


@pytest.fixture(scope="module")
def chromium_trusting_the_certificate(playwright_instance, y4m, tls):
    """Chromium whose fake webcam plays the d9 clip and which accepts the test certificate's key, and only it
    (no blanket --ignore-certificate-errors)."""
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, timeout=NAV_TIMEOUT_MS,
        args=chromium_args(y4m.clip("d9")) + [f"--ignore-certificate-errors-spki-list={tls[2]}"])
    yield browser
    browser.close()


@pytest.fixture
def fresh_page(chromium_trusting_the_certificate, shots, request):
    """``fresh_page()`` -> a page in a new browser context (its own cookies)."""
    with fresh_contexts(shots, request) as make:
        yield lambda: make(chromium_trusting_the_certificate)


def session_cookie(page, idp) -> dict:
    """The provider's session cookie in the page's browser: only ``__Host-session``, Secure, HttpOnly, Lax,
    host-only, path /."""
    cookies = [c for c in page.context.cookies() if c["domain"].lstrip(".") == "127.0.0.1"]
    assert not [c for c in cookies if c["name"] == "deepauth_session"], cookies
    found = [c for c in cookies if c["name"] == "__Host-session"]
    assert len(found) == 1, cookies
    c = found[0]
    assert c["secure"] and c["httpOnly"] and c["sameSite"] == "Lax" and c["path"] == "/", c
    assert c["domain"] == "127.0.0.1", c  # host-only: no Domain attribute (the __Host- prefix requires it)
    return c


def assert_posts_as_browsers_send_them_over_https(posts: list[dict], paths: list[str], origin: str) -> None:
    """Each of ``paths`` was posted, and every post came without a Referer and with ``origin`` as its
    ``Origin``. A form posted from a no-referrer page says ``Origin: null`` (Fetch: a non-CORS request
    under the no-referrer policy serializes its origin as null), so neither header can be checked by the
    server; the pages' fetch() calls (CORS mode, same origin) send the provider's origin."""
    sent = [p["path"] for p in posts]
    for path in paths:
        assert path in sent, f"no POST to {path}: {sent}"
    for p in posts:
        assert "referer" not in p["headers"], f"{p['path']} was posted with a Referer"
        assert p["headers"].get("origin") == origin, (p["path"], p["headers"].get("origin"))


def sign_in(page, shots, account) -> None:
    """The password step on the login page; a refused post fails here at once, with the provider's answer."""
    with page.expect_response(lambda r: r.request.method == "POST" and path_of(r.url) == "/login") as posted:
        login(page, shots, account)
    answer = posted.value
    if answer.status != 302:
        text = re.sub(r"\s+", " ", re.sub(r"<script.*?</script>|<[^>]+>", " ", answer.text(), flags=re.S))
        raise AssertionError(f"the sign-in post was answered {answer.status}: {text.strip()[:300]}")


def test_register_sign_in_to_an_application_and_sign_out_over_https(https_idp, https_demo, fresh_page, shots):
    """Registration at the https provider; then, in a fresh browser, the demo application's sign-in
    (/authorize) → password → consent → the demo redeems the code over TLS and shows amr ["pwd"] → "Sign out"
    through the provider's end-session endpoint → back at the demo, signed out at the provider too."""
    idp, demo = https_idp, https_demo
    page = fresh_page()
    first = page.goto(idp.url + "/register")
    assert first.headers.get("strict-transport-security") == HSTS, first.headers
    assert first.headers.get("referrer-policy") == "no-referrer"
    assert page.evaluate("() => window.isSecureContext && location.protocol") == "https:"
    mark = len(idp.proxy.seen)
    username = "hana" + os.urandom(3).hex()
    register(page, idp, shots, username, "Hana Example")  # ends on the enrollment offer, signed in
    assert_posts_as_browsers_send_them_over_https(idp.posts(mark), ["/register"], "null")
    registered_cookie = session_cookie(page, idp)

    page = fresh_page()
    callbacks = record_callbacks(page, demo)
    page.goto(demo.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    mark = len(idp.proxy.seen)
    sign_in(page, shots, Account("?", username, f"{username}@example.test", "Hana Example"))
    allow_consent(page, shots, "Demo app")
    claims = demo_claims(page, demo)
    shots(page, "demo-signed-in")
    assert claims["amr"] == ["pwd"], claims
    assert len(callbacks) == 1 and "code=" in callbacks[0]
    cookie = session_cookie(page, idp)
    assert cookie["value"] != registered_cookie["value"]
    assert_posts_as_browsers_send_them_over_https(idp.posts(mark), ["/login", "/authorize/consent"], "null")
    redeemed = [p for p in idp.posts(mark, browser=False) if p["path"] == "/oauth/token"]
    assert [p["status"] for p in redeemed] == [200], redeemed  # the demo redeemed the code over TLS
    uid = idp.db.users.find_one({"username": username})["_id"]
    assert idp.db.sessions.count_documents({"data.auth.uid": uid}) == 2  # the registration's and this one

    at_demo = lambda u: u.split("?")[0].rstrip("/") == demo.url  # noqa: E731 - the post-logout page (?state=)
    mark = len(idp.proxy.seen)
    page.click("button:has-text('Sign out')")
    page.wait_for_url(at_demo)  # the demo's id_token_hint names this session: no confirmation asked
    ended = [r for r in idp.proxy.seen[mark:] if r["path"] == "/end-session"]
    assert [(r["method"], r["status"]) for r in ended] == [("GET", 302)], ended
    shots(page, "demo-signed-out")
    assert page.get_by_role("link", name="Sign in", exact=True).is_visible()
    assert idp.db.sessions.count_documents({"data.auth.uid": uid}) == 1  # the registration's browser stays in
    page.goto(idp.url + "/account")
    assert path_of(page.url) == "/login"
    shots.assert_clean()


def test_face_enrollment_and_face_step_over_https(https_idp, https_demo, fresh_page, shots):
    """The face pages over https: enrollment with the webcam (the capture's JSON calls carry X-CSRFToken and
    the provider's Origin, no Referer, and are accepted), then the demo's sign-in with the face step →
    consent → the demo shows amr with "pwd" and "face"."""
    idp, demo = https_idp, https_demo
    doc = create_account(idp.db, idp.config, "face" + os.urandom(3).hex(), PASSWORD, "Face Example")
    account = Account(doc["_id"], doc["username"], doc["email"], "Face Example")
    page = fresh_page()
    page.goto(idp.url + "/login")
    sign_in(page, shots, account)
    page.wait_for_url(lambda u: path_of(u) != "/login")
    page.goto(idp.url + "/face/enroll")
    give_consent(page, shots)
    mark = len(idp.proxy.seen)
    outcome = run_capture(page, idp, shots, "enroll")
    assert outcome == "left", f"enrollment over https failed: {outcome}"
    assert path_of(page.url) == "/face/enroll/done"
    calls = [p for p in idp.posts(mark) if p["path"].startswith("/api/face/")]
    assert len(calls) >= 3, [p["path"] for p in idp.posts(mark)]  # start, frames, finish
    for call in calls:
        assert call["headers"].get("x-csrftoken"), f"{call['path']} without X-CSRFToken"
        assert call["status"] < 400 or call["status"] == 429, (call["path"], call["status"])  # 429: busy, sent again
    assert_posts_as_browsers_send_them_over_https(calls, [calls[0]["path"]], idp.url)
    assert idp.db.face_templates.count_documents({"_id": account.uid}) == 1
    page.click("#continue")
    page.wait_for_url(lambda u: path_of(u) != "/face/enroll/done")

    page = fresh_page()
    callbacks = record_callbacks(page, demo)
    page.goto(demo.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    sign_in(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))
    assert page.evaluate("() => window.isSecureContext && location.protocol") == "https:"
    mark = len(idp.proxy.seen)
    outcome = run_capture(page, idp, shots, "verify")
    assert outcome == "left", f"the face step over https rejected the enrolled person: {outcome}"
    calls = [p for p in idp.posts(mark) if p["path"].startswith("/api/face/")]
    assert calls and all(c["headers"].get("x-csrftoken") for c in calls)
    assert all(c["status"] < 400 or c["status"] == 429 for c in calls), [(c["path"], c["status"]) for c in calls]
    assert_posts_as_browsers_send_them_over_https(calls, [calls[0]["path"]], idp.url)
    allow_consent(page, shots, "Demo app")
    claims = demo_claims(page, demo)
    assert "pwd" in claims["amr"] and "face" in claims["amr"], claims
    assert len(callbacks) == 1
    session_cookie(page, idp)
    shots.assert_clean()
