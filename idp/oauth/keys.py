"""ID-token signing keys: stored in MongoDB (``signing_keys``), private parts encrypted at rest.

Document: ``{_id: kid, alg: "RS256"|"ES256", public_jwk: {...}, private_enc: {v, kek_id, nonce, ct}, active: bool,
created_at, activate_at, rotated_at, retire_after}``. The private JWK (JSON) is sealed with AES-256-GCM
under a key derived (HKDF-SHA256) from ``config.key_encryption_key``, the kid as associated data;
``kek_id`` (a truncated hash of that derived key, not secret) names the key that sealed it. The keys of
``IDP_KEY_ENCRYPTION_KEYS_RETIRED`` only unseal; ``rekey`` re-seals under the current one.

Pre-publication: ``rotate`` adds a *next* key whose ``activate_at`` lies ``prepublish_s`` in the future
(the JWKS HTTP cache lifetime + this process cache's TTL + a margin), so it is in every JWKS an RP can hold
before it signs anything. Which key signs is decided from the documents and the clock alone — per
algorithm, the key with the latest ``activate_at`` that is due — so every instance switches at the same
instant without in-process state. The keys it replaces (``active: False``, "superseded") stay published
until ``retire_after = activate_at of the new key + id_token_lifetime + cache TTL``: every ID token they
signed has expired by then. Documents from before pre-publication have no ``activate_at`` (their
``created_at`` stands in).
No Flask here: ``KeyStore`` is the in-process cache the web app uses (re-read every ``ttl`` seconds so a
rotation made by another instance or the CLI propagates).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, KeySet, RSAKey, import_key
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

log = logging.getLogger("idp.oauth.keys")

ALGORITHMS = ("RS256", "ES256")
DEFAULT_ALG = "RS256"


class SealedKeyError(RuntimeError):
    """A stored private key that none of the configured key-encryption keys opens (one-line message)."""


def _derive(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"deepauth signing keys",
                info=b"aes-256-gcm v1").derive(secret.encode())


def kek_id(kek: bytes) -> str:
    """The non-secret id of a (derived) key-encryption key: a truncated hash, stored with what it sealed."""
    return hashlib.sha256(b"deepauth-key-encryption-key:" + kek).hexdigest()[:16]


def _keks(config) -> list[tuple[str, bytes]]:
    """``(id, key)`` of the current key-encryption key, then of each retired one (read-only)."""
    if not config.key_encryption_key:
        raise RuntimeError("key_encryption_key is not set (call Config.ensure_secrets())")
    out: list[tuple[str, bytes]] = []
    for secret in [config.key_encryption_key, *config.retired_keys("key_encryption_key")]:
        kek = _derive(secret)
        if all(kek_id(kek) != known for known, _ in out):
            out.append((kek_id(kek), kek))
    return out


def current_kek_id(config) -> str:
    """The id of ``IDP_KEY_ENCRYPTION_KEY`` (what ``seal`` records)."""
    return _keks(config)[0][0]


def seal(config, kid: str, private_jwk: dict) -> dict:
    """Seal under the current key-encryption key, naming it by ``kek_id`` (never a retired one)."""
    current_id, kek = _keks(config)[0]
    nonce = os.urandom(12)
    ct = AESGCM(kek).encrypt(nonce, json.dumps(private_jwk).encode(), kid.encode())
    return {"v": 1, "kek_id": current_id, "nonce": nonce, "ct": ct}


def _open(config, kid: str, sealed: dict) -> tuple[str, dict]:
    """``(id of the key that opened it, private JWK)``. A document naming its key is opened with that key
    alone; one from before key ids is tried with the current key, then each retired one (AES-GCM
    authenticates, so only the right key opens it)."""
    keks = _keks(config)
    named = sealed.get("kek_id")
    if named is not None:
        keks = [(i, k) for i, k in keks if i == named]
        if not keks:
            raise SealedKeyError(f"signing key {kid} was sealed with key-encryption key id {str(named)[:32]}, "
                                 "which is neither IDP_KEY_ENCRYPTION_KEY nor in IDP_KEY_ENCRYPTION_KEYS_RETIRED")
    for ident, kek in keks:
        try:
            data = AESGCM(kek).decrypt(bytes(sealed["nonce"]), bytes(sealed["ct"]), kid.encode())
        except InvalidTag:
            continue
        return ident, json.loads(data)
    raise SealedKeyError(f"signing key {kid} cannot be unsealed with IDP_KEY_ENCRYPTION_KEY or "
                         "IDP_KEY_ENCRYPTION_KEYS_RETIRED (altered, or sealed with another key)")


def unseal(config, kid: str, sealed: dict) -> dict:
    return _open(config, kid, sealed)[1]


def check_signing_keys(db, config) -> None:
    """At start-up: raise SealedKeyError (one line, no key material) when a key that signs now or will
    cannot be unsealed with the configured key-encryption keys, so a changed or damaged
    ``IDP_KEY_ENCRYPTION_KEY`` (or ``secrets/key_encryption_key``) stops the server instead of failing
    every ID token. That is every ``active`` key and, per algorithm, the one that signs now (:func:`signer`):
    after a rotation the superseded key is no longer ``active`` but signs until its successor's
    ``activate_at``. Nothing is written: such a key is never replaced (the tokens it signed must verify)."""
    docs = published(db)
    kids = {d["_id"] for d in docs if d.get("active")}
    kids.update(d["_id"] for d in (signer(docs, alg) for alg in ALGORITHMS) if d is not None)
    for doc in db.signing_keys.find({"_id": {"$in": sorted(kids)}}, {"private_enc": 1}):
        try:
            _open(config, doc["_id"], doc["private_enc"])
        except SealedKeyError as e:
            raise SealedKeyError(f"{e}; configure the key-encryption key they were sealed with (or restore "
                                 "secrets/key_encryption_key from a backup)") from None


def rekey_key(db, config, doc: dict, *, dry_run: bool = False) -> tuple[str, str]:
    """Re-seal one key document ``doc`` (as read earlier) under the current key-encryption key.

    Returns ``(id of the key that opened it, outcome)``: ``current`` (already sealed under the current key,
    with its id recorded), ``rekeyed`` (or would be, ``dry_run``), ``changed`` (the stored sealed value is
    no longer the one read: nothing written) or ``unreadable`` (no configured key opens it: left as it is).
    The update is conditional on the nonce and ciphertext read."""
    sealed = doc["private_enc"]
    current_id = current_kek_id(config)
    if sealed.get("kek_id") == current_id:
        return current_id, "current"
    try:
        opened_by, private_jwk = _open(config, doc["_id"], sealed)
    except SealedKeyError:
        return str(sealed.get("kek_id") or "unrecorded"), "unreadable"
    if dry_run:
        return opened_by, "rekeyed"
    done = db.signing_keys.update_one(
        {"_id": doc["_id"], "private_enc.nonce": sealed["nonce"], "private_enc.ct": sealed["ct"]},
        {"$set": {"private_enc": seal(config, doc["_id"], private_jwk), "rekeyed_at": datetime.now(timezone.utc)}})
    return opened_by, "rekeyed" if done.modified_count == 1 else "changed"


def rekey(db, config, *, dry_run: bool = False) -> dict:
    """Re-seal every stored private key not sealed under the current key-encryption key (or not recording
    which key sealed it; see :func:`rekey_key`). Returns ``{id of the key that opened it: {outcome: count}}``.
    Running it again finishes an interrupted run."""
    counts: dict[str, dict[str, int]] = {}
    for doc in db.signing_keys.find({"private_enc.kek_id": {"$ne": current_kek_id(config)}}, {"private_enc": 1}):
        opened_by, outcome = rekey_key(db, config, doc, dry_run=dry_run)
        per_key = counts.setdefault(opened_by, {})
        per_key[outcome] = per_key.get(outcome, 0) + 1
    return counts


def _generate(alg: str, kid: str):
    params = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def _new_kid(alg: str) -> str:
    return f"{alg.lower()}-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(4)}"


def cache_ttl(config) -> float:
    """How long a process keeps its copy of the key documents (never longer than the JWKS HTTP cache)."""
    return float(max(1, min(60, config.jwks_max_age_s)))


def prepublish_s(config) -> float:
    """How long a new key is published before it signs: any JWKS held by an RP or served from a process
    cache when it starts signing was fetched after it was published."""
    return config.jwks_max_age_s + cache_ttl(config) + min(5, config.jwks_max_age_s)


def activate_at(doc: dict) -> datetime:
    value = doc.get("activate_at") or doc["created_at"]
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def create_key(db, config, alg: str, *, kid: str | None = None, activate_at: datetime | None = None) -> dict:
    """Generate and store a new key for ``alg`` that signs from ``activate_at`` (default: now); other
    keys are left as they are."""
    kid = kid or _new_kid(alg)
    key = _generate(alg, kid)
    now = datetime.now(timezone.utc)
    doc = {
        "_id": kid, "alg": alg, "public_jwk": key.as_dict(private=False),
        "private_enc": seal(config, kid, key.as_dict(private=True)), "active": True,
        "created_at": now, "activate_at": activate_at or now, "rotated_at": None, "retire_after": None,
    }
    db.signing_keys.insert_one(doc)
    return doc


def ensure_keys(db, config) -> list[str]:
    """Create the first key of each algorithm when none is active. Safe to run from several processes
    at once: the first key of an algorithm has a fixed kid, so a racing duplicate insert fails. (A first
    key signs at once: nothing was signed before it, so no RP holds a JWKS it would be missing from.)"""
    created = []
    for alg in ALGORITHMS:
        if db.signing_keys.find_one({"alg": alg, "active": True}, {"_id": 1}):
            continue
        try:
            create_key(db, config, alg, kid=f"{alg.lower()}-initial")
            created.append(alg)
        except DuplicateKeyError:
            if not db.signing_keys.find_one({"alg": alg, "active": True}, {"_id": 1}):
                create_key(db, config, alg)
                created.append(alg)
    return created


def rotate(db, config, algs=ALGORITHMS) -> list[str]:
    """Add a *next* key per algorithm, published now and signing from ``now + prepublish_s``; the keys it
    supersedes sign until then and stay published until every ID token they may have signed has expired.
    Returns the new kids."""
    new = []
    for alg in algs:
        now = datetime.now(timezone.utc)
        starts = now + timedelta(seconds=prepublish_s(config))
        doc = create_key(db, config, alg, activate_at=starts)
        retire = starts + timedelta(seconds=config.id_token_lifetime_s + cache_ttl(config))
        db.signing_keys.update_many(
            {"alg": alg, "active": True, "_id": {"$ne": doc["_id"]}},
            {"$set": {"active": False, "rotated_at": now, "retire_after": retire}})
        new.append(doc["_id"])
    return new


def signer(docs: list[dict], alg: str, now: datetime | None = None) -> dict | None:
    """The key document that signs for ``alg`` at ``now``: the latest due ``activate_at`` among the
    published keys (a next key is never chosen before its time)."""
    now = now or datetime.now(timezone.utc)
    due = [d for d in docs if d["alg"] == alg and activate_at(d) <= now]
    return max(due, key=lambda d: (activate_at(d), d["created_at"])) if due else None


def status(doc: dict, now: datetime | None = None) -> str:
    """"next" (published, not signing yet), "active" (not superseded) or "retiring"."""
    now = now or datetime.now(timezone.utc)
    if activate_at(doc) > now:
        return "next"
    return "active" if doc.get("active") else "retiring"


def published(db, now: datetime | None = None) -> list[dict]:
    """Key documents whose public part is in the JWKS: active ones and rotated ones not yet retired."""
    now = now or datetime.now(timezone.utc)
    docs = db.signing_keys.find({"$or": [{"active": True}, {"retire_after": {"$gt": now}}]},
                                {"private_enc": 0}).sort("created_at", DESCENDING)
    return list(docs)


def list_keys(db) -> list[dict]:
    return list(db.signing_keys.find({}, {"private_enc": 0}).sort("created_at", DESCENDING))


def purge_retired(db, now: datetime | None = None) -> int:
    """Delete keys past their retirement (no longer needed to verify anything)."""
    now = now or datetime.now(timezone.utc)
    return db.signing_keys.delete_many({"active": False, "retire_after": {"$lte": now}}).deleted_count


class KeyStore:
    """The published key documents and decrypted private keys, cached in process memory for ``ttl``
    seconds; which key signs is decided per call from the cached documents and the clock."""

    def __init__(self, db, config, ttl: float | None = None):
        self.db, self.config = db, config
        self.ttl = cache_ttl(config) if ttl is None else ttl
        self._lock = threading.Lock()
        self._loaded = -1e9
        self._docs: list[dict] = []
        self._private: dict[str, object] = {}

    def invalidate(self) -> None:
        self._loaded = -1e9

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded < self.ttl:
                return
            try:
                self._reload()
            except Exception as e:
                if not self._docs:
                    raise
                # keep serving with the cached keys; try again in a few seconds (an outage: its type only)
                from idp.store import UNAVAILABLE
                log.warning("signing keys could not be re-read; using the cached ones: %s", type(e).__name__,
                            exc_info=not isinstance(e, UNAVAILABLE))
                self._loaded = time.monotonic() - self.ttl + 5

    def _reload(self) -> None:
        docs = published(self.db)
        if not any(d["active"] for d in docs):
            ensure_keys(self.db, self.config)
            docs = published(self.db)
        self._docs = docs
        kids = {d["_id"] for d in docs}
        self._private = {k: v for k, v in self._private.items() if k in kids}
        self._loaded = time.monotonic()

    def _fresh_docs(self) -> list[dict]:
        if time.monotonic() - self._loaded >= self.ttl:
            self._refresh()
        return self._docs

    def signing_key(self, alg: str = DEFAULT_ALG):
        """``(kid, joserfc key)`` of the key that signs for ``alg`` now."""
        doc = signer(self._fresh_docs(), alg)
        if doc is None:
            raise RuntimeError(f"no active signing key for {alg}")
        kid = doc["_id"]
        key = self._private.get(kid)
        if key is None:
            full = self.db.signing_keys.find_one({"_id": kid})
            key = import_key(unseal(self.config, kid, full["private_enc"]))
            self._private[kid] = key
        return kid, key

    def jwks(self) -> dict:
        now = datetime.now(timezone.utc)
        keys = []
        for d in self._fresh_docs():
            retire = d.get("retire_after")
            if retire is not None and (retire.replace(tzinfo=timezone.utc) if retire.tzinfo is None else retire) <= now:
                continue
            keys.append(dict(d["public_jwk"], kid=d["_id"], alg=d["alg"], use="sig"))
        return {"keys": keys}

    def public_keyset(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())
