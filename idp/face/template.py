"""Face templates and their protection at rest (AES-256-GCM, bound to the user id)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from idp.keyring import parse_template_key

from . import settings
from .reasons import TemplateTamperedError

TEMPLATE_FORMAT = 1  # part of the encryption's associated data: changing it would invalidate every template
LEGACY_SCORING = "cosine-v1"  # what a template without a "scoring" field was enrolled under


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return (v / max(float(np.linalg.norm(v)), 1e-10)).astype(np.float32)


@dataclass
class Template:
    """What enrollment produces: the normalised mean embedding plus the individual embeddings."""

    mean: np.ndarray  # (512,) float32, L2-normalised
    embeddings: np.ndarray  # (n, 512) float32, each L2-normalised
    model_id: str = settings.MODEL_ID
    # settings.TEMPLATE_VERSIONS key: how the embeddings were made, hence which probe embedding, cohort
    # and threshold the template is scored with.
    model_version: str = settings.MODEL_VERSION
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    quality: dict = field(default_factory=dict)
    # Scoring method (scoring.METHODS) in force at enrollment. Templates written before it was recorded
    # were enrolled under plain cosine. Informational: every method needs only ``mean``, so the engine
    # scores any stored template with its current method.
    scoring: str = settings.SCORING_METHOD
    # The second model's (dlib's ResNet, 128-d) normalised mean and individual embeddings: carried by the
    # templates of a version that fuses it (settings.TemplateVersion.dlib), None otherwise. A template of
    # such a version without them cannot be scored (``incomplete``: fail closed, never FaceNet alone).
    dlib_mean: np.ndarray | None = None
    dlib_embeddings: np.ndarray | None = None

    @classmethod
    def from_embeddings(cls, embeddings, dlib_embeddings=None, **kwargs) -> "Template":
        embs = np.asarray(embeddings, np.float32).reshape(-1, settings.EMBEDDING_SIZE)
        if dlib_embeddings is not None and len(dlib_embeddings):
            dl = np.asarray(dlib_embeddings, np.float32).reshape(-1, settings.DLIB_EMBEDDING_SIZE)
            kwargs.update(dlib_mean=_normalise(dl.mean(axis=0)), dlib_embeddings=dl)
        return cls(mean=_normalise(embs.mean(axis=0)), embeddings=embs, **kwargs)

    @property
    def incomplete(self) -> bool:
        """Whether the template lacks a part its version is scored with (the dlib mean of a version that
        fuses dlib): such a template is never used (re-enrollment), whatever else it holds."""
        spec = settings.TEMPLATE_VERSIONS.get(self.model_version)
        return spec is not None and spec.dlib and self.dlib_mean is None

    def to_dict(self) -> dict:
        """JSON-safe dict (embeddings as base64 little-endian float32)."""
        return {
            "format": TEMPLATE_FORMAT,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "created_at": self.created_at.astimezone(timezone.utc).isoformat(),
            "dim": int(self.mean.shape[0]),
            "mean": _b64(np.asarray(self.mean, "<f4").tobytes()),
            "embeddings": [_b64(np.asarray(e, "<f4").tobytes()) for e in self.embeddings],
            "quality": self.quality,
            "scoring": self.scoring,
            **({} if self.dlib_mean is None else {
                "dlib_mean": _b64(np.asarray(self.dlib_mean, "<f4").tobytes()),
                "dlib_embeddings": [_b64(np.asarray(e, "<f4").tobytes()) for e in
                                    (self.dlib_embeddings if self.dlib_embeddings is not None else [])]}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Template":
        dim = int(data["dim"])
        mean = np.frombuffer(_unb64(data["mean"]), "<f4").astype(np.float32)
        embs = [np.frombuffer(_unb64(e), "<f4") for e in data.get("embeddings", [])]
        if mean.shape != (dim,) or any(e.shape != (dim,) for e in embs):
            raise ValueError("template embeddings have the wrong size")
        dlib_mean = dlib_embs = None
        if data.get("dlib_mean") is not None:
            ddim = settings.DLIB_EMBEDDING_SIZE
            dlib_mean = np.frombuffer(_unb64(data["dlib_mean"]), "<f4").astype(np.float32)
            dl = [np.frombuffer(_unb64(e), "<f4") for e in data.get("dlib_embeddings", [])]
            if dlib_mean.shape != (ddim,) or any(e.shape != (ddim,) for e in dl):
                raise ValueError("template dlib embeddings have the wrong size")
            dlib_embs = np.stack(dl).astype(np.float32) if dl else np.zeros((0, ddim), np.float32)
        return cls(
            mean=mean,
            embeddings=np.stack(embs).astype(np.float32) if embs else np.zeros((0, dim), np.float32),
            model_id=str(data["model_id"]),
            model_version=str(data.get("model_version") or settings.LEGACY_MODEL_VERSION),
            created_at=datetime.fromisoformat(data["created_at"]),
            quality=dict(data.get("quality") or {}),
            scoring=str(data.get("scoring", LEGACY_SCORING)),
            dlib_mean=dlib_mean,
            dlib_embeddings=dlib_embs,
        )


def template_key_id(key: bytes) -> str:
    """The non-secret id of a template key (a truncated hash), stored with every record it seals."""
    return hashlib.sha256(b"deepauth-template-key:" + key).hexdigest()[:16]


class TemplateCipher:
    """AES-256-GCM for templates. The user id (and model id) are authenticated associated data,
    so a template copied onto another user's record, or altered in any byte, fails to decrypt.

    Key rotation: records are always sealed under the current key (``key_id``); ``retired`` keys
    (``IDP_TEMPLATE_KEYS_RETIRED``) only decrypt. A record names its key by ``key_id``, and is opened with
    that key alone: a record under a key that is not configured fails closed (TemplateTamperedError)."""

    ALG = "AES-256-GCM"

    def __init__(self, key_hex: str, retired=()):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = parse_template_key(key_hex)
        self._aead = AESGCM(key)
        # Identifies the key (not secret: a truncated hash), so key rotation can tell records apart.
        self.key_id = template_key_id(key)
        self._by_id = {self.key_id: self._aead}
        for old in retired:
            old_key = parse_template_key(old)
            self._by_id.setdefault(template_key_id(old_key), AESGCM(old_key))

    @classmethod
    def from_config(cls, config) -> "TemplateCipher":
        """The cipher of ``IDP_TEMPLATE_KEY`` with the retired keys of ``IDP_TEMPLATE_KEYS_RETIRED``."""
        return cls(config.template_key, config.retired_keys("template_key"))

    @property
    def key_ids(self) -> frozenset[str]:
        """The ids of every key that can decrypt: the current one and the retired ones."""
        return frozenset(self._by_id)

    @staticmethod
    def _aad(user_id: str, model_id: str) -> bytes:
        return json.dumps(["deepauth-face-template", TEMPLATE_FORMAT, str(user_id), model_id],
                          separators=(",", ":")).encode()

    def encrypt(self, template: Template, user_id: str) -> dict:
        nonce = os.urandom(12)
        plaintext = json.dumps(template.to_dict(), separators=(",", ":")).encode()
        ct = self._aead.encrypt(nonce, plaintext, self._aad(user_id, template.model_id))
        return {
            "alg": self.ALG,
            "format": TEMPLATE_FORMAT,
            "key_id": self.key_id,
            "model_id": template.model_id,  # in clear for operators, but authenticated
            "nonce": _b64(nonce),
            "ciphertext": _b64(ct),
        }

    def decrypt(self, doc: dict, user_id: str) -> Template:
        from cryptography.exceptions import InvalidTag

        try:
            if doc.get("alg") != self.ALG:
                raise TemplateTamperedError("unknown template encryption")
            # a record without a key id (none is written so) is tried with the current key only
            aead = self._by_id.get(doc.get("key_id", self.key_id))
            if aead is None:
                raise TemplateTamperedError("face template was encrypted with a key that is not configured "
                                            f"(key id {str(doc.get('key_id'))[:32]})")
            nonce = _unb64(doc["nonce"])
            ct = _unb64(doc["ciphertext"])
            plaintext = aead.decrypt(nonce, ct, self._aad(user_id, str(doc.get("model_id"))))
            template = Template.from_dict(json.loads(plaintext))
        except TemplateTamperedError:
            raise
        except (InvalidTag, KeyError, ValueError, TypeError) as exc:
            raise TemplateTamperedError("face template failed authentication "
                                        "(altered, moved to another user, or encrypted with another key)") from exc
        if template.model_id != doc.get("model_id"):
            raise TemplateTamperedError("face template model id does not match its record")
        return template
