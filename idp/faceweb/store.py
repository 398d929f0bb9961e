"""Face-page data in MongoDB, without Flask.

``face_status``  one document per user: ``{_id: user_id, consent: {at, notice_version, ip}, failures,
                 last_failure_at, locked_at, recovery_failures, recovery_last_failure_at,
                 judging_until/judging_by, recovery_judging_until/recovery_judging_by,
                 enroll_cooloff: {via, at}, cooloff_until, reset: {at, by}, reenroll_required: {reason, at}}``
                 (judging_*: a check in progress, see :func:`reserve_judging`; the last four: see
                 "recovery, reset and cooling-off" below)
``capture_sessions``  one per webcam capture (see :class:`Captures`)
``recovery_codes``  ``{_id, user_id, code_hash, created_at, used_at}`` (HMAC-SHA256 of the code)

Templates themselves live in ``face_templates`` (idp.face.repository, encrypted).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pymongo import ReturnDocument, WriteConcern
from pymongo.errors import DuplicateKeyError

# Version of the biometric notice shown on the enrollment page; bump it when the text changes
# materially so that stored consents say which text the user agreed to.
NOTICE_VERSION = "2025-06-01"
RECOVERY_CODE_COUNT = 10
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
MAX_FRAMES_PER_CAPTURE = 60  # frames of any quality accepted by one capture session
JUDGING_S = 30  # a reservation of a user's face (or recovery-code) check expires after this (crashed worker)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _durable(db, name):
    return db.get_collection(name, write_concern=WriteConcern(w=1, j=True))


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


# --- consent ---------------------------------------------------------------------------------

def get_status(db, user_id: str) -> dict:
    return db.face_status.find_one({"_id": user_id}) or {"_id": user_id}


def record_consent(db, user_id: str, *, ip: str | None = None, notice_version: str = NOTICE_VERSION) -> dict:
    consent = {"at": utcnow(), "notice_version": notice_version, "ip": ip}
    _durable(db, "face_status").update_one({"_id": user_id}, {"$set": {"consent": consent}}, upsert=True)
    return consent


def has_consent(db, user_id: str) -> bool:
    doc = db.face_status.find_one({"_id": user_id}, {"consent": 1})
    return bool(doc and doc.get("consent") and doc["consent"].get("notice_version") == NOTICE_VERSION)


# --- failures, delay, lock -----------------------------------------------------------------------

@dataclass
class Limits:
    free_failures: int = 5
    lock_after: int = 10
    base_delay_s: int = 30
    max_delay_s: int = 3600

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(free_failures=config.face_free_failures, lock_after=config.face_lock_after,
                   base_delay_s=config.face_base_delay_s, max_delay_s=max(config.login_max_delay_s,
                                                                          config.face_base_delay_s))

    def delay_after(self, failures: int) -> int:
        """Seconds to wait after ``failures`` consecutive failures (0 while they are free)."""
        if failures < self.free_failures:
            return 0
        return int(min(self.max_delay_s, self.base_delay_s * (2 ** (failures - self.free_failures))))


@dataclass
class LockState:
    failures: int
    locked: bool
    wait_s: int  # seconds before the next attempt is allowed (0 = now)


def lock_state(db, user_id: str, limits: Limits, *, prefix: str = "") -> LockState:
    doc = db.face_status.find_one({"_id": user_id}) or {}
    failures = int(doc.get(prefix + "failures") or 0)
    locked = bool(doc.get("locked_at")) if not prefix else False
    wait = 0
    last = _aware(doc.get(prefix + "last_failure_at"))
    delay = limits.delay_after(failures)
    if delay and last is not None:
        wait = max(0, int((last + timedelta(seconds=delay) - utcnow()).total_seconds() + 0.999))
    return LockState(failures=failures, locked=locked, wait_s=wait)


def register_failure(db, user_id: str, limits: Limits, *, prefix: str = "") -> LockState:
    """Count one more consecutive failure; returns the new state (``locked`` true once it locks now)."""
    doc = _durable(db, "face_status").find_one_and_update(
        {"_id": user_id}, {"$inc": {prefix + "failures": 1}, "$set": {prefix + "last_failure_at": utcnow()}},
        upsert=True, return_document=ReturnDocument.AFTER)
    failures = int(doc.get(prefix + "failures") or 0)
    if not prefix and failures >= limits.lock_after and not doc.get("locked_at"):
        _durable(db, "face_status").update_one({"_id": user_id, "locked_at": None},
                                               {"$set": {"locked_at": utcnow()}})
    return lock_state(db, user_id, limits, prefix=prefix)


def reset_failures(db, user_id: str, *, unlock: bool = False, prefix: str = "") -> None:
    update = {"$set": {prefix + "failures": 0}, "$unset": {prefix + "last_failure_at": ""}}
    if unlock:
        update["$unset"]["locked_at"] = ""
    _durable(db, "face_status").update_one({"_id": user_id}, update)


def reserve_judging(db, user_id: str, *, prefix: str = "", seconds: int = JUDGING_S) -> str | None:
    """Reserve the user's face check (``prefix`` "recovery_": recovery-code check) for one request, so
    that parallel requests cannot each pass the lock/delay check before any failure is counted.
    Returns a token for :func:`release_judging`, or None while another check holds the reservation."""
    field, owner = prefix + "judging_until", prefix + "judging_by"
    now = utcnow()
    token = secrets.token_urlsafe(12)
    coll = _durable(db, "face_status")
    for _ in range(2):
        done = coll.update_one({"_id": user_id, "$or": [{field: {"$exists": False}}, {field: None},
                                                        {field: {"$lt": now}}]},
                               {"$set": {field: now + timedelta(seconds=seconds), owner: token}})
        if done.modified_count:
            return token
        if coll.find_one({"_id": user_id}, {"_id": 1}) is not None:
            return None  # the document exists and another check holds it
        try:  # no face_status document yet: create it reserved
            coll.insert_one({"_id": user_id, field: now + timedelta(seconds=seconds), owner: token})
            return token
        except DuplicateKeyError:  # created meanwhile (by another check, or consent): look again
            continue
    return None


def release_judging(db, user_id: str, token: str, *, prefix: str = "") -> None:
    """End a reservation of :func:`reserve_judging` (only this one: it may have expired and been taken)."""
    _durable(db, "face_status").update_one({"_id": user_id, prefix + "judging_by": token},
                                           {"$unset": {prefix + "judging_until": "", prefix + "judging_by": ""}})


# --- recovery, reset and cooling-off -----------------------------------------------------------------
#
# A template enrolled after a recovery code, an administrator's reset, or a deletion from a sign-in that
# did not pass the face, proves nothing about who enrolled it: it gives no amr "face" until
# ``cooloff_until`` (config ``face_recovery_cooloff_s``). ``enroll_cooloff`` marks that the next
# enrollment starts such a period; ``reset`` is an administrator's grant to enroll after the password
# alone; ``reenroll_required`` (``idp faces mark-reenroll``) makes the stored template unusable.

VIA_RECOVERY, VIA_ADMIN_RESET, VIA_DELETED = "recovery", "admin_reset", "deleted"


def mark_enroll_cooloff(db, user_id: str, via: str) -> None:
    """The next enrollment of ``user_id`` starts a cooling-off period (kept until it happens)."""
    _durable(db, "face_status").update_one({"_id": user_id}, {"$set": {"enroll_cooloff": {"via": via, "at": utcnow()}}},
                                           upsert=True)


def cooloff_until(db, user_id: str) -> datetime | None:
    """When the user's template may give amr "face" again, while that is in the future; else None."""
    doc = db.face_status.find_one({"_id": user_id}, {"cooloff_until": 1}) or {}
    until = _aware(doc.get("cooloff_until"))
    return until if until is not None and until > utcnow() else None


