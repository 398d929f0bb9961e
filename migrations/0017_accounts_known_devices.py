"""Accounts: the ``known_devices`` collection (``idp.accounts.devices``), the browsers an account signed in
from, by hash of account and device token. A TTL index on ``expires`` purges a browser not seen for the cookie's
lifetime; an index on ``user_id`` serves the erasure of a deleted account's rows. No data is written."""
from pymongo import ASCENDING, IndexModel


def up(db):
    db.known_devices.create_indexes([IndexModel([("expires", ASCENDING)], name="expires_ttl", expireAfterSeconds=0),
                                     IndexModel([("user_id", ASCENDING)], name="user_id")])
