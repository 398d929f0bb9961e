"""Fixtures for the OAuth/OIDC tests: the real app served over HTTP (werkzeug, a thread), a user, clients,
and a small relying party written with ``requests`` + ``joserfc`` (not Authlib)."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from faceweb.conftest import engine, face_data_dir, people  # noqa: F401  (fixtures: the real face engine, photos)

PASSWORD = "correct horse battery staple"
RP_CALLBACK = "https://rp.example/callback"
RP_LOGGED_OUT = "https://rp.example/"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_from(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no csrf_token in the page"
    return m.group(1) or m.group(2)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Server:
    def __init__(self, app):
        from werkzeug.serving import make_server
        self.app = app
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        app.config["IDP"].issuer = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def config(self):
        return self.app.config["IDP"]

    @property
    def db(self):
        return self.app.extensions["db"]

    def stop(self):
        self.httpd.shutdown()
        self.thread.join(5)


@pytest.fixture(autouse=True)
def cheap_password_hashing():
    """Argon2 with small parameters: the password step stays real, the tests stay fast."""
    from idp.accounts import passwords
    old = passwords.set_hasher(passwords.make_hasher(time_cost=1, memory_cost=8192, parallelism=1))
    yield
    passwords.set_hasher(old)


@pytest.fixture
def make_server(db, mongo_uri, tmp_path):
    from idp import create_app
    from idp.config import Config

    servers = []

    def factory(**overrides):
        extra = {"auto_migrate": True, "keep_logging": True, **overrides.pop("extra", {})}
        settings = {"data_dir": tmp_path, "face_enabled": False, **overrides}
        config = Config(mongodb_uri=mongo_uri, db_name=db.name, extra=extra, **settings)
        server = Server(create_app(config))
        servers.append(server)
        return server
    yield factory
    for s in servers:
        s.stop()
        s.app.extensions["db"].client.close()


@pytest.fixture
def idp(make_server):
    return make_server()


@pytest.fixture
def face_idp(make_server, face_data_dir, people):
    """The provider with face sign-in on (real engine; liveness off: separate photos), for the admin pages,
    which need a session with amr "face"."""
    return make_server(data_dir=face_data_dir, face_enabled=True, face_enroll_frames=5, face_verify_frames=3,
                       liveness_enabled=False)


def signed_in_admin(server, people) -> requests.Session:
    """A fresh administrator "root": password → face enrollment → face check; returns the browser."""
    from faceweb.test_oidc_face import HttpBrowser

    from idp.accounts.users import create_user
    from idp.faceweb.notice import NOTICE_VERSION
    create_user(server.db, "root", "root@example.org", PASSWORD, is_admin=True)
    b = HttpBrowser(server.url)
    page, _ = b.go("/login")
    page, _ = b.submit(page, "/login", {"username": "root", "password": PASSWORD})
    page, _ = b.go("/admin/clients/")
    assert page.url.endswith("/face/enroll"), page.url
    page, _ = b.submit(page, "/face/consent", {"consent": "yes", "notice_version": NOTICE_VERSION})
    assert b.capture(page, "enroll", people["alice"][:5])["ok"]
    page, _ = b.go("/face/continue")
    result = b.capture(page, "verify", people["alice"][5:8])
    assert result["ok"] and result["redirect"] == "/admin/clients/", result
    return b.s


@pytest.fixture
def user(idp):
    from idp.accounts.users import create_user
    return create_user(idp.db, "alice", "alice@example.org", PASSWORD, name="Alice Liddell", phone="+44 20 7946 0000")


@pytest.fixture
def rp(idp):
    from idp.oauth.clients import create_client
    doc, secret = create_client(idp.db, idp.config, "Example RP", [RP_CALLBACK],
                                scope="openid profile email phone offline_access",
                                post_logout_redirect_uris=[RP_LOGGED_OUT])
    return RP(idp, doc["client_id"], secret)


@pytest.fixture
def public_rp(idp):
    from idp.oauth.clients import create_client
    doc, _ = create_client(idp.db, idp.config, "Public SPA", [RP_CALLBACK], public=True,
                           scope="openid profile email offline_access")
    return RP(idp, doc["client_id"], None)


@dataclass
class Result:
    """Where the authorization request ended: a redirect to the client or a page at the IdP."""
    response: requests.Response
    location: str | None = None
    params: dict = field(default_factory=dict)


class RP:
    """A relying party and its user's browser, using plain HTTP."""

    def __init__(self, idp: Server, client_id: str, secret: str | None):
        self.idp, self.client_id, self.secret = idp, client_id, secret
        self.browser = requests.Session()

    # -- browser side --
    def authorize_url(self, **params) -> str:
        base = {"response_type": "code", "client_id": self.client_id, "redirect_uri": RP_CALLBACK,
                "scope": "openid profile email offline_access", "state": secrets.token_urlsafe(8)}
        base.update({k: v for k, v in params.items() if v is not None})
        for k in [k for k, v in params.items() if v is None]:
            base.pop(k, None)
        return f"{self.idp.url}/authorize?{urlencode(base)}"

    def follow(self, url: str, method: str = "GET", data=None) -> Result:
        """Follow IdP redirects; stop at a redirect leaving the IdP or at a page."""
        resp = self.browser.request(method, url, data=data, allow_redirects=False)
        while resp.status_code in (301, 302, 303, 307):
            loc = resp.headers["Location"]
            if loc.startswith("/"):
                loc = self.idp.url + loc
            if not loc.startswith(self.idp.url):
                return Result(resp, loc, {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()})
            resp = self.browser.get(loc, allow_redirects=False)
        return Result(resp)

    def login(self, page: Result, username="alice", password=PASSWORD) -> Result:
        assert "/login" in page.response.url, page.response.url
        token = csrf_from(page.response.text)
        return self.follow(page.response.url, "POST", {"csrf_token": token, "username": username,
                                                       "password": password})

    def consent(self, page: Result, decision="allow", with_csrf=True) -> Result:
        html = page.response.text
        assert "Allow" in html and "Deny" in html
        rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
        data = {"rid": rid, "decision": decision}
        if with_csrf:
            data["csrf_token"] = csrf_from(html)
        return self.follow(f"{self.idp.url}/authorize/consent", "POST", data)

    def sign_in_for_code(self, **params) -> tuple[Result, str | None]:
        """Full interactive sign-in (login page, consent page when shown); returns the final result
        and the PKCE verifier used."""
        verifier, challenge = pkce_pair()
        params.setdefault("code_challenge", challenge)
        params.setdefault("code_challenge_method", "S256")
        res = self.follow(self.authorize_url(**params))
        if res.location is None and "/login" in res.response.url:
            res = self.login(res)
        if res.location is None and '/authorize/consent"' in res.response.text:
            res = self.consent(res)
        return res, verifier

    # -- back channel --
    def auth(self):
        return (self.client_id, self.secret) if self.secret else None

    def token(self, **data) -> requests.Response:
        if not self.secret:
            data.setdefault("client_id", self.client_id)
        return requests.post(f"{self.idp.url}/oauth/token", data=data, auth=self.auth())

    def redeem(self, code: str, verifier: str | None) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK}
        if verifier:
            data["code_verifier"] = verifier
        return self.token(**data)

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token)

    def introspect(self, token: str) -> dict:
        r = requests.post(f"{self.idp.url}/oauth/introspect", data={"token": token}, auth=self.auth())
        assert r.status_code == 200, r.text
        return r.json()

    def tokens(self, **params) -> dict:
        res, verifier = self.sign_in_for_code(**params)
        assert res.location and res.location.startswith(RP_CALLBACK), res.response.text[:500]
        r = self.redeem(res.params["code"], verifier)
        assert r.status_code == 200, r.text
        return r.json()
