"""Reaching the database from a process: the configured server, or the embedded one.

The embedded SecantusDB of a data directory is shared by every process using that directory: the
process that starts it records the daemon's address and pids in ``<data_dir>/embedded-db.json``
(written atomically, after the daemon answered a ping), and ``idp`` CLI commands or a second
``idp serve`` / ``idp demo`` use the recorded server when it still answers. A record whose daemon
is dead or silent, or whose owner has died (an orphaned daemon), is stale: it is removed (an
orphaned daemon is stopped first) and the process starts its own. Only the starting process ever
stops the daemon and removes the record.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from . import EmbeddedMongo, connect

log = logging.getLogger(__name__)

# Set in a process that started (or inherited) the embedded database, so that
# child processes such as gunicorn workers reuse it instead of starting another.
EMBEDDED_URI_ENV = "IDP_EMBEDDED_MONGODB_URI"
RECORD_NAME = "embedded-db.json"
PING_TIMEOUT_MS = 2000


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or started; the message is one line for an operator."""


def record_path(config) -> Path:
    return Path(config.data_dir) / RECORD_NAME


def _pid_alive(pid) -> bool:
    try:
        pid = int(pid)
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie (exited, not yet reaped) is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _answers(uri: str) -> bool:
    client = MongoClient(uri, serverSelectionTimeoutMS=PING_TIMEOUT_MS, connectTimeoutMS=PING_TIMEOUT_MS)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def read_record(config) -> dict | None:
    try:
        data = json.loads(record_path(config).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("uri"), str) else None


def _write_record(config, server: EmbeddedMongo) -> None:
    path = record_path(config)
    tmp = path.with_name(f".{RECORD_NAME}.{os.getpid()}.tmp")
    payload = {"uri": server.uri, "port": server.port, "pid": server.proc.pid, "owner_pid": os.getpid(),
               "storage": str(server.storage_path), "started_at": time.time()}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove_record(config, owner_pid: int | None = None) -> None:
    """Remove the record (only if it is still ``owner_pid``'s, when given)."""
    if owner_pid is not None:
        current = read_record(config)
        if not current or current.get("owner_pid") != owner_pid:
            return
    with contextlib.suppress(FileNotFoundError):
        record_path(config).unlink()


def _is_our_daemon(pid: int, storage: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"secantusd" in part for part in cmdline[:2]) and storage.encode() in cmdline


def _stop_orphan(record: dict) -> None:
    """Stop a daemon whose owner died (it runs in its own session, so it outlived it)."""
    pid = int(record.get("pid") or 0)
    if not _pid_alive(pid) or not _is_our_daemon(pid, str(record.get("storage", ""))):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def running_embedded(config) -> str | None:
    """The URI of the live embedded server recorded for this data directory, or None (a stale
    record is cleaned up)."""
    record = read_record(config)
    if record is None:
        if record_path(config).exists():
            _remove_record(config)
        return None
    if _pid_alive(record.get("pid")) and _pid_alive(record.get("owner_pid")) and _answers(record["uri"]):
        return record["uri"]
    log.warning("removing stale embedded database record", extra={"db_pid": record.get("pid")})
    if not _pid_alive(record.get("owner_pid")):
        _stop_orphan(record)
    _remove_record(config)
    return None


class SharedEmbedded:
    """An embedded server this process started and recorded; ``stop()`` also removes the record."""

    def __init__(self, config, server: EmbeddedMongo):
        self.config, self.server, self.owner_pid = config, server, os.getpid()

    @property
    def uri(self) -> str:
        return self.server.uri

    def stop(self) -> None:
        if os.getpid() != self.owner_pid:  # a forked child (gunicorn worker) never stops it
            return
        _remove_record(self.config, self.owner_pid)
        self.server.stop()


@contextlib.contextmanager
def _data_dir_lock(config):
    """Serialise 'find or start' between processes sharing a data directory."""
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".embedded-db.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def start_embedded(config) -> SharedEmbedded:
    """Start SecantusDB on ``<data_dir>/db``, record it and point ``config`` (and children) at it."""
    try:
        server = EmbeddedMongo(Path(config.data_dir) / "db").start()
    except (RuntimeError, OSError) as e:
        raise DatabaseUnavailable(f"cannot start the embedded database: {e}") from None
    shared = SharedEmbedded(config, server)
    import atexit
    atexit.register(shared.stop)
    _write_record(config, server)
    config.mongodb_uri = server.uri
    os.environ[EMBEDDED_URI_ENV] = server.uri
    return shared


def resolve_uri(config) -> tuple[str, bool]:
    """The URI to use and whether it is the embedded database."""
    if config.mongodb_uri:
        return config.mongodb_uri, os.environ.get(EMBEDDED_URI_ENV) == config.mongodb_uri
    inherited = os.environ.get(EMBEDDED_URI_ENV)
    if inherited:
        config.mongodb_uri = inherited
        return inherited, True
    return "", True


def ensure_server(config):
    """Make ``config.mongodb_uri`` point at a server: (the embedded server we started or None, embedded?).

    Without ``MONGODB_URI``, the embedded server already running on the data directory is used;
    only when none answers is one started (and then owned, so stopped, by this process)."""
    uri, embedded = resolve_uri(config)
    if uri:
        return None, embedded
    with _data_dir_lock(config):
        running = running_embedded(config)
        if running:
            config.mongodb_uri = running
            os.environ[EMBEDDED_URI_ENV] = running
            return None, True
        return start_embedded(config), True


def check_migrations(db, embedded: bool) -> None:
    """The embedded development database migrates itself; an external one must be migrated by
    ``idp migrate`` first (a deploy step), so pending migrations there are refused."""
    from . import migrate

    if embedded:
        migrate.apply(db)
        return
    waiting = migrate.pending(db)
    if waiting:
        raise migrate.PendingMigrations(
            f"{len(waiting)} database migration(s) pending ({', '.join(waiting)}); run `idp migrate` first")


@contextlib.contextmanager
def open_database(config, *, migrations: bool = True):
    """Yield a ``Database`` for a CLI command, using the running embedded server or starting one if
    needed and (unless ``migrations`` is False, as for ``idp migrate`` itself) checking migrations."""
    server, embedded = ensure_server(config)
    db = connect(config.mongodb_uri, config.db_name)
    try:
        if migrations:
            check_migrations(db, embedded)
        yield db
    finally:
        db.client.close()
        if server is not None:
            server.stop()
            os.environ.pop(EMBEDDED_URI_ENV, None)
