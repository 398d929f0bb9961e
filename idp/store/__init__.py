"""Storage: one MongoDB database reached through pymongo, nothing Flask-specific.

Every feature keeps its documents in its own collections (created, with their
indexes, by the migrations in ``migrations/``) and talks to them through small
repository functions that take a ``pymongo.database.Database``. The same code
runs on SecantusDB (embedded, development and tests) and on MongoDB (production).
Writes whose loss after an acknowledgement would matter go through ``durable``.
"""
from __future__ import annotations

import re

from pymongo import MongoClient, WriteConcern
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from .embedded import EmbeddedMongo

# Writes whose loss after an acknowledgement would matter (accounts, code
# redemption, token rotation, templates) use journaled write concern.
DURABLE = WriteConcern(w=1, j=True)

# The database could not be reached or did not answer in time: an operations event (answered "try again"),
# not a bug. Refused or invalid operations (duplicate keys, bad queries) are not in it.
UNAVAILABLE = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def _client(uri: str) -> MongoClient:
    """A client that has not connected yet. Options written in ``uri`` win over our defaults (pymongo lets a
    keyword argument override the URI, which would silently drop an operator's setting)."""
    from urllib.parse import parse_qsl, urlsplit
    written = {k.lower() for k, _ in parse_qsl(urlsplit(uri).query)}  # URI option names are case-insensitive
    defaults = {k: v for k, v in (("serverSelectionTimeoutMS", 10000), ("appname", "deepauth"))
                if k.lower() not in written}
    return MongoClient(uri, tz_aware=True, connect=False, **defaults)


def connect(uri: str, db_name: str) -> Database:
    """A lazily connecting client's database (:func:`uri_problem` has checked a configured ``uri``)."""
    return _client(uri)[db_name]


def uri_problem(uri: str) -> str | None:
    """Why pymongo cannot take ``uri`` (a port above 65535 or not a number, as an unescaped '/' or ':' in the
    password makes the rest of it; an unclosed IPv6 bracket; a bad scheme), in one line, or None. Parsed as
    :func:`connect` parses it, by building its client: nothing is reached, not even the DNS of a
    ``mongodb+srv://`` name. The line never shows the user name or password, nor a piece of them that pymongo
    took for a host or port."""
    import warnings
    try:
        with warnings.catch_warnings():  # an unknown option is warned about (and ignored) when the app connects
            warnings.simplefilter("ignore")
            _client(uri).close()
    except (PyMongoError, ValueError, TypeError, OSError) as e:
        reason = " ".join(str(e).split()).rstrip(".") or type(e).__name__
        if any(re.search(rf"(?<![^\W_]){re.escape(piece)}(?![^\W_])", reason) for piece in _credential_pieces(uri)):
            reason = "it cannot be parsed"
        return (f"{reason} (the URI is not shown, it may hold a password; in the user name and password, "
                "percent-encode : / ? # [ ] @ and %)")
    return None


def _credential_pieces(uri: str) -> set[str]:
    """The text before the last '@' after the scheme (user name and password, however malformed) and its pieces
    between the URI's delimiters, as written and decoded."""
    from urllib.parse import unquote_plus
    userinfo = uri.partition("://")[2].rpartition("@")[0]
    pieces = {userinfo, *re.split(r"[:/?#\[\]@,]", userinfo)}
    return {p for piece in pieces for p in (piece, unquote_plus(piece)) if p}


def durable(db: Database, name: str):
    """The collection ``name`` with journaled writes."""
    return db.get_collection(name, write_concern=DURABLE)


def written_before(field: str, bound) -> dict:
    """A query part: the document's ``field`` (when it was written) is before ``bound``, or it has none (a
    document written before the field existed is taken as older than anything)."""
    return {"$or": [{field: {"$lt": bound}}, {field: {"$exists": False}}]}


def new_id() -> str:
    """A random document id (144 bits, URL-safe) that never starts with '-', so that the command line takes it as
    an argument, not an option: the one way user and client ids are drawn."""
    import secrets
    while True:
        value = secrets.token_urlsafe(18)
        if value[0] != "-":
            return value


__all__ = ["connect", "uri_problem", "durable", "written_before", "new_id", "EmbeddedMongo", "DURABLE",
           "UNAVAILABLE"]
