"""OpenID Connect Back-Channel Logout 1.0: clients registered with a ``backchannel_logout_uri`` receive a
signed logout token (typ logout+jwt; iss, aud, iat, exp, jti, the back-channel event, sub and sid; no nonce)
when the user signs out, changes or resets the password, signs out everywhere, is disabled or erased — from a durable queue, retried, never
sent twice by concurrent senders. A real HTTP endpoint on loopback receives the tokens and the test verifies
each against the JWKS."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from support.servers import LiveServer

from .conftest import PASSWORD, RP, RP_CALLBACK, csrf_from

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A relying party's back-channel logout endpoint (werkzeug on 127.0.0.1)."""

    def __init__(self, fail_first: int = 0):
        from werkzeug.wrappers import Request, Response
        self.tokens: list[str] = []
        self.calls = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()

        @Request.application
        def app(request):
            with self.lock:
                self.calls += 1
                if self.calls <= self.fail_first:
                    return Response("busy", status=503)
                if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded":
                    return Response("bad", status=400)
                self.tokens.append(request.form["logout_token"])
            return Response("", status=200, headers={"Cache-Control": "no-store"})

        self.server = LiveServer(app)
        self.url = f"{self.server.url}/backchannel-logout"

    def wait(self, n: int, timeout: float = 15.0) -> list[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.tokens) >= n:
                return list(self.tokens)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.tokens)} logout tokens received, {n} expected")

    def stop(self):
        self.server.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def bc_rp(idp, receiver):
    from .conftest import register_client
    doc, secret = register_client(idp.db, idp.config, "BC RP", [RP_CALLBACK], scope="openid profile",
                                  backchannel_logout_uri=receiver.url, backchannel_logout_session_required=True)
    return RP(idp, doc["client_id"], secret)


def verify_logout_token(idp, token: str, client_id: str) -> dict:
    jwks = KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json").json())
    t = jwt.decode(token, jwks, algorithms=["RS256", "ES256"])
    assert t.header["typ"] == "logout+jwt" and t.header["kid"]
    c = dict(t.claims)
    assert c["iss"] == idp.url and c["aud"] == client_id
    assert c["events"] == {EVENT: {}} and "nonce" not in c
    now = time.time()
    assert c["iat"] <= now + 5 and c["exp"] > now and c["jti"]
    return c


def _id_claims(idp, tok):
    jwks = KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json").json())
    return dict(jwt.decode(tok["id_token"], jwks, algorithms=["RS256", "ES256"]).claims)


