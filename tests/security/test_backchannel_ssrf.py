"""Back-Channel Logout is not a server-side request forgery channel: a client created by dynamic registration
(RFC 7591) may only have logout tokens POSTed over https to a host whose every address is public — refused at
registration with 400 ``invalid_client_metadata``, and checked again before every send against the address
actually connected to (pinned: no second DNS lookup, so a rebinding name cannot switch it; TLS still verifies
the host name). Operator-registered clients (CLI, admin pages, the demo) keep loopback/private addresses.

Deliveries go to a real HTTP(S) server on 127.0.0.1 that counts every request it gets; "DNS" in the rebinding
and pinning tests is the outbound module's resolver replaced by a table (the attacker's name server)."""
from __future__ import annotations

import datetime as dt
import ssl
import threading
import time

import pytest
import requests
from support.servers import LiveServer

from oauth.conftest import RP, RP_CALLBACK, cheap_password_hashing, csrf_from, make_server  # noqa: F401

TOKEN = "initial-access-token-0123456789abcdef"
PUBLIC = "https://1.1.1.1/bc"  # a public address literal (registration needs no DNS for it; nothing is sent)


class Endpoint:
    """A back-channel logout endpoint on 127.0.0.1 (http, or https with ``ssl_context``) that records every
    request it receives, whatever it is."""

    def __init__(self, ssl_context=None):
        from werkzeug.serving import make_server as wz_server
        from werkzeug.wrappers import Request, Response
        self.hits: list[dict] = []
        lock = threading.Lock()

        @Request.application
        def app(request):
            with lock:
                self.hits.append({"host": request.headers.get("Host"), "form": request.form.to_dict()})
            return Response("", status=200)

        if ssl_context is None:
            self.server = LiveServer(app)
            self.port = self.server.port
        else:
            self.httpd = wz_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
            self.port = self.httpd.server_port
            self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                           daemon=True)
            self.thread.start()
            self.server = None
        self.url = f"http://127.0.0.1:{self.port}/bc"

    def stop(self):
        if self.server is not None:
            self.server.stop()
        else:
            self.httpd.shutdown()
            self.thread.join(5)
            self.httpd.server_close()


@pytest.fixture
def endpoint():
    e = Endpoint()
    yield e
    e.stop()


@pytest.fixture
def reg_idp(make_server):
    return make_server(registration_access_token=TOKEN)


def register(idp, uri, **extra):
    return requests.post(f"{idp.url}/oauth/register", headers={"Authorization": f"Bearer {TOKEN}"},
                         json={"redirect_uris": [RP_CALLBACK], "backchannel_logout_uri": uri, **extra}, timeout=30)


def _sender(idp):
    """A sender of its own (the app's thread stopped), so each test decides when a pass runs."""
    from idp.oauth import backchannel
    idp.app.extensions["oauth_backchannel"].stop()
    return backchannel.Sender(idp.db, idp.config, idp.app.extensions["oauth_keys"])


def _queue_job(idp, client_id, sub="user-1"):
    from idp.oauth import backchannel
    now = backchannel._now()
    idp.db.logout_jobs.insert_one({"_id": f"job-{client_id}", "client_id": client_id, "sub": sub, "sid": "s1",
                                   "state": "pending", "attempts": 0, "next_at": now,
                                   "lease_until": backchannel.EPOCH, "owner": None, "created": now,
                                   "expires": now + dt.timedelta(days=1)})
    return f"job-{client_id}"


# --- registration ----------------------------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:{port}/bc", "https://127.0.0.1/bc", "https://127.0.0.1:{port}/bc", "https://10.0.0.1/bc",
    "https://192.168.1.10/bc", "https://172.16.0.1/bc", "https://100.64.0.1/bc", "https://169.254.169.254/latest",
    "https://[::1]/bc", "https://[::ffff:127.0.0.1]/bc", "https://[fd00::1]/bc", "https://[fe80::1]/bc",
    "https://0.0.0.0/bc", "https://[::]/bc", "https://224.0.0.1/bc", "https://localhost/bc",
    "https://localhost:{port}/bc", "http://localhost:{port}/bc", "https://[2002:7f00:1::]/bc",
    "https://[64:ff9b::a00:1]/bc", "http://1.1.1.1/bc", "https://no-such-host.invalid/bc",
])
def test_registration_refuses_non_public_backchannel_uris(reg_idp, endpoint, uri):
    r = register(reg_idp, uri.format(port=endpoint.port))
    assert r.status_code == 400, (uri, r.status_code, r.text[:300])
    body = r.json()
    assert body["error"] == "invalid_client_metadata", body
    assert "back-channel logout URI" in body.get("error_description", "")
    assert reg_idp.db.clients.count_documents({}) == 0
    assert endpoint.hits == []


