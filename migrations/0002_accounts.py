"""Accounts: find a user's sessions quickly (erasing an account signs it out everywhere)."""
from pymongo import ASCENDING


def up(db):
    db.sessions.create_index([("data.auth.uid", ASCENDING)], name="auth_uid", sparse=True)
