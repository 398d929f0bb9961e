"""Email: the outbox and the emailed one-time links.

``mail_outbox``: messages waiting for (or done with) delivery, see ``idp.mail.outbox``; senders look for due
pending messages by ``(status, next_attempt)``; delivered and failed ones are forgotten at ``expires``.
``email_tokens``: one document per emailed link (email verification, password reset), stored under the
SHA-256 of the token, never the token; purged at ``expires``.
"""
from pymongo import ASCENDING, IndexModel


def up(db):
    existing = set(db.list_collection_names())
    for name in ("mail_outbox", "email_tokens"):
        if name not in existing:
            db.create_collection(name)
    db.mail_outbox.create_indexes([
        IndexModel([("status", ASCENDING), ("next_attempt", ASCENDING)], name="due"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ])
    db.email_tokens.create_indexes([
        IndexModel([("user_id", ASCENDING), ("purpose", ASCENDING)], name="user_purpose"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ])
