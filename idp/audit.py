"""The audit log in MongoDB (collection ``audit_log``): the one writer and the one list of events.

One document per security-relevant event::

    {at, event, user_id, client_id, ip, user_agent, score, decision, reasons, details}

Never images, embeddings, passwords, codes, tokens or their hashes: only ids, outcomes and numbers
(``details`` keeps small scalar values only). Recording never breaks the action it records: a failed write
is logged (event, ids, error type; never the document's text) and ``record`` returns None. Callers serving a request pass ``**request_context()`` (client IP
and user agent); services and the command line do not know them.

Listeners (``listen``) are told of every recorded event, also one whose write failed (with the document
that would have been stored); ``idp.mail.notify`` uses this to mail the account owner about password, face
and recovery-code events, so no view sends such a notice itself and a failing audit log cannot swallow one.
Every recorded event also feeds the Prometheus counters (``idp.metrics``, ``idp_audit_events_total`` by event
and outcome); a stored one gives one INFO log line (event and ids only).

Events that a request can cause over and over at no cost (a refusal, a throttled attempt, a replayed code, a
code or consent from a signed-in session) pass ``repeat_key``: of the events with the same name and key, the
first ``repeats`` of each ``REPEAT_WINDOW_S`` window are stored (``REPEATS_STORED``; ``USE_REPEATS_STORED``
for a signed-in account's codes and consents and a client's tokens: ``ordinary_use``), then the first one over
them with ``details.cap_reached: true`` (and one WARNING log line), so the log itself says where this key's
record of the window stops and a loop cannot end the record silently; the rest are only counted (outcome
``capped``) and told to the listeners, so a loop cannot grow this log (it has no TTL) faster than that. The
count lives in the ``throttles`` collection (``idp.throttle.RateLimit``, purged by its TTL index; a
count whose key names the event's account is erased with the account, as its entries are; one that other
accounts' events share, a client's and network's, stays).
Events an account's security depends on (failed passwords, face decisions, recovery codes, notices) never pass
one.
No Flask import at module level.
"""
from __future__ import annotations

import logging
import math
import re
from datetime import datetime, timezone

from pymongo import DESCENDING

log = logging.getLogger("idp.audit")

COLLECTION = "audit_log"

