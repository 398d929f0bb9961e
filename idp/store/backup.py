"""Backup and restore of the whole database and the four secrets, for the embedded database and any
MongoDB small enough to dump through one client (production: ``mongodump``/``mongorestore``, see
docs/operations.md).

A backup directory holds ``manifest.json``, ``db/<collection>.bson`` (the documents, concatenated
BSON as ``mongodump`` writes them), ``db/<collection>.indexes.json`` and ``secrets/<name>`` (mode 0600).
The database and the secrets belong together: without the template key the face templates are
unreadable (and the server refuses to start), without the pepper no client secret verifies, without
the key-encryption key the signing keys are lost. Knows nothing of Flask.

Neither command leaves a half-done result: a ``create`` that fails removes what it wrote, and a ``restore``
reads and checks every file first, loads the backup into staging collections beside the live ones (so that
what only the database can refuse, such as documents breaking the backup's own unique index, is refused
while nothing is replaced yet), and only then renames them over the live collections.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import bson
from bson import json_util

SECRETS = ("secret_key", "key_encryption_key", "template_key", "client_secret_pepper")
FORMAT = 1
#: Collections a restore loads the backup into before they replace the live ones (left only by a restore that
#: was killed; the next restore drops them, a backup skips them).
STAGING_PREFIX = "_restoring."


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message is one line for the operator."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def create(db, config, target: Path) -> dict:
    """Write every collection of ``db`` and the secrets of ``config`` to the new directory ``target``; if that
    fails, what was written is removed again (a file that cannot be written: ``BackupError``)."""
    target = Path(target)
    try:
        existed = target.exists()
        if existed and any(target.iterdir()):
            raise BackupError(f"{target} exists and is not empty")
    except OSError as exc:
        raise BackupError(f"cannot write the backup to {target}: {exc.strerror or type(exc).__name__}") from None
    try:
        return _write_backup(db, config, target)
    except BaseException as exc:  # remove what this call wrote: the directory was empty or absent before
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            if not existed:
                target.rmdir()
        if isinstance(exc, OSError):
            raise BackupError(f"cannot write the backup to {target}: {exc.strerror or type(exc).__name__}; "
                              "nothing was kept") from None
        raise


def _write_backup(db, config, target: Path) -> dict:
    (target / "db").mkdir(parents=True, mode=0o700, exist_ok=True)
    (target / "secrets").mkdir(mode=0o700, exist_ok=True)
    os.chmod(target, 0o700)
    counts = {}
    for name in sorted(db.list_collection_names()):
        if name.startswith(("system.", STAGING_PREFIX)):
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


def _collection_name(name) -> bool:
    """A name a backup may restore: a collection of the IdP's, never a path out of ``db/`` or a reserved name."""
    return isinstance(name, str) and 0 < len(name) <= 120 and not name.startswith(("system.", STAGING_PREFIX, ".")) \
        and not set(name) & set("/\\$\x00")


def read_manifest(source: Path) -> dict:
    """The backup's manifest, checked (its form, and a file for every collection and secret it names)."""
    try:
        manifest = json.loads((Path(source) / "manifest.json").read_text())
    except (OSError, ValueError):
        raise BackupError(f"{source} is not a backup (no readable manifest.json)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: unknown backup format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else None!r}")
    collections = manifest.get("collections")
    if not isinstance(collections, dict) or not all(
            _collection_name(name) and type(n) is int and n >= 0 for name, n in collections.items()):
        raise BackupError(f"{source}: manifest.json is damaged (its collections are not names with counts)")
    for name in collections:
        if not (Path(source) / "db" / f"{name}.bson").is_file():
            raise BackupError(f"{source}: db/{name}.bson is missing")
    for name in SECRETS:
        if not (Path(source) / "secrets" / name).is_file():
            raise BackupError(f"{source}: secrets/{name} is missing")
    manifest.setdefault("created", "an unknown time")
    return manifest


def backup_secrets(source: Path) -> dict[str, str]:
    """The backup's four secrets; one that is empty or unreadable, or a template key that is not one, is a
    damaged backup (restoring it would leave a data directory the server refuses to start from)."""
    from idp.keyring import parse_template_key
    saved = {}
    for name in SECRETS:
        try:
            saved[name] = (Path(source) / "secrets" / name).read_text().strip()
            if name == "template_key":
                parse_template_key(saved[name])
        except (OSError, UnicodeDecodeError, ValueError):
            saved[name] = ""
        if not saved[name]:
            raise BackupError(f"{source}: secrets/{name} is damaged (empty or not a key)")
    return saved


def check_given_secrets(given: dict[str, str | None], saved: dict[str, str]) -> None:
    """Refuse a restore whose environment supplies a secret other than the backup's: the restored
    data would be unreadable under it."""
    for name, value in given.items():
        if value is not None and value != saved[name]:
            raise BackupError(f"IDP_{name.upper()} in the environment differs from the backup's; unset it "
                              "or give the backup's value (the restored data needs the backup's secrets)")


#: The index options a backup may carry: those the migrations create (``index_information`` adds ``v`` and
#: ``ns``, which only describe the index and are left out). Any other option, or one of the wrong type, is refused
#: before anything is touched: pymongo itself raises on some (``session``, ``collation``, a float direction), and
#: the database stores others unchecked.
_INDEX_OPTIONS = {
    "name": lambda v: isinstance(v, str) and 0 < len(v) <= 120 and "\x00" not in v,
    "unique": lambda v: isinstance(v, bool),
    "sparse": lambda v: isinstance(v, bool),
    "expireAfterSeconds": lambda v: type(v) is int and 0 <= v <= 2**31 - 1,
}
_INDEX_INFO = ("v", "ns")


