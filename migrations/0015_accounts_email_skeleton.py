"""Accounts: every address's confusable skeleton (``users.email_skeleton``), with its index.

A new address outside ASCII is refused when another account's address has the same skeleton
(``idp.accounts.users.refuse_lookalike``), looked up through the index made here, never by reading every account.
Accounts from before get the skeleton of their address (:func:`idp.accounts.users.email_skeleton`). Not unique:
two ASCII addresses may share one (``rn`` and ``m``) and both stay. Lookalike pairs registered before stay as they
are. Idempotent: only accounts whose skeleton is missing are read, each write conditional on the address as read.
"""
from pymongo import ASCENDING, IndexModel, UpdateOne

from idp.accounts.users import email_skeleton


def up(db):
    db.users.create_indexes([IndexModel([("email_skeleton", ASCENDING)], name="email_skeleton")])
    batch = []
    for user in db.users.find({"email_skeleton": {"$exists": False}, "email": {"$type": "string"}}, {"email": 1}):
        batch.append(UpdateOne({"_id": user["_id"], "email": user["email"], "email_skeleton": {"$exists": False}},
                               {"$set": {"email_skeleton": email_skeleton(user["email"])}}))
        if len(batch) == 500:
            db.users.bulk_write(batch, ordered=False)
            batch = []
    if batch:
        db.users.bulk_write(batch, ordered=False)
