"""The plumbing every feature stands on: config, embedded DB, migrations, sessions, errors, logs."""
from __future__ import annotations

import json
import logging
import os
import stat

import pytest
from flask import session

from idp import create_app
from idp.config import Config
from idp.store import EmbeddedMongo, connect, migrate


def make_app(tmp_path, mongo_uri, **overrides):
    name = "core_" + os.urandom(4).hex()
    cfg = Config(data_dir=tmp_path, mongodb_uri=mongo_uri, db_name=name, face_enabled=False,
                 extra={"auto_migrate": True, "keep_logging": True}, **overrides)
    return create_app(cfg)


def test_config_from_env_reads_and_validates(tmp_path):
    cfg = Config.from_env({"IDP_ISSUER": "https://id.example/", "IDP_DATA_DIR": str(tmp_path),
                           "IDP_LOGIN_BASE_DELAY": "7", "IDP_FACE_ENABLED": "false"})
    assert cfg.issuer == "https://id.example"
    assert cfg.login_base_delay_s == 7 and cfg.face_enabled is False and cfg.secure_cookies
    with pytest.raises(SystemExit, match="IDP_LOGIN_BASE_DELAY"):
        Config.from_env({"IDP_LOGIN_BASE_DELAY": "soon"})


def test_secrets_are_generated_once_private_and_stable(tmp_path):
    a = Config(data_dir=tmp_path).ensure_secrets()
    b = Config(data_dir=tmp_path).ensure_secrets()
    assert a.secret_key == b.secret_key and len(a.template_key) == 64
    assert a.secret_key != a.key_encryption_key
    mode = stat.S_IMODE((tmp_path / "secrets" / "secret_key").stat().st_mode)
    assert mode == 0o600
    given = Config(data_dir=tmp_path, secret_key="from-env-" + "x" * 32).ensure_secrets()
    assert given.secret_key == "from-env-" + "x" * 32


def test_embedded_database_starts_keeps_data_and_stops(tmp_path):
    server = EmbeddedMongo(tmp_path / "db").start()
    try:
        db = connect(server.uri, "x")
        db.things.insert_one({"_id": 1})
        db.client.close()
    finally:
        server.stop()
    assert server.proc is None
    again = EmbeddedMongo(tmp_path / "db").start()
    try:
        db = connect(again.uri, "x")
        assert db.things.find_one({"_id": 1}) == {"_id": 1}
        db.client.close()
    finally:
        again.stop()


def test_migrations_apply_once_and_create_unique_indexes(db):
    first = migrate.apply(db)
    assert "0001_initial" in first
    assert migrate.apply(db) == [] and migrate.pending(db) == []
    db.users.insert_one({"_id": "a", "username": "ann", "email": "a@x"})
    from pymongo.errors import DuplicateKeyError
    with pytest.raises(DuplicateKeyError):
        db.users.insert_one({"_id": "b", "username": "ann", "email": "b@x"})
    ttl = {i["name"]: i for i in db.sessions.list_indexes()}
    assert ttl["expires_ttl"]["expireAfterSeconds"] == 0


def test_external_database_with_pending_migrations_is_refused(tmp_path, mongo_uri):
    cfg = Config(data_dir=tmp_path, mongodb_uri=mongo_uri, db_name="pending_" + os.urandom(4).hex(),
                 face_enabled=False, extra={"keep_logging": True})
    with pytest.raises(migrate.PendingMigrations, match="idp migrate"):
        create_app(cfg)


