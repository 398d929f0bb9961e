"""OAuth/OIDC: clients by name; fewer indexes on ``tokens`` on purpose.

A token family document has ``_id == family`` and tokens are looked up by that id (codes by
``code_hash``, 0001), so the refresh path needs no secondary index — and every index costs on every
write on the embedded SecantusDB (~0.4 ms of server CPU each, measured). Hence 0001's ``tokens.family``
index (a duplicate of ``_id`` here) is dropped, as are token-hash indexes an earlier draft created.
Kept on ``tokens``: ``_id``, ``expires_ttl`` (purge) and ``user`` (account deletion).
"""
from pymongo import ASCENDING

OBSOLETE = {"tokens": ("family", "access_hash_unique", "refresh_hash_unique", "old_refresh_hashes", "code_id",
                       "user_client", "client"),
            "auth_codes": ("client",),
            "signing_keys": ("alg_active",)}


def up(db):
    db.clients.create_index([("name", ASCENDING)], name="name")
    for coll, names in OBSOLETE.items():
        existing = set(db[coll].index_information())
        for name in names:
            if name in existing:
                db[coll].drop_index(name)