def enrollment_cooloff_via(db, user_id: str) -> str | None:
    """Why the next enrollment starts a cooling-off period (recovery, admin_reset, deleted), or None."""
    doc = db.face_status.find_one({"_id": user_id}, {"enroll_cooloff": 1, "reset": 1}) or {}
    if doc.get("enroll_cooloff"):
        return doc["enroll_cooloff"].get("via") or VIA_RECOVERY
    return VIA_ADMIN_RESET if doc.get("reset") else None


def after_enrollment(db, user_id: str, cooloff_s: int, via: str | None) -> datetime | None:
    """A new template was stored: clear the reset grant and re-enrollment marks; with ``via`` start the
    cooling-off period (never shortening one that runs). Returns its end, or None (no period)."""
    update: dict = {"$unset": {"enroll_cooloff": "", "reset": "", "reenroll_required": ""}}
    until = None
    if via is not None and cooloff_s > 0:
        until = utcnow() + timedelta(seconds=int(cooloff_s))
        running = cooloff_until(db, user_id)
        until = max(until, running) if running else until
        update["$set"] = {"cooloff_until": until}
    _durable(db, "face_status").update_one({"_id": user_id}, update, upsert=True)
    return until


def grant_reset(db, user_id: str, admin_id: str | None) -> None:
    """An administrator's reset: the lock and failures lifted, and one enrollment allowed after the
    password alone (the template it creates starts a cooling-off period)."""
    _durable(db, "face_status").update_one(
        {"_id": user_id}, {"$set": {"failures": 0, "reset": {"at": utcnow(), "by": admin_id}},
                           "$unset": {"locked_at": "", "last_failure_at": ""}}, upsert=True)


