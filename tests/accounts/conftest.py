"""Fixtures for the accounts tests: the real app on the session's SecantusDB server, form helpers."""
from __future__ import annotations

import re

import pytest
from support.oidc import csrf_from as csrf_token  # noqa: F401  (the name the tests use)
from support.servers import LiveServer

GOOD_PASSWORD = "correct horse battery staple"


def field_errors(html: str) -> dict[str, list[str]]:
    """Per-field messages as rendered by templates/accounts/_macros.html."""
    out: dict[str, list[str]] = {}
    for field, message in re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]*)</p>', html):
        out.setdefault(field, []).append(message)
    return out


def alert(html: str) -> str | None:
    m = re.search(r'role="alert">([^<]*)<', html)
    return m.group(1) if m else None


def session_cookie(client) -> str | None:
    for name in ("deepauth_session", "__Host-session"):
        c = client.get_cookie(name)
        if c is not None:
            return c.value
    return None


def registered_over_http(url: str, username="alice"):
    """A ``requests`` session that registered ``username`` (and so is signed in) at the live server ``url``."""
    import requests
    s = requests.Session()
    page = s.get(f"{url}/register")
    r = s.post(f"{url}/register", data={"csrf_token": csrf_token(page.text), "name": "Alice Example",
                                        "username": username, "email": f"{username}@example.com", "phone": "",
                                        "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD},
               allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    return s


@pytest.fixture
def make_app(db, mongo_uri, tmp_path):
    """Build the real app (``create_app``) on the test's fresh database; kwargs override Config fields."""
    from idp import create_app
    from idp.config import Config

    apps = []

    def factory(**overrides):
        extra = {"auto_migrate": True, "keep_logging": True, **overrides.pop("extra", {})}
        config = Config(data_dir=tmp_path, mongodb_uri=mongo_uri, db_name=db.name, face_enabled=False,
                        extra=extra, **overrides)
        app = create_app(config)
        app.config["IDP_ACCESS_LOG"] = False
        apps.append(app)
        return app
    yield factory
    for app in apps:
        app.extensions["db"].client.close()


@pytest.fixture
def mail_app(make_app, smtp_server):
    """The app sending mail to a real SMTP server (``smtp_server``)."""
    return make_app(smtp_url=smtp_server.url)


def stored_user(app, username="alice"):
    """The user's document as stored."""
    return app.extensions["db"].users.find_one({"username": username})


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def migrated_db(db):
    from idp.store import migrate
    migrate.apply(db)
    return db


class Browser:
    """A test client that fills forms the way a browser does (CSRF token from the page)."""

    def __init__(self, client, remote_addr: str = "127.0.0.1"):
        self.client = client
        self.environ = {"REMOTE_ADDR": remote_addr}

    def get(self, path, **kw):
        return self.client.get(path, environ_base=self.environ, **kw)

    def submit(self, path, data: dict, **kw):
        page = self.get(path)
        return self.client.post(path, data={"csrf_token": csrf_token(page.text), **data},
                                environ_base=self.environ, **kw)

    def register(self, username="alice", email=None, password=GOOD_PASSWORD, confirm=None, name="Alice Example",
                 phone=""):
        return self.submit("/register", {
            "name": name, "username": username, "email": email or f"{username}@example.com", "phone": phone,
            "password": password, "confirm": password if confirm is None else confirm,
        })

    def login(self, username, password):
        return self.submit("/login", {"username": username, "password": password})


@pytest.fixture
def browser(client):
    return Browser(client)


@pytest.fixture
def live_server(app):
    """The app over real HTTP (werkzeug) on 127.0.0.1:<free port>."""
    server = LiveServer(app)
    yield server.url
    server.stop()