# Event names: stable strings (the admin page filters on them, mail notices and metrics key on them).
# Accounts.
REGISTER = "account.register"
REGISTER_THROTTLED = "account.register_throttled"
LOGIN = "account.login"
LOGIN_FAILED = "account.login_failed"
LOGIN_THROTTLED = "account.login_throttled"
LOGIN_DROPPED = "account.login_dropped"  # after account.login: a change or reset landed meanwhile, no session kept
LOGIN_UNVERIFIED = "account.login_unverified"  # right password, email not verified (IDP_REQUIRE_VERIFIED_EMAIL)
# The password signed in from a browser not known for the account (idp.accounts.devices; the entry's user_agent
# names the browser). The owner is mailed (a few an hour at most: idp.mail.notify).
NEW_DEVICE = "account.new_device"
SIGN_OUT = "account.sign_out"
PASSWORD_CHANGED = "account.password_changed"
PASSWORD_CHANGE_FAILED = "account.password_change_failed"  # wrong current password (or throttled)
SIGNED_OUT_EVERYWHERE = "account.signed_out_everywhere"  # every session and app token of the account ended
PASSWORD_RESET = "account.password_reset"  # through an emailed link: every session and app token ended
PASSWORD_RESET_REQUESTED = "account.password_reset_requested"  # user_id None when no such account
# A change of a confirmed address asked for: details.new_email, pending until its link is used (the confirmed
# address is told). It takes effect as account.email_changed (details.previous_email, previous_verified,
# new_email), which an account without a confirmed address records at once; cancelled: details.reason
# ("owner": the form asked for the address the account has; "password_reset"; "address_taken").
EMAIL_CHANGE_REQUESTED = "account.email_change_requested"
EMAIL_CHANGE_CANCELLED = "account.email_change_cancelled"
EMAIL_CHANGED = "account.email_changed"
# The owner of the previous address used the link its notice of account.email_changed carried: that address is
# the account's again (details.restored_email; new_email: the address undone; dropped_pending), the password was
# set anew and every session and app token ended (sessions_ended, app_grants_ended).
EMAIL_CHANGE_UNDONE = "account.email_change_undone"
EMAIL_VERIFIED = "account.email_verified"
# OAuth / OpenID Connect.
CODE_ISSUED = "oauth.code_issued"
# An authorization request refused because it needs a sign-in step this server cannot perform (e.g. the
# face with IDP_FACE_ENABLED=false): error unmet_authentication_requirements; reasons = [step name].
AUTHENTICATION_UNMET = "oauth.authentication_unmet"
CODE_REUSE = "oauth.code_reuse"
# A rotated refresh token presented again: a replay (the family revoked; details.reason says why it was no retry)
# or a client's retry within tokens.REFRESH_RETRY_S (the same new pair served again, nothing revoked).
REFRESH_REUSE = "oauth.refresh_reuse"
REFRESH_RETRY = "oauth.refresh_retry"
CONSENT_GRANTED = "oauth.consent_granted"
CONSENT_DENIED = "oauth.consent_denied"
CONSENT_REVOKED = "oauth.consent_revoked"
CLIENT_CREATED = "oauth.client_created"
CLIENT_DELETED = "oauth.client_deleted"
CLIENT_SECRET_ROTATED = "oauth.client_secret_rotated"
# A client's settings changed (details.changed: the fields, each with its new value), or the client disabled or
# enabled; user_id is the administrator (None from the command line).
CLIENT_UPDATED = "oauth.client_updated"
CLIENT_DISABLED = "oauth.client_disabled"
CLIENT_ENABLED = "oauth.client_enabled"
CLIENT_TOKEN_ISSUED = "oauth.client_credentials_token"
BACKCHANNEL_LOGOUT_FAILED = "oauth.backchannel_logout_failed"
SIGNING_KEYS_REKEYED = "oauth.signing_keys_rekeyed"  # `idp keys rekey`: re-sealed under IDP_KEY_ENCRYPTION_KEY
# Face sign-in.
FACE_CONSENT = "face.consent"
FACE_ENROLL = "face.enroll"
FACE_VERIFY = "face.verify"
FACE_LOCKOUT = "face.lockout"
FACE_DELETE = "face.delete"
FACE_RECOVERY = "face.recovery"
FACE_RESET = "face.reset"
# A template enrolled through a recovery code or an admin reset: no amr "face" until details.until
# (the account owner's notice that their face data was replaced).
FACE_COOLOFF = "face.cooloff"
# A stored template failed authentication or is from another model: the face step fails closed.
FACE_TEMPLATE_UNUSABLE = "face.template_unusable"
FACE_REENROLL_MARKED = "face.reenroll_marked"  # `idp faces mark-reenroll`
FACE_TEMPLATES_REKEYED = "face.templates_rekeyed"  # `idp faces rekey`: re-sealed under IDP_TEMPLATE_KEY (counts)
# Administrators' actions on accounts (details.admin = the acting administrator's id).
USER_DISABLED = "admin.user_disabled"
USER_ENABLED = "admin.user_enabled"
USER_DELETED = "admin.user_deleted"  # user_id is None (the user's entries are erased); details.deleted_user
FACE_UNLOCKED = "admin.face_unlocked"
RECOVERY_CODES_VOIDED = "admin.recovery_codes_voided"  # details.voided = how many unused codes

EVENTS = (
    REGISTER, REGISTER_THROTTLED, LOGIN, LOGIN_FAILED, LOGIN_THROTTLED, LOGIN_UNVERIFIED, NEW_DEVICE, SIGN_OUT,
    PASSWORD_CHANGED, PASSWORD_CHANGE_FAILED, SIGNED_OUT_EVERYWHERE, PASSWORD_RESET, PASSWORD_RESET_REQUESTED, EMAIL_CHANGE_REQUESTED,
    EMAIL_CHANGE_CANCELLED, EMAIL_CHANGED, EMAIL_CHANGE_UNDONE, EMAIL_VERIFIED,
    CODE_ISSUED, AUTHENTICATION_UNMET, CODE_REUSE, REFRESH_REUSE, REFRESH_RETRY, CONSENT_GRANTED, CONSENT_DENIED,
    CONSENT_REVOKED,
    CLIENT_CREATED, CLIENT_DELETED, CLIENT_SECRET_ROTATED, CLIENT_UPDATED, CLIENT_DISABLED, CLIENT_ENABLED,
    CLIENT_TOKEN_ISSUED, BACKCHANNEL_LOGOUT_FAILED,
    SIGNING_KEYS_REKEYED,
    FACE_CONSENT, FACE_ENROLL, FACE_VERIFY, FACE_LOCKOUT, FACE_DELETE, FACE_RECOVERY, FACE_RESET, FACE_COOLOFF,
    FACE_TEMPLATE_UNUSABLE, FACE_REENROLL_MARKED, FACE_TEMPLATES_REKEYED,
    USER_DISABLED, USER_ENABLED, USER_DELETED, FACE_UNLOCKED, RECOVERY_CODES_VOIDED,
)

