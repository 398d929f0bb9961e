"""A damaged backup never costs the database it was to replace: ``idp backup restore`` refuses it with one
line and leaves every collection as it was, whether the damage is seen by reading the files (an index list
without keys, a manifest whose collections are not a mapping, an empty secret) or only by the database while
loading (documents that break the backup's own unique index). And ``idp backup create`` into a place it
cannot write ends in one line and leaves nothing behind."""
from __future__ import annotations

import json

import bson
import pytest

from idp.accounts.users import create_user
from idp.config import Config
from idp.store import backup as b
from tests.ops.conftest import idp_env, run_cli

PASSWORD = "correct horse battery 7"


@pytest.fixture
def config(tmp_path, mongo_uri, db):
    return Config(data_dir=tmp_path / "var", mongodb_uri=mongo_uri, db_name=db.name).ensure_secrets()


@pytest.fixture
def saved(tmp_path, db, config):
    """A backup of a (migrated) database holding two accounts; the live database keeps them."""
    from idp.store import migrate
    migrate.apply(db)
    create_user(db, "alice", "alice@example.org", PASSWORD)
    create_user(db, "bob", "bob@example.org", PASSWORD)
    target = tmp_path / "backup"
    b.create(db, config, target)
    return target


def _users(db) -> list[str]:
    return sorted(u["username"] for u in db.users.find())


def _damage_indexes(saved):
    (saved / "db" / "users.indexes.json").write_text(json.dumps([{"v": 2, "name": "email_unique"}]))


def _craft_index(saved, **changes):
    """The backup's ``users`` indexes, ``email_unique`` changed: the file reads and has names and keys."""
    path = saved / "db" / "users.indexes.json"
    indexes = json.loads(path.read_text())
    for spec in indexes:
        if spec["name"] == "email_unique":
            spec.update(changes)
    path.write_text(json.dumps(indexes))


# Options a crafted or damaged backup may give an index: pymongo raised TypeError or ValueError on the first ones
# (a traceback, and a staging collection left behind), the database stored the others unchecked.
CRAFTED_INDEXES = {
    "collation-not-a-dict": {"collation": "x"},
    "session-not-a-session": {"session": "x"},
    "float-direction": {"key": [["email", 1.5]]},
    "unknown-option": {"hidden": "x"},
    "unique-not-a-bool": {"unique": "yes"},
    "negative-ttl": {"expireAfterSeconds": -5},
    "text-index": {"key": [["email", "text"]]},
}


@pytest.mark.parametrize("changes", CRAFTED_INDEXES.values(), ids=CRAFTED_INDEXES.keys())
def test_an_index_option_the_idp_does_not_use_is_refused(saved, db, changes):
    collections = set(db.list_collection_names())
    _craft_index(saved, **changes)
    with pytest.raises(b.BackupError, match="users.indexes.json is damaged"):
        b.restore(db, saved)
    assert _users(db) == ["alice", "bob"]
    assert set(db.list_collection_names()) == collections


def _damage_manifest(saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["collections"] = list(manifest["collections"])
    (saved / "manifest.json").write_text(json.dumps(manifest))


def _damage_secret(saved):
    (saved / "secrets" / "template_key").write_text("\n")


def _duplicate_a_unique_field(saved):
    """Both accounts get one email address: the file reads, counts and decodes well; only the backup's unique
    index refuses it, when the database loads it."""
    path = saved / "db" / "users.bson"
    docs = bson.decode_all(path.read_bytes())
    for doc in docs:
        doc["email"] = "same@example.org"
    path.write_bytes(b"".join(bson.encode(d) for d in docs))


@pytest.mark.parametrize("damage", [_damage_indexes, _damage_manifest, _damage_secret, _duplicate_a_unique_field])
def test_a_damaged_backup_is_refused_and_the_database_kept(saved, db, damage):
    collections = set(db.list_collection_names())
    damage(saved)
    with pytest.raises(b.BackupError):
        b.backup_secrets(saved)
        b.restore(db, saved)
    assert _users(db) == ["alice", "bob"]
    assert db.users.index_information().keys() >= {"email_unique", "username_unique"}
    assert set(db.list_collection_names()) == collections


def test_a_good_backup_replaces_every_collection(saved, db):
    collections = set(db.list_collection_names())
    create_user(db, "carol", "carol@example.org", PASSWORD)
    db.not_in_the_backup.insert_one({"x": 1})
    b.restore(db, saved)
    assert _users(db) == ["alice", "bob"]
    assert set(db.list_collection_names()) == collections
    assert db.users.index_information().keys() >= {"email_unique", "username_unique"}


@pytest.mark.slow
@pytest.mark.parametrize("damage, named", [
    (_damage_indexes, "users"),  # a damaged index list
    (lambda saved: _craft_index(saved, collation="x"), "collation"),  # an index option the IdP does not use
], ids=["damaged_index_list", "crafted_index_option"])
def test_restore_command_refuses_a_damaged_backup_in_one_line(tmp_path, damage, named):
    data = tmp_path / "var"
    env = idp_env(data)
    assert run_cli(env, "users", "create", "--username", "alice", "--email", "alice@example.org",
                   "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    saved = tmp_path / "backup"
    assert run_cli(env, "backup", "create", str(saved)).returncode == 0
    damage(saved)
    r = run_cli(env, "backup", "restore", "--yes", str(saved))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "users" in r.stderr and named in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    listed = run_cli(env, "users", "list")
    assert listed.returncode == 0 and "alice" in listed.stdout, listed.stdout + listed.stderr


def test_create_into_a_place_it_cannot_write_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    r = run_cli(idp_env(tmp_path / "var"), "backup", "create", str(tmp_path / "a-file" / "backup"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_create_that_fails_midway_leaves_no_partial_backup(tmp_path, db, mongo_uri):
    """A backup that stops while writing (here a file larger than the process may write, as on a full disk) is
    removed again: a directory of some collections and no manifest must not be taken for a backup, nor block the
    next try. The command reaches the test's database through MONGODB_URI, so only it runs under the limit."""
    import resource

    from idp.store import migrate
    migrate.apply(db)
    for i in range(200):
        create_user(db, f"user{i:03d}", f"user{i:03d}@example.org", PASSWORD, name="x" * 80)
    target = tmp_path / "backup"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
    import subprocess
    import sys

    from tests.ops.conftest import ROOT
    env = idp_env(tmp_path / "var", MONGODB_URI=mongo_uri, IDP_DB_NAME=db.name)
    r = subprocess.run([sys.executable, "-m", "idp.cli", "backup", "create", str(target)], env=env, cwd=str(ROOT),
                       capture_output=True, text=True, timeout=90, preexec_fn=small_files)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not target.exists()
