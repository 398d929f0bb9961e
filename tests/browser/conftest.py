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
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("DEEPAUTH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FACES_DIR = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))  # as tests/conftest.py
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

# Generous: two cores shared with TensorFlow; the face step alone can take 10-20 s.
NAV_TIMEOUT_MS = 60_000
FACE_TIMEOUT_MS = 120_000

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


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

class Feeds:
    """Makes Y4M fake-webcam files (640x480, 15 fps, yuv420p) with ffmpeg, cached per session."""

    W, H, FPS = 640, 480, 15

    def __init__(self, faces: Path, out: Path):
        self.faces, self.out = faces, out

    def _run(self, name: str, inputs: list[str], vf: str, seconds: float) -> Path:
        target = self.out / f"{name}.y4m"
        if target.exists():
            return target
        tmp = target.with_suffix(".part")
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-t", str(seconds), "-an",
               "-vf", vf, "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(tmp)]
        subprocess.run(cmd, check=True, timeout=180)
        tmp.rename(target)
        return target

    def _fit(self) -> str:
        w, h = self.W, self.H
        return (f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
                f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,fps={self.FPS},format=yuv420p")

    def clip(self, name: str, seconds: float = 6, start: float = 0) -> Path:
        """A talking-head clip from video/liveportrait_driving (e.g. "d9", "d3")."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            unavailable(f"fake-webcam source clip missing: {src}")
        return self._run(f"clip-{name}-{start:g}-{seconds:g}", ["-ss", str(start), "-i", str(src)], self._fit(), seconds)

    def photo(self, path: Path, seconds: float = 4) -> Path:
        """A still photo held in front of the camera."""
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(Path(path).relative_to(self.faces)) if Path(path).is_relative_to(self.faces) else Path(path).name)
        return self._run(f"photo-{stem}-{seconds:g}", ["-loop", "1", "-framerate", str(self.FPS), "-i", str(path)],
                         self._fit(), seconds)

    def no_face(self, seconds: float = 4) -> Path:
        """A test pattern: a camera that sees no face."""
        return self._run(f"noface-{seconds:g}",
                         ["-f", "lavfi", "-i", f"testsrc=size={self.W}x{self.H}:rate={self.FPS}"],
                         "format=yuv420p", seconds)


@pytest.fixture(scope="session")
def y4m(face_data, tmp_path_factory) -> Feeds:
    return Feeds(face_data, tmp_path_factory.mktemp("feeds"))


@pytest.fixture(scope="session")
def no_face_feed(browser_requirements, tmp_path_factory) -> Path:
    """A feed that never shows a face (does not need the shared face data)."""
    return Feeds(Path("/nonexistent"), tmp_path_factory.mktemp("feeds-noface")).no_face()


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
                args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={key}"])
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

    def watch(self, page):
        self.pages.append(page)
        page.on("console", lambda m: self.console.append(f"[{m.type}] {page.url} {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"[pageerror] {page.url} {e}"))
        page.on("requestfailed", lambda r: self.console.append(f"[requestfailed] {r.method} {r.url} {r.failure}"))
        return page

    def __call__(self, page, name: str, **kw) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True, timeout=15_000, **kw)
        return path

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


@pytest.fixture
def shots(request):
    s = Shots(request.node.name)
    yield s
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        s.on_failure()
    else:
        s.flush()


@pytest.fixture
def new_page(browser_for, shots):
    """``new_page(feed)`` -> a page in a fresh browser context (own cookies) on that feed's browser."""
    contexts = []

    def make(feed: Path, **context_kw):
        ctx = browser_for(feed).new_context(viewport={"width": 1000, "height": 800}, **context_kw)
        ctx.set_default_timeout(NAV_TIMEOUT_MS)
        ctx.set_default_navigation_timeout(NAV_TIMEOUT_MS)
        contexts.append(ctx)
        return shots.watch(ctx.new_page())

    yield make
    for ctx in contexts:
        with contextlib.suppress(Exception):
            ctx.close()


# --------------------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120, proc: subprocess.Popen | None = None) -> None:
    import urllib.error
    import urllib.request
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except Exception as e:  # noqa: BLE001 - not up yet
            last = e
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")


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
def idp_server(browser_requirements, mongo_server, tmp_path_factory):
    """The IdP (face enabled) over real HTTP, one per test session (the face model loads once)."""
    from werkzeug.serving import make_server

    from idp import create_app
    from idp.config import Config

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = Config(issuer=url, data_dir=tmp_path_factory.mktemp("idp-data"), mongodb_uri=mongo_server.uri,
                    db_name="browser_" + os.urandom(4).hex(), face_enabled=True,
                    log_format="text", log_level="WARNING", extra={"auto_migrate": True})
    app = create_app(config)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="idp-http", daemon=True)
    thread.start()
    wait_http(url + "/.well-known/openid-configuration")
    live = LiveIdP(app, server, thread, url)
    yield live
    server.shutdown()
    thread.join(10)
    with contextlib.suppress(Exception):
        live.db.client.drop_database(config.db_name)


class DemoRP:
    def __init__(self, url: str, client_id: str, proc: subprocess.Popen, log: Path):
        self.url, self.client_id, self.proc, self.log = url, client_id, proc, log


@pytest.fixture(scope="session")
def demo_rp(idp_server, tmp_path_factory):
    """The demo relying party (``python -m clients.demo``) registered at the IdP, requiring face."""
    from idp.oauth.clients import create_client

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    doc, secret = create_client(idp_server.db, idp_server.config, "Demo (browser tests)",
                                [url + "/callback"], public=False, scope="openid profile email",
                                face_policy="required", post_logout_redirect_uris=[url + "/"]) \
        if _accepts(create_client, "post_logout_redirect_uris") else \
        create_client(idp_server.db, idp_server.config, "Demo (browser tests)", [url + "/callback"],
                      public=False, scope="openid profile email", face_policy="required")
    env = {**os.environ, "DEMO_ISSUER": idp_server.url, "DEMO_CLIENT_ID": doc["client_id"],
           "DEMO_CLIENT_SECRET": secret, "DEMO_PORT": str(port), "DEMO_BASE_URL": url,
           "PYTHONUNBUFFERED": "1"}
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "clients.demo"], cwd=str(ROOT), env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(url + "/", timeout=60, proc=proc)
    except Exception:
        proc.kill()
        raise RuntimeError(f"demo RP did not start; log:\n{log.read_text()[-4000:]}") from None
    yield DemoRP(url, doc["client_id"], proc, log)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _accepts(fn, name: str) -> bool:
    import inspect
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return name in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
