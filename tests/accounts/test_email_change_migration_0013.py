"""Migration 0013: accounts whose address was changed to an unconfirmed one before an email change waited for its
link get their last confirmed address back (from the audit log), with the unconfirmed one pending; accounts that
never confirmed an address, confirmed ones, accounts being deleted and accounts whose previous address another
account holds now stay as they are. Idempotent; a link already sent to the new address still confirms it, a
reset link sent there no longer works. Real database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from idp.accounts import emaillinks, users
from idp.store.migrate import MIGRATIONS_DIR, load

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _up(db):
    load(MIGRATIONS_DIR / "0013_accounts_pending_email.py").up(db)


def _user(db, uid, email, verified, **extra):
    db.users.insert_one({"_id": uid, "username": uid, "email": email, "email_verified": verified,
                         "password_hash": "x", **extra})


def _changed(db, uid, previous, verified, minutes):
    db.audit_log.insert_one({"at": T0 + timedelta(minutes=minutes), "event": "account.email_changed",
                             "user_id": uid, "details": {"previous_email": previous, "previous_verified": verified}})


def _shape(db, uid):
    doc = db.users.find_one({"_id": uid})
    return doc["email"], doc["email_verified"], doc.get("pending_email")


def test_unconfirmed_addresses_from_before_become_pending_changes_of_the_last_confirmed_one(migrated_db):
    db = migrated_db
    _user(db, "fresh", "fresh@example.com", False)  # a registration whose link was not used
    _user(db, "moved", "mallory@evil.example", False)  # confirmed alice@, then changed
    _changed(db, "moved", "alice@example.com", True, 1)
    _user(db, "twice", "c@example.com", False)  # confirmed a@, changed to b@, then to c@
    _changed(db, "twice", "a@example.com", True, 1)
    _changed(db, "twice", "b@example.com", False, 2)
    _user(db, "back", "d@example.com", False)  # confirmed d@, changed to e@, then back to d@
    _changed(db, "back", "d@example.com", True, 1)
    _changed(db, "back", "e@example.com", False, 2)
    _user(db, "taken", "f@example.com", False)  # confirmed g@, changed; g@ registered by another account since
    _changed(db, "taken", "g@example.com", True, 1)
    _user(db, "other", "g@example.com", False)
    _user(db, "settled", "h@example.com", True)  # confirmed its new address since
    _changed(db, "settled", "i@example.com", True, 1)
    _user(db, "leaving", "j@example.com", False, deleting={"at": T0, "claim": "c"})
    _changed(db, "leaving", "k@example.com", True, 1)
    reset = emaillinks.issue(db, emaillinks.RESET, "moved", "mallory@evil.example", password_hash="x")

    _up(db)
    first = {d["_id"]: d for d in db.users.find({})}
    _up(db)
    assert {d["_id"]: d for d in db.users.find({})} == first  # idempotent

    assert _shape(db, "fresh") == ("fresh@example.com", False, None)
    assert _shape(db, "moved") == ("alice@example.com", True, "mallory@evil.example")
    assert first["moved"]["pending_email_at"].replace(tzinfo=timezone.utc) == T0 + timedelta(minutes=1)
    assert _shape(db, "twice") == ("a@example.com", True, "c@example.com")
    assert _shape(db, "back") == ("d@example.com", True, None)
    assert _shape(db, "taken") == ("f@example.com", False, None)
    assert _shape(db, "other") == ("g@example.com", False, None)
    assert _shape(db, "settled") == ("h@example.com", True, None)
    assert _shape(db, "leaving") == ("j@example.com", False, None)

    # the account signs in, and is reset, by its confirmed address again; a reset link mailed to the
    # unconfirmed one before the upgrade is void
    assert users.find_by_login(db, "alice@example.com")["_id"] == "moved"
    assert users.find_by_login(db, "mallory@evil.example") is None
    assert not emaillinks.fits(emaillinks.peek(db, emaillinks.RESET, reset), db.users.find_one({"_id": "moved"}))
    # a confirmation link sent to the new address before the upgrade still makes it the account's
    assert users.confirm_email(db, "twice", "c@example.com") == {"changed": True, "previous_email": "a@example.com"}
    assert _shape(db, "twice") == ("c@example.com", True, None)


def test_the_migration_runs_on_an_empty_database(migrated_db):
    _up(migrated_db)
    _up(migrated_db)
    assert migrated_db.users.count_documents({}) == 0
    assert "0013_accounts_pending_email" in {d["_id"] for d in migrated_db.migrations.find({})}
