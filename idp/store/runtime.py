"""Reaching the database from a process: the configured server, or the embedded one."""
from __future__ import annotations

import contextlib
import os


from . import EmbeddedMongo, connect

# Set in a process that started (or inherited) the embedded database, so that
# child processes such as gunicorn workers reuse it instead of starting another.
EMBEDDED_URI_ENV = "IDP_EMBEDDED_MONGODB_URI"


def start_embedded(config) -> EmbeddedMongo:
    """Start SecantusDB on ``<data_dir>/db`` and point ``config`` (and children) at it."""
    server = EmbeddedMongo(config.data_dir / "db").start()
    config.mongodb_uri = server.uri
    os.environ[EMBEDDED_URI_ENV] = server.uri
    return server


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
    """Make ``config.mongodb_uri`` point at a server: (the embedded server we started or None, embedded?)."""
    uri, embedded = resolve_uri(config)
    if uri:
        return None, embedded
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
    """Yield a ``Database`` for a CLI command, starting the embedded server if needed and (unless
    ``migrations`` is False, as for ``idp migrate`` itself) checking migrations."""
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