def test_registration_accepts_a_public_https_uri_and_records_provenance(reg_idp):
    r = register(reg_idp, PUBLIC)
    assert r.status_code == 201, r.text
    doc = reg_idp.db.clients.find_one({"_id": r.json()["client_id"]})
    assert doc["backchannel_logout_uri"] == PUBLIC and doc["created_via"] == "registration"


def test_operator_setting_allows_private_addresses_for_registered_clients(make_server, endpoint):
    idp = make_server(registration_access_token=TOKEN, registration_private_addresses=True)
    r = register(idp, endpoint.url)
    assert r.status_code == 201, r.text
    sender = _sender(idp)
    _queue_job(idp, r.json()["client_id"])
    [job] = sender.claim()
    assert sender.send(job) is True
    assert len(endpoint.hits) == 1


# --- delivery -------------------------------------------------------------------------------------

def test_operator_registered_loopback_client_still_gets_its_logout_token(make_server, endpoint):
    """The CLI's ``create_client`` (``created_via`` "cli") on http://127.0.0.1: a sign-out delivers, end to end."""
    from idp.accounts.users import create_user
    from idp.oauth.clients import create_client

    from oauth.conftest import PASSWORD
    idp = make_server(registration_access_token=TOKEN)
    user = create_user(idp.db, "alice", "alice@example.org", PASSWORD, name="Alice")
    doc, secret = create_client(idp.db, idp.config, "Operator RP", [RP_CALLBACK], scope="openid profile",
                                face_policy="optional", backchannel_logout_uri=endpoint.url)  # face off here
    assert doc["created_via"] == "cli"
    rp = RP(idp, doc["client_id"], secret)
    rp.tokens(scope="openid profile")
    page = rp.browser.get(f"{idp.url}/account")
    r = rp.browser.post(f"{idp.url}/account/sign-out", data={"csrf_token": csrf_from(page.text)},
                        allow_redirects=False)
    assert r.status_code == 302
    end = time.monotonic() + 15
    while time.monotonic() < end and (not endpoint.hits or idp.db.logout_jobs.count_documents({})):
        time.sleep(0.05)
    assert len(endpoint.hits) == 1 and endpoint.hits[0]["form"].get("logout_token")
    assert idp.db.logout_jobs.count_documents({}) == 0  # delivered
    assert user


def test_rebound_uri_of_a_registered_client_gets_no_request(reg_idp, endpoint):
    """A dynamically registered client whose stored URI now points at loopback (what a rebinding name or a
    changed document amounts to): the send is refused before any connection, the job is retried later with
    the reason, and after the last attempt it is marked failed and audited like any failed delivery."""
    r = register(reg_idp, PUBLIC)
    assert r.status_code == 201, r.text
    client_id = r.json()["client_id"]
    reg_idp.db.clients.update_one({"_id": client_id}, {"$set": {"backchannel_logout_uri": endpoint.url}})
    sender = _sender(reg_idp)
    job_id = _queue_job(reg_idp, client_id)
    [job] = sender.claim()
    assert sender.send(job) is False
    stored = reg_idp.db.logout_jobs.find_one({"_id": job_id})
    assert stored["state"] == "pending" and stored["attempts"] == 1
    assert "address not allowed" in stored["last_error"] and stored["next_at"] > job["next_at"]

    reg_idp.config.backchannel_max_attempts = 2
    reg_idp.db.logout_jobs.update_one({"_id": job_id}, {"$set": {"next_at": job["next_at"]}})
    [job] = sender.claim()
    assert sender.send(job) is False
    stored = reg_idp.db.logout_jobs.find_one({"_id": job_id})
    assert stored["state"] == "failed" and "address not allowed" in stored["last_error"]
    entry = reg_idp.db.audit_log.find_one({"event": "oauth.backchannel_logout_failed", "client_id": client_id})
    assert entry and "address not allowed" in entry["details"]["error"]
    assert endpoint.hits == []


