"""Fixtures for the demo relying party: the real IdP and the demo RP, each over HTTP on 127.0.0.1."""
from __future__ import annotations

import os
import uuid

import pytest
from support.servers import LiveServer


@pytest.fixture
def idp(mongo_uri, tmp_path):
    from idp import create_app
    from idp.config import Config

    db_name = "demo_" + uuid.uuid4().hex[:10]
    holder = {}

    def build(url):
        config = Config(issuer=url, data_dir=tmp_path, mongodb_uri=mongo_uri, db_name=db_name,
                        face_enabled=False, extra={"auto_migrate": True, "keep_logging": True})
        holder["config"] = config
        return create_app(config)

    served = LiveServer(build=build)
    served.config = holder["config"]
    served.db = served.app.extensions["db"]
    yield served
    served.stop()
    served.db.client.drop_database(db_name)
    served.db.client.close()


@pytest.fixture
def demo_factory(idp):
    """Start a demo RP registered at ``idp`` through the clients service (face policy "optional" unless
    given: these tests sign in with a password only, face sign-in is off)."""
    from clients.demo import create_app
    from idp.oauth.clients import create_client

    started = []

    def start(scope: str = "openid profile email offline_access", face_policy: str = "optional"):
        holder = {}

        def build(url):
            doc, secret = create_client(idp.db, idp.config, "Demo (test)", [url + "/callback"], public=False,
                                        scope=scope, face_policy=face_policy,
                                        post_logout_redirect_uris=[url + "/"],
                                        backchannel_logout_uri=url + "/backchannel-logout",
                                        backchannel_logout_session_required=True)
            holder["client_id"] = doc["client_id"]
            return create_app(idp.url, doc["client_id"], secret, url, scope=scope)

        served = LiveServer(build=build)
        served.client_id = holder["client_id"]
        started.append(served)
        return served

    yield start
    for s in started:
        s.stop()


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
