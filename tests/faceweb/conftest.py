"""Fixtures for the face pages: a real app (real MongoDB, real face engine), real photos, signed-in browsers."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from support.fixtures import cheap_password_hashing  # noqa: F401  (autouse here)

USER_AGENT = "Mozilla/5.0 (faceweb tests)"
PASSWORD = "correct horse battery staple 42"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


@pytest.fixture(scope="session")
def engine(face_data_dir):
    from idp.config import Config
    from idp.face import get_engine
    c = Config()
    return get_engine(face_data_dir, threshold=c.face_threshold, max_image_bytes=c.max_image_bytes,
                      max_image_pixels=c.max_image_pixels)


def jpeg_bytes(path: Path, size=None) -> bytes:
    img = Image.open(path).convert("RGB")
    if size:
        img = img.resize(size)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="session")
def people(faces_dir, engine) -> dict:
    """Two people, each with 8 real colour photos that pass the engine's quality checks (as JPEG bytes)."""
    root = faces_dir / "lfw_color65_240px"
    out = {}
    for name in ("Vladimir_Putin", "Tony_Blair"):
        good = []
        for path in sorted((root / name).glob("*.jpg")):
            data = path.read_bytes()
            if engine.analyze(data, embed="never").ok:
                good.append(data)
            if len(good) == 8:
                break
        assert len(good) == 8, f"not enough good photos of {name}"
        out[name] = good
    return {"alice": out["Vladimir_Putin"], "mallory": out["Tony_Blair"]}


@pytest.fixture
def make_app(mongo_uri, face_data_dir, db, engine):
    """Build an app on the shared data dir (engine loaded once) and this test's fresh database."""
    from idp import create_app
    from idp.config import Config

    apps = []

    def factory(**overrides):
        # Liveness off by default here: these tests feed separate LFW photos to test the face pages;
        # test_liveness_web.py turns it on (and checks that it is on by default).
        settings = dict(data_dir=face_data_dir, mongodb_uri=mongo_uri, db_name=db.name, face_enabled=True,
                        face_enroll_frames=5, face_verify_frames=3, liveness_enabled=False,
                        extra={"auto_migrate": True, "keep_logging": True})
        settings.update(overrides)
        app = create_app(Config(**settings))
        app.testing = True
        # the face and liveness models loaded now, as `idp serve` does, so no capture pays their loading:
        # a test's first frame that did took up to 43 s on a loaded host, and its later frames, more than
        # the 30 s a frame's age may be behind the server's clock, were moved out of the burst (refused)
        for warm_up in app.extensions.get("idp_warmups", []):
            warm_up()
        apps.append(app)
        return app
    yield factory
    for app in apps:  # a closed client also ends the app's background senders (mail, back-channel logout)
        app.extensions["db"].client.close()


@pytest.fixture
def app(make_app):
    return make_app()


class Browser:
    """A test client that behaves like the pages' forms and face-capture.js."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.client.environ_base["HTTP_USER_AGENT"] = USER_AGENT
        self.csrf = None

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def page_csrf(self, path="/face/recover") -> str:
        resp = self.client.get(path)
        m = CSRF_META.search(resp.text) or CSRF_INPUT.search(resp.text)
        assert m, f"no CSRF token on {path} ({resp.status_code})"
        self.csrf = m.group(1)
        return self.csrf

    def form(self, path, data, page=None):
        token = self.page_csrf(page or path)
        return self.client.post(path, data={"csrf_token": token, **data})

    def login(self, username, password=PASSWORD):
        page = self.client.get("/login")
        token = CSRF_INPUT.search(page.text).group(1)
        resp = self.client.post("/login", data={"csrf_token": token, "username": username, "password": password})
        assert resp.status_code == 302, resp.text[:500]
        self.csrf = None
        return resp

    def _token(self):
        if self.csrf is None:
            self.page_csrf()
        return self.csrf

    def api(self, path, *, data=None, json=None, content_type=None, headers=None):
        h = {"X-CSRFToken": self._token(), "Accept": "application/json", **(headers or {})}
        if json is not None:
            return self.client.post(path, json=json, headers=h)
        return self.client.post(path, data=data, content_type=content_type, headers=h)

    def start(self, purpose):
        return self.api(f"/api/face/{purpose}/captures", json={})

    def frame(self, cap, image: bytes, content_type="image/jpeg", nonce=None):
        return self.api(cap["frames_url"], data=image, content_type=content_type,
                        headers={"X-Capture-Nonce": nonce or cap["nonce"], "X-Frame-Time": "1700000000000"})

    def finish(self, cap, nonce=None):
        return self.api(cap["finish_url"], headers={"X-Capture-Nonce": nonce or cap["nonce"]})

    def capture(self, purpose, images):
        """What face-capture.js does: start, send frames until done, finish. Returns the finish response."""
        resp = self.start(purpose)
        assert resp.status_code == 201, resp.get_json()
        cap = resp.get_json()
        for image in images:
            r = self.frame(cap, image)
            assert r.status_code == 200, r.get_json()
            if r.get_json()["done"]:
                break
        return self.finish(cap)

    def consent(self):
        resp = self.form("/face/consent", {"consent": "yes", "notice_version": notice_version()}, page="/face/enroll")
        assert resp.status_code == 302
        return resp


def notice_version():
    from idp.faceweb.notice import NOTICE_VERSION
    return NOTICE_VERSION


@pytest.fixture
def new_user(app):
    from idp import get_db
    from idp.accounts import users

    def factory(username="alice", is_admin=False):
        return users.create_user(get_db(app), username, f"{username}@example.org", PASSWORD, name=username.title(),
                                 is_admin=is_admin)
    return factory


@pytest.fixture
def browser(app):
    return Browser(app)


@pytest.fixture
def enrolled(app, new_user, people):
    """A user "alice" enrolled with photos of one person; returns (user, browser after enrollment)."""
    return enroll_user(app, new_user, people["alice"])


def enroll_user(app, new_user, photos, username: str = "alice"):
    """A new user ``username`` who signs in with a ``Browser`` and enrolls from ``photos[:5]`` (first
    enrollment, consent given); returns (user, that browser)."""
    user = new_user(username)
    b = Browser(app)
    b.login(username)
    b.consent()
    resp = b.capture("enroll", photos[:5])
    assert resp.get_json()["ok"], resp.get_json()
    return user, b


def session_auth(browser: Browser) -> dict:
    """The ``auth`` part of this browser's server-side session (read from MongoDB by its cookie)."""
    import hashlib
    from idp import get_db
    cookie = browser.client.get_cookie("deepauth_session")
    assert cookie is not None
    doc = get_db(browser.app).sessions.find_one({"_id": hashlib.sha256(cookie.value.encode()).hexdigest()})
    return doc["data"]["auth"]


def signed_in_admin(app, images, username="root") -> Browser:
    """A fresh administrator: password, face enrollment (from ``images``: 5 to enroll, 3 to verify), then the
    face check that admin pages need (amr "face"). Returns the browser."""
    from idp import get_db
    from idp.accounts import users
    users.create_user(get_db(app), username, f"{username}@example.org", PASSWORD, is_admin=True)
    a = Browser(app)
    a.login(username)
    a.consent()
    assert a.capture("enroll", images[:5]).get_json()["ok"]
    assert a.capture("verify", images[5:8]).get_json()["ok"]
    assert session_auth(a)["amr"] == ["pwd", "face"]
    return a
