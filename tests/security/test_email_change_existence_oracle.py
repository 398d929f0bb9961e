"""The email-change form tells whether an address belongs to another account ("already exists"), as the
registration form does. Registration attempts are limited per client IP for exactly that reason; the
email-change form answered the same question for any signed-in account without that limit (its password
check passes every time, so the password throttles never slowed it). Both now count on one limit. Real app,
real database."""
from __future__ import annotations

from accounts.conftest import GOOD_PASSWORD, Browser, field_errors
from accounts.conftest import make_app  # noqa: F401  (fixture)


def test_probing_addresses_through_the_email_change_form_is_limited_like_registration(make_app):  # noqa: F811
    app = make_app(register_ip_limit=3)
    prober = Browser(app.test_client(), remote_addr="203.0.113.5")
    assert prober.register("mallory").status_code == 302  # one registration: 1 of 3
    Browser(app.test_client(), remote_addr="198.51.100.1").register("alice")  # elsewhere
    answers = []
    for candidate in ("alice@example.com", "nobody1@example.com", "nobody2@example.com", "nobody3@example.com"):
        r = prober.submit("/account/email", {"email": candidate, "current_password": GOOD_PASSWORD})
        answers.append(r.status_code)
        if r.status_code == 200:
            assert "already exists" in field_errors(r.text)["email"][0]
    # the registration and two attempts fit the limit of 3; every further one is refused unanswered
    assert answers[:2] == [200, 302] and set(answers[2:]) == {429}, answers
    db = app.extensions["db"]
    assert db.users.find_one({"username": "mallory"})["email"] != "nobody3@example.com"
    # another address is not affected
    other = Browser(app.test_client(), remote_addr="192.0.2.77")
    assert other.register("carol").status_code == 302
    r = other.submit("/account/email", {"email": "alice@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 200 and "already exists" in field_errors(r.text)["email"][0]