def _index_key(keys) -> bool:
    """Keys as the migrations make them: distinct field names, each ascending (1) or descending (-1)."""
    return isinstance(keys, list) and bool(keys) and all(
        isinstance(k, (list, tuple)) and len(k) == 2 and isinstance(k[0], str) and k[0]
        and not k[0].startswith("$") and "\x00" not in k[0] and type(k[1]) is int and k[1] in (1, -1)
        for k in keys) and len({k[0] for k in keys}) == len(keys)


def _index_specs(raw, where: str) -> list[tuple[list, dict]]:
    """``(keys, options)`` of each index of a backup's index list, every option one of ``_INDEX_OPTIONS`` and of
    its type (anything else: ``BackupError`` naming it)."""
    specs = []
    for spec in raw if isinstance(raw, list) else [None]:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not _index_key(spec.get("key")):
            raise BackupError(f"{where} is damaged (an index without a name or ascending/descending keys)")
        options = {k: v for k, v in spec.items() if k not in ("key", *_INDEX_INFO)}
        for option, value in options.items():
            if option not in _INDEX_OPTIONS:
                raise BackupError(f"{where} is damaged (index option {str(option)[:40]!r} is not one the IdP uses)")
            if not _INDEX_OPTIONS[option](value):
                raise BackupError(f"{where} is damaged (index option {option!r} has a value of the wrong kind)")
        specs.append(([tuple(k) for k in spec["key"]], options))
    return specs


def _load_files(source: Path, name: str, count: int) -> tuple[list, list]:
    """The documents and indexes of collection ``name`` in the backup, checked against the manifest's count."""
    try:
        docs = bson.decode_all((source / "db" / f"{name}.bson").read_bytes())
        indexes = json_util.loads((source / "db" / f"{name}.indexes.json").read_text())
    except (bson.errors.BSONError, OSError, ValueError):
        raise BackupError(f"{source}: db/{name} is damaged") from None
    if len(docs) != count:
        raise BackupError(f"{source}: db/{name}.bson has {len(docs)} documents, the manifest says {count}")
    return docs, _index_specs(indexes, f"{source}: db/{name}.indexes.json")


def _drop_staging(db) -> None:
    for name in db.list_collection_names():
        if name.startswith(STAGING_PREFIX):
            db.drop_collection(name)


def restore(db, source: Path) -> dict:
    """Replace every collection of ``db`` by the backup's (documents and indexes). The whole backup is read
    and checked, then loaded into staging collections; a backup the database refuses there (``BackupError``)
    leaves the live collections as they were. Only then do the staged collections replace the live ones."""
    from pymongo.errors import PyMongoError

    source = Path(source)
    manifest = read_manifest(source)
    loaded = {name: _load_files(source, name, count) for name, count in manifest["collections"].items()}
    _drop_staging(db)
    name = None
    try:
        for name, (docs, indexes) in loaded.items():
            staged = db.create_collection(STAGING_PREFIX + name)
            for keys, options in indexes:
                staged.create_index(keys, **options)
            if docs:
                staged.insert_many(docs, ordered=True)
    except (PyMongoError, bson.errors.BSONError, TypeError, ValueError) as exc:
        # TypeError/ValueError: what pymongo refuses before asking the database (the checks above should leave none)
        try:
            _drop_staging(db)
        except PyMongoError:
            pass
        # the server's message may quote a document (a password hash): its type only
        raise BackupError(f"{source}: db/{name} could not be loaded ({type(exc).__name__}: the database or its "
                          "driver refused the backup's documents or indexes); nothing was replaced") from None
    for name in loaded:
        db[STAGING_PREFIX + name].rename(name, dropTarget=True)
    for name in db.list_collection_names():
        if name not in loaded and not name.startswith("system."):
            db.drop_collection(name)
    return manifest


def stage_secrets(config, saved: dict[str, str]) -> list[tuple[Path, Path]]:
    """Write the backup's secrets beside their places in ``$IDP_DATA_DIR/secrets`` (0600 files named
    ``<name>.restore``), before the database is replaced: a directory that cannot take them fails the restore
    (``BackupError``) while nothing is replaced yet. Returns ``(staged, place)`` pairs for :func:`put_secrets`;
    a secret the environment supplies has been checked equal by ``check_given_secrets``."""
    secrets_dir = Path(config.data_dir) / "secrets"
    staged: list[tuple[Path, Path]] = []
    try:
        secrets_dir.mkdir(parents=True, exist_ok=True)
        for name, value in saved.items():
            path = secrets_dir / name
            tmp = path.with_suffix(".restore")
            tmp.unlink(missing_ok=True)
            _write_private(tmp, value.encode())
            staged.append((tmp, path))
    except OSError as exc:
        drop_staged_secrets(staged)
        raise BackupError(f"{secrets_dir}: the secrets cannot be written there ({type(exc).__name__}); nothing "
                          "was replaced") from None
    return staged


def put_secrets(staged: list[tuple[Path, Path]]) -> list[str]:
    """Move the staged secrets into their places (a rename each, in one directory); their names."""
    for tmp, path in staged:
        os.replace(tmp, path)
    return [path.name for _, path in staged]


def drop_staged_secrets(staged: list[tuple[Path, Path]]) -> None:
    for tmp, _ in staged:
        tmp.unlink(missing_ok=True)
