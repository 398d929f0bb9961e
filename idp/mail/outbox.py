"""The mail outbox: messages queued in MongoDB (collection ``mail_outbox``), delivered later (no Flask here).

A request only inserts a document (``queue``); nothing talks to a mail server on the request path, so a slow
or failing server never delays a page. A sender (``send_pending``: the per-process thread of ``idp.mail`` or
``idp mail send-pending``) claims one message at a time with a single ``find_one_and_update`` that moves its
``next_attempt`` one lease ahead: a second sender, in this or another process or instance, does not see it
until the lease ends, so a message is not sent twice unless a sender dies between sending and recording.
A failed attempt is retried with exponential backoff (1 min, 2, 4, ... capped at 1 h) up to
``MAX_ATTEMPTS``; nothing is dropped silently: a message that exhausts them stays as ``status: "failed"``.

Document: ``{_id, to, subject, body, kind, user_id, status: pending|sent|failed, attempts, next_attempt,
created, sent_at, last_error, expires}``. The body can hold a secret link: it is removed once the message is
sent or has failed, and a TTL index on ``expires`` forgets delivered messages after a week.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta, timezone

from pymongo import ReturnDocument

from idp.store import durable

COLLECTION = "mail_outbox"
LEASE_S = 120  # a claimed message is invisible to other senders this long (a send takes far less)
MAX_ATTEMPTS = 12
BACKOFF_BASE_S = 60
BACKOFF_MAX_S = 3600
KEEP_SENT_S = 7 * 86400

log = logging.getLogger("idp.mail")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def queue(db, to: str, subject: str, body: str, *, kind: str, user_id: str | None = None) -> str:
    """Insert one message for delivery; returns its id. The only thing a request does for a mail."""
    doc = {"_id": secrets.token_hex(12), "to": to, "subject": subject, "body": body, "kind": kind,
           "user_id": user_id, "status": "pending", "attempts": 0, "next_attempt": _now(), "created": _now()}
    durable(db, COLLECTION).insert_one(doc)  # journaled: an acknowledged message survives a crash
    return doc["_id"]


def backoff_s(attempts: int) -> int:
    return int(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


def claim(db, lease_s: int = LEASE_S) -> dict | None:
    """Take the oldest due message for ``lease_s`` seconds (atomically: one sender per message)."""
    now = _now()
    return db[COLLECTION].find_one_and_update(
        {"status": "pending", "next_attempt": {"$lte": now}},
        {"$set": {"next_attempt": now + timedelta(seconds=lease_s), "claim": secrets.token_hex(8)},
         "$inc": {"attempts": 1}},
        sort=[("next_attempt", 1)], return_document=ReturnDocument.AFTER)


def mark_sent(db, doc: dict, where: str) -> None:
    now = _now()
    durable(db, COLLECTION).update_one(
        {"_id": doc["_id"], "claim": doc["claim"]},
        {"$set": {"status": "sent", "sent_at": now, "delivered_to": where[:200],
                  "expires": now + timedelta(seconds=KEEP_SENT_S)},
         "$unset": {"body": "", "claim": ""}})


def loggable_error(e: Exception) -> str:
    """What of a delivery error may go into the log: its type, and for a mail server's answer only its SMTP codes.
    A server's text often quotes the recipient ("550 5.1.1 <alice@example.org>: Recipient address rejected"), and
    the log is kept and shipped where the outbox is not; the outbox document keeps the whole answer."""
    import smtplib
    name = type(e).__name__
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _ in e.recipients.values()})
        return f"{name}: {' '.join(codes)}"
    if isinstance(e, smtplib.SMTPResponseException):
        return f"{name}: {e.smtp_code}"
    if isinstance(e, smtplib.SMTPException):
        return name
    return f"{name}: {e}"[:300]


def mark_failed(db, doc: dict, e: Exception) -> None:
    """Record a failed delivery of ``doc``: retried with backoff, or failed for good after ``MAX_ATTEMPTS``; the
    error is stored in full, logged as ``loggable_error``."""
    error = f"{type(e).__name__}: {e}"
    attempts = int(doc.get("attempts", 1))
    changes: dict = {"last_error": error[:300]}
    unset = {"claim": ""}
    if attempts >= MAX_ATTEMPTS:
        now = _now()
        changes.update(status="failed", expires=now + timedelta(seconds=KEEP_SENT_S))
        unset["body"] = ""
        log.error("mail undeliverable, giving up", extra={"mail_id": doc["_id"], "attempts": attempts,
                                                          "error": loggable_error(e)})
    else:
        changes["next_attempt"] = _now() + timedelta(seconds=backoff_s(attempts))
        log.warning("mail delivery failed, will retry", extra={"mail_id": doc["_id"], "attempts": attempts,
                                                                "error": loggable_error(e)})
    db[COLLECTION].update_one({"_id": doc["_id"], "claim": doc["claim"]}, {"$set": changes, "$unset": unset})


def send_pending(db, transport, *, limit: int = 100) -> tuple[int, int]:
    """Deliver due messages through ``transport`` (``.send(doc) -> where``); returns ``(sent, failed)``."""
    sent = failed = 0
    for _ in range(limit):
        doc = claim(db)
        if doc is None:
            break
        try:
            where = transport.send(doc)
        except Exception as e:  # any delivery problem: retry later, never lose the message
            mark_failed(db, doc, e)
            failed += 1
        else:
            mark_sent(db, doc, where)
            sent += 1
    return sent, failed


def pending_count(db) -> int:
    return db[COLLECTION].count_documents({"status": "pending"})
