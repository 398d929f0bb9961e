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
DOCS = ARTIFACTS / "docs"
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

    @staticmethod
    def _noise(seed: int | None) -> str:
        # Temporal sensor-like noise: a real camera never delivers the same pixels twice, and the
        # liveness layer rejects frames whose exact pixels another capture already sent (replays).
        # Use a different seed for every capture made with the same clip.
        return "" if seed is None else f",noise=alls=3:allf=t:all_seed={int(seed)}"

    def clip(self, name: str, seconds: float = 6, start: float = 0, noise_seed: int | None = None) -> Path:
        """A talking-head clip from video/liveportrait_driving (e.g. "d9", "d3"), from ``start`` s."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            unavailable(f"fake-webcam source clip missing: {src}")
        tag = "" if noise_seed is None else f"-n{noise_seed}"
        return self._run(f"clip-{name}-{start:g}-{seconds:g}{tag}", ["-ss", str(start), "-i", str(src)],
                         self._fit() + self._noise(noise_seed), seconds)

    def frames(self, name: str, count: int = 8, start: float = 0.5, every: float = 0.5) -> list[bytes]:
        """``count`` JPEG frames of a clip (one every ``every`` s from ``start``), as a camera page would send."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        out = subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", str(start), "-i", str(src), "-an",
             "-vf", f"fps=1/{every},{self._fit()[:self._fit().rindex(',fps=')]}", "-frames:v", str(count),
             "-q:v", "3", "-f", "image2pipe", "-vcodec", "mjpeg", "-"],
            check=True, capture_output=True, timeout=120).stdout
        parts, i = [], 0
        while True:  # split the MJPEG stream at SOI/EOI markers
            s = out.find(b"\xff\xd8", i)
            if s < 0:
                break
            e = out.find(b"\xff\xd9", s)
            parts.append(out[s:e + 2])
            i = e + 2
        return parts

    def still(self, name: str, at: float = 1.0, seconds: float = 4, noise_seed: int | None = None) -> Path:
        """One frame of a clip held still: a photo of that person in front of the camera."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            unavailable(f"fake-webcam source clip missing: {src}")
        tag = "" if noise_seed is None else f"-n{noise_seed}"
        return self._run(f"still-{name}-{at:g}-{seconds:g}{tag}",
                         ["-ss", str(at), "-i", str(src)],
                         f"select=eq(n\\,0),loop=loop=-1:size=1:start=0,{self._fit()}{self._noise(noise_seed)}",
                         seconds)

    def photo(self, path: Path, seconds: float = 4) -> Path:
        """A still photo held in front of the camera."""
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(Path(path).relative_to(self.faces)) if Path(path).is_relative_to(self.faces) else Path(path).name)
        return self._run(f"photo-{stem}-{seconds:g}", ["-loop", "1", "-framerate", str(self.FPS), "-i", str(path)],
                         self._fit(), seconds)

    def _run_graph(self, name: str, inputs: list[str], graph: str, seconds: float) -> Path:
        target = self.out / f"{name}.y4m"
        if target.exists():
            return target
        tmp = target.with_suffix(".part")
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
               "-t", str(seconds), "-an", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(tmp)]
        subprocess.run(cmd, check=True, timeout=300)
        tmp.rename(target)
        return target

    def sequence(self, name: str, parts: list[tuple[float, float, bool]], noise_seed: int | None = None,
                 scale: float = 1.0, pingpong: bool = True, slow: float = 1.0) -> Path:
        """Segments ``(start, seconds, mirrored)`` of a clip played one after the other (a mirrored segment
        next to an unmirrored one does not read as an opposite turn: the dense-landmark yaw of a mirrored
        face against an unmirrored starting pose is meaningless; use clips with real turns). ``pingpong`` appends the reverse (a seamless loop: the
        fake webcam loops the file); ``scale`` < 1 shrinks the picture in the frame (a rescaled replay);
        ``slow`` > 1 plays the clip that many times slower (a turn held a little longer)."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            unavailable(f"fake-webcam source clip missing: {src}")
        inputs, chains = [], []
        for k, (start, seconds, mirrored) in enumerate(parts):
            inputs += ["-ss", str(start), "-t", str(seconds), "-i", str(src)]
            chains.append(f"[{k}:v]{'hflip,' if mirrored else ''}setpts={slow:g}*(PTS-STARTPTS),{self._fit()},"
                          f"setsar=1[v{k}]")
        n = len(parts)
        graph = ";".join(chains) + ";" + "".join(f"[v{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=0[c]"
        total = sum(p[1] for p in parts) * slow
        if pingpong:
            graph += ";[c]split[f][b];[b]reverse[r];[f][r]concat=n=2:v=1:a=0[c2]"
            total *= 2
        else:
            graph += ";[c]null[c2]"
        w, h = self.W, self.H
        shrink = (f"scale=iw*{scale:g}:ih*{scale:g},pad={w}:{h}:(ow-iw)/2:(oh-ih)/2," if scale != 1 else "")
        graph += f";[c2]{shrink}format=yuv420p{self._noise(noise_seed)}[out]"
        tag = "-".join(f"{a:g}_{b:g}{'m' if m else ''}" for a, b, m in parts)
        label = f"seq-{name}-{tag}-s{scale:g}-x{slow:g}{'-pp' if pingpong else ''}{'' if noise_seed is None else f'-n{noise_seed}'}"
        return self._run_graph(label, inputs, graph, total)

    def turned_print(self, name: str, at: float = 3.0, seconds: float = 8, degrees: float = 40,
                     noise_seed: int | None = None) -> Path:
        """A flat print of one frame turned about its vertical axis, to one side then the other (a
        perspective warp of the still frame, 4 s per cycle): the "tilted print" attack."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            unavailable(f"fake-webcam source clip missing: {src}")
        import math
        k = 1 - math.cos(math.radians(degrees))  # horizontal foreshortening at the full turn
        v = 0.5 * math.sin(math.radians(degrees)) * 0.35  # the far edge's perspective shrink (a ~ 1 m view)
        f = f"sin(2*PI*in/{4 * self.FPS})"
        a, b = f"max({f},0)", f"max(-({f}),0)"
        # sense=destination: the input's corners go to these points (the far edge narrower and shorter)
        persp = (f"perspective=sense=destination:eval=frame:"
                 f"x0='W*{k / 2:.4f}*{b}':y0='H*{v:.4f}*{b}':x1='W-W*{k / 2:.4f}*{a}':y1='H*{v:.4f}*{a}':"
                 f"x2='W*{k / 2:.4f}*{b}':y2='H-H*{v:.4f}*{b}':x3='W-W*{k / 2:.4f}*{a}':y3='H-H*{v:.4f}*{a}'")
        tag = "" if noise_seed is None else f"-n{noise_seed}"
        return self._run(f"print-{name}-{at:g}-{degrees:g}-{seconds:g}{tag}", ["-ss", str(at), "-i", str(src)],
                         f"select=eq(n\\,0),loop=loop=-1:size=1:start=0,{self._fit()},{persp}"
                         f"{self._noise(noise_seed)}", seconds)

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

        page.on("console", on_console)
        page.on("pageerror", on_error)
        page.on("requestfailed", lambda r: self.console.append(f"[requestfailed] {r.method} {r.url} {r.failure}"))
        return page

    def __call__(self, page, name: str, doc: str | None = None, mask_video: bool = True) -> Path:
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
                self._doc_shot(page, DOCS / f"{doc}.png", mask_video)
        return path

    @staticmethod
    def _doc_shot(page, path: Path, mask_video: bool) -> None:
        if not mask_video:
            page.screenshot(path=str(path), timeout=15_000)
            return
        # Hide the preview (the stage and its face-position oval stay), and mask it as well in case
        # hiding did not take; restore it afterwards.
        hidden = page.evaluate("""() => { const v = [...document.querySelectorAll('video')];
            v.forEach(e => { e.style.visibility = 'hidden'; });
            return v.every(e => getComputedStyle(e).visibility === 'hidden'); }""")
        try:
            page.screenshot(path=str(path), timeout=15_000,
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


@pytest.fixture
def new_page(browser_for, shots, request):
    """``new_page(feed)`` -> a page in a fresh browser context (own cookies) on that feed's browser."""
    contexts = []

    def make(feed: Path, **context_kw):
        ctx = browser_for(feed).new_context(viewport={"width": 1000, "height": 800}, **context_kw)
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
def idp_server(browser_requirements, mongo_server, face_data_dir):
    """The IdP (face enabled) over real HTTP, one per test session (the face model loads once)."""
    from werkzeug.serving import make_server

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
    doc, secret = create_client(idp_server.db, idp_server.config, "Demo app", [url + "/callback"],
                                public=False, scope="openid profile email phone", face_policy="required",
                                post_logout_redirect_uris=[url + "/"])
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
    """``liveness(False)`` turns the presentation-attack checks (issue 5) off for this test;
    ``liveness(True, "turn_left")`` turns them on with that challenge pool (the fake webcam cannot
    follow a random instruction, so tests pin the challenge their feed performs)."""
    def set_(enabled: bool, challenges: str = "") -> None:
        cfg = idp_server.config
        if not hasattr(cfg, "liveness_enabled"):
            if enabled:
                pytest.skip("this build has no liveness checks (issue 5)")
            return
        monkeypatch.setattr(cfg, "liveness_enabled", enabled)
        monkeypatch.setattr(cfg, "liveness_challenges", challenges)
    return set_


@pytest.fixture
def make_account(idp_server, request):
    """``make_account(enrolled=True, person="d9")`` -> a new user (password PASSWORD), optionally with
    biometric consent and the template of that clip's person already stored (as if enrolled)."""
    from idp.accounts import users

    counter = iter(range(1000))

    def make(enrolled: bool = True, person: str = "d9") -> Account:
        tag = f"{re.sub(r'[^a-z0-9]', '', request.node.name.lower())[:16]}{next(counter)}{os.urandom(2).hex()}"
        name = f"Test User {tag}"
        doc = users.create_user(idp_server.db, f"u{tag}", f"u{tag}@example.test", PASSWORD, name=name)
        account = Account(doc["_id"], doc["username"], doc["email"], name)
        if enrolled:
            from idp.face.repository import save_template
            from idp.face.template import TemplateCipher
            from idp.faceweb import store
            template = request.getfixturevalue("template_of")(person)
            db = idp_server.db
            store.record_consent(db, account.uid)
            save_template(db, account.uid, template, TemplateCipher(idp_server.config.template_key))
            store.issue_recovery_codes(db, account.uid, idp_server.config.secret_key)
        return account

    return make
