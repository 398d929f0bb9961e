"""OAuth: back-channel logout collections (idp.oauth.backchannel).

``rp_sessions`` (which client got a code in which IdP session): looked up by ``sid`` (a sign-out) and by
``user_id`` (every session of a user ends); purged by TTL on ``expires``.
``logout_jobs`` (the durable queue of logout tokens to send): senders look for due pending jobs by
``(state, next_at)``; purged by TTL on ``expires`` (sent jobs are deleted at once).
"""
from pymongo import ASCENDING, IndexModel


def up(db):
    existing = set(db.list_collection_names())
    for name in ("rp_sessions", "logout_jobs"):
        if name not in existing:
            db.create_collection(name)
    db.rp_sessions.create_indexes([
        IndexModel([("sid", ASCENDING)], name="sid"),
        IndexModel([("user_id", ASCENDING)], name="user"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ])
    db.logout_jobs.create_indexes([
        IndexModel([("state", ASCENDING), ("next_at", ASCENDING)], name="due"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ])