@pytest.mark.parametrize("answers", [["127.0.0.1"], ["1.1.1.1", "127.0.0.1"], ["10.0.0.7"], ["::1"]])
def test_registered_client_name_resolving_to_a_private_address_gets_no_request(reg_idp, endpoint, monkeypatch,
                                                                               answers):
    """The name passed the registration check; at send time its DNS answers (all of them) include a
    non-public address: nothing is sent."""
    from idp.oauth import outbound
    r = register(reg_idp, PUBLIC)
    client_id = r.json()["client_id"]
    reg_idp.db.clients.update_one({"_id": client_id}, {"$set": {
        "backchannel_logout_uri": f"https://rebind.test:{endpoint.port}/bc"}})
    monkeypatch.setattr(outbound, "getaddrinfo", _fake_dns({"rebind.test": [answers]}))
    sender = _sender(reg_idp)
    _queue_job(reg_idp, client_id)
    [job] = sender.claim()
    assert sender.send(job) is False
    assert "address not allowed" in reg_idp.db.logout_jobs.find_one({})["last_error"]
    assert endpoint.hits == []


# --- the outbound module: pinning and TLS ---------------------------------------------------------------

def _fake_dns(table: dict[str, list[list[str]]], calls: list | None = None):
    """``getaddrinfo`` answering from ``table``: each name's successive lookups get its successive answers
    (the last one repeats) — a name server that rebinds."""
    import socket
    seen: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        answers = table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        n = seen.get(host, 0)
        seen[host] = n + 1
        out = []
        for ip in answers[min(n, len(answers) - 1)]:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            addr = (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)
            out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", addr))
        return out
    return getaddrinfo


def test_connects_to_the_checked_address_without_a_second_lookup(endpoint, monkeypatch):
    """The name resolves to loopback once (allowed for an operator's client), then to an address where nothing
    listens: the POST still reaches the first answer, with the name in the Host header, after one lookup."""
    from idp.oauth import outbound
    calls: list[str] = []
    monkeypatch.setattr(outbound, "getaddrinfo", _fake_dns({"pinned.test": [["127.0.0.1"], ["192.0.2.1"]]}, calls))
    status = outbound.post_form(f"http://pinned.test:{endpoint.port}/bc", {"logout_token": "t"}, timeout=5,
                                allow_private=True)
    assert status == 200 and calls == ["pinned.test"]
    assert endpoint.hits == [{"host": f"pinned.test:{endpoint.port}", "form": {"logout_token": "t"}}]


def test_refused_address_is_never_connected(endpoint, monkeypatch):
    from idp.oauth import outbound
    monkeypatch.setattr(outbound, "getaddrinfo", _fake_dns({"inside.test": [["127.0.0.1"]]}))
    with pytest.raises(outbound.AddressNotAllowed) as e:
        outbound.post_form(f"http://inside.test:{endpoint.port}/bc", {"logout_token": "t"}, timeout=5,
                           allow_private=False)
    assert "address not allowed" in str(e.value)
    assert endpoint.hits == []


@pytest.mark.parametrize("ip", [
    "127.0.0.1", "10.1.2.3", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "255.255.255.255", "224.0.0.251", "240.0.0.1", "192.0.2.1", "::", "::1", "fe80::1", "fd12:3456::1",
    "ff02::1", "ff0e::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::7f00:1",
    "2002:7f00:1::", "2002:a00:1::", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2001:db8::1",
])
def test_non_public_addresses_are_refused(ip):
    from idp.oauth import outbound
    assert outbound.refusal(ip) is not None


