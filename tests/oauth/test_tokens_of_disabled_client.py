"""Tokens are live only while their client is enabled. Disabling or deleting a client revokes its tokens, but
a redemption that read the client just before the disable ran (in another process: ``idp clients disable``)
stores its tokens after the revocation; those tokens were never revoked and, once the client was gone, made the
userinfo endpoint fail with a 500 and stayed active at introspection. Now a token of a disabled (or deleted)
client is treated as revoked. (The window used to be as long as a server process's cached copy of the client,
a few seconds; client authentication now reads the client from the database, so a code presented after the
disable is refused: test_client_auth_after_change_in_another_process.py.)"""
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
    from idp.oauth import clients, tokens
    monkeypatch.setattr(clients, "_CACHE_TTL", 3600.0)  # this server's cached client outlives the disable
    auditor = RP.register(idp, idp.db, idp.config, "Resource server", [RP_CALLBACK], can_introspect=True)
    res, verifier = rp.sign_in_for_code()  # the server reads (and caches) the enabled client
    done = _cli(idp, mongo_uri, "clients", "disable", rp.client_id)
    assert done.returncode == 0, done.stderr
    r = rp.redeem(res.params["code"], verifier)  # authenticated on the client as stored now: disabled
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    # what a redemption that read the client just before the disable stores once the revocation has run
    family = tokens.new_family()
    tok = {"access_token": tokens.make_token(family), "refresh_token": tokens.make_token(family)}
    tokens.issue(idp.db, idp.config, family=family, client_id=rp.client_id, user_id=user["_id"],
                 scope="openid profile offline_access", auth_time=1, amr=["pwd"], acr=None, **tok)
    clients.invalidate(idp.db, rp.client_id)  # the cached entry expires
    r = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", (r.status_code, r.text[:200])
    assert auditor.introspect(tok["access_token"]) == {"active": False}
    assert auditor.introspect(tok["refresh_token"]) == {"active": False}


def test_tokens_of_a_deleted_client_stop_working(idp, user, rp, mongo_uri):
    """Deleting a client (from another process: ``idp clients delete``) deletes its tokens; one stored afterwards
    by a redemption that read the client before is refused as well once this server's cached copy of the
    client is gone (as for a disabled client)."""
    from idp.oauth import clients, tokens
    auditor = RP.register(idp, idp.db, idp.config, "Resource server", [RP_CALLBACK], can_introspect=True)
    tok = rp.tokens(scope="openid profile offline_access")
    done = _cli(idp, mongo_uri, "clients", "delete", rp.client_id)
    assert done.returncode == 0, done.stderr
    family = tokens.new_family()
    late = {"access_token": tokens.make_token(family), "refresh_token": tokens.make_token(family)}
    tokens.issue(idp.db, idp.config, family=family, client_id=rp.client_id, user_id=user["_id"],
                 scope="openid profile offline_access", auth_time=1, amr=["pwd"], acr=None, **late)
    clients.invalidate(idp.db, rp.client_id)  # the cached entry expires
    for t in (tok, late):
        r = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {t['access_token']}"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_token", (r.status_code, r.text[:200])
        assert auditor.introspect(t["access_token"]) == {"active": False}
        assert auditor.introspect(t["refresh_token"]) == {"active": False}


def test_tokens_of_an_enabled_client_work(idp, user, rp):
    tok = rp.tokens()
    r = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 200 and r.json()["sub"]
