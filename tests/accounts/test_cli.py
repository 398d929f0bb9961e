"""``idp users create/delete/list`` through click's CliRunner against the real database."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from idp.cli import cli

from .conftest import GOOD_PASSWORD


@pytest.fixture
def run(migrated_db, mongo_uri, tmp_path):
    env = {"MONGODB_URI": mongo_uri, "IDP_DATA_DIR": str(tmp_path), "IDP_DB_NAME": migrated_db.name}

    def invoke(args, stdin=None):
        return CliRunner().invoke(cli, args, input=stdin, env=env, catch_exceptions=False)
    return invoke


def test_create_prints_id_and_stores_account(run, migrated_db):
    r = run(["users", "create", "--username", "Admin", "--email", "admin@example.com", "--password-stdin",
             "--admin", "--name", "The Admin"], stdin=GOOD_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    uid = r.output.strip()
    doc = migrated_db.users.find_one({"_id": uid})
    assert doc["username"] == "admin" and doc["is_admin"] is True and doc["name"] == "The Admin"
    from idp.accounts import users
    assert users.authenticate(migrated_db, "admin", GOOD_PASSWORD)["_id"] == uid
    assert users.authenticate(migrated_db, "admin", GOOD_PASSWORD + "\n") is None  # newline was stripped
    entry = migrated_db.audit_log.find_one({"event": "account.register", "user_id": uid})
    assert entry["details"] == {"via": "cli", "is_admin": True}  # an administrator made outside the pages is on record


def test_list_of_no_users_says_so(run):
    """Plain output answers an operator even with nothing to list (--json stays an empty array)."""
    assert run(["users", "list"]).output.strip() == "no users yet (idp users create, or the registration page)"
    assert json.loads(run(["users", "list", "--json"]).output) == []


def test_create_json_and_list(run):
    r = run(["users", "create", "--username", "nina", "--email", "nina@example.com", "--password-stdin", "--json"],
            stdin=GOOD_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    created = json.loads(r.output)
    assert created["username"] == "nina" and created["is_admin"] is False and "password_hash" not in created
    listed = json.loads(run(["users", "list", "--json"]).output)
    assert [u["id"] for u in listed] == [created["id"]]


def test_create_applies_the_same_rules(run, migrated_db):
    r = run(["users", "create", "--username", "oscar", "--email", "oscar@example.com", "--password-stdin"],
            stdin="password1\n")
    assert r.exit_code == 2 and "too common" in r.output
    run(["users", "create", "--username", "oscar", "--email", "oscar@example.com", "--password-stdin"],
        stdin=GOOD_PASSWORD + "\n")
    r = run(["users", "create", "--username", "OSCAR", "--email", "x@example.com", "--password-stdin"],
            stdin=GOOD_PASSWORD + "\n")
    assert r.exit_code == 1 and "username" in r.output
    assert migrated_db.users.count_documents({}) == 1


def test_delete_erases_user_data(run, migrated_db):
    uid = run(["users", "create", "--username", "pat", "--email", "pat@example.com", "--password-stdin"],
              stdin=GOOD_PASSWORD + "\n").output.strip()
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    migrated_db.sessions.insert_one({"_id": "s1", "data": {"auth": {"uid": uid}}, "expires": soon})
    migrated_db.consents.insert_one({"user_id": uid, "client_id": "rp"})
    migrated_db.face_templates.insert_one({"_id": uid, "ciphertext": b"x"})
    r = run(["users", "delete", "pat"])
    assert r.exit_code == 0, r.output
    assert "deleted user pat" in r.output and "sessions: 1" in r.output and "face_templates: 1" in r.output
    assert migrated_db.users.count_documents({}) == 0
    assert migrated_db.sessions.count_documents({}) == 0
    assert migrated_db.consents.count_documents({}) == 0
    assert migrated_db.face_templates.count_documents({}) == 0
    entries = list(migrated_db.audit_log.find({"event": "admin.user_deleted"}))  # the account's own are erased
    assert [(e["user_id"], e["details"]["via"], e["details"]["deleted_user"]) for e in entries] == [(None, "cli", uid)]
    r = run(["users", "delete", "pat"])
    assert r.exit_code == 1 and "no such user" in r.output


def test_list_json_shows_disabled_and_interrupted_deletions(run, migrated_db):
    """Dates inside an account's state (disabled by an admin, a deletion claimed by a process that died) are
    written as ISO text (a datetime made ``users list --json`` fail), and a deletion's claim is not shown."""
    from idp.accounts import users
    nina = users.create_user(migrated_db, "nina", "nina@example.com", GOOD_PASSWORD)
    omar = users.create_user(migrated_db, "omar", "omar@example.com", GOOD_PASSWORD)
    users.set_disabled(migrated_db, nina["_id"], True, by="admin-id")
    claimed = users._claim_deletion(migrated_db, omar["_id"])
    r = run(["users", "list", "--json"])
    assert r.exit_code == 0, r.output
    listed = {u["username"]: u for u in json.loads(r.output)}
    assert listed["nina"]["disabled"]["by"] == "admin-id" and datetime.fromisoformat(listed["nina"]["disabled"]["at"])
    assert set(listed["omar"]["deleting"]) == {"at"} and claimed["deleting"]["claim"] not in r.output
    r = run(["users", "delete", "omar"])  # its claim is live: refused, and the way out is said
    assert r.exit_code == 1 and "run this again after 10 minutes" in r.output
