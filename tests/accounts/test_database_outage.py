"""The database going away answers 503 "try again" (page or JSON), with one log line and no stack trace.

A real SecantusDB server of the test's own is stopped under a running app; the app must neither answer 500 nor
log a traceback (an outage is an operations event, not a bug), and must serve again once the server is back.
"""
from __future__ import annotations

import logging
import time

import pytest
from support.oidc import csrf_from

from .conftest import GOOD_PASSWORD


@pytest.fixture
def own_server(tmp_path):
    from idp.store import EmbeddedMongo
    server = EmbeddedMongo(tmp_path / "db").start()
    yield server
    server.stop()


def _app(server, tmp_path):
    from idp import create_app
    from idp.config import Config
    uri = server.uri + "&serverSelectionTimeoutMS=400&connectTimeoutMS=400"
    config = Config(data_dir=tmp_path / "data", mongodb_uri=uri, db_name="outage", face_enabled=False,
                    extra={"auto_migrate": True, "keep_logging": True})
    app = create_app(config)
    app.config["IDP_ACCESS_LOG"] = False
    return app


def test_pages_and_api_answer_503_while_the_database_is_down(own_server, tmp_path, caplog):
    app = _app(own_server, tmp_path)
    client = app.test_client()
    page = client.get("/register")
    r = client.post("/register", data={"csrf_token": csrf_from(page.get_data(as_text=True)), "name": "Alice",
                                       "username": "alice", "email": "alice@example.com", "phone": "",
                                       "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert r.status_code == 302
    assert client.get("/account").status_code == 200

    own_server.stop()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        account = client.get("/account")                       # a signed-in page: the session's user is looked up
        login_page = app.test_client().get("/login")            # a new session is written: its write fails
        authorize = app.test_client().get("/authorize?client_id=c&response_type=code&scope=openid"
                                          "&redirect_uri=https://rp.example/cb")  # the client is looked up
        token = app.test_client().post("/oauth/token", data={"grant_type": "authorization_code", "code": "x",
                                                       "client_id": "c", "redirect_uri": "https://rp/cb"})
    assert account.status_code == 503, account.status_code
    assert "try again" in account.get_data(as_text=True).lower()
    assert account.headers.get("Retry-After")
    assert authorize.status_code == 503, authorize.status_code
    assert login_page.status_code == 503, login_page.status_code
    assert "Set-Cookie" not in login_page.headers and login_page.headers.get("Retry-After")
    assert login_page.headers.get("Content-Security-Policy")      # the security headers stay
    assert token.status_code == 503, token.status_code
    assert token.is_json and token.get_json()["error"] == "temporarily_unavailable"
    assert not [rec for rec in caplog.records if rec.exc_info], "an outage is logged without a traceback"
    assert any("database" in rec.getMessage().lower() for rec in caplog.records if rec.levelno >= logging.WARNING)

    own_server.start()
    for _ in range(40):  # the driver finds the server again within a heartbeat or two
        again = client.get("/account")
        if again.status_code != 503:
            break
        time.sleep(0.5)
    assert again.status_code == 200, again.status_code  # nothing was lost: the same session works again
    app.extensions["db"].client.close()
