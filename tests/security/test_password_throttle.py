"""Password throttles hold: parallel guesses, one counter per account everywhere a password is checked,
and registration attempts counted per client IP before any hashing."""
from __future__ import annotations

import threading

import pytest
import requests

from accounts.conftest import GOOD_PASSWORD, Browser, alert, csrf_token
from accounts.conftest import make_app  # noqa: F401  (fixture)
from oauth.conftest import Server

INVALID = "Invalid username or password."


@pytest.fixture
def hashing():
    """Argon2 a little cheaper than production (so 32 parallel hashes fit the test machine) but still slow
    enough that unserialised guesses overlap."""
    from idp.accounts import passwords
    old = passwords.set_hasher(passwords.make_hasher(time_cost=2, memory_cost=16384, parallelism=1))
    yield
    passwords.set_hasher(old)


def _audit_count(db, event: str) -> int:
    return db.audit_log.count_documents({"event": event})


def test_32_parallel_wrong_passwords_verify_at_most_5(make_app, hashing):
    from idp import audit
    from idp.accounts import users
    app = make_app(login_ip_free_failures=1000)  # the account counter is under test, not the IP one
    users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)
    server = Server(app)
    try:
        n = 32
        sessions = [requests.Session() for _ in range(n)]
        tokens = [csrf_token(s.get(server.url + "/login").text) for s in sessions]
        barrier = threading.Barrier(n)
        answers: list[tuple[int, str]] = []
        lock = threading.Lock()

        def guess(i):
            barrier.wait()
            r = sessions[i].post(server.url + "/login", allow_redirects=False, timeout=60, data={
                "csrf_token": tokens[i], "username": "alice", "password": f"wrong guess {i}"})
            with lock:
                answers.append((r.status_code, r.text))

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    finally:
        server.stop()
    assert len(answers) == n
    verified = [a for a in answers if a[0] == 200 and INVALID in a[1]]
    throttled = [a for a in answers if a[0] == 429]
    assert len(verified) + len(throttled) == n, sorted({a[0] for a in answers})
    assert len(verified) <= 5, f"{len(verified)} of {n} parallel guesses were checked"
    assert _audit_count(app.extensions["db"], audit.LOGIN_FAILED) <= 5


def test_username_and_email_share_one_account_counter(make_app):
    from idp.accounts import users
    app = make_app()
    users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)
    b = Browser(app.test_client())
    for i in range(3):
        assert INVALID in b.login("alice", f"wrong {i}").text
    for i in range(2):
        assert INVALID in b.login("ALICE@example.com", f"wrong {i}").text
    # five failures on the account, however it was named: the right password waits too
    assert b.login("alice@example.com", GOOD_PASSWORD).status_code == 429
    assert b.login("alice", GOOD_PASSWORD).status_code == 429


def test_password_change_counts_on_the_login_counter(make_app):
    from idp.accounts import users
    app = make_app()
    users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)
    victim = Browser(app.test_client())
    assert victim.login("alice", GOOD_PASSWORD).status_code == 302
    attacker = Browser(app.test_client(), remote_addr="192.0.2.9")
    for i in range(4):
        assert INVALID in attacker.login("alice@example.com", f"wrong {i}").text
    # the stolen session's guess of the current password is the fifth failure of the same account
    r = victim.submit("/account/password", {"current_password": "wrong 5", "new_password": "a new long passphrase",
                                            "confirm": "a new long passphrase"})
    assert r.status_code == 200
    assert attacker.login("alice", GOOD_PASSWORD).status_code == 429
    r = victim.submit("/account/password", {"current_password": GOOD_PASSWORD,
                                            "new_password": "a new long passphrase",
                                            "confirm": "a new long passphrase"})
    assert r.status_code == 429


@pytest.fixture
def face_app(db, mongo_uri, tmp_path):
    """The real app with face sign-in on (the engine is not loaded: only the password check is used)."""
    from idp import create_app
    from idp.config import Config
    app = create_app(Config(data_dir=tmp_path, mongodb_uri=mongo_uri, db_name=db.name, face_enabled=True,
                            login_ip_free_failures=6, extra={"auto_migrate": True, "keep_logging": True}))
    yield app
    app.extensions["db"].client.close()


def test_face_reenrollment_password_counts_on_the_account_and_ip_counters(face_app):
    from idp.accounts import users
    app = face_app
    db = app.extensions["db"]
    users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)["_id"]
    users.create_user(db, "bob", "bob@example.com", GOOD_PASSWORD)
    b = Browser(app.test_client())
    assert b.login("alice", GOOD_PASSWORD).status_code == 302
    for i in range(5):
        token = csrf_token(b.get("/account").text)
        r = b.client.post("/account/face/reenroll", data={"csrf_token": token, "password": f"wrong {i}"},
                          environ_base=b.environ)
        assert r.status_code == 302
    # five wrong passwords at re-enrollment: the sign-in page now waits for this account too
    assert Browser(app.test_client(), "198.51.100.1").login("alice@example.com", GOOD_PASSWORD).status_code == 429
    # in a browser signed in as alice they count on her counter alone, not on the address that others share
    # (test_password_throttle_shared_address.py); other accounts' guesses from it count on the address as usual
    for i in range(6):
        assert INVALID in b.login(f"nobody{i}", "wrong").text
    assert b.login("bob", GOOD_PASSWORD).status_code == 429


def test_unknown_accounts_count_per_ip_and_per_name(make_app):
    app = make_app(login_ip_free_failures=4)
    b = Browser(app.test_client())
    for i in range(4):
        assert INVALID in b.login(f"nobody{i}", "wrong").text
    assert b.login("nobody-else", "wrong").status_code == 429
    # the same answers as for an existing account: five failures on one unknown name are throttled too
    other = Browser(app.test_client(), remote_addr="203.0.113.50")
    for i in range(3):
        assert INVALID in other.login("ghost", f"wrong {i}").text
    other2 = Browser(app.test_client(), remote_addr="203.0.113.51")
    for i in range(2):
        assert INVALID in other2.login("ghost", f"wrong {i}").text
    assert other2.login("ghost", "wrong").status_code == 429


def test_every_registration_attempt_counts_per_ip(make_app):
    from idp.accounts import users
    app = make_app(register_ip_limit=3)
    db = app.extensions["db"]
    users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    b = Browser(app.test_client())
    for i in range(3):  # duplicate email: refused, but each ran the form and would hash the password
        r = b.register(username=f"mallory{i}", email="alice@example.com")
        assert r.status_code == 200 and "mallory" not in (alert(r.text) or "")
    r = b.register(username="mallory9", email="mallory9@example.com")
    assert r.status_code == 429
    assert db.users.count_documents({}) == 1
    # another network is not affected
    assert Browser(app.test_client(), "198.51.100.7").register(username="carol").status_code == 302
