"""OAuth/OIDC lookups: tokens by hash (access, refresh, rotated refresh), by code and user+client;
clients by name; signing keys by algorithm."""
from pymongo import ASCENDING, IndexModel


def up(db):
    db.tokens.create_indexes([
        IndexModel([("access_hash", ASCENDING)], unique=True, name="access_hash_unique"),
        IndexModel([("refresh_hash", ASCENDING)], unique=True, sparse=True, name="refresh_hash_unique"),
        IndexModel([("old_refresh_hashes", ASCENDING)], name="old_refresh_hashes"),
        IndexModel([("code_id", ASCENDING)], name="code_id"),
        IndexModel([("user_id", ASCENDING), ("client_id", ASCENDING)], name="user_client"),
        IndexModel([("client_id", ASCENDING)], name="client"),
    ])
    db.clients.create_index([("name", ASCENDING)], name="name")
    db.signing_keys.create_index([("alg", ASCENDING), ("active", ASCENDING)], name="alg_active")
    db.auth_codes.create_index([("client_id", ASCENDING)], name="client")
