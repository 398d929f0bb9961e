"""Storage: one MongoDB database reached through pymongo, nothing Flask-specific.

Every feature keeps its documents in its own collections (created, with their
indexes, by the migrations in ``migrations/``) and talks to them through small
repository functions that take a ``pymongo.database.Database``. The same code
runs on SecantusDB (embedded, development and tests) and on MongoDB (production).
Writes whose loss after an acknowledgement would matter go through ``durable``.
"""
from __future__ import annotations

from pymongo import MongoClient, WriteConcern
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError

from .embedded import EmbeddedMongo

# Writes whose loss after an acknowledgement would matter (accounts, code
# redemption, token rotation, templates) use journaled write concern.
DURABLE = WriteConcern(w=1, j=True)

# The database could not be reached or did not answer in time: an operations event (answered "try again"),
# not a bug. Refused or invalid operations (duplicate keys, bad queries) are not in it.
UNAVAILABLE = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def connect(uri: str, db_name: str) -> Database:
    """A lazily connecting client's database. Options written in ``uri`` win over our defaults (pymongo lets a
    keyword argument override the URI, which would silently drop an operator's setting)."""
    from urllib.parse import parse_qsl, urlsplit
    written = {k.lower() for k, _ in parse_qsl(urlsplit(uri).query)}  # URI option names are case-insensitive
    defaults = {k: v for k, v in (("serverSelectionTimeoutMS", 10000), ("appname", "deepauth"))
                if k.lower() not in written}
    client = MongoClient(uri, tz_aware=True, connect=False, **defaults)
    return client[db_name]


def durable(db: Database, name: str):
    """The collection ``name`` with journaled writes."""
    return db.get_collection(name, write_concern=DURABLE)


def written_before(field: str, bound) -> dict:
    """A query part: the document's ``field`` (when it was written) is before ``bound``, or it has none (a
    document written before the field existed is taken as older than anything)."""
    return {"$or": [{field: {"$lt": bound}}, {field: {"$exists": False}}]}


__all__ = ["connect", "durable", "written_before", "EmbeddedMongo", "DURABLE", "UNAVAILABLE"]
