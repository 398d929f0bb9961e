"""Accounts: an email change waits for its link (``users.pending_email``); unconfirmed addresses from before.

Before this, a change replaced ``email`` at once, unconfirmed, and the account's sign-in by address, reset links
and notices went to that new address. Now a change of a confirmed address is only pending until its link is used
(``idp.accounts.users``). An account whose address is unconfirmed is one of two kinds:

- it confirmed an address before, then changed it (the audit log's latest ``account.email_changed`` with
  ``previous_verified`` names the last confirmed address): that address is the account's again, confirmed, and
  the unconfirmed one becomes its pending change (a link already sent there still confirms it). If another
  account holds that address now (it was free after the change), the account stays as it is. Changed back to
  that very address: it is confirmed again, nothing pending.
- it never confirmed one (a registration whose link was not used): unchanged; it has no confirmed address.

Idempotent: it only looks at accounts with an unconfirmed address and no pending change, and each write is
conditional on the account as read (an account changed meanwhile is left alone).
"""
from pymongo.errors import DuplicateKeyError


def last_confirmed_address(db, uid):
    """The previous address of the account's latest email change made while that address was confirmed (and when
    it was made), or (None, None)."""
    event = db.audit_log.find_one({"user_id": uid, "event": "account.email_changed",
                                   "details.previous_verified": True}, {"details": 1, "at": 1}, sort=[("at", -1)])
    address = str(((event or {}).get("details") or {}).get("previous_email") or "").strip().lower()
    return (address, event.get("at")) if address else (None, None)


def up(db):
    query = {"email_verified": {"$ne": True}, "pending_email": {"$exists": False}, "deleting": {"$exists": False}}
    for user in list(db.users.find(query, {"email": 1})):
        uid, current = user["_id"], user.get("email")
        previous, at = last_confirmed_address(db, uid)
        if not previous or not current:
            continue
        as_read = {"_id": uid, "email": current, **query}
        if previous == current:
            db.users.update_one(as_read, {"$set": {"email_verified": True}})
            continue
        if db.users.find_one({"email": previous, "_id": {"$ne": uid}}, {"_id": 1}):
            continue
        try:
            db.users.update_one(as_read, {"$set": {"email": previous, "email_verified": True,
                                                   "pending_email": current, "pending_email_at": at}})
        except DuplicateKeyError:  # taken by an account registered meanwhile
            continue
