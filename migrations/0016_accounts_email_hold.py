"""Accounts: an index on ``users.email_changed_from``, the address a change of email left and holds for the
account while its undo link is valid (``idp.accounts.users.held_for_another``). Every registration and every
change of a never-confirmed address looks it up, so it must not read every account. Sparse: only accounts with a
change on record have the field. No data is written."""
from pymongo import ASCENDING, IndexModel


def up(db):
    db.users.create_indexes([IndexModel([("email_changed_from", ASCENDING)], name="email_changed_from",
                                        sparse=True)])
