"""The README's CLI commands beside a running ``idp serve`` on the same data directory (one embedded
database, shared), stale records, and one-line errors instead of tracebacks."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from pymongo import MongoClient

from .conftest import free_port, idp_env, run_cli

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"


def _record(data_dir):
    return json.loads((data_dir / "embedded-db.json").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def _no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr


def test_cli_commands_use_the_database_of_a_running_server(tmp_path, serve_factory):
    env = idp_env(tmp_path)
    server = serve_factory(env)
    server.wait_ready()
    record = _record(tmp_path)
    assert record["owner_pid"] == server.proc.pid and record["uri"].startswith("mongodb://127.0.0.1:")

    created = run_cli(env, "users", "create", "--username", "admin1", "--email", "admin1@example.com",
                      "--password-stdin", "--admin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    client = run_cli(env, "clients", "create", "--name", "Shop", "--redirect-uri",
                     "https://shop.example.com/cb", "--json")
    assert client.returncode == 0, client.stderr
    client_id = json.loads(client.stdout)["client_id"]
    keys = run_cli(env, "keys", "rotate")
    assert keys.returncode == 0, keys.stderr
    listed = run_cli(env, "users", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    for result in (created, client, keys, listed):
        _no_traceback(result)
    assert [u["username"] for u in json.loads(listed.stdout)] == ["admin1"]

    # They acted on the server's database: the running IdP publishes the client's data and the new keys.
    with MongoClient(record["uri"]) as mc:
        db = mc["deepauth"]
        assert db.users.count_documents({"username": "admin1", "is_admin": True}) == 1
        assert db.clients.count_documents({"_id": client_id}) + db.clients.count_documents(
            {"client_id": client_id}) >= 1
    import requests
    kids = {k["kid"] for k in requests.get(server.url + "/jwks.json", timeout=5).json()["keys"]}
    new_kids = set(keys.stdout.split(":", 1)[1].replace(",", " ").split())
    assert new_kids <= kids

    # The CLI did not stop the shared server (it did not start it), and the record is still the server's.
    assert _alive(record["pid"]) and _record(tmp_path) == record
    server.stop()
    assert not (tmp_path / "embedded-db.json").exists()
    assert not _alive(record["pid"])


def test_second_serve_shares_the_database_and_leaves_it_to_its_owner(tmp_path, serve_factory):
    env = idp_env(tmp_path)
    first = serve_factory(env)
    first.wait_ready()
    record = _record(tmp_path)
    second = serve_factory(env)
    second.wait_ready()
    assert _record(tmp_path) == record  # no second daemon on the same files
    second.stop()
    assert _alive(record["pid"]) and _record(tmp_path) == record
    listed = run_cli(env, "users", "list", "--json")
    assert listed.returncode == 0, listed.stderr


def test_stale_record_of_a_dead_server_is_replaced(tmp_path):
    env = idp_env(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "embedded-db.json").write_text(json.dumps({
        "uri": f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", "pid": dead.pid,
        "owner_pid": dead.pid, "storage": str(tmp_path / "db")}))
    result = run_cli(env, "users", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert not (tmp_path / "embedded-db.json").exists()  # the CLI's own server is gone with its record


def test_orphaned_daemon_whose_owner_died_is_stopped_and_replaced(tmp_path):
    from idp.store import EmbeddedMongo

    orphan = EmbeddedMongo(tmp_path / "db").start()
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        (tmp_path / "embedded-db.json").write_text(json.dumps({
            "uri": orphan.uri, "pid": orphan.proc.pid, "owner_pid": dead.pid, "storage": str(tmp_path / "db")}))
        result = run_cli(env := idp_env(tmp_path), "users", "list", "--json")
        assert result.returncode == 0, result.stderr
        assert orphan.proc.wait(timeout=15) is not None
        again = run_cli(env, "users", "list", "--json")
        assert again.returncode == 0, again.stderr
    finally:
        orphan.stop()


def test_unreachable_external_database_is_one_line_not_a_traceback(tmp_path):
    env = idp_env(tmp_path, MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=500")
    result = run_cli(env, "users", "list", "--json")
    assert result.returncode == 1
    _no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database:"), result.stderr


def test_embedded_database_that_cannot_start_is_one_line(tmp_path):
    (tmp_path / "db").write_text("not a directory")
    result = run_cli(idp_env(tmp_path), "keys", "list")
    assert result.returncode == 1
    _no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot start the embedded database"), result.stderr
