"""The users repository against the real database: uniqueness (also under a race), look-up, erasure."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from idp.accounts import users

PW = "correct horse battery staple"


def test_create_normalises_and_stores_hash_only(migrated_db):
    doc = users.create_user(migrated_db, "  Alice.S ", "Alice@Example.COM", PW, name=" Alice ", phone="+41 44 123 45 67")
    stored = migrated_db.users.find_one({"_id": doc["_id"]})
    assert stored["username"] == "alice.s" and stored["email"] == "alice@example.com"
    assert stored["name"] == "Alice" and stored["phone"] == "+41 44 123 45 67"
    assert stored["is_admin"] is False and stored["email_verified"] is False
    assert stored["created_at"].tzinfo is not None
    assert stored["password_hash"].startswith("$argon2id$") and PW not in str(stored)
    assert len(stored["_id"]) >= 22


def test_duplicates_are_reported_per_field(migrated_db):
    users.create_user(migrated_db, "alice", "alice@example.com", PW)
    with pytest.raises(users.DuplicateUser) as e:
        users.create_user(migrated_db, "ALICE", "other@example.com", PW)
    assert e.value.field == "username"
    with pytest.raises(users.DuplicateUser) as e:
        users.create_user(migrated_db, "alice2", "Alice@example.com", PW)
    assert e.value.field == "email"
    assert migrated_db.users.count_documents({}) == 1


def test_invalid_data_rejected(migrated_db):
    with pytest.raises(users.InvalidUser) as e:
        users.create_user(migrated_db, "a", "not-an-email", "short", phone="call me")
    assert set(e.value.errors) == {"username", "email", "password", "phone"}
    assert migrated_db.users.count_documents({}) == 0


def test_registration_race_creates_exactly_one_account(migrated_db):
    n = 10
    barrier = threading.Barrier(n)
    results = []
    lock = threading.Lock()

    def register(i):
        barrier.wait()
        try:
            users.create_user(migrated_db, "racer", f"racer{i}@example.com", PW)
            outcome = "created"
        except users.DuplicateUser as e:
            outcome = e.field
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["created"] + ["username"] * (n - 1)
    assert migrated_db.users.count_documents({"username": "racer"}) == 1


def test_find_by_login(migrated_db):
    doc = users.create_user(migrated_db, "bob", "bob@example.com", PW)
    assert users.find_by_login(migrated_db, " BOB ")["_id"] == doc["_id"]
    assert users.find_by_login(migrated_db, "Bob@Example.com")["_id"] == doc["_id"]
    assert users.find_by_login(migrated_db, "nobody") is None
    assert users.get_user(migrated_db, doc["_id"])["username"] == "bob"
    assert users.get_user(migrated_db, "missing") is None


def test_delete_user_erases_everything(migrated_db):
    db = migrated_db
    victim = users.create_user(db, "victim", "victim@example.com", PW)
    other = users.create_user(db, "other", "other@example.com", PW)
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    for u in (victim, other):
        uid = u["_id"]
        db.sessions.insert_one({"_id": "s-" + uid, "data": {"auth": {"uid": uid, "amr": ["pwd"]}}, "expires": soon})
        db.tokens.insert_one({"user_id": uid, "family": "f-" + uid, "access_hash": "a-" + uid, "refresh_hash": "r-" + uid,
                             "expires": soon})
        db.auth_codes.insert_one({"user_id": uid, "code_hash": "c-" + uid, "expires": soon})
        db.consents.insert_one({"user_id": uid, "client_id": "rp"})
        db.face_templates.insert_one({"_id": uid, "ciphertext": b"x"})
        db.face_status.insert_one({"_id": uid, "failures": 1})
        db.capture_sessions.insert_one({"user_id": uid, "expires": soon})
        db.recovery_codes.insert_one({"user_id": uid, "code_hash": "r-" + uid})
        db.audit_log.insert_one({"user_id": uid, "event": "account.login", "at": soon})
        db.throttles.insert_one({"_id": f"pwd:user:{u['username']}", "failures": 2, "expires": soon})
        db.throttles.insert_one({"_id": f"pwd:user:{u['email']}", "failures": 1, "expires": soon})
        db.throttles.insert_one({"_id": f"face:user:{uid}", "failures": 1, "expires": soon})
        db.some_future_feature.insert_one({"user_id": uid})
    db.sessions.insert_one({"_id": "anon", "data": {}, "expires": soon})

    counts = users.delete_user(db, victim["_id"])
    assert counts["users"] == 1 and counts["sessions"] == 1 and counts["throttles"] == 3
    vid = victim["_id"]
    for name in db.list_collection_names():
        if name == "migrations":
            continue
        coll = db[name]
        assert coll.count_documents({"$or": [{"_id": vid}, {"user_id": vid}, {"data.auth.uid": vid}]}) == 0, name
    assert db.throttles.count_documents({"_id": {"$regex": "victim"}}) == 0
    # Nothing of anybody else went.
    oid = other["_id"]
    assert db.users.count_documents({"_id": oid}) == 1
    assert db.sessions.count_documents({}) == 2
    for name in ("tokens", "auth_codes", "consents", "capture_sessions", "recovery_codes", "audit_log",
                 "some_future_feature"):
        assert db[name].count_documents({"user_id": oid}) == 1, name
    assert db.face_templates.count_documents({"_id": oid}) == 1
    assert db.throttles.count_documents({}) == 3
    assert users.delete_user(db, vid) is None


def test_concurrent_deletions_of_one_user_erase_it_once(migrated_db):
    """The account is claimed before anything is erased: of several deletions at once exactly one runs the
    before-delete hooks and its caller's side effects and gets the counts to audit; the others get None (before,
    each ran every hook and got counts, so each caller audited "user deleted")."""
    from support.concurrency import at_once
    db = migrated_db
    victim = users.create_user(db, "victim", "victim@example.com", PW)
    hooked, lock = [], threading.Lock()

    def hook(db_, uid):
        with lock:
            hooked.append(uid)

    users.BEFORE_DELETE_HOOKS.append(hook)
    try:
        results = at_once([lambda: users.delete_user(db, victim["_id"], before=hook)] * 4)
    finally:
        users.BEFORE_DELETE_HOOKS.remove(hook)
    done = [c for c in results if c is not None]
    assert len(done) == 1 and done[0]["users"] == 1, results
    assert hooked == [victim["_id"]] * 2  # the shared hook and the caller's, once each
    assert db.users.count_documents({}) == 0


def test_an_interrupted_deletion_can_be_run_again_once_its_claim_is_stale(migrated_db):
    db = migrated_db
    victim = users.create_user(db, "victim", "victim@example.com", PW)
    claimed = users._claim_deletion(db, victim["_id"])  # a deletion whose process died right after its claim
    assert claimed["deleting"]["claim"]
    assert users.delete_user(db, victim["_id"]) is None  # its claim is live: someone is deleting it
    db.users.update_one({"_id": victim["_id"]}, {"$set": {"deleting.at": datetime.now(timezone.utc) - timedelta(
        seconds=users.DELETE_CLAIM_S + 1)}})
    assert users.delete_user(db, victim["_id"])["users"] == 1
