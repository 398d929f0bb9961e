"""Fixtures for the OAuth/OIDC tests: the real app served over HTTP (werkzeug, a thread), a user, clients,
and a small relying party written with ``requests`` + ``joserfc`` (not Authlib), from ``tests/support``."""
from __future__ import annotations

import pytest
from faceweb.conftest import engine, people  # noqa: F401  (fixtures: the real face engine, photos)
from support.fixtures import cheap_password_hashing  # noqa: F401  (autouse here)
from support.oidc import CALLBACK as RP_CALLBACK
from support.oidc import LOGGED_OUT as RP_LOGGED_OUT
from support.oidc import PASSWORD, Result, csrf_from, pkce_pair  # noqa: F401  (re-exported to the tests)
from support.oidc import RelyingParty as RP
from support.oidc import UserAgent, register_client  # noqa: F401  (register_client re-exported to the tests)
from support.servers import IdPServer as Server

REGISTRATION_TOKEN = "initial-access-token-0123456789abcdef"


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


def signed_in_admin(server, people):
    """A fresh administrator "root": password → face enrollment → face check; returns the browser's
    ``requests.Session``."""
    from idp.accounts.users import create_user
    from idp.faceweb.notice import NOTICE_VERSION
    create_user(server.db, "root", "root@example.org", PASSWORD, is_admin=True)
    b = UserAgent(server.url)
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
    """A confidential client with face policy "optional" (``register_client``): these tests are about the
    protocol, on a server with face sign-in off, so their sign-ins are password-only."""
    doc, secret = register_client(idp.db, idp.config, "Example RP", [RP_CALLBACK],
                                  scope="openid profile email phone offline_access",
                                  post_logout_redirect_uris=[RP_LOGGED_OUT])
    return RP(idp, doc["client_id"], secret)


@pytest.fixture
def public_rp(idp):
    """A public client with face policy "optional" (as ``rp``)."""
    doc, _ = register_client(idp.db, idp.config, "Public SPA", [RP_CALLBACK], public=True,
                             scope="openid profile email offline_access")
    return RP(idp, doc["client_id"], None)


@pytest.fixture
def cli_env(db, mongo_uri, tmp_path, monkeypatch):
    """``run(*args)``: the ``idp`` command line (in process, click's runner) on the test's migrated database."""
    from click.testing import CliRunner

    from idp.cli import cli
    from idp.store import migrate
    migrate.apply(db)
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("IDP_DB_NAME", db.name)
    monkeypatch.setenv("IDP_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def reg_idp(make_server):
    """The provider with RFC 7591 registration on (initial access token ``REGISTRATION_TOKEN``)."""
    return make_server(registration_access_token=REGISTRATION_TOKEN)


def register_metadata(idp, **metadata):
    """An RFC 7591 registration request of a client name and an https redirect URI plus ``metadata``."""
    import requests
    return requests.post(f"{idp.url}/oauth/register",
                         json={"client_name": "RP", "redirect_uris": ["https://rp.example/callback"], **metadata},
                         headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})


def age_session(idp, seconds: int):
    """Date the stored sign-ins ``seconds`` earlier (``max_age`` tests)."""
    idp.db.sessions.update_many({"data.auth.auth_time": {"$exists": True}},
                                {"$inc": {"data.auth.auth_time": -seconds, "data.auth.at": -seconds}})
