"""Password policy (NIST SP 800-63B) and argon2id hashing with transparent re-hashing."""
from __future__ import annotations

import pytest

from idp.accounts import passwords, users


@pytest.mark.parametrize("password, problem", [
    ("", "Enter a password."),
    ("seven77", "at least 8"),
    ("x" * 7 + "é", None),  # 8 characters (not bytes)
    ("a7#" * 43, "at most 128"),  # 129
    ("password", "too common"),
    ("PassWord123", "too common"),  # case-insensitive
    ("qwertyuiop", "too common"),
    ("iloveyou2020", "too common"),
    ("12345678", "too common"),
    ("%%%%%%%%%%%", "too easy"),
    ("only lowercase words here", None),  # no composition rules
    ("Tr0ub4dor&3", None),
])
def test_password_rules(password, problem):
    got = passwords.password_problem(password)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


def test_long_passwords_allowed_up_to_128():
    assert passwords.password_problem("ab cd ef " * 7 + "g") is None  # 64
    assert passwords.password_problem(("mango river " * 11)[:128]) is None


def test_password_equal_to_username_or_email_rejected():
    assert "username or email" in passwords.password_problem("Alice.Smith", username="alice.smith")
    assert "username or email" in passwords.password_problem("alice@example.com", email="alice@example.com")
    assert "username or email" in passwords.password_problem("verylongname", email="verylongname@example.com")
    assert passwords.password_problem("something else entirely", username="alice.smith") is None


def test_common_list_is_shipped_as_package_data():
    common = passwords.common_passwords()
    assert len(common) > 1000
    assert {"123456", "password", "qwerty", "iloveyou", "password1"} <= common


def test_hash_is_argon2id_with_configured_parameters():
    h = passwords.hash_password("correct horse battery staple")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.check_password(h, "correct horse battery staple")
    assert not passwords.check_password(h, "correct horse battery stapler")
    assert not passwords.check_password(None, "anything")  # unknown account: dummy hash, always False
    assert not passwords.check_password("not-a-hash", "anything")


def test_nfkc_normalisation():
    # "ﬁ" (U+FB01 ligature) is NFKC-equivalent to "fi"
    h = passwords.hash_password("\ufb01ne password here")
    assert passwords.check_password(h, "fine password here")


@pytest.fixture
def restore_hasher():
    old = passwords.hasher()
    yield
    passwords.set_hasher(old)


def test_rehash_on_login_when_parameters_change(migrated_db, restore_hasher):
    db = migrated_db
    passwords.set_hasher(passwords.make_hasher(time_cost=1, memory_cost=8192))
    doc = users.create_user(db, "carol", "carol@example.com", "correct horse battery staple")
    old_hash = db.users.find_one({"_id": doc["_id"]})["password_hash"]
    assert "$m=8192,t=1,p=1$" in old_hash
    passwords.set_hasher(passwords.make_hasher())  # the configured parameters again

    user = users.find_by_login(db, "carol")
    assert not users.verify_password(db, user, "wrong password here")
    assert db.users.find_one({"_id": doc["_id"]})["password_hash"] == old_hash  # no rehash on failure

    assert users.verify_password(db, user, "correct horse battery staple")
    new_hash = db.users.find_one({"_id": doc["_id"]})["password_hash"]
    assert new_hash != old_hash and new_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert users.authenticate(db, "carol", "correct horse battery staple")["_id"] == doc["_id"]


def _outdated_account(db):
    passwords.set_hasher(passwords.make_hasher(time_cost=1, memory_cost=8192))
    doc = users.create_user(db, "carol", "carol@example.com", "correct horse battery staple")
    passwords.set_hasher(passwords.make_hasher())  # the configured parameters again
    return doc["_id"]


def test_a_sign_in_whose_rehash_lost_to_a_concurrent_one_still_stands(migrated_db, restore_hasher):
    """Two sign-ins read the same outdated hash at once; the first stores its rehash, so the second's
    compare-and-set finds another hash. Its password is the account's password all the same: the sign-in it
    completes must stand (the login view keeps a new session only if ``signs_in_with`` holds once stored)."""
    db = migrated_db
    uid = _outdated_account(db)
    first, second = users.find_by_login(db, "carol"), users.find_by_login(db, "carol")
    assert users.verify_password(db, first, "correct horse battery staple")
    assert users.verify_password(db, second, "correct horse battery staple")
    assert users.signs_in_with(db, uid, first["password_hash"])
    assert users.signs_in_with(db, uid, second["password_hash"]), "the sign-in whose rehash lost was dropped"


def test_a_sign_in_whose_rehash_met_a_password_change_does_not_stand(migrated_db, restore_hasher):
    db = migrated_db
    uid = _outdated_account(db)
    user = users.find_by_login(db, "carol")
    assert users.set_password(db, uid, "an entirely new passphrase", replacing=user["password_hash"])[0]
    assert users.verify_password(db, user, "correct horse battery staple")  # checked against the hash it read
    assert not users.signs_in_with(db, uid, user["password_hash"])
