"""OpenID Connect Back-Channel Logout 1.0: logout tokens sent to clients' ``backchannel_logout_uri`` from a
durable queue in MongoDB (no Flask).

``rp_sessions``: ``{_id: "<client_id>|<sid or user>", client_id, user_id, sid, created, expires}`` — a client
that registered a back-channel logout URI got an authorization code in this IdP session (``sid``, also in
its ID tokens). ``logout_jobs``: ``{_id, client_id, sub, sid, state: "pending"|"failed", attempts, next_at,
lease_until, owner, last_error, created, expires}`` (no ``user_id`` field: account erasure does not drop
logouts still to be sent).

Enqueueing is a database write only: a request never waits on an RP. Each process runs one sender thread
(started when it first enqueues, or at start-up when jobs are pending). A sender claims a due job by a
compare-and-set on its ``lease_until`` (one ``update_one`` by ``_id``), so several instances never send the
same job at the same time; an unfinished lease (crashed sender) expires and the job is retried. A 200/204
answer deletes the job; anything else retries with exponential backoff until ``backchannel_max_attempts``,
then the job is marked failed and audited.

Every POST goes through ``idp.oauth.outbound.post_form``: the URI's host is resolved and checked before each
attempt and the connection goes to the checked address. A client not registered by an operator may only be
reached at public addresses (``clients.private_addresses_allowed``); a refused destination gets no request
and counts as a failed attempt (``last_error`` "address not allowed: ...").
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone

from joserfc import jwt

from idp import audit

from . import outbound

log = logging.getLogger("idp.oauth.backchannel")

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_LIFETIME_S = 120
LEASE_S = 60  # a claimed job is someone's for this long (longer than one HTTP attempt)
JOB_KEPT = timedelta(days=2)
MAX_BACKOFF_S = 3600
BATCH = 20
POLL_S = 2.0
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def remember(db, config, client_doc: dict, user_id: str, sid: str | None) -> None:
    """Record that ``client_doc`` got a code in session ``sid`` (only clients with a back-channel URI)."""
    if not client_doc.get("backchannel_logout_uri"):
        return
    now = _now()
    life = max(config.session_lifetime_s, config.refresh_token_lifetime_s)
    db.rp_sessions.update_one(
        {"_id": f"{client_doc['_id']}|{sid or user_id}"},
        {"$set": {"client_id": client_doc["_id"], "user_id": user_id, "sid": sid,
                  "expires": now + timedelta(seconds=life)}, "$setOnInsert": {"created": now}},
        upsert=True)


def _enqueue(db, rp_docs: list[dict]) -> int:
    now = _now()
    jobs, seen = [], set()
    for d in rp_docs:
        key = (d["client_id"], d.get("sid"), d["user_id"])
        if key in seen:
            continue
        seen.add(key)
        jobs.append({"_id": secrets.token_urlsafe(16), "client_id": d["client_id"], "sub": d["user_id"],
                     "sid": d.get("sid"), "state": "pending", "attempts": 0, "next_at": now,
                     "lease_until": EPOCH, "owner": None, "created": now, "expires": now + JOB_KEPT})
    if jobs:
        db.logout_jobs.insert_many(jobs)
        db.rp_sessions.delete_many({"_id": {"$in": [d["_id"] for d in rp_docs]}})
    return len(jobs)


def logout_session(db, sid: str | None) -> int:
    """Queue logout tokens for every client signed in through IdP session ``sid`` (a sign-out)."""
    if not sid:
        return 0
    return _enqueue(db, list(db.rp_sessions.find({"sid": sid})))


def logout_user(db, user_id: str) -> int:
    """Queue logout tokens for every client session of ``user_id`` (password change or reset, "sign out
    everywhere", account disabled)."""
    return _enqueue(db, list(db.rp_sessions.find({"user_id": user_id})))


def logout_token(config, keys, client_doc: dict, sub: str | None, sid: str | None) -> str:
    alg = client_doc.get("id_token_signed_response_alg") or "RS256"
    kid, key = keys.signing_key(alg)
    now = int(time.time())
    claims = {"iss": config.issuer, "aud": client_doc["_id"], "iat": now, "exp": now + LOGOUT_TOKEN_LIFETIME_S,
              "jti": secrets.token_urlsafe(16), "events": {EVENT: {}}}
    if sub:
        claims["sub"] = sub
    if sid:
        claims["sid"] = sid
    return jwt.encode({"alg": alg, "kid": kid, "typ": "logout+jwt"}, claims, key, algorithms=[alg])


class Sender:
    """Claims due jobs and POSTs their logout tokens (see the module docstring)."""

    def __init__(self, db, config, keys):
        self.db, self.config, self.keys = db, config, keys
        self.owner = secrets.token_hex(8)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    # --- one pass ---
    def claim(self, now: datetime | None = None) -> list[dict]:
        now = now or _now()
        claimed = []
        for doc in self.db.logout_jobs.find({"state": "pending", "next_at": {"$lte": now},
                                             "lease_until": {"$lte": now}}).limit(BATCH):
            res = self.db.logout_jobs.update_one(
                {"_id": doc["_id"], "state": "pending", "lease_until": doc["lease_until"]},
                {"$set": {"lease_until": now + timedelta(seconds=LEASE_S), "owner": self.owner}})
            if res.modified_count == 1:
                claimed.append(doc)
        return claimed

    def send(self, job: dict) -> bool:
        from .clients import get_client, private_addresses_allowed
        client = get_client(self.db, job["client_id"])
        uri = (client or {}).get("backchannel_logout_uri")
        if not client or not uri:
            self.db.logout_jobs.delete_one({"_id": job["_id"], "owner": self.owner})
            return False
        error = None
        try:
            token = logout_token(self.config, self.keys, client, job.get("sub"), job.get("sid"))
            status = outbound.post_form(
                uri, {"logout_token": token}, timeout=self.config.backchannel_timeout_s,
                allow_private=private_addresses_allowed(self.config, client.get("created_via")),
                headers={"Cache-Control": "no-cache"}, ca_certs=self.config.outbound_ca_bundle or None)
            if status in (200, 204):
                self.db.logout_jobs.delete_one({"_id": job["_id"], "owner": self.owner})
                log.info("back-channel logout delivered", extra={"client_id": job["client_id"]})
                return True
            error = f"HTTP {status}"
        except outbound.AddressNotAllowed as e:
            error = str(e)
            log.warning("back-channel logout destination refused", extra={"client_id": job["client_id"]})
        except outbound.OutboundError as e:
            error = str(e)
        attempts = job.get("attempts", 0) + 1
        if attempts >= self.config.backchannel_max_attempts:
            self.db.logout_jobs.update_one({"_id": job["_id"], "owner": self.owner}, {"$set": {
                "state": "failed", "attempts": attempts, "last_error": error, "lease_until": EPOCH}})
            audit.record(self.db, audit.BACKCHANNEL_LOGOUT_FAILED, client_id=job["client_id"],
                         user_id=job.get("sub"), decision="gave_up", details={"attempts": attempts, "error": error})
            log.warning("back-channel logout given up", extra={"client_id": job["client_id"]})
            return False
        delay = min(MAX_BACKOFF_S, self.config.backchannel_retry_base_s * 2 ** (attempts - 1))
        self.db.logout_jobs.update_one({"_id": job["_id"], "owner": self.owner}, {"$set": {
            "attempts": attempts, "last_error": error, "next_at": _now() + timedelta(seconds=delay),
            "lease_until": EPOCH}})
        log.info("back-channel logout failed, will retry", extra={"client_id": job["client_id"]})
        return False

    def run_once(self) -> int:
        return sum(1 for job in self.claim() if self.send(job))

    # --- the thread ---
    def wake(self) -> None:
        self.ensure_started()
        self._wake.set()

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopped = False
                self._thread = threading.Thread(target=self._loop, name="backchannel-logout", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _loop(self) -> None:
        """Pass after pass until stopped. A database outage is one warning line per pass with the error's type (an
        operations event, as on the request path: no traceback, never the driver's message); the jobs wait in
        the queue and go out once it is back."""
        from pymongo.errors import InvalidOperation

        from idp.store import UNAVAILABLE
        while not self._stopped:
            try:
                self.run_once()
            except InvalidOperation:  # the database client was closed: this app is gone
                return
            except UNAVAILABLE as e:
                log.warning("back-channel logout sender: database unavailable, will retry: %s", type(e).__name__)
            except Exception:
                log.exception("back-channel logout sender pass failed")
            self._wake.wait(POLL_S)
            self._wake.clear()
