"""Reaching the database from a process: the configured server, or the embedded one."""
from __future__ import annotations

import contextlib
import os

from pymongo.database import Database

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


@contextlib.contextmanager
def open_database(config):
    """Yield a ``Database`` for a CLI command, starting the embedded server if needed."""
    server = None
    uri, embedded = resolve_uri(config)
    if not uri:
        server = start_embedded(config)
        uri = server.uri
    db = connect(uri, config.db_name)
    try:
        yield db
    finally:
        db.client.close()
        if server is not None:
            server.stop()
            os.environ.pop(EMBEDDED_URI_ENV, None)
