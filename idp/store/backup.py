"""Backup and restore of the whole database and the four secrets, for the embedded database and any
MongoDB small enough to dump through one client (production: ``mongodump``/``mongorestore``, see
docs/operations.md).

A backup directory holds ``manifest.json``, ``db/<collection>.bson`` (the documents, concatenated
BSON as ``mongodump`` writes them), ``db/<collection>.indexes.json`` and ``secrets/<name>`` (mode 0600).
The database and the secrets belong together: without the template key the face templates are
unreadable (and the server refuses to start), without the pepper no client secret verifies, without
the key-encryption key the signing keys are lost. Knows nothing of Flask.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import bson
from bson import json_util

SECRETS = ("secret_key", "key_encryption_key", "template_key", "client_secret_pepper")
FORMAT = 1


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message is one line for the operator."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def create(db, config, target: Path) -> dict:
    """Write every collection of ``db`` and the secrets of ``config`` to the new directory ``target``."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} exists and is not empty")
    (target / "db").mkdir(parents=True, mode=0o700, exist_ok=True)
    (target / "secrets").mkdir(mode=0o700, exist_ok=True)
    os.chmod(target, 0o700)
    counts = {}
    for name in sorted(db.list_collection_names()):
        if name.startswith("system."):
            continue
        collection = db[name]
        n = 0
        with open(target / "db" / f"{name}.bson", "wb") as out:
            for doc in collection.find({}, sort=[("_id", 1)]):
                out.write(bson.encode(doc))
                n += 1
        indexes = [dict(spec, name=index_name) for index_name, spec in collection.index_information().items()
                   if index_name != "_id_"]
        (target / "db" / f"{name}.indexes.json").write_text(json_util.dumps(indexes))
        counts[name] = n
    for name in SECRETS:
        _write_private(target / "secrets" / name, getattr(config, name).encode())
    migrations = sorted(d["_id"] for d in db["migrations"].find({}, {"_id": 1})) \
        if "migrations" in counts else []
    manifest = {"format": FORMAT, "db_name": db.name, "collections": counts, "migrations": migrations,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(source: Path) -> dict:
    try:
        manifest = json.loads((Path(source) / "manifest.json").read_text())
    except (OSError, ValueError):
        raise BackupError(f"{source} is not a backup (no readable manifest.json)") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: unknown backup format {manifest.get('format')!r}")
    for name in manifest["collections"]:
        if not (Path(source) / "db" / f"{name}.bson").is_file():
            raise BackupError(f"{source}: db/{name}.bson is missing")
    for name in SECRETS:
        if not (Path(source) / "secrets" / name).is_file():
            raise BackupError(f"{source}: secrets/{name} is missing")
    return manifest


def backup_secrets(source: Path) -> dict[str, str]:
    return {name: (Path(source) / "secrets" / name).read_text().strip() for name in SECRETS}


def check_given_secrets(given: dict[str, str | None], saved: dict[str, str]) -> None:
    """Refuse a restore whose environment supplies a secret other than the backup's: the restored
    data would be unreadable under it."""
    for name, value in given.items():
        if value is not None and value != saved[name]:
            raise BackupError(f"IDP_{name.upper()} in the environment differs from the backup's; unset it "
                              "or give the backup's value (the restored data needs the backup's secrets)")


def restore(db, source: Path) -> dict:
    """Replace every collection of ``db`` by the backup's (documents and indexes). Validates the
    whole backup before dropping anything."""
    source = Path(source)
    manifest = read_manifest(source)
    loaded = {}
    for name in manifest["collections"]:
        data = (source / "db" / f"{name}.bson").read_bytes()
        try:
            docs = bson.decode_all(data)
            indexes = json_util.loads((source / "db" / f"{name}.indexes.json").read_text())
        except (bson.errors.BSONError, OSError, ValueError):
            raise BackupError(f"{source}: db/{name} is damaged") from None
        if len(docs) != manifest["collections"][name]:
            raise BackupError(f"{source}: db/{name}.bson has {len(docs)} documents, the manifest says "
                              f"{manifest['collections'][name]}")
        loaded[name] = (docs, indexes)
    for name in db.list_collection_names():
        if not name.startswith("system."):
            db.drop_collection(name)
    for name, (docs, indexes) in loaded.items():
        collection = db[name]
        for spec in indexes:
            spec = dict(spec)
            keys = spec.pop("key")
            spec.pop("v", None)
            spec.pop("ns", None)
            collection.create_index([tuple(k) for k in keys], **spec)
        if docs:
            collection.insert_many(docs, ordered=True)
        elif name not in db.list_collection_names():
            db.create_collection(name)
    return manifest


def write_secrets(config, saved: dict[str, str]) -> list[str]:
    """Store the backup's secrets in ``$IDP_DATA_DIR/secrets`` (0600, replacing generated ones); a
    secret the environment supplies has been checked equal by ``check_given_secrets``."""
    secrets_dir = Path(config.data_dir) / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, value in saved.items():
        path = secrets_dir / name
        tmp = path.with_suffix(".restore")
        tmp.unlink(missing_ok=True)
        _write_private(tmp, value.encode())
        os.replace(tmp, path)
        written.append(name)
    return written