# Of the events with one name and ``repeat_key``, the first REPEATS_STORED per REPEAT_WINDOW_S are stored:
# refusals, throttled attempts and replays (one is evidence; fifty add nothing). A signed-in account's
# ordinary use (codes issued, consents) and a client's tokens pass USE_REPEATS_STORED: one a minute for the
# hour, so an app that renews its session silently every minute keeps its whole record, and a loop is still
# bounded.
REPEATS_STORED = 5
USE_REPEATS_STORED = 60
REPEAT_WINDOW_S = 3600

_USER_AGENT_MAX = 300
_SAFE_DETAIL_TYPES = (str, int, float, bool, type(None))


def _clean_details(details: dict | None) -> dict:
    """Keep only small scalar values (no blobs can slip into the log by accident)."""
    out = {}
    for key, value in (details or {}).items():
        if isinstance(value, _SAFE_DETAIL_TYPES):
            out[str(key)[:40]] = value[:200] if isinstance(value, str) else value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            out[str(key)[:40]] = list(value)[:20]
    return out


def request_context() -> dict:
    """``ip`` and ``user_agent`` of the current Flask request, to pass to ``record`` (empty outside one)."""
    from flask import has_request_context, request
    if not has_request_context():
        return {}
    return {"ip": request.remote_addr, "user_agent": request.user_agent.string}


def network_key(*parts: str) -> str:
    """A ``repeat_key`` of ``parts`` (an account, a client) and the current Flask request's client as every
    per-IP limit counts it (an IPv6 address as its /64: ``idp.web.proxy.limit_address``; "" outside a
    request), so that one network's loop cannot fill another network's window."""
    from flask import has_request_context, request
    network = ""
    if has_request_context():
        from idp.web.proxy import limit_address
        network = limit_address(request.remote_addr)
    return "|".join([*map(str, parts), network])


def ordinary_use(*parts: str) -> dict:
    """``record``'s repeat arguments for an event of ordinary use that its sender may still loop (a signed-in
    account's code or consent, a client's token): keyed on ``parts`` (the account, the client) and the
    request's network (``network_key``), ``USE_REPEATS_STORED`` stored per window."""
    return {"repeat_key": network_key(*parts), "repeats": USE_REPEATS_STORED}


def record(db, event: str, *, user_id: str | None = None, client_id: str | None = None, ip: str | None = None,
           user_agent: str | None = None, score: float | None = None, decision: str | None = None,
           reasons=None, details: dict | None = None, repeat_key: str | None = None,
           repeats: int = REPEATS_STORED) -> dict | None:
    """Append one event to the audit log and return the stored document; None when the write failed
    (logged: auditing never breaks a sign-in, a token request or an administrator's action) or when
    ``repeat_key`` capped it (the first ``repeats`` per key and window are stored, and the next one marked
    ``cap_reached``; see the module docstring).

    The listeners and the metrics are told of the event whether or not it was stored (with the document
    that would have been stored): the owner's security notice must not be lost because the audit log
    could not be written."""
    try:
        doc = _document(event, user_id=user_id, client_id=client_id, ip=ip, user_agent=user_agent, score=score,
                        decision=decision, reasons=reasons, details=details)
    except Exception:
        log.exception("audit event could not be built", extra={"event": event})
        return None
    capped = _repeated(db, doc["event"], repeat_key, repeats, user_id) if repeat_key is not None else None
    if capped == "later":
        stored, outcome = False, "capped"
    else:
        if capped == "first":
            doc.setdefault("details", {})["cap_reached"] = True
        stored = _insert(db, doc)
        outcome = "stored" if stored else "failed"
    _count(doc, outcome)
    _tell_listeners(db, doc)
    return doc if stored else None


