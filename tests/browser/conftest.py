"""End-to-end browser tests: Debian Chromium driven by Playwright with a fake webcam.

How it works
  * Chromium's ``--use-file-for-fake-video-capture`` plays a Y4M file (looped) as the
    webcam. The file is fixed per browser launch, so ``browser_for(feed)`` launches one
    browser per feed (cached for the session). Feeds are made with ffmpeg from the
    shared face data (``y4m`` fixture) into a session temp dir; nothing is committed.
  * ``idp_server``: the real app (``create_app``) on the session's SecantusDB server,
    served over real HTTP by werkzeug on 127.0.0.1:<free port>; the issuer is that URL.
  * ``demo_rp``: the demo relying party (``python -m clients.demo``) as a subprocess,
    registered with the IdP through the clients service.
  * ``shots``: saves a PNG of every step (and of every open page on failure, with the
    browser console log) under ``test-artifacts/browser/<test>/`` (gitignored).

Requirements: /usr/bin/chromium (or DEEPAUTH_CHROMIUM), ffmpeg, the playwright Python
package (its own browser downloads are never used), the shared face data. When one is
missing the tests are skipped with the reason — except with ``CI=true``, where they fail.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.servers import stop_process_group

from .harness import CHROMIUM, FACES_DIR, ROOT, Feeds, chromium_args, create_account, free_port, serve, wait_http

ARTIFACTS = ROOT / "test-artifacts" / "browser"
DOCS = ARTIFACTS / "docs"
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

# Generous: two cores shared with TensorFlow; the face step alone can take 10-20 s.
NAV_TIMEOUT_MS = 60_000
FACE_TIMEOUT_MS = 120_000


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)  # a browser and a live server: seconds per test


def unavailable(reason: str):
    """Skip locally; fail under CI (CI must run the browser tests)."""
    if IN_CI:
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_requirements():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set DEEPAUTH_CHROMIUM)")
    if not shutil.which("ffmpeg"):
        unavailable("ffmpeg not found (apt-get install ffmpeg); it makes the fake-webcam feeds")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="session")
def face_data(browser_requirements):
    if not FACES_DIR.is_dir():
        unavailable(f"face data not found at {FACES_DIR} (set DEEPAUTH_FACES_DIR or place ../shared beside the repo)")
    return FACES_DIR


# --------------------------------------------------------------------------- feeds

@pytest.fixture(scope="session")
def y4m(face_data, tmp_path_factory) -> Feeds:
    return Feeds(face_data, tmp_path_factory.mktemp("feeds"), missing=unavailable)


@pytest.fixture(scope="session")
def no_face_feed(browser_requirements, tmp_path_factory) -> Path:
    """A feed that never shows a face (does not need the shared face data)."""
    return Feeds(Path("/nonexistent"), tmp_path_factory.mktemp("feeds-noface"), missing=unavailable).no_face()


# --------------------------------------------------------------------------- browsers

@pytest.fixture(scope="session")
def playwright_instance(browser_requirements):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser_for(playwright_instance):
    """``browser_for(y4m_path)`` -> a Chromium browser whose webcam plays that file."""
    browsers: dict[str, object] = {}

    def launch(feed: Path):
        key = str(Path(feed).resolve())
        if key not in browsers:
            browsers[key] = playwright_instance.chromium.launch(
                executable_path=CHROMIUM, headless=True, timeout=NAV_TIMEOUT_MS,
                args=chromium_args(feed))
        return browsers[key]

    yield launch
    for b in browsers.values():
        with contextlib.suppress(Exception):
            b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


class Shots:
    """Numbered screenshots of each step under test-artifacts/browser/<test>/, plus console logs."""

    def __init__(self, test_name: str):
        self.dir = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", test_name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0
        self.pages: list = []
        self.console: list[str] = []
        self.problems: list[str] = []

    def check(self, ok: bool, problem: str) -> None:
        """A soft assertion: the test goes on (to find later problems too) and fails at the end."""
        if not ok:
            self.problems.append(problem)

    def assert_clean(self) -> None:
        problems, self.problems = self.problems, []
        assert not problems, "UI problems: " + "; ".join(problems)

    def watch(self, page):
        """Record the page's console; uncaught script errors and CSP violations are UI problems."""
        self.pages.append(page)

        def on_console(m):
            self.console.append(f"[{m.type}] {page.url} {m.text}")
            if "Content Security Policy" in m.text:
                self.problems.append(f"CSP violation on {page.url}: {m.text[:200]}")

        def on_error(e):
            self.console.append(f"[pageerror] {page.url} {e}")
            self.problems.append(f"script error on {page.url}: {str(e)[:200]}")

        def on_response(r):
            # the face API's answers, so that a capture that went wrong says how (status, error code,
            # progress); never the capture's nonce, and no picture is in these answers
            if "/api/face/" not in r.url:
                return
            body = {}
            with contextlib.suppress(Exception):
                body = r.json()
            live = body.get("liveness") if isinstance(body.get("liveness"), dict) else {}
            fields = {"error": body.get("error"), "frames": body.get("frames"), "done": body.get("done"),
                      "moves": live.get("challenge"), "t_ms": live.get("elapsed_ms"), "message": body.get("message")}
            shown = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
            self.console.append(f"[response] {r.request.method} {re.sub(r'^https?://[^/]+', '', r.url)} "
                                f"{r.status} {shown}".rstrip())

        page.on("console", on_console)
        page.on("pageerror", on_error)
        page.on("response", on_response)
        page.on("requestfailed", lambda r: self.console.append(f"[requestfailed] {r.method} {r.url} {r.failure}"))
        return page

    def __call__(self, page, name: str, doc: str | None = None, mask_video: bool = True,
                 full_page: bool = False) -> Path:
        """Screenshot the page as step ``name``. With ``doc``, also save a copy for the README under
        test-artifacts/browser/docs/<doc>.png with the camera preview masked (the committed
        screenshots must not contain frames of the shared face videos; ``mask_video=False`` only for
        the synthetic no-face test pattern)."""
        self.n += 1
        path = self.dir / f"{self.n:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True, timeout=15_000)
        if doc:
            DOCS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                self._doc_shot(page, DOCS / f"{doc}.png", mask_video, full_page)
        return path

    @staticmethod
    def _doc_shot(page, path: Path, mask_video: bool, full_page: bool = False) -> None:
        if not mask_video:
            page.screenshot(path=str(path), timeout=15_000, full_page=full_page)
            return
        # Hide the preview (the stage and its face-position oval stay), and mask it as well in case
        # hiding did not take; restore it afterwards.
        hidden = page.evaluate("""() => { const v = [...document.querySelectorAll('video')];
            v.forEach(e => { e.style.visibility = 'hidden'; });
            return v.every(e => getComputedStyle(e).visibility === 'hidden'); }""")
        try:
            page.screenshot(path=str(path), timeout=15_000, full_page=full_page,
                            mask=[] if hidden else [page.locator("video")], mask_color="#111111")
        finally:
            page.evaluate("() => document.querySelectorAll('video').forEach(e => { e.style.visibility = ''; })")

    def on_failure(self):
        for i, page in enumerate(self.pages):
            with contextlib.suppress(Exception):
                if not page.is_closed():
                    page.screenshot(path=str(self.dir / f"FAILED-page{i}.png"), full_page=True, timeout=15_000)
                    (self.dir / f"FAILED-page{i}.html").write_text(page.content())
                    (self.dir / f"FAILED-page{i}.url").write_text(page.url + "\n")
        self.flush()

    def flush(self):
        (self.dir / "console.log").write_text("\n".join(self.console) + ("\n" if self.console else ""))


