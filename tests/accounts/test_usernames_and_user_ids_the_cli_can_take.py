"""Every account the IdP creates can be named to ``idp users ...`` / ``idp faces ...``: a user id never starts
with '-' and a new username starts with a letter or digit (click reads a leading '-' as an option: `idp users
delete --help` printed the help and deleted nothing). An account created under the older rules still signs
in (sign-in looks the name up, it does not check it against the rule) and is named after ``--``."""
from __future__ import annotations

import itertools
import secrets

import pytest
from click.testing import CliRunner

from idp.accounts import users
from idp.cli import cli

from .conftest import GOOD_PASSWORD


@pytest.fixture
def run(migrated_db, mongo_uri, tmp_path):
    env = {"MONGODB_URI": mongo_uri, "IDP_DATA_DIR": str(tmp_path), "IDP_DB_NAME": migrated_db.name,
           "IDP_FACE_ENABLED": "false"}
    return lambda *args: CliRunner().invoke(cli, list(args), env=env)


def test_a_user_id_is_drawn_again_when_it_would_start_with_a_dash(monkeypatch):
    draws = itertools.chain(["-Xq3xJ1m8Zl0aQ2wR7tY9uIo"], itertools.repeat("Xq3xJ1m8Zl0aQ2wR7tY9uIo"))
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n=None: next(draws))
    assert users.new_user_id() == "Xq3xJ1m8Zl0aQ2wR7tY9uIo"


@pytest.mark.parametrize("username", ["--help", "-alice", ".alice", "_alice", "--json"])
def test_a_new_username_starts_with_a_letter_or_digit(migrated_db, username):
    assert users.username_problem(username)
    with pytest.raises(users.InvalidUser):
        users.create_user(migrated_db, username, "mallory@example.org", GOOD_PASSWORD)


@pytest.mark.parametrize("username", ["alice", "a.b-c_d", "0day", "x--"])
def test_usernames_with_a_letter_or_digit_first_are_still_taken(username):
    assert users.username_problem(username) is None


def test_the_registration_page_refuses_a_username_starting_with_a_dash(browser, app):
    browser.register("--help", email="mallory@example.org")
    assert app.extensions["db"].users.find_one({"email": "mallory@example.org"}) is None


def _older_account(db, username: str) -> dict:
    """An account as the rules before allowed it: created without the username check."""
    return users.create_user(db, username, f"{username.strip('-')}@example.org", GOOD_PASSWORD, validate_input=False)


def test_an_older_username_starting_with_a_dash_still_signs_in(browser, app):
    doc = _older_account(app.extensions["db"], "-mallory")
    assert users.authenticate(app.extensions["db"], "-mallory", GOOD_PASSWORD)["_id"] == doc["_id"]
    r = browser.login("-mallory", GOOD_PASSWORD)
    assert r.status_code == 302 and "/login" not in r.headers["Location"], r.status_code


@pytest.mark.parametrize("who", ["username", "_id"])
def test_an_older_account_named_like_an_option_is_deleted_after_double_dash(run, migrated_db, who):
    doc = _older_account(migrated_db, "--help")
    if who == "_id":
        migrated_db.users.delete_one({"_id": doc["_id"]})
        doc["_id"] = "-" + doc["_id"][1:]  # an id drawn before ids never started with '-'
        migrated_db.users.insert_one(doc)
    r = run("users", "delete", "--", doc[who])
    assert r.exit_code == 0, r.output
    assert migrated_db.users.find_one({"_id": doc["_id"]}) is None, r.output