def test_discovery_advertises_backchannel_logout(idp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True


def test_sign_out_sends_a_verified_logout_token_with_sub_and_sid(idp, user, bc_rp, receiver):
    tok = bc_rp.tokens(scope="openid profile")
    claims = _id_claims(idp, tok)
    assert claims["sid"]
    page = bc_rp.browser.get(f"{idp.url}/account")
    r = bc_rp.browser.post(f"{idp.url}/account/sign-out", data={"csrf_token": csrf_from(page.text)},
                           allow_redirects=False)
    assert r.status_code == 302
    [token] = receiver.wait(1)
    c = verify_logout_token(idp, token, bc_rp.client_id)
    assert c["sub"] == user["_id"] and c["sid"] == claims["sid"]
    # delivered jobs are gone (deleted once the receiver has answered: poll, the answer may be in flight)
    end = time.monotonic() + 10
    while idp.db.logout_jobs.count_documents({}) and time.monotonic() < end:
        time.sleep(0.05)
    assert idp.db.logout_jobs.count_documents({}) == 0
    time.sleep(0.5)
    assert len(receiver.tokens) == 1  # once


def test_rp_initiated_logout_notifies_back_channel(idp, user, bc_rp, receiver):
    tok = bc_rp.tokens(scope="openid profile")
    r = bc_rp.follow(f"{idp.url}/end-session?id_token_hint={tok['id_token']}")
    assert r.response.status_code == 200 and r.location is None  # no post_logout_redirect_uri: the IdP's page
    [token] = receiver.wait(1)
    assert verify_logout_token(idp, token, bc_rp.client_id)["sid"] == _id_claims(idp, tok)["sid"]


def test_sign_out_everywhere_and_password_change_notify(idp, user, bc_rp, receiver):
    bc_rp.tokens(scope="openid profile")
    page = bc_rp.browser.get(f"{idp.url}/account/password")
    r = bc_rp.browser.post(f"{idp.url}/account/password", data={
        "csrf_token": csrf_from(page.text), "current_password": PASSWORD,
        "new_password": PASSWORD + " two", "confirm": PASSWORD + " two"}, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    [token] = receiver.wait(1)
    assert verify_logout_token(idp, token, bc_rp.client_id)["sub"] == user["_id"]

    # sign in again, then "sign out everywhere"
    res = bc_rp.follow(bc_rp.authorize_url(scope="openid profile", code_challenge="x" * 43,
                                           code_challenge_method="S256"))
    if res.location is None and "/login" in res.response.url:
        bc_rp.login(res, password=PASSWORD + " two")
    page = bc_rp.browser.get(f"{idp.url}/account")
    r = bc_rp.browser.post(f"{idp.url}/account/sign-out-everywhere", data={"csrf_token": csrf_from(page.text)},
                           allow_redirects=False)
    assert r.status_code == 302
    tokens = receiver.wait(2)
    assert verify_logout_token(idp, tokens[1], bc_rp.client_id)["sub"] == user["_id"]


def test_failed_delivery_is_retried_from_the_queue(idp, user, bc_rp):
    from idp.oauth import backchannel
    flaky = Receiver(fail_first=2)
    try:
        idp.db.clients.update_one({"_id": bc_rp.client_id}, {"$set": {"backchannel_logout_uri": flaky.url}})
        idp.config.backchannel_retry_base_s = 0.2
        bc_rp.tokens(scope="openid profile")
        assert backchannel.logout_user(idp.db, user["_id"]) == 1
        idp.app.extensions["oauth_backchannel"].wake()
        [token] = flaky.wait(1)
        assert flaky.calls == 3
        verify_logout_token(idp, token, bc_rp.client_id)
    finally:
        flaky.stop()


def test_gives_up_after_max_attempts_and_audits(idp, user, bc_rp):
    from idp.oauth import backchannel
    dead = Receiver(fail_first=10**6)
    try:
        idp.db.clients.update_one({"_id": bc_rp.client_id}, {"$set": {"backchannel_logout_uri": dead.url}})
        idp.config.backchannel_retry_base_s = 0.05
        idp.config.backchannel_max_attempts = 3
        bc_rp.tokens(scope="openid profile")
        backchannel.logout_user(idp.db, user["_id"])
        idp.app.extensions["oauth_backchannel"].wake()
        end = time.monotonic() + 15
        # the job is marked failed, then the giving-up is audited: wait for both
        while time.monotonic() < end and not (idp.db.logout_jobs.find_one({"state": "failed"}) and
                                              idp.db.audit_log.find_one({"event": "oauth.backchannel_logout_failed"})):
            time.sleep(0.05)
        job = idp.db.logout_jobs.find_one({"state": "failed"})
        assert job and job["attempts"] == 3 and dead.calls == 3
        assert idp.db.audit_log.find_one({"event": "oauth.backchannel_logout_failed"})
    finally:
        dead.stop()


def test_concurrent_senders_claim_each_job_once(idp, user, bc_rp):
    from idp.oauth import backchannel
    idp.app.extensions["oauth_backchannel"].stop()
    now = backchannel._now()
    idp.db.logout_jobs.insert_many([{"_id": f"j{i}", "client_id": bc_rp.client_id, "sub": user["_id"], "sid": None,
                                     "state": "pending", "attempts": 0, "next_at": now, "lease_until": backchannel.EPOCH,
                                     "owner": None, "created": now, "expires": now} for i in range(10)])
    senders = [backchannel.Sender(idp.db, idp.config, idp.app.extensions["oauth_keys"]) for _ in range(4)]
    claimed: list[list[str]] = [[] for _ in senders]
    barrier = threading.Barrier(len(senders))

    def run(i):
        barrier.wait()
        claimed[i] = [d["_id"] for d in senders[i].claim()]
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(senders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    everything = [j for c in claimed for j in c]
    assert sorted(everything) == sorted(f"j{i}" for i in range(10))  # each job claimed exactly once


def test_request_never_waits_on_the_rp(idp, user, bc_rp, receiver):
    """A sign-out answers while the RP's endpoint hangs."""
    import socket
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(1)
    try:
        idp.db.clients.update_one({"_id": bc_rp.client_id}, {"$set": {
            "backchannel_logout_uri": f"http://127.0.0.1:{hang.getsockname()[1]}/bc"}})
        bc_rp.tokens(scope="openid profile")
        page = bc_rp.browser.get(f"{idp.url}/account")
        t0 = time.monotonic()
        r = bc_rp.browser.post(f"{idp.url}/account/sign-out", data={"csrf_token": csrf_from(page.text)},
                               allow_redirects=False)
        assert r.status_code == 302 and time.monotonic() - t0 < 2
    finally:
        hang.close()


def test_registration_of_the_uri(idp):
    from idp.oauth.clients import ClientError, create_client
    with pytest.raises(ClientError):
        create_client(idp.db, idp.config, "X", [RP_CALLBACK], backchannel_logout_uri="http://rp.example/bc")
    doc, _ = create_client(idp.db, idp.config, "X", [RP_CALLBACK], backchannel_logout_uri="https://rp.example/bc")
    assert doc["backchannel_logout_uri"] == "https://rp.example/bc"
    assert doc["backchannel_logout_session_required"] is False


def test_account_erasure_notifies_the_apps(idp, user, bc_rp, receiver):
    """``idp users delete`` (the repository call it makes, in another process in real life) queues the
    logout before erasing; the running IdP's sender delivers it."""
    from idp.accounts.users import delete_user
    bc_rp.tokens(scope="openid profile")
    delete_user(idp.db, user["_id"])
    assert idp.db.rp_sessions.count_documents({"user_id": user["_id"]}) == 0
    [token] = receiver.wait(1)
    assert verify_logout_token(idp, token, bc_rp.client_id)["sub"] == user["_id"]


def test_rfc7591_registration_carries_the_backchannel_metadata(make_server):
    idp = make_server(registration_access_token="initial-access-token-0123456789abcdef")
    auth = {"Authorization": "Bearer initial-access-token-0123456789abcdef"}
    # a public address literal: a registered client's URI must resolve (here, without DNS) to public addresses
    # only (tests/security/test_backchannel_ssrf.py); nothing is sent to it
    bc = "https://1.1.1.1/bc"
    r = requests.post(f"{idp.url}/oauth/register", headers=auth, json={
        "redirect_uris": [RP_CALLBACK], "backchannel_logout_uri": bc,
        "backchannel_logout_session_required": True, "logo_uri": "https://rp.example/logo.png"})
    assert r.status_code == 201, r.text
    reg = r.json()
    assert reg["backchannel_logout_uri"] == bc
    assert reg["backchannel_logout_session_required"] is True
    doc = idp.db.clients.find_one({"_id": reg["client_id"]})
    assert doc["backchannel_logout_uri"] == bc and doc["backchannel_logout_session_required"]
    assert doc["logo_uri"] == "https://rp.example/logo.png"
    bad = requests.post(f"{idp.url}/oauth/register", headers=auth, json={
        "redirect_uris": [RP_CALLBACK], "backchannel_logout_uri": "http://internal.example/bc"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client_metadata"


def test_admin_disabling_an_account_notifies_the_apps(face_idp, receiver, people):
    """An administrator (signed in with a face) disables alice on the users page: her apps get a logout token."""
    from idp.accounts.users import create_user
    from idp.oauth.clients import create_client

    from .conftest import signed_in_admin
    alice = create_user(face_idp.db, "alice", "alice@example.org", PASSWORD, name="Alice Liddell")
    doc, secret = create_client(face_idp.db, face_idp.config, "BC RP", [RP_CALLBACK], scope="openid profile",
                                face_policy="optional", backchannel_logout_uri=receiver.url)
    RP(face_idp, doc["client_id"], secret).tokens(scope="openid profile")  # alice signs in to the app
    admin = signed_in_admin(face_idp, people)
    page = admin.get(f"{face_idp.url}/admin/users/{alice['_id']}")
    assert page.status_code == 200 and "alice" in page.text
    r = admin.post(f"{face_idp.url}/admin/users/{alice['_id']}/disable",
                   data={"csrf_token": csrf_from(page.text), "confirm": "yes"}, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    assert face_idp.db.users.find_one({"_id": alice["_id"]})["disabled"]
    [token] = receiver.wait(1)
    assert verify_logout_token(face_idp, token, doc["client_id"])["sub"] == alice["_id"]


def test_the_sender_logs_a_database_outage_without_a_traceback_and_delivers_after_it(tmp_path, receiver, caplog):
    """The sender thread polls the queue every 2 s: while the database was unreachable each pass logged an error
    with a traceback and the driver's whole topology message ("back-channel logout sender pass failed"), as the
    request path never does (an outage is an operations event). Now one warning line per pass with the error's
    type; a logout queued before the outage is delivered once the database is back."""
    import logging

    from pymongo.errors import PyMongoError

    from idp import create_app
    from idp.config import Config
    from idp.oauth import backchannel
    from idp.store import EmbeddedMongo

    from .conftest import register_client
    server = EmbeddedMongo(tmp_path / "db").start()
    try:
        config = Config(data_dir=tmp_path / "data", mongodb_uri=server.uri + "&serverSelectionTimeoutMS=400",
                        db_name="bc_outage", face_enabled=False, mail_sender=False,
                        extra={"auto_migrate": True, "keep_logging": True})
        app = create_app(config)
        db = app.extensions["db"]
        doc, _ = register_client(db, config, "BC RP", [RP_CALLBACK], scope="openid",
                                 backchannel_logout_uri=receiver.url)
        sender = app.extensions["oauth_backchannel"]
        server.stop()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            sender.wake()
            end = time.monotonic() + 15
            while time.monotonic() < end and not any("back-channel" in r.getMessage() and r.levelno >= logging.WARNING
                                                     for r in caplog.records):
                time.sleep(0.1)
        outage = [r for r in caplog.records if "back-channel" in r.getMessage() and r.levelno >= logging.WARNING]
        assert outage, "the sender's failed pass is logged"
        assert not [r for r in caplog.records if r.exc_info], "an outage is logged without a traceback"
        assert all("Topology" not in r.getMessage() for r in outage)

        server.start()
        back = time.monotonic() + 30  # the client's 0.4 s server selection, not the server, may lag on a busy machine
        while True:
            try:
                db.command("ping")
                break
            except PyMongoError:
                if time.monotonic() > back:
                    raise
                time.sleep(0.2)
        db.rp_sessions.insert_one({"_id": f"{doc['_id']}|sid-1", "client_id": doc["_id"], "user_id": "u1",
                                   "sid": "sid-1", "expires": backchannel._now() + backchannel.JOB_KEPT})
        assert backchannel.logout_session(db, "sid-1") == 1
        sender.wake()
        [token] = receiver.wait(1, timeout=30)
        assert jwt.decode(token, KeySet.import_key_set(app.extensions["oauth_keys"].jwks())).claims["sid"] == "sid-1"
        sender.stop()
        db.client.close()
    finally:
        server.stop()
