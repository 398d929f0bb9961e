"""Two accounts cannot carry email addresses that read the same. The address check refused a mail header's
specials and control characters only, so an address with an invisible character in its local part - a zero-width
space, a soft hyphen, a word joiner, a byte-order mark, a right-to-left override, a private-use character - or in
a compatibility form (full-width letters, an accent typed as a combining mark) was a second account beside
"alice@example.org" that looked exactly like it on the admin pages, in mails, and in the ``email`` claim relying
parties receive. Such addresses are refused at registration, on an email change and by the CLI (one rule,
``users.email_problem``).

So were letters of another script that look like Latin ones (Unicode TR39, as browsers treat domain names): a
Cyrillic "а" among Latin letters is refused in any address, and an address outside ASCII whose confusable skeleton
is another account's (all-Cyrillic "аре@" beside "ape@") is refused at registration, on an email change, when that
change is confirmed, and by the CLI. Two ASCII addresses are never compared so ("rn" and "m" stay two accounts).
Real app, real database."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from accounts.conftest import GOOD_PASSWORD, Browser, field_errors
from accounts.conftest import make_app, migrated_db  # noqa: F401  (fixtures)
from idp.accounts import emaillinks, users
from idp.cli import cli
from idp.store.migrate import MIGRATIONS_DIR, load

LOOKALIKES = ["alice\u200b@example.org", "ali\u00adce@example.org", "al\u2060ice@example.org",
              "\ufeffalice@example.org", "alice\u202e@example.org", "alice\ue000@example.org",
              "\uff41lice@example.org", "jose\u0301@example.org", "\ufb01le@example.org",
              # letters of two scripts that look alike: Cyrillic а, е, о, р; Greek ο, α
              "\u0430lice@example.org", "p\u0430yp\u0430l@example.org", "bob.smi\u0442h@example.org",
              "ali\u03bfe@example.org", "\u03b1lice@example.org", "\u0440\u03bf\u0440@example.org"]
#: All-Cyrillic addresses, each reading as an ASCII one: аре, сосо, рор (looks like ape, coco, pop).
WHOLE_SCRIPT = {"ape@example.org": "\u0430\u0440\u0435@example.org",
                "coco@example.org": "\u0441\u043e\u0441\u043e@example.org",
                "pop@example.org": "\u0440\u043e\u0440@example.org"}


@pytest.mark.parametrize("address", LOOKALIKES)
def test_registration_refuses_an_address_that_reads_as_another(make_app, address):  # noqa: F811
    app = make_app()
    r = Browser(app.test_client()).register("mallory", email=address)
    assert r.status_code == 200 and field_errors(r.text).get("email"), (address, r.status_code)
    db = app.extensions["db"]
    assert db.users.count_documents({}) == 0 and db.mail_outbox.count_documents({}) == 0


def test_an_email_change_refuses_it_and_addresses_in_other_scripts_still_work(make_app):  # noqa: F811
    app = make_app()
    b = Browser(app.test_client())
    assert b.register("mallory", email="josé.müller@example.org").status_code == 302
    r = b.submit("/account/email", {"email": LOOKALIKES[0], "current_password": GOOD_PASSWORD})
    assert r.status_code == 200 and field_errors(r.text).get("email")
    assert app.extensions["db"].users.find_one({"username": "mallory"})["email"] == "josé.müller@example.org"
    assert Browser(app.test_client()).register("sato", email="佐藤@example.org").status_code == 302


def test_an_address_reading_as_another_accounts_is_refused_and_real_addresses_in_other_scripts_are_not(make_app):
    app = make_app(register_ip_limit=50)
    db = app.extensions["db"]
    for ascii_address, cyrillic in WHOLE_SCRIPT.items():
        name = ascii_address.split("@")[0]
        assert Browser(app.test_client()).register(name + "1", email=ascii_address).status_code == 302
        users_before, mails_before = db.users.count_documents({}), db.mail_outbox.count_documents({})
        r = Browser(app.test_client()).register(name + "2", email=cyrillic)
        assert r.status_code == 200
        assert "looks like the address of another account" in field_errors(r.text)["email"][0], cyrillic
        assert (db.users.count_documents({}), db.mail_outbox.count_documents({})) == (users_before, mails_before)
    # the same Cyrillic address of no lookalike, and Cyrillic, Greek and accented addresses, stay accepted
    for n, address in enumerate(["\u0430\u0440\u0435\u0441@example.org", "\u0438\u0432\u0430\u043d@example.org",
                                 "\u03bd\u03af\u03ba\u03b7@example.org", "m\u00fcller@example.org",
                                 "\u3055\u3068\u3046\u4f50\u85e4@example.org"]):
        assert Browser(app.test_client()).register(f"other{n}", email=address).status_code == 302, address
    stored = db.users.find_one({"email": "\u0438\u0432\u0430\u043d@example.org"})
    assert stored["email_skeleton"] == users.email_skeleton(stored["email"])


def test_ascii_addresses_are_never_refused_as_lookalikes_of_each_other(make_app):
    app = make_app()
    # "rn" reads as "m", "0" as "o", "1" and "I" as "l": real, different mailboxes all the same
    for n, address in enumerate(["modern@example.org", "rnodern@example.org", "bob0@example.org",
                                 "bobo@example.org", "l1ly@example.org", "llly@example.org"]):
        assert Browser(app.test_client()).register(f"user{n}", email=address).status_code == 302, address
    db = app.extensions["db"]
    assert db.users.count_documents({}) == 6
    assert users.email_skeleton("modern@example.org") == users.email_skeleton("rnodern@example.org")


def test_an_email_change_to_an_address_reading_as_another_accounts_is_refused(make_app):
    app = make_app()
    db = app.extensions["db"]
    assert Browser(app.test_client()).register("ape", email="ape@example.org").status_code == 302
    b = Browser(app.test_client())
    assert b.register("mallory", email="mallory@example.org").status_code == 302
    for address in (WHOLE_SCRIPT["ape@example.org"], "\u0430pe@example.org"):
        r = b.submit("/account/email", {"email": address, "current_password": GOOD_PASSWORD})
        assert r.status_code == 200 and field_errors(r.text).get("email"), address
    doc = db.users.find_one({"username": "mallory"})
    assert doc["email"] == "mallory@example.org" and "pending_email" not in doc
    assert doc["email_skeleton"] == users.email_skeleton("mallory@example.org")
    # a change to an address of no lookalike stores its skeleton with it
    r = b.submit("/account/email", {"email": "\u0438\u0432\u0430\u043d@example.org",
                                    "current_password": GOOD_PASSWORD})
    assert r.status_code == 302
    doc = db.users.find_one({"username": "mallory"})
    assert doc["email_skeleton"] == users.email_skeleton("\u0438\u0432\u0430\u043d@example.org")


def test_a_pending_address_is_not_confirmed_once_another_accounts_address_reads_as_it(make_app):
    app = make_app()
    db = app.extensions["db"]
    mallory = users.create_user(db, "mallory", "mallory@example.org", GOOD_PASSWORD)
    assert users.confirm_email(db, mallory["_id"], "mallory@example.org") == {"changed": False}
    mallory = users.get_user(db, mallory["_id"])
    cyrillic = WHOLE_SCRIPT["pop@example.org"]
    assert users.request_email_change(db, mallory, cyrillic)  # no lookalike yet: pending
    token = emaillinks.issue(db, emaillinks.VERIFY, mallory["_id"], cyrillic)
    users.create_user(db, "pop", "pop@example.org", GOOD_PASSWORD)  # the real owner registers meanwhile
    before = db.users.find_one({"_id": mallory["_id"]})
    b = Browser(app.test_client())
    r = b.submit(f"/verify-email/{token}", {})
    assert r.status_code == 409 and "looks like this one" in r.text
    after = db.users.find_one({"_id": mallory["_id"]})
    assert after["email"] == "mallory@example.org" and after["email_skeleton"] == before["email_skeleton"]
    assert "pending_email" not in after  # the change can never take effect: it ended
    with pytest.raises(users.LookalikeEmail):  # the repository refuses it too, writing nothing
        db.users.update_one({"_id": mallory["_id"]}, {"$set": {"pending_email": cyrillic}})
        users.confirm_email(db, mallory["_id"], cyrillic)
    assert db.users.find_one({"_id": mallory["_id"]})["email"] == "mallory@example.org"


def test_the_cli_refuses_mixed_scripts_and_an_address_reading_as_another_accounts(migrated_db, mongo_uri, tmp_path):
    env = {"MONGODB_URI": mongo_uri, "IDP_DATA_DIR": str(tmp_path), "IDP_DB_NAME": migrated_db.name}

    def create(username, email):
        return CliRunner().invoke(cli, ["users", "create", "--username", username, "--email", email,
                                        "--password-stdin"], input=GOOD_PASSWORD + "\n", env=env,
                                  catch_exceptions=False)

    assert create("ape", "ape@example.org").exit_code == 0
    r = create("mixed", "\u0430lice@example.org")
    assert r.exit_code == 2 and "email:" in r.output
    r = create("lookalike", WHOLE_SCRIPT["ape@example.org"])
    assert r.exit_code == 1 and "looks like the address of another account" in r.output
    assert create("rnodern", "rnodern@example.org").exit_code == 0
    assert create("modern", "modern@example.org").exit_code == 0
    assert sorted(d["username"] for d in migrated_db.users.find({})) == ["ape", "modern", "rnodern"]


def test_migration_0015_gives_earlier_accounts_their_skeleton_through_an_index(migrated_db):
    db = migrated_db
    for uid, email in (("a", "ape@example.org"), ("b", "\u0438\u0432\u0430\u043d@example.org")):
        db.users.insert_one({"_id": uid, "username": uid, "email": email, "password_hash": "x"})
    migration = load(MIGRATIONS_DIR / "0015_accounts_email_skeleton.py")
    migration.up(db)
    first = list(db.users.find({}).sort("_id", 1))
    migration.up(db)
    assert list(db.users.find({}).sort("_id", 1)) == first  # idempotent
    assert [d["email_skeleton"] for d in first] == ["ape@exarnple.org", users.email_skeleton(first[1]["email"])]
    assert any(index["key"] == [("email_skeleton", 1)] for index in db.users.index_information().values())
    with pytest.raises(users.LookalikeEmail):  # an earlier account is found by the new check
        users.create_user(db, "mallory", WHOLE_SCRIPT["ape@example.org"], GOOD_PASSWORD)