def _repeated(db, event: str, repeat_key: str, repeats: int, user_id: str | None) -> str | None:
    """Count this event on ``repeat_key``: None within the first ``repeats`` of its window, "first" for the
    first one over them (stored, marked), "later" after it (not stored). When the count cannot be kept, None:
    the event is stored. The count is the account ``user_id``'s (erased with it, as its entries are) only when
    ``repeat_key`` names it (one of its ``|``-separated parts: ``ordinary_use(uid, ...)``, the id itself): a key
    that other accounts' events share (``network_key(client_id)``) counts no account's events alone, and
    deleting one account must not reset it."""
    from idp.throttle import RateLimit
    try:
        limit = RateLimit(db, repeats, REPEAT_WINDOW_S)
        owner = user_id if user_id and user_id in repeat_key.split("|") else None
        wait, first = limit.hit_telling_first_refusal(f"audit:{event}:{repeat_key}", owner=owner)
    except Exception as e:
        log.error("audit repeat count failed", extra={"event": event, "error": type(e).__name__})
        return None
    if not wait:
        return None
    if first:
        log.warning("audit repeats capped", extra={"event": event, "stored": repeats + 1,
                                                   "window_s": REPEAT_WINDOW_S})
        return "first"
    return "later"


def _document(event, *, user_id, client_id, ip, user_agent, score, decision, reasons, details) -> dict:
    if score is not None:
        score = float(score)
        score = None if math.isnan(score) else round(score, 4)
    doc = {
        "at": datetime.now(timezone.utc),
        "event": str(event),
        "user_id": user_id,
        "client_id": client_id,
        "ip": ip,
        "user_agent": (user_agent or "")[:_USER_AGENT_MAX] or None,
        "score": score,
        "decision": decision,
        "reasons": [str(r) for r in (reasons or [])],
    }
    extra = _clean_details(details)
    if extra:
        doc["details"] = extra
    return doc


def _insert(db, doc: dict) -> bool:
    """Store ``doc``; False when the database refused or could not be reached. The failure is logged with
    the event, the ids and the error's type and code only (the server's message may quote the document)."""
    try:
        db[COLLECTION].insert_one(doc)
    except Exception as e:
        log.error("audit write failed", extra={"event": doc["event"], "user_id": doc["user_id"],
                                               "client_id": doc["client_id"], "error": type(e).__name__,
                                               "error_code": getattr(e, "code", None)})
        return False
    log.info(doc["event"], extra={"user_id": doc["user_id"], "client_id": doc["client_id"],
                                  "decision": doc["decision"]})
    return True


# Listeners told of every recorded event, stored or not (e.g. idp.mail.notify, the owner's notices):
# name -> callable(db, doc).
# Keyed by name so registering again (one app per test) replaces rather than duplicates.
_LISTENERS: dict = {}


def listen(name: str, callback) -> None:
    """Call ``callback(db, doc)`` after every event is recorded, also when storing it failed (exceptions
    are logged, never raised)."""
    _LISTENERS[name] = callback


def _tell_listeners(db, doc: dict) -> None:
    for name, callback in list(_LISTENERS.items()):
        try:
            callback(db, doc)
        except Exception:
            log.exception("audit listener failed", extra={"listener": name, "event": doc.get("event")})


def _count(doc: dict, outcome: str) -> None:
    """Feed the Prometheus counters (``idp.metrics``) from the recorded event (``outcome``: stored, capped or
    failed); never fails the caller."""
    try:
        from idp import metrics
        metrics.observe_audit(doc, outcome)
    except Exception:  # metrics must never break the event being audited
        log.exception("metrics update failed", extra={"event": doc.get("event")})


def query(db, *, user_id: str | None = None, event: str | None = None, page: int = 1, per_page: int = 50):
    """One page of entries, newest first, and the total count: ``(entries, total)``."""
    flt: dict = {}
    if user_id:
        flt["user_id"] = user_id
    if event:
        # exact event or a prefix family ("face" matches "face.verify", ...)
        flt["event"] = {"$regex": "^" + re.escape(event) + r"(\.|$)"}
    page = max(1, int(page))
    per_page = max(1, min(int(per_page), 200))
    total = db[COLLECTION].count_documents(flt)
    cursor = db[COLLECTION].find(flt).sort("at", DESCENDING).skip((page - 1) * per_page).limit(per_page)
    return list(cursor), total