def test_sessions_live_in_mongodb_and_rotate(tmp_path, mongo_uri):
    app = make_app(tmp_path, mongo_uri)

    @app.route("/_t/set")
    def _set():
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.route("/_t/rotate")
    def _rotate():
        from idp.web import rotate_session
        rotate_session()
        return str(session.get("n"))

    client = app.test_client()
    assert client.get("/_t/set").text == "1"
    cookie1 = client.get_cookie("deepauth_session")
    assert cookie1.http_only and cookie1.same_site == "Lax"
    assert client.get("/_t/set").text == "2"
    db = app.extensions["db"]
    assert db.sessions.count_documents({}) == 1
    assert cookie1.value not in json.dumps([str(d) for d in db.sessions.find()])  # only the hash is stored
    assert client.get("/_t/rotate").text == "2"
    cookie2 = client.get_cookie("deepauth_session")
    assert cookie2.value != cookie1.value
    assert db.sessions.count_documents({"data": {"$exists": True}}) == 1  # the old id's data is gone
    assert client.get("/_t/set").text == "3"  # data survived the rotation
    # A stolen pre-rotation cookie no longer works (for a short while it is known as rotated away: the
    # request is anonymous and its session is not stored).
    other = app.test_client()
    other.set_cookie("deepauth_session", cookie1.value)
    assert other.get("/_t/set").text == "1"
    assert other.get("/_t/set").text == "1"
    assert other.get_cookie("deepauth_session").value == cookie1.value


def test_errors_never_show_a_stack_trace(tmp_path, mongo_uri):
    app = make_app(tmp_path, mongo_uri)

    @app.route("/_t/boom")
    def _boom():
        raise RuntimeError("secret internals")

    client = app.test_client()
    r = client.get("/_t/boom")
    assert r.status_code == 500 and b"secret internals" not in r.data and b"Traceback" not in r.data
    assert b"Something went wrong" in r.data
    r = client.get("/oauth/nothing-here")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    r = client.post("/_t/boom", data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1),
                    content_type="application/octet-stream")
    assert r.status_code == 405  # a GET-only route: the method is refused before the body is read


def test_body_size_limit_gives_413(tmp_path, mongo_uri):
    app = make_app(tmp_path, mongo_uri, max_body_bytes=1000)
    app.extensions["csrf_protect"].exempt("idp._sink")

    @app.route("/_t/sink", methods=["POST"], endpoint="_sink")
    def _sink():
        from flask import request
        return str(len(request.get_data()))

    app.view_functions["_sink"].__module__ = "idp"
    client = app.test_client()
    r = client.post("/_t/sink", data=b"x" * 10, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.text == "10"
    r = client.post("/_t/sink", data=b"x" * 5000, headers={"Accept": "application/json"})
    assert r.status_code == 413 and r.json["error"] == "request_too_large"


def test_json_logs_carry_request_id_and_redact_secrets(capsys):
    from idp.web.logs import JsonFormatter
    record = logging.LogRecord("idp", logging.INFO, __file__, 1, "signed in", (), None)
    record.client_secret = "s3cr3t"
    record.user_id = "u1"
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["client_secret"] == "[redacted]" and data["user_id"] == "u1" and "s3cr3t" not in line


def test_cli_refuses_an_unmigrated_external_database(tmp_path, mongo_uri):
    from click.testing import CliRunner
    from idp.cli import cli
    env = {"IDP_DATA_DIR": str(tmp_path), "MONGODB_URI": mongo_uri, "IDP_DB_NAME": "cli_" + os.urandom(4).hex()}
    runner = CliRunner()
    refused = runner.invoke(cli, ["clients", "list", "--json"], env=env)
    assert refused.exit_code != 0 and "idp migrate" in str(refused.exception)
    migrated = runner.invoke(cli, ["migrate"], env=env)
    assert migrated.exit_code == 0 and "0001_initial" in migrated.output
    assert runner.invoke(cli, ["clients", "list", "--json"], env=env).exit_code == 0


def test_face_threshold_below_the_safe_floor_is_refused_at_start():
    """A cosine-scale value (0.66) left from the old scorer would accept almost any impostor: fail at start-up."""
    import pytest

    from idp.config import Config
    for bad in ("0.66", "1", "nan", "-3"):
        with pytest.raises(SystemExit, match="IDP_FACE_THRESHOLD"):
            Config.from_env({"IDP_FACE_THRESHOLD": bad})
    assert Config.from_env({"IDP_FACE_THRESHOLD": "6"}).face_threshold == 6.0
    assert Config.from_env({}).face_threshold is None