def _failed(node) -> bool:
    rep = getattr(node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture
def shots(request):
    s = Shots(request.node.name)
    yield s
    if s.problems and not _failed(request.node):
        s.on_failure()
        s.flush()
        pytest.fail("UI problems: " + "; ".join(s.problems), pytrace=False)
    if _failed(request.node):
        s.on_failure()  # no-op for pages already closed by new_page (which captures them first)
    s.flush()


@contextlib.contextmanager
def fresh_contexts(shots, request):
    """Yields ``make(browser, **context_kw)`` -> a watched page in a new context (own cookies) of ``browser``;
    afterwards the failure screenshots, then every context closed."""
    contexts = []

    def make(browser, **context_kw):
        ctx = browser.new_context(viewport={"width": 1000, "height": 800}, **context_kw)
        ctx.set_default_timeout(NAV_TIMEOUT_MS)
        ctx.set_default_navigation_timeout(NAV_TIMEOUT_MS)
        contexts.append(ctx)
        return shots.watch(ctx.new_page())

    yield make
    if _failed(request.node):
        shots.on_failure()
    for ctx in contexts:
        with contextlib.suppress(Exception):
            ctx.close()


@pytest.fixture
def new_page(browser_for, shots, request):
    """``new_page(feed)`` -> a page in a fresh browser context (own cookies) on that feed's browser."""
    with fresh_contexts(shots, request) as make:
        yield lambda feed, **context_kw: make(browser_for(feed), **context_kw)


# --------------------------------------------------------------------------- servers

class LiveIdP:
    def __init__(self, app, server, thread, url):
        self.app, self.server, self.thread, self.url = app, server, thread, url

    @property
    def db(self):
        from idp import get_db
        return get_db(self.app)

    @property
    def config(self):
        from idp import get_config
        return get_config(self.app)


@pytest.fixture(scope="session")
def idp_server(browser_requirements, mongo_server, face_data_dir):
    """The IdP (face enabled) over real HTTP, one per test session (the face model loads once)."""
    from idp import create_app
    from idp.config import Config

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # the session's face data dir: the cached model conversion, models loaded once per run
    config = Config(issuer=url, data_dir=face_data_dir, mongodb_uri=mongo_server.uri,
                    db_name="browser_" + os.urandom(4).hex(), face_enabled=True,
                    log_format="text", log_level="WARNING", extra={"auto_migrate": True})
    app = create_app(config)
    for warm_up in app.extensions.get("idp_warmups", []):  # load the face models now, as `idp serve` does
        warm_up()
    server, thread = serve(app, port)
    wait_http(url + "/.well-known/openid-configuration")
    live = LiveIdP(app, server, thread, url)
    yield live
    server.shutdown()
    thread.join(10)
    with contextlib.suppress(Exception):
        live.db.client.drop_database(config.db_name)
    live.db.client.close()  # also ends the app's background senders before the database server stops


class DemoRP:
    def __init__(self, url: str, client_id: str, proc: subprocess.Popen, log: Path):
        self.url, self.client_id, self.proc, self.log = url, client_id, proc, log


@contextlib.contextmanager
def running_demo(idp, log_dir: Path, *, scope: str, face_policy: str, env: dict | None = None):
    """The demo relying party (``python -m clients.demo``, a subprocess) registered at ``idp`` as a
    confidential client; yields its :class:`DemoRP` and stops it afterwards."""
    from idp.oauth.clients import create_client

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    doc, secret = create_client(idp.db, idp.config, "Demo app", [url + "/callback"], public=False, scope=scope,
                                face_policy=face_policy, post_logout_redirect_uris=[url + "/"])
    env = {**os.environ, "DEMO_ISSUER": idp.url, "DEMO_CLIENT_ID": doc["client_id"],
           "DEMO_CLIENT_SECRET": secret, "DEMO_PORT": str(port), "DEMO_BASE_URL": url,
           "PYTHONUNBUFFERED": "1", **(env or {})}
    log = log_dir / "demo.log"
    with open(log, "wb") as out:  # its own process group: gunicorn's worker goes with its master
        proc = subprocess.Popen([sys.executable, "-m", "clients.demo"], cwd=str(ROOT), env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_http(url + "/", timeout=60, proc=proc)
        except Exception:
            raise RuntimeError(f"demo RP did not start; log:\n{log.read_text()[-4000:]}") from None
        yield DemoRP(url, doc["client_id"], proc, log)
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="session")
def demo_rp(idp_server, tmp_path_factory):
    """The demo relying party registered at the IdP, requiring face."""
    with running_demo(idp_server, tmp_path_factory.mktemp("demo"), scope="openid profile email phone",
                      face_policy="required") as demo:
        yield demo


# --------------------------------------------------------------------------- accounts

PASSWORD = "correct horse battery staple 42"


class Account:
    def __init__(self, uid: str, username: str, email: str, name: str, password: str = PASSWORD):
        self.uid, self.username, self.email, self.name, self.password = uid, username, email, name, password


@pytest.fixture(scope="session")
def template_of(idp_server, y4m):
    """``template_of("d9")`` -> a face template of that clip's person, made by the IdP's own engine from
    ten frames of the clip (the pictures the fake webcam shows), so tests that are not about
    enrollment skip it. Cached per session."""
    from idp.faceweb.views import engine

    cache: dict = {}

    def get(name: str):
        if name not in cache:
            with idp_server.app.app_context():
                result = engine().enroll(y4m.frames(name, count=10))
            assert result.ok, f"could not enroll the {name} frames: {result.reasons} {result.stats}"
            cache[name] = result.template
        return cache[name]

    return get


@pytest.fixture
def liveness(idp_server, monkeypatch):
    """``liveness(False)`` turns the presentation-attack checks off for this test;
    ``liveness(True, "turn_left")`` turns them on with that challenge pool (the fake webcam cannot
    follow a random instruction, so tests pin the challenge their feed performs)."""
    def set_(enabled: bool, challenges: str = "") -> None:
        cfg = idp_server.config
        if not hasattr(cfg, "liveness_enabled"):
            if enabled:
                pytest.skip("this build has no liveness checks")
            return
        monkeypatch.setattr(cfg, "liveness_enabled", enabled)
        monkeypatch.setattr(cfg, "liveness_challenges", challenges)
    return set_


@pytest.fixture
def make_account(idp_server, request):
    """``make_account(enrolled=True, person="d9")`` -> a new user (password PASSWORD), optionally with
    biometric consent and the template of that clip's person already stored (as if enrolled)."""
    counter = iter(range(1000))

    def make(enrolled: bool = True, person: str = "d9") -> Account:
        tag = f"{re.sub(r'[^a-z0-9]', '', request.node.name.lower())[:16]}{next(counter)}{os.urandom(2).hex()}"
        name = f"Test User {tag}"
        template = request.getfixturevalue("template_of")(person) if enrolled else None
        doc = create_account(idp_server.db, idp_server.config, f"u{tag}", PASSWORD, name, template)
        account = Account(doc["_id"], doc["username"], doc["email"], name)
        return account

    return make
