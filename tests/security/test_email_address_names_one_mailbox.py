"""An account's email address names exactly one mailbox. An address whose local part held a mail header's
special characters was accepted ("mallory,alice@example.com"): the mails for it were addressed to two
recipients (the "To" header read as a list), and the account could show it as its verified address. Such
addresses are refused at registration and on an email change (one rule, ``users.email_problem``). Real app,
real database."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import getaddresses

import pytest

from accounts.conftest import GOOD_PASSWORD, Browser, field_errors
from accounts.conftest import make_app  # noqa: F401  (fixture)

SPECIALS = ["mallory,alice@example.com", "mallory;alice@example.com", "mallory<alice@example.com",
            "mal(lory)@example.com", 'mal"lory@example.com', "mal:lory@example.com", "mal\\lory@example.com",
            "mal[lory]@example.com", "mal\x07lory@example.com"]


def test_the_header_reads_such_an_address_as_another_one():
    """Why: the mail sender addresses the message by its "To" header."""
    msg = EmailMessage()
    msg["To"] = "mallory,alice@example.com"
    assert getaddresses(msg.get_all("To")) == [("", "mallory"), ("", "alice@example.com")]


@pytest.mark.parametrize("address", SPECIALS)
def test_registration_refuses_an_address_with_header_specials(make_app, address):  # noqa: F811
    app = make_app()
    r = Browser(app.test_client()).register("mallory", email=address)
    assert r.status_code == 200 and field_errors(r.text).get("email"), r.status_code
    db = app.extensions["db"]
    assert db.users.count_documents({}) == 0 and db.mail_outbox.count_documents({}) == 0


def test_an_email_change_refuses_it_too_and_plain_addresses_still_work(make_app):  # noqa: F811
    app = make_app()
    b = Browser(app.test_client())
    assert b.register("mallory", email="o'brien+idp@example.com").status_code == 302
    r = b.submit("/account/email", {"email": SPECIALS[0], "current_password": GOOD_PASSWORD})
    assert r.status_code == 200 and field_errors(r.text).get("email")
    assert app.extensions["db"].users.find_one({"username": "mallory"})["email"] == "o'brien+idp@example.com"