def reset_granted(db, user_id: str) -> bool:
    return bool((db.face_status.find_one({"_id": user_id}, {"reset": 1}) or {}).get("reset"))


def mark_reenroll(db, user_id: str, reason: str, **details) -> None:
    """The stored template may not be used any more (e.g. a model change); recovery or reset re-enrolls."""
    _durable(db, "face_status").update_one(
        {"_id": user_id}, {"$set": {"reenroll_required": {"reason": reason, "at": utcnow(), **details}}}, upsert=True)


def reenroll_required(db, user_id: str) -> dict | None:
    return (db.face_status.find_one({"_id": user_id}, {"reenroll_required": 1}) or {}).get("reenroll_required")


# --- recovery codes -------------------------------------------------------------------------------

def normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _code_hash(key: str, user_id: str, code: str) -> str:
    mac = hmac.new(hashlib.sha256(b"deepauth-recovery-code:" + key.encode()).digest(),
                   f"{user_id}:{normalise_code(code)}".encode(), hashlib.sha256)
    return mac.hexdigest()


def issue_recovery_codes(db, user_id: str, key: str, count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Replace the user's recovery codes with ``count`` new single-use ones; returns them (shown once)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        codes.append(raw[:5] + "-" + raw[5:])
    coll = _durable(db, "recovery_codes")
    coll.delete_many({"user_id": user_id})
    now = utcnow()
    coll.insert_many([{"_id": secrets.token_urlsafe(12), "user_id": user_id, "code_hash": _code_hash(key, user_id, c),
                       "created_at": now, "used_at": None} for c in codes])
    return codes


def use_recovery_code(db, user_id: str, key: str, code: str) -> bool:
    """Consume one unused code of ``user_id``; True when it was valid."""
    if not normalise_code(code):
        return False
    doc = _durable(db, "recovery_codes").find_one_and_update(
        {"user_id": user_id, "code_hash": _code_hash(key, user_id, code), "used_at": None},
        {"$set": {"used_at": utcnow()}})
    return doc is not None


def remaining_recovery_codes(db, user_id: str) -> int:
    return db.recovery_codes.count_documents({"user_id": user_id, "used_at": None})


# --- deletion -------------------------------------------------------------------------------------

def delete_face_data(db, user_id: str, *, face_proven: bool = True) -> dict:
    """Delete everything biometric about the user: template, capture sessions, recovery codes, consent
    and counters. Returns how many documents went from each collection.

    What guards the next enrollment survives, without any biometric data: a running cooling-off period
    and a pending one; and when the deletion was asked by a sign-in that did not pass the face
    (``face_proven`` false: a recovery code), the next enrollment starts a cooling-off period, so that
    deleting cannot turn a recovery into a "first" enrollment."""
    from idp.face.repository import delete_template
    status = db.face_status.find_one({"_id": user_id}, {"cooloff_until": 1, "enroll_cooloff": 1}) or {}
    out = {"template": int(delete_template(db, user_id))}
    out["captures"] = _durable(db, "capture_sessions").delete_many({"user_id": user_id}).deleted_count
    out["recovery_codes"] = _durable(db, "recovery_codes").delete_many({"user_id": user_id}).deleted_count
    out["status"] = _durable(db, "face_status").delete_one({"_id": user_id}).deleted_count
    keep = {}
    if status.get("cooloff_until") and _aware(status["cooloff_until"]) > utcnow():
        keep["cooloff_until"] = status["cooloff_until"]
    if status.get("enroll_cooloff"):
        keep["enroll_cooloff"] = status["enroll_cooloff"]
    elif not face_proven:
        keep["enroll_cooloff"] = {"via": VIA_DELETED, "at": utcnow()}
    if keep:
        _durable(db, "face_status").insert_one({"_id": user_id, **keep})
    return out


# --- capture sessions -----------------------------------------------------------------------------

class CaptureError(Exception):
    """A capture request that cannot be served. ``redirect``: the endpoint the page should go to;
    ``extra``: more fields of the JSON answer."""

    def __init__(self, status: int, code: str, message: str, *, redirect: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.redirect, self.extra = redirect, extra


class Captures:
    """Server-issued capture sessions (``capture_sessions``).

    ``{_id, nonce, user_id, purpose: enroll|verify, created, expires (TTL), needed, good, count,
       frames: [{at, client_ts, ok, reasons, quality, confidence, box, landmarks, emb?, t_ms?, w?, h?, dup?}],
       status: open|finishing|finished, challenge, lv_* (liveness, see idp.faceweb.liveness), result}``

    Images are never stored (while liveness is on, the first frame's 32x32 grey thumbnail is kept
    until the session finishes, see idp.faceweb.liveness). Each good frame's embedding is kept encrypted (AES-GCM via the
    TemplateCipher, bound to the user *and* the capture id) and removed when the session finishes.
    """

    def __init__(self, db, cipher, ttl_s: int):
        self.db = db
        self.coll = db.capture_sessions
        self.cipher = cipher
        self.ttl_s = ttl_s

    def create(self, user_id: str, purpose: str, needed: int, *, challenge=None, client_id=None,
               binding: str | None = None, cue_ms: int | None = None) -> dict:
        """``binding``: a value derived from the browser session and its sign-in; frames and the finish
        must present the same one (see ``open_for``)."""
        now = utcnow()
        doc = {"_id": secrets.token_urlsafe(18), "nonce": secrets.token_urlsafe(24), "user_id": user_id,
               "binding": binding,
               "purpose": purpose, "created": now, "expires": now + timedelta(seconds=self.ttl_s),
               "needed": int(needed), "good": 0, "count": 0, "frames": [], "status": "open",
               "challenge": challenge, "cue_ms": cue_ms, "client_id": client_id}
        self.coll.insert_one(doc)
        return doc

    def _aad(self, doc) -> str:
        return f"capture:{doc['_id']}:{doc['user_id']}"

    def open_for(self, capture_id: str, user_id: str | None, purpose: str | None, nonce: str | None,
                 binding: str | None = None) -> dict:
        """The open capture session, checked against the caller (user, purpose, browser session and
        sign-in, nonce, lifetime, status); raises CaptureError otherwise."""
        doc = self.coll.find_one({"_id": str(capture_id or "")[:64]}) if capture_id else None
        if doc is None or not user_id or doc["user_id"] != user_id or (purpose and doc["purpose"] != purpose):
            raise CaptureError(403, "capture_not_found", "This capture does not belong to your sign-in. Start again.")
        if doc.get("binding") and not hmac.compare_digest(str(binding or "").encode(), doc["binding"].encode()):
            raise CaptureError(403, "capture_not_found", "This capture belongs to another sign-in. Start again.")
        # compared as bytes: a header may carry any character (str comparison refuses non-ASCII)
        if not nonce or not hmac.compare_digest(str(nonce).encode(), doc["nonce"].encode()):
            raise CaptureError(403, "bad_nonce", "This capture's nonce is missing or wrong. Start again.")
        if _aware(doc["expires"]) <= utcnow():
            raise CaptureError(410, "capture_expired", "This capture has expired. Start again.")
        if doc["status"] != "open":
            raise CaptureError(409, "capture_finished", "This capture is already finished. Start again.")
        return doc

    def add_frame(self, doc: dict, analysis, *, client_ts=None, extra: dict | None = None,
                  set_fields: dict | None = None, max_fields: dict | None = None, inc: dict | None = None,
                  with_frames: bool = False) -> dict:
        """Record one analysed frame (embedding encrypted, only for good frames); returns the updated doc
        (without its frames unless ``with_frames``). ``analysis`` None records a frame that was not
        analysed (an in-session duplicate). ``extra``: more fields of the frame record (liveness: t_ms,
        w, h, dup); ``set_fields`` / ``max_fields`` / ``inc``: more updates of the session document."""
        from idp.face.template import Template

        frame = {"at": utcnow(), "client_ts": client_ts}
        if analysis is not None:
            frame.update({
                "ok": bool(analysis.ok),
                "reasons": [str(r) for r in (analysis.reasons or [])],
                "quality": _plain(getattr(analysis, "quality", None) or {}),
                "confidence": _plain(getattr(analysis, "confidence", None)),
                "box": _plain(getattr(analysis, "box", None)),
                "landmarks": _plain(getattr(analysis, "landmarks", None)),
            })
            if analysis.ok and getattr(analysis, "embedding", None) is not None:
                frame["emb"] = self.cipher.encrypt(Template.from_embeddings([analysis.embedding]), self._aad(doc))
        else:
            frame.update({"ok": False, "reasons": []})
        frame.update(_plain(extra or {}))
        update = {"$push": {"frames": frame},
                  "$inc": {"count": 1, "good": 1 if "emb" in frame else 0, **(inc or {})}}
        if set_fields:
            update["$set"] = set_fields
        if max_fields:
            update["$max"] = max_fields
        updated = self.coll.find_one_and_update(
            {"_id": doc["_id"], "status": "open", "count": {"$lt": MAX_FRAMES_PER_CAPTURE}},
            update, return_document=ReturnDocument.AFTER,
            projection=None if with_frames else {"frames": 0})
        if updated is None:
            raise CaptureError(409, "too_many_frames", "Too many pictures for one capture. Start again.")
        return updated

    def set_once(self, doc: dict, field: str, value) -> dict:
        """Set ``field`` of an open session unless already set (first frame's time origin, reference
        thumbnail); returns the value now stored."""
        self.coll.update_one({"_id": doc["_id"], "status": "open", field: None}, {"$set": {field: value}})
        now = self.coll.find_one({"_id": doc["_id"]}, {field: 1}) or {}
        return now.get(field, value)

    def close(self, doc: dict, result: dict) -> bool:
        """Finish an open session at once (e.g. a replayed frame); False if it was not open any more."""
        closed = self.coll.update_one({"_id": doc["_id"], "status": "open"}, {"$set": {"status": "finishing"}})
        if not closed.modified_count:
            return False
        self.finish(self.coll.find_one({"_id": doc["_id"]}), result)
        return True

    def begin_finish(self, capture_id: str, user_id: str, purpose: str, nonce: str | None,
                     binding: str | None = None) -> dict:
        """Atomically move an open session to ``finishing`` (only one finish can win)."""
        doc = self.open_for(capture_id, user_id, purpose, nonce, binding)
        won = self.coll.find_one_and_update({"_id": doc["_id"], "status": "open"},
                                            {"$set": {"status": "finishing"}}, return_document=ReturnDocument.AFTER)
        if won is None:
            raise CaptureError(409, "capture_finished", "This capture is already finished. Start again.")
        return won

    def embeddings(self, doc: dict) -> list:
        """Decrypt the embeddings of the good frames, in order of arrival."""
        out = []
        for frame in doc.get("frames", []):
            if frame.get("emb"):
                out.append((frame, self.cipher.decrypt(frame["emb"], self._aad(doc)).embeddings[0]))
        return out

    def finish(self, doc: dict, result: dict) -> None:
        """Mark the session finished and drop every embedding from it."""
        frames = [{k: v for k, v in f.items() if k != "emb"} for f in doc.get("frames", [])]
        self.coll.update_one({"_id": doc["_id"]}, {"$set": {"status": "finished", "frames": frames,
                                                            "finished": utcnow(), "result": _plain(result)},
                                                   "$unset": {"lv_ref_thumb": ""}})


def _plain(value):
    """numpy scalars/arrays and tuples → plain JSON/BSON types."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return round(value, 5)
    if np is not None and isinstance(value, np.generic):
        return _plain(value.item())
    if np is not None and isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return _plain(vars(value))
    return str(value)