@pytest.mark.parametrize("ip", ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                "2002:808:808::", "64:ff9b::808:808"])
def test_public_addresses_are_allowed(ip):
    from idp.oauth import outbound
    assert outbound.refusal(ip) is None


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A CA and a server certificate for ``rp.test`` only (no IP address in it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rp.test")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("rp.test")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d


@pytest.fixture
def tls_endpoint(tls_files):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
    e = Endpoint(ssl_context=ctx)
    yield e
    e.stop()


def test_https_to_the_pinned_address_verifies_the_certificate_against_the_name(tls_files, tls_endpoint,
                                                                               monkeypatch):
    from idp.oauth import outbound
    monkeypatch.setattr(outbound, "getaddrinfo", _fake_dns({"rp.test": [["127.0.0.1"]],
                                                            "other.test": [["127.0.0.1"]]}))
    ca = str(tls_files / "ca.pem")
    status = outbound.post_form(f"https://rp.test:{tls_endpoint.port}/bc", {"logout_token": "t"}, timeout=5,
                                allow_private=True, ca_certs=ca)
    assert status == 200 and tls_endpoint.hits[0]["host"] == f"rp.test:{tls_endpoint.port}"
    # the same server under a name its certificate does not carry: the TLS handshake fails, nothing is posted
    with pytest.raises(outbound.OutboundError):
        outbound.post_form(f"https://other.test:{tls_endpoint.port}/bc", {"logout_token": "t"}, timeout=5,
                           allow_private=True, ca_certs=ca)
    assert len(tls_endpoint.hits) == 1


def test_an_operator_ca_bundle_verifies_a_private_ca_endpoint_and_certifi_alone_does_not(
        make_server, tls_files, tls_endpoint, monkeypatch):
    """IDP_OUTBOUND_CA_BUNDLE: an operator client whose back-channel endpoint has a certificate from a private
    CA gets its logout token only when the operator configured that CA; with certifi's public bundle the
    handshake fails and nothing is posted."""
    from idp.oauth import outbound
    from idp.oauth.clients import create_client
    monkeypatch.setattr(outbound, "getaddrinfo", _fake_dns({"rp.test": [["127.0.0.1"]]}))
    uri = f"https://rp.test:{tls_endpoint.port}/bc"
    for bundle, delivered in (("", False), (str(tls_files / "ca.pem"), True)):
        idp = make_server(outbound_ca_bundle=bundle)
        doc, _ = create_client(idp.db, idp.config, "Operator RP", [RP_CALLBACK], backchannel_logout_uri=uri)
        sender = _sender(idp)
        job_id = _queue_job(idp, doc["client_id"])
        [job] = sender.claim()
        assert sender.send(job) is delivered
        if delivered:
            assert idp.db.logout_jobs.find_one({"_id": job_id}) is None
            assert len(tls_endpoint.hits) == 1 and tls_endpoint.hits[0]["form"].get("logout_token")
        else:
            assert "SSLError" in idp.db.logout_jobs.find_one({"_id": job_id})["last_error"]
            assert tls_endpoint.hits == []


@pytest.mark.parametrize("content", [None, b"", b"not a certificate"])
def test_an_unusable_ca_bundle_stops_start_up(tmp_path, content):
    from idp.config import Config
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"IDP_OUTBOUND_CA_BUNDLE": str(path)})
    assert str(exc.value).startswith("configuration error: IDP_OUTBOUND_CA_BUNDLE=")


def test_redirects_are_not_followed(monkeypatch):
    from werkzeug.wrappers import Request, Response

    from idp.oauth import outbound
    hits = []

    @Request.application
    def app(request):
        hits.append(request.path)
        return Response("", status=307, headers={"Location": "/elsewhere"})
    server = LiveServer(app)
    try:
        status = outbound.post_form(f"{server.url}/bc", {"logout_token": "t"}, timeout=5, allow_private=True)
        assert status == 307 and hits == ["/bc"]
    finally:
        server.stop()


def test_client_without_provenance_is_not_trusted(reg_idp, endpoint):
    """Every client this code creates records ``created_via``; a document without it (written some other
    way) is treated like a dynamically registered one: no request to loopback."""
    from idp.oauth.clients import create_client
    doc, _ = create_client(reg_idp.db, reg_idp.config, "Operator RP", [RP_CALLBACK],
                           backchannel_logout_uri=endpoint.url)
    reg_idp.db.clients.update_one({"_id": doc["_id"]}, {"$unset": {"created_via": ""}})
    sender = _sender(reg_idp)
    _queue_job(reg_idp, doc["_id"])
    [job] = sender.claim()
    assert sender.send(job) is False
    assert "address not allowed" in reg_idp.db.logout_jobs.find_one({})["last_error"]
    assert endpoint.hits == []


def test_changing_a_registered_clients_uri_follows_the_same_rule(reg_idp, endpoint):
    """An edit (admin page, ``update_client``) of a dynamically registered client's URI is checked like its
    registration; an operator's client may move to loopback; an unchanged URI is not looked up again."""
    from idp.oauth.clients import ClientError, create_client, update_client
    r = register(reg_idp, PUBLIC)
    client_id = r.json()["client_id"]
    for uri in (endpoint.url, "https://10.0.0.1/bc", "https://localhost/bc"):
        with pytest.raises(ClientError, match="public addresses"):
            update_client(reg_idp.db, client_id, config=reg_idp.config, backchannel_logout_uri=uri)
    assert reg_idp.db.clients.find_one({"_id": client_id})["backchannel_logout_uri"] == PUBLIC
    assert update_client(reg_idp.db, client_id, config=reg_idp.config, name="Renamed",
                         backchannel_logout_uri=PUBLIC)["name"] == "Renamed"
    doc, _ = create_client(reg_idp.db, reg_idp.config, "Operator RP", [RP_CALLBACK], created_via="admin")
    assert update_client(reg_idp.db, doc["_id"], config=reg_idp.config,
                         backchannel_logout_uri=endpoint.url)["backchannel_logout_uri"] == endpoint.url
