"""The outbox: requests only queue; senders deliver over real SMTP with leases, retries and no double sends."""
from __future__ import annotations

import os
import socket
import stat
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from idp.mail import outbox
from idp.mail.transport import FileTransport, SMTPTransport
from tests.accounts.conftest import Browser, make_app, migrated_db  # noqa: F401  (fixtures)
from tests.conftest import SMTPCapture


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the test server takes AUTH on a plain local connection on purpose (the product's STARTTLS path is
# configured by IDP_SMTP_URL); aiosmtpd warns about exactly that
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_mail_is_delivered_over_smtp_with_credentials(migrated_db):
    server = SMTPCapture(user="mailer", password="s3cret p@ss")
    try:
        outbox.queue(migrated_db, "bob@example.com", "Hello", "Body text", kind="test")
        sent, failed = outbox.send_pending(migrated_db, SMTPTransport(server.url, "IdP <idp@example.com>"))
        assert (sent, failed) == (1, 0)
        msg = server.wait_for(1)[0]
        assert msg["To"] == "bob@example.com" and msg["From"] == "IdP <idp@example.com>"
        assert server.logins == ["mailer"]
        doc = migrated_db.mail_outbox.find_one({})
        assert doc["status"] == "sent" and "body" not in doc  # the body (a secret link) is gone once sent
    finally:
        server.stop()


def test_a_failing_mail_server_loses_no_message_and_retries_with_backoff(migrated_db, smtp_server):
    mail_id = outbox.queue(migrated_db, "bob@example.com", "Hello", "Body", kind="test")
    down = SMTPTransport(f"smtp://127.0.0.1:{_closed_port()}", "idp@example.com")
    assert outbox.send_pending(migrated_db, down) == (0, 1)
    doc = migrated_db.mail_outbox.find_one({"_id": mail_id})
    assert doc["status"] == "pending" and doc["attempts"] == 1 and doc["body"] == "Body"
    assert doc["next_attempt"] > datetime.now(timezone.utc) + timedelta(seconds=50)  # backed off
    assert outbox.send_pending(migrated_db, SMTPTransport(smtp_server.url, "idp@example.com")) == (0, 0)  # not due
    migrated_db.mail_outbox.update_one({"_id": mail_id}, {"$set": {"next_attempt": datetime.now(timezone.utc)}})
    assert outbox.send_pending(migrated_db, SMTPTransport(smtp_server.url, "idp@example.com")) == (1, 0)
    assert smtp_server.wait_for(1)[0]["Subject"] == "Hello"


def test_gives_up_after_max_attempts_and_keeps_a_failed_record(migrated_db):
    mail_id = outbox.queue(migrated_db, "bob@example.com", "Hello", "Body", kind="test")
    down = SMTPTransport(f"smtp://127.0.0.1:{_closed_port()}", "idp@example.com")
    for _ in range(outbox.MAX_ATTEMPTS):
        migrated_db.mail_outbox.update_one({"_id": mail_id}, {"$set": {"next_attempt": datetime.now(timezone.utc)}})
        outbox.send_pending(migrated_db, down)
    doc = migrated_db.mail_outbox.find_one({"_id": mail_id})
    assert doc["status"] == "failed" and doc["attempts"] == outbox.MAX_ATTEMPTS and "last_error" in doc


def test_parallel_senders_never_send_a_message_twice(migrated_db, smtp_server):
    for i in range(30):
        outbox.queue(migrated_db, f"user{i}@example.com", f"m{i}", "Body", kind="test")
    transport = SMTPTransport(smtp_server.url, "idp@example.com")
    threads = [threading.Thread(target=outbox.send_pending, args=(migrated_db, transport)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    received = smtp_server.wait_for(30)
    time.sleep(0.5)
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert sorted(subjects) == sorted(f"m{i}" for i in range(30)) and len(received) == 30
    assert migrated_db.mail_outbox.count_documents({"status": "sent"}) == 30


def test_a_request_never_waits_for_a_slow_mail_server(make_app):  # noqa: F811
    """A server that accepts the connection but never answers: the registration still returns at once."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    try:
        app = make_app(smtp_url=f"smtp://127.0.0.1:{silent.getsockname()[1]}")
        b = Browser(app.test_client())
        started = time.monotonic()
        assert b.register(username="slowmail").status_code == 302
        assert time.monotonic() - started < 5
        assert app.extensions["db"].mail_outbox.count_documents({"to": "slowmail@example.com"}) == 1
    finally:
        silent.close()


def test_without_smtp_mail_goes_to_0600_files_and_the_log_has_no_link(make_app, tmp_path, caplog):  # noqa: F811
    import logging
    caplog.set_level(logging.INFO, logger="idp.mail")
    app = make_app()
    assert isinstance(app.extensions["mail"]["transport"], FileTransport)
    b = Browser(app.test_client())
    assert b.register(username="filemail").status_code == 302
    folder = tmp_path / "mail"
    deadline = time.monotonic() + 15

    def written():  # the sender logs right after the file is in place: wait for both
        return list(folder.glob("*.eml")) and any("mail written" in r.getMessage() for r in caplog.records)
    while time.monotonic() < deadline and not written():
        time.sleep(0.1)
    files = list(folder.glob("*.eml"))
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    text = files[0].read_text()
    assert "/verify-email/" in text and "filemail@example.com" in text
    token = text.split("/verify-email/")[1].split()[0]
    assert any("mail written" in r.getMessage() for r in caplog.records)
    assert all(token not in r.getMessage() and token not in str(r.__dict__) for r in caplog.records)


def test_malformed_smtp_url_is_refused_at_start():
    import pytest

    from idp.mail.transport import MailConfigError
    with pytest.raises(MailConfigError):
        SMTPTransport("http://example.com", "idp@example.com")


def test_cli_send_pending_delivers_the_outbox(migrated_db, mongo_uri, tmp_path, smtp_server):
    from click.testing import CliRunner

    from idp.cli import cli
    outbox.queue(migrated_db, "carol@example.com", "From the CLI", "Body", kind="test")
    env = {"MONGODB_URI": mongo_uri, "IDP_DATA_DIR": str(tmp_path), "IDP_DB_NAME": migrated_db.name,
           "IDP_SMTP_URL": smtp_server.url}
    r = CliRunner().invoke(cli, ["mail", "send-pending"], env=env, catch_exceptions=False)
    assert r.exit_code == 0 and "sent 1, failed 0" in r.output, r.output
    assert smtp_server.wait_for(1)[0]["Subject"] == "From the CLI"
    r = CliRunner().invoke(cli, ["mail", "status"], env=env, catch_exceptions=False)
    assert "sent: 1" in r.output


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 (the test trusts it explicitly; the transport verifies it)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _tls_server(tmp_path, implicit: bool):
    import email
    import ssl

    from aiosmtpd.controller import Controller
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append((email.message_from_bytes(envelope.content), session.ssl is not None))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    if implicit:
        controller = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=server_ctx)
    else:
        controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=server_ctx,
                                require_starttls=True)
    controller.start()
    return controller, port, cert, received


def _wait(received, n=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(received) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return received


def test_starttls_delivery_verifies_the_certificate(migrated_db, tmp_path):
    import ssl

    import pytest
    controller, port, cert, received = _tls_server(tmp_path, implicit=False)
    try:
        transport = SMTPTransport(f"smtp://127.0.0.1:{port}?starttls=1", "idp@example.com")
        outbox.queue(migrated_db, "dan@example.com", "Over STARTTLS", "Body", kind="test")
        # an untrusted certificate: refused, the message stays queued
        assert outbox.send_pending(migrated_db, transport) == (0, 1)
        doc = migrated_db.mail_outbox.find_one({})
        assert doc["status"] == "pending" and "CERTIFICATE" in doc["last_error"].upper()
        transport.context.load_verify_locations(cert)
        migrated_db.mail_outbox.update_one({}, {"$set": {"next_attempt": datetime.now(timezone.utc)}})
        assert outbox.send_pending(migrated_db, transport) == (1, 0)
        msg, over_tls = _wait(received)[0]
        assert msg["Subject"] == "Over STARTTLS" and over_tls
        with pytest.raises(ssl.SSLError):
            SMTPTransport(f"smtp://127.0.0.1:{port}?starttls=1", "x@y.z").send(
                {"_id": "x", "to": "a@b.c", "subject": "s", "body": "b"})
    finally:
        controller.stop()


def test_smtps_delivery_is_tls_from_the_first_byte(migrated_db, tmp_path):
    controller, port, cert, received = _tls_server(tmp_path, implicit=True)
    try:
        transport = SMTPTransport(f"smtps://127.0.0.1:{port}", "idp@example.com")
        transport.context.load_verify_locations(cert)
        outbox.queue(migrated_db, "erin@example.com", "Over TLS", "Body", kind="test")
        assert outbox.send_pending(migrated_db, transport) == (1, 0)
        msg, _ = _wait(received)[0]
        assert msg["Subject"] == "Over TLS"
    finally:
        controller.stop()


def test_a_refused_recipient_leaves_no_address_in_the_log(migrated_db, caplog):
    """A mail server that refuses a recipient quotes the address in its answer ("550 5.1.1 <alice@...>: Recipient
    address rejected"), and smtplib's exception repeats it. That text went into the warning line of every retry
    (and the error line when giving up): the log, which operators ship elsewhere and keep longer, collected the
    addresses of the accounts whose mail failed. The log now names the error's type and SMTP code only; the
    outbox document (which holds the address anyway) keeps the server's answer for the operator."""
    import logging

    from aiosmtpd.controller import Controller

    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"

    port = _closed_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    caplog.set_level(logging.INFO, logger="idp.mail")
    try:
        mail_id = outbox.queue(migrated_db, "carol.private@example.net", "Reset", "Body", kind="test")
        transport = SMTPTransport(f"smtp://127.0.0.1:{port}", "idp@example.com")
        for _ in range(outbox.MAX_ATTEMPTS):
            migrated_db.mail_outbox.update_one({"_id": mail_id}, {"$set": {"next_attempt": datetime.now(timezone.utc)}})
            assert outbox.send_pending(migrated_db, transport) == (0, 1)
    finally:
        controller.stop()
    doc = migrated_db.mail_outbox.find_one({"_id": mail_id})
    assert doc["status"] == "failed" and "550" in doc["last_error"]
    lines = [r for r in caplog.records if r.name == "idp.mail"]
    assert any(r.levelno == logging.ERROR for r in lines) and len(lines) == outbox.MAX_ATTEMPTS
    for r in lines:
        text = r.getMessage() + repr(r.__dict__)
        assert "carol.private" not in text, text
    assert any("550" in str(getattr(r, "error", "")) for r in lines)  # what went wrong is still there


@pytest.mark.parametrize("url", ["smtp://idp:s3cret-pw@mail.example:587", "smtp://idp:s3cret-pw@mail.example:25",
                                 "smtp://idp:s3cret-pw@10.0.0.25?starttls=0"])
def test_a_password_without_tls_to_another_host_stops_start_up(url):
    """smtp://user:password@host without ?starttls=1 was taken, and smtplib logged in over the plain connection: the
    mail account's password (and every reset link after it) crossed the network in clear text at each delivery. Now
    refused in one line that never shows the password; TLS (STARTTLS or smtps) or a loopback relay are taken."""
    from idp.config import Config
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"IDP_SMTP_URL": url})
    message = str(exc.value)
    assert message.startswith("configuration error: IDP_SMTP_URL has a user and password but no TLS")
    assert "s3cret-pw" not in message
    for fine in ("smtp://idp:pw@mail.example:587?starttls=1", "smtps://idp:pw@mail.example", "smtp://mail.example:25",
                 "smtp://idp:pw@127.0.0.1:2525", "smtp://idp:pw@localhost:25"):
        assert Config.from_env({"IDP_SMTP_URL": fine}).smtp_url == fine
