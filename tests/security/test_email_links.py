"""Emailed links: absolute on IDP_ISSUER whatever Host header the request carried (no poisoned reset
links), and single use even when two submissions race."""
from __future__ import annotations

import threading

import pytest

from tests.accounts.conftest import Browser, csrf_token, make_app  # noqa: F401  (fixtures)
from tests.conftest import mail_link

NEW_PASSWORD = "purple elephant violin sunrise"


@pytest.fixture
def mail_app(make_app, smtp_server):  # noqa: F811
    return make_app(smtp_url=smtp_server.url)


def test_reset_link_uses_the_issuer_not_the_request_host(make_app, smtp_server):  # noqa: F811
    from idp.accounts import users
    mail_app = make_app(smtp_url=smtp_server.url, issuer="https://idp.example.org")
    users.create_user(mail_app.extensions["db"], "alice", "alice@example.com", "correct horse battery staple")
    c = mail_app.test_client()
    page = c.get("/forgot", base_url="https://attacker.example")
    r = c.post("/forgot", data={"csrf_token": csrf_token(page.text), "login": "alice"},
               base_url="https://attacker.example",
               headers={"X-Forwarded-Host": "attacker.example", "Referer": "https://attacker.example/forgot"})
    assert r.status_code == 200
    body = smtp_server.wait_for(1)[0].get_payload(decode=True).decode()
    assert "attacker.example" not in body
    assert "https://idp.example.org/reset/" in body


def test_racing_submissions_of_one_reset_link_set_one_password(mail_app, smtp_server):
    db = mail_app.extensions["db"]
    Browser(mail_app.test_client()).register()
    smtp_server.wait_for(1)
    Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"})
    path = mail_link(smtp_server.wait_for(2)[1], "reset")
    browsers = [Browser(mail_app.test_client()) for _ in range(6)]
    tokens = [csrf_token(b.get(path).text) for b in browsers]
    results = []
    barrier = threading.Barrier(len(browsers))

    def submit(b, token, i):
        barrier.wait()
        password = f"{NEW_PASSWORD} {i}"
        r = b.client.post(path, data={"csrf_token": token, "new_password": password, "confirm": password})
        results.append((r.status_code, password))

    threads = [threading.Thread(target=submit, args=(b, t, i)) for i, (b, t) in enumerate(zip(browsers, tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(code for code, _ in results) == [302] + [400] * 5
    winner = [p for code, p in results if code == 302][0]
    from idp.accounts import users
    assert users.authenticate(db, "alice", winner) is not None
    assert db.audit_log.count_documents({"event": "account.password_reset"}) == 1


def test_a_reset_link_sent_to_the_previous_address_dies_with_the_email_change(mail_app, smtp_server):
    """A reset link mailed to the old address (whose mailbox may be why the owner moved away from it) must not
    reset the password once the account's address changed: the change voids every emailed link, as a
    password change does."""
    from idp.accounts import users
    db = mail_app.extensions["db"]
    owner = Browser(mail_app.test_client())
    owner.register()  # signed in as alice; the verification mail
    smtp_server.wait_for(1)
    Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"})  # whoever reads alice@example.com
    old_link = mail_link([m for m in smtp_server.wait_for(2) if m["Subject"] == "Reset your password"][0], "reset")
    r = owner.submit("/account/email", {"email": "new@example.com",
                                        "current_password": "correct horse battery staple"})
    assert r.status_code == 302 and users.find_by_login(db, "new@example.com") is not None
    intruder = Browser(mail_app.test_client())
    page = intruder.get(old_link)
    assert page.status_code == 400
    r = intruder.client.post(old_link, data={"csrf_token": csrf_token(intruder.get("/forgot").text),
                                             "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 400
    assert users.authenticate(db, "alice", NEW_PASSWORD) is None
