"""Two accounts cannot carry email addresses that read the same. The address check refused a mail header's
specials and control characters only, so an address with an invisible character in its local part - a zero-width
space, a soft hyphen, a word joiner, a byte-order mark, a right-to-left override, a private-use character - or in
a compatibility form (full-width letters, an accent typed as a combining mark) was a second account beside
"alice@example.org" that looked exactly like it on the admin pages, in mails, and in the ``email`` claim relying
parties receive. Such addresses are refused at registration, on an email change and by the CLI (one rule,
``users.email_problem``). Real app, real database."""
from __future__ import annotations

import pytest

from accounts.conftest import GOOD_PASSWORD, Browser, field_errors
from accounts.conftest import make_app  # noqa: F401  (fixture)

LOOKALIKES = ["alice\u200b@example.org", "ali\u00adce@example.org", "al\u2060ice@example.org",
              "\ufeffalice@example.org", "alice\u202e@example.org", "alice\ue000@example.org",
              "\uff41lice@example.org", "jose\u0301@example.org", "\ufb01le@example.org"]


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
