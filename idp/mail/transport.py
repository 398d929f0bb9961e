"""Where mail goes: an SMTP server (``IDP_SMTP_URL``) or, with none configured, files in ``$IDP_DATA_DIR/mail``.

``IDP_SMTP_URL``: ``smtp://[user:password@]host[:port][?starttls=1]`` (plain, or STARTTLS when asked; port 25,
or 587 with STARTTLS) or ``smtps://[user:password@]host[:port]`` (TLS from the first byte; port 465).
Certificates are verified against the system's trust store. User and password are URL-decoded; they are refused
without TLS unless the server is on a loopback address (a local relay).
"""
from __future__ import annotations

import logging
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from idp.parsing import is_loopback_host, parse_switch

log = logging.getLogger("idp.mail")
TIMEOUT_S = 20


class MailConfigError(ValueError):
    pass


def sender_problem(sender: str) -> str | None:
    """Why ``sender`` (``IDP_MAIL_FROM``) cannot head every mail, read as :func:`build_message` reads it: one
    mailbox with a local part and a domain (a display name may come first), no line break (refused by the
    header), nothing the parser calls invalid. None when it can. The message never quotes the value."""
    header = EmailMessage()
    try:
        header["From"] = sender
        addresses, defects = header["From"].addresses, header["From"].defects
    except (ValueError, TypeError, IndexError):
        return "IDP_MAIL_FROM is not a From header (a line break, or an address cut short)"
    if defects or len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        return "IDP_MAIL_FROM must be one address, like Deep Authenticator <no-reply@example.com>"
    return None


def build_message(doc: dict, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = doc["to"]
    msg["Subject"] = doc["subject"]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=doc["_id"])
    msg.set_content(doc["body"])
    return msg


class SMTPTransport:
    def __init__(self, url: str, sender: str):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailConfigError("IDP_SMTP_URL must look like smtp://user:pass@host:587?starttls=1 or smtps://host")
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        self.tls = parts.scheme == "smtps"
        try:  # a typo must not silently mean "no STARTTLS" (the password would go out in the clear)
            self.starttls = parse_switch(query.get("starttls", "0"))
        except ValueError:
            raise MailConfigError("IDP_SMTP_URL: starttls must be one of true/false, 1/0, yes/no, on/off") from None
        self.host = parts.hostname
        try:
            self.port = parts.port or (465 if self.tls else 587 if self.starttls else 25)
        except ValueError:
            raise MailConfigError("IDP_SMTP_URL has an invalid port") from None
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        if self.user and not (self.tls or self.starttls) and not is_loopback_host(self.host):
            # smtplib logs in over a plain connection: the password would cross the network in clear text
            raise MailConfigError("IDP_SMTP_URL has a user and password but no TLS to a server on another host: "
                                  "use smtps://, or smtp:// with ?starttls=1")
        self.sender = sender
        self.context = ssl.create_default_context()

    def describe(self) -> str:
        return f"smtp{'s' if self.tls else ''}://{self.host}:{self.port}{' (STARTTLS)' if self.starttls else ''}"

    def send(self, doc: dict) -> str:
        msg = build_message(doc, self.sender)
        if self.tls:
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT_S, context=self.context)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S)
        with conn:
            if self.starttls:
                conn.starttls(context=self.context)
            if self.user:
                conn.login(self.user, self.password or "")
            conn.send_message(msg)
        return self.describe()


class FileTransport:
    """No SMTP server: each mail becomes ``<dir>/<id>.eml`` (mode 0600). The log says only that a mail was
    written and where: its links are secrets."""

    def __init__(self, directory: Path, sender: str):
        self.directory = Path(directory)
        self.sender = sender

    def describe(self) -> str:
        return f"files in {self.directory}"

    def send(self, doc: dict) -> str:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{doc['_id']}.eml"
        part = self.directory / f".{doc['_id']}.part"  # renamed once complete: a reader never sees half a mail
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(build_message(doc, self.sender).as_bytes())
        os.replace(part, path)
        log.info("mail written to a file (no IDP_SMTP_URL)", extra={"mail_id": doc["_id"], "path": str(path),
                                                                     "kind": doc.get("kind")})
        return str(path)


def from_config(config):
    if config.smtp_url:
        return SMTPTransport(config.smtp_url, config.mail_from)
    return FileTransport(Path(config.data_dir) / "mail", config.mail_from)
