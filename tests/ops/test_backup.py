"""The restore drill of docs/operations.md, end to end on the embedded database: create a user, a
client and a face template, ``idp backup create``, wipe the data directory (database and generated
secrets), ``idp backup restore``, and the password, the client secret and the template work again and
the server starts and is ready."""
from __future__ import annotations

import pytest

import json
import shutil
import subprocess
import sys
import textwrap

import requests

from tests.ops.conftest import ROOT, Server, free_port, idp_env, run_cli

PASSWORD = "correct horse battery 7"

# Run in a subprocess (the CLI's way of opening the embedded database): save or check a template and
# check the password and client secret, with the secrets the configuration resolves.
PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from idp.config import Config
    from idp.store.runtime import open_database
    from idp.face.template import Template, TemplateCipher
    from idp.face.repository import save_template, load_template
    from idp.accounts.users import authenticate, find_by_login
    from idp.oauth.clients import get_client, verify_secret
    mode, client_id, secret = sys.argv[1:4]
    config = Config.load()
    with open_database(config) as db:
        user = find_by_login(db, "alice")
        cipher = TemplateCipher(config.template_key)
        emb = np.random.default_rng(7).normal(size=(3, 512))
        if mode == "save":
            save_template(db, user["_id"], Template.from_embeddings(emb), cipher)
        t = load_template(db, user["_id"], cipher)
        print(json.dumps({
            "password": authenticate(db, "alice", sys.argv[4]) is not None,
            "client": verify_secret(config, get_client(db, client_id), secret),
            "template": bool(np.allclose(t.mean, Template.from_embeddings(emb).mean, atol=1e-6)),
        }))
""")


def _probe(env, mode, client_id, secret):
    out = subprocess.run([sys.executable, "-c", PROBE, mode, client_id, secret, PASSWORD], env=env,
                         cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_backup_wipe_restore_sign_in_works(tmp_path):
    data, saved = tmp_path / "var", tmp_path / "backup"
    env = idp_env(data)
    r = run_cli(env, "users", "create", "--username", "alice", "--email", "alice@example.org",
                "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = run_cli(env, "clients", "create", "--name", "shop", "--redirect-uri", "https://shop.example/cb", "--json")
    assert r.returncode == 0, r.stderr
    client = json.loads(r.stdout)
    before = _probe(env, "save", client["client_id"], client["client_secret"])
    assert before == {"password": True, "client": True, "template": True}

    r = run_cli(env, "backup", "create", str(saved))
    assert r.returncode == 0, r.stderr
    assert (saved / "secrets" / "template_key").stat().st_mode & 0o077 == 0
    assert run_cli(env, "backup", "create", str(saved)).returncode != 0  # never overwrites a backup

    shutil.rmtree(data)  # the disaster: database and generated secrets gone
    # a wrong secret in the environment is refused before anything is replaced
    wrong = run_cli(idp_env(data, IDP_TEMPLATE_KEY="ab" * 32), "backup", "restore", "--yes", str(saved))
    assert wrong.returncode != 0 and "IDP_TEMPLATE_KEY".lower() in wrong.stderr.lower()
    assert "Traceback" not in wrong.stderr

    r = run_cli(env, "backup", "restore", "--yes", str(saved))
    assert r.returncode == 0, r.stderr
    after = _probe(env, "check", client["client_id"], client["client_secret"])
    assert after == {"password": True, "client": True, "template": True}

    port = free_port()
    server = Server(env, port)
    try:
        server.wait_ready(path="/readyz")
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
        login = requests.get(f"{server.url}/login", timeout=10)
        assert login.status_code == 200
    finally:
        server.stop()


def test_restore_refuses_something_that_is_not_a_backup(tmp_path):
    (tmp_path / "nothing").mkdir()
    r = run_cli(idp_env(tmp_path / "var"), "backup", "restore", "--yes", str(tmp_path / "nothing"))
    assert r.returncode != 0 and "not a backup" in r.stderr and "Traceback" not in r.stderr


def test_backup_warns_when_retired_keys_are_configured(tmp_path):
    """Only the current secrets are saved: during a key rotation the operator is told to finish it first."""
    env = idp_env(tmp_path / "var", IDP_TEMPLATE_KEYS_RETIRED="cd" * 32)
    r = run_cli(env, "backup", "create", str(tmp_path / "b1"))
    assert r.returncode == 0, r.stderr
    assert "retired keys are configured" in r.stderr and "cd" * 32 not in r.stderr + r.stdout
    r = run_cli(idp_env(tmp_path / "var"), "backup", "create", str(tmp_path / "b2"))
    assert r.returncode == 0 and "retired" not in r.stderr, r.stderr
