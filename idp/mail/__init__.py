"""Email: an outbox in MongoDB and a sender that delivers it (SMTP, or files when no server is configured).

  ``idp.mail.send(db, to, subject, body, kind=..., user_id=...)`` queue a message (all a request does)
  ``idp.mail.greeting(user)``  a mail's first line: the account's name only to an address its owner confirmed
  ``idp.mail.outbox``    the queue: claim with a lease, retries with backoff (no Flask)
  ``idp.mail.transport`` SMTP (``IDP_SMTP_URL``) or ``$IDP_DATA_DIR/mail/*.eml``
  ``idp.mail.notify``    the account owner's notices, fed by the audit writer (one place for all of them)

Each process runs one sender thread per app (started by its first request, so it lives in the serving worker
rather than a pre-fork parent; ``IDP_MAIL_SENDER=0`` turns it off, leaving ``idp mail send-pending``). It
delivers at once when a message is queued in the process and polls every ``POLL_S`` for the rest (messages
queued elsewhere, retries). Several processes and instances share the outbox safely (see ``outbox.claim``).
"""
from __future__ import annotations

import logging
import os
import threading
import weakref

from . import outbox

log = logging.getLogger("idp.mail")
POLL_S = 15.0

# The wake-up events of this process's senders: queueing a message wakes every one of them.
_WAKE: "weakref.WeakSet[Sender]" = weakref.WeakSet()


def greeting(user: dict, *, confirmed: bool | None = None) -> str:
    """The first line of a mail to the account ``user`` (a users document): its name (or username) only when
    the address the mail goes to was confirmed by its owner (``confirmed``; default: the account's current
    address, ``email_verified``). Anyone may register with anyone's address, and both are the
    registrant's text: quoted in mail the IdP sends to an unconfirmed address, they were a line of the
    registrant's (a phishing message, a URL) delivered to any mailbox from the IdP's own domain."""
    if confirmed is None:
        confirmed = bool(user.get("email_verified"))
    name = (user.get("name") or user.get("username")) if confirmed else None
    return f"Hello {name}," if name else "Hello,"


def send(db, to: str, subject: str, body: str, *, kind: str, user_id: str | None = None) -> str:
    """Queue one message and nudge the senders; never talks to a mail server."""
    mail_id = outbox.queue(db, to, subject, body, kind=kind, user_id=user_id)
    for sender in list(_WAKE):
        sender.wake()
    return mail_id


class Sender:
    """One background thread delivering the outbox until the database client is closed or ``stop``."""

    def __init__(self, db, transport):
        self.db = db
        self.transport = transport
        self._event = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="idp-mail-sender", daemon=True)
            self._thread.start()
            _WAKE.add(self)

    def wake(self) -> None:
        self._event.set()

    def stop(self) -> None:
        self._stopped = True
        self._event.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        from pymongo.errors import InvalidOperation, PyMongoError
        while not self._stopped:
            try:
                outbox.send_pending(self.db, self.transport)
            except InvalidOperation:  # the app's database client was closed: this sender is done
                return
            except PyMongoError as e:  # the database is unreachable for a moment: try again at the next round
                log.warning("mail sender: database unavailable, will retry", extra={"error": str(e)[:200]})
            except Exception:
                log.exception("mail sender round failed")
            self._event.wait(POLL_S)
            self._event.clear()


def stop_senders() -> None:
    """Stop every sender thread of this process (a round under way finishes first): for a process about to
    lose its database, so that no sender logs it as an outage."""
    for sender in list(_WAKE):
        sender.stop()


def init_app(app) -> None:
    from idp import audit, get_config, get_db

    from . import notify
    from .transport import from_config

    config = get_config(app)
    db = get_db(app)
    transport = from_config(config)  # a malformed IDP_SMTP_URL stops the start, not the first mail
    sender = Sender(db, transport)
    app.extensions["mail"] = {"sender": sender, "transport": transport}
    audit.listen("mail.notify", notify.on_audit)
    log.info("mail delivery", extra={"to": transport.describe(), "sender_thread": config.mail_sender})

    if config.mail_sender:
        @app.before_request
        def _start_sender():
            sender.ensure_started()
