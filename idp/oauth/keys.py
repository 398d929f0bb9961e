"""ID-token signing keys: stored in MongoDB (``signing_keys``), private parts encrypted at rest.

Document: ``{_id: kid, alg: "RS256"|"ES256", public_jwk: {...}, private_enc: {nonce, ct}, active: bool,
created_at, rotated_at, retire_after}``. The private JWK (JSON) is sealed with AES-256-GCM under a key
derived (HKDF-SHA256) from ``config.key_encryption_key``, the kid as associated data.

One active key per algorithm signs; ``rotate`` adds a new active key and keeps the old public key
published until every ID token it signed has expired (``retire_after = rotated_at + id_token_lifetime``).
No Flask here: ``KeyStore`` is the in-process cache the web app uses (re-read every ``ttl`` seconds so a
rotation made by another instance or the CLI propagates).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, KeySet, RSAKey, import_key
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

log = logging.getLogger("idp.oauth.keys")

ALGORITHMS = ("RS256", "ES256")
DEFAULT_ALG = "RS256"


def _kek(config) -> bytes:
    if not config.key_encryption_key:
        raise RuntimeError("key_encryption_key is not set (call Config.ensure_secrets())")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"deepauth signing keys",
                info=b"aes-256-gcm v1").derive(config.key_encryption_key.encode())


def seal(config, kid: str, private_jwk: dict) -> dict:
    nonce = os.urandom(12)
    ct = AESGCM(_kek(config)).encrypt(nonce, json.dumps(private_jwk).encode(), kid.encode())
    return {"v": 1, "nonce": nonce, "ct": ct}


def unseal(config, kid: str, sealed: dict) -> dict:
    data = AESGCM(_kek(config)).decrypt(bytes(sealed["nonce"]), bytes(sealed["ct"]), kid.encode())
    return json.loads(data)


def _generate(alg: str, kid: str):
    params = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def _new_kid(alg: str) -> str:
    return f"{alg.lower()}-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(4)}"


def create_key(db, config, alg: str, *, kid: str | None = None) -> dict:
    """Generate and store a new active key for ``alg`` (other keys are left as they are)."""
    kid = kid or _new_kid(alg)
    key = _generate(alg, kid)
    doc = {
        "_id": kid, "alg": alg, "public_jwk": key.as_dict(private=False),
        "private_enc": seal(config, kid, key.as_dict(private=True)), "active": True,
        "created_at": datetime.now(timezone.utc), "rotated_at": None, "retire_after": None,
    }
    db.signing_keys.insert_one(doc)
    return doc


def ensure_keys(db, config) -> list[str]:
    """Create the first key of each algorithm when none is active. Safe to run from several processes
    at once: the first key of an algorithm has a fixed kid, so a racing duplicate insert fails."""
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
    """Add a new active key per algorithm; older active keys stop signing and stay published until
    ``rotated_at + id_token_lifetime_s``. Returns the new kids."""
    new = []
    for alg in algs:
        doc = create_key(db, config, alg)
        now = datetime.now(timezone.utc)
        db.signing_keys.update_many(
            {"alg": alg, "active": True, "_id": {"$ne": doc["_id"]}},
            {"$set": {"active": False, "rotated_at": now,
                      "retire_after": now + timedelta(seconds=config.id_token_lifetime_s)}})
        new.append(doc["_id"])
    return new


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
    """Decrypted active signing keys and the public JWKS, cached in process memory."""

    def __init__(self, db, config, ttl: float = 60.0):
        self.db, self.config, self.ttl = db, config, ttl
        self._lock = threading.Lock()
        self._loaded = -1e9
        self._signing: dict[str, tuple[str, object]] = {}
        self._jwks: dict = {"keys": []}
        self._keyset: KeySet | None = None

    def invalidate(self) -> None:
        self._loaded = -1e9

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded < self.ttl:
                return
            try:
                self._reload()
            except Exception:
                if not self._signing:
                    raise
                # keep serving with the cached keys; try again in a few seconds
                log.warning("signing keys could not be re-read; using the cached ones", exc_info=True)
                self._loaded = time.monotonic() - self.ttl + 5

    def _reload(self) -> None:
        docs = published(self.db)
        if not any(d["active"] for d in docs):
            ensure_keys(self.db, self.config)
            docs = published(self.db)
        signing = {}
        for alg in ALGORITHMS:
            active = [d for d in docs if d["alg"] == alg and d["active"]]
            if not active:
                continue
            kid = active[0]["_id"]  # newest active key of this algorithm
            if self._signing.get(alg, (None,))[0] == kid:
                signing[alg] = self._signing[alg]
                continue
            full = self.db.signing_keys.find_one({"_id": kid})
            signing[alg] = (kid, import_key(unseal(self.config, kid, full["private_enc"])))
        keys = [dict(d["public_jwk"], kid=d["_id"], alg=d["alg"], use="sig") for d in docs]
        self._signing = signing
        self._jwks = {"keys": keys}
        self._keyset = KeySet.import_key_set({"keys": keys})
        self._loaded = time.monotonic()

    def signing_key(self, alg: str = DEFAULT_ALG):
        """``(kid, joserfc key)`` of the active key for ``alg``."""
        if time.monotonic() - self._loaded >= self.ttl:
            self._refresh()
        try:
            return self._signing[alg]
        except KeyError:
            raise RuntimeError(f"no active signing key for {alg}") from None

    def jwks(self) -> dict:
        if time.monotonic() - self._loaded >= self.ttl:
            self._refresh()
        return self._jwks

    def public_keyset(self) -> KeySet:
        if time.monotonic() - self._loaded >= self.ttl:
            self._refresh()
        return self._keyset
