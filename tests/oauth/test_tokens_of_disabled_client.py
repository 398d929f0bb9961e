"""Tokens are live only while their client is enabled. Disabling or deleting a client revokes its tokens, but
a server process that read the client before (each worker caches client documents for a few seconds) can still
redeem a code for it after the revocation ran in another process (``idp clients disable``); those tokens
were never revoked and, once the client was gone, made the userinfo endpoint fail with a 500 and stayed
active at introspection. Now a token of a disabled (or deleted) client is treated as revoked."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from .conftest import RP, RP_CALLBACK

ROOT = Path(__file__).resolve().parents[2]


def _cli(idp, mongo_uri, *args):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "MONGODB_"))}
    env.update(MONGODB_URI=mongo_uri, IDP_DB_NAME=idp.db.name, IDP_DATA_DIR=str(idp.config.data_dir),
               IDP_FACE_ENABLED="false", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "idp.cli", *args], env=env, cwd=str(ROOT), capture_output=True,
                          text=True, timeout=120)


def test_token_stored_after_another_process_disabled_the_client(idp, user, rp, mongo_uri, monkeypatch):
    from idp.oauth import clients
    monkeypatch.setattr(clients, "_CACHE_TTL", 3600.0)  # this server's cached client outlives the disable
    auditor = RP.register(idp, idp.db, idp.config, "Resource server", [RP_CALLBACK], can_introspect=True)
    res, verifier = rp.sign_in_for_code()  # the server reads (and caches) the enabled client
    done = _cli(idp, mongo_uri, "clients", "disable", rp.client_id)
    assert done.returncode == 0, done.stderr
    r = rp.redeem(res.params["code"], verifier)  # the window: this process still knows the client as enabled
    assert r.status_code == 200, r.text
    tok = r.json()
    clients.invalidate(idp.db, rp.client_id)  # the cached entry expires
    r = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", (r.status_code, r.text[:200])
    assert auditor.introspect(tok["access_token"]) == {"active": False}
    assert auditor.introspect(tok["refresh_token"]) == {"active": False}


def test_tokens_of_an_enabled_client_work(idp, user, rp):
    tok = rp.tokens()
    r = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 200 and r.json()["sub"]
