"""Server-issued webcam capture sessions (collection ``capture_sessions``), without Flask."""
from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from pymongo import ReturnDocument

from .face_status import aware, utcnow

MAX_FRAMES_PER_CAPTURE = 60  # frames of any quality accepted by one capture session


class CaptureError(Exception):
    """A capture request that cannot be served. ``redirect``: the endpoint the page should go to;
    ``extra``: more fields of the JSON answer."""

    def __init__(self, status: int, code: str, message: str, *, redirect: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.redirect, self.extra = redirect, extra


def out_of_order() -> CaptureError:
    """A frame filmed before one the capture already holds (the page films and sends them in order)."""
    return CaptureError(400, "frame_out_of_order", "This picture was taken before the previous one. Send the "
                        "pictures in the order they were taken.")


class Captures:
    """Server-issued capture sessions (``capture_sessions``).

    ``{_id, nonce, user_id, purpose: enroll|verify, created, expires (TTL), needed, good, count,
       frames: [{at, client_ts, ok, reasons, quality, confidence, box, landmarks, emb?, t_ms?, w?, h?, dup?}],
       status: open|finishing|finished, challenge, lv_* (liveness, see idp.faceweb.liveness), result}``

    Images are never stored (while liveness is on, the first frame's 32x32 grey thumbnail is kept
    until the session finishes, see idp.faceweb.liveness). Each good frame's (at sign-in, each face frame's) embedding is kept encrypted (AES-GCM via the
    TemplateCipher, bound to the user *and* the capture id), under every template version the engine
    computed (so a template enrolled under an earlier version is judged with its own kind of embedding;
    ``mirror``: whether the versions that flip are among them), with dlib's embedding where the frame has
    one (``dlib_frames``: how many good frames get it; the session counts them in ``dlib_done``), and
    removed when the session finishes, with the frames' face geometry (:data:`FACE_FIELDS`).
    """

    def __init__(self, db, cipher, ttl_s: int):
        self.db = db
        self.coll = db.capture_sessions
        self.cipher = cipher
        self.ttl_s = ttl_s

    def create(self, user_id: str, purpose: str, needed: int, *, challenge=None, client_id=None,
               binding: str | None = None, cue_ms: int | None = None, passive_min: float = 0.0,
               dlib_frames: int = 0, mirror: bool = True) -> dict:
        """``binding``: a value derived from the browser session and its sign-in; frames and the finish
        must present the same one (see ``open_for``). ``passive_min``: the passive anti-spoofing
        threshold this capture is judged with (kept with it, so every instance judges it alike).
        ``dlib_frames``: how many of its good frames are to be embedded by dlib too (see ``wants_dlib``);
        ``mirror``: whether its frames' mirrored crops are embedded too (see ``mirrored``)."""
        now = utcnow()
        doc = {"_id": secrets.token_urlsafe(18), "nonce": secrets.token_urlsafe(24), "user_id": user_id,
               "binding": binding,
               "purpose": purpose, "created": now, "expires": now + timedelta(seconds=self.ttl_s),
               "needed": int(needed), "good": 0, "count": 0, "frames": [], "status": "open",
               "challenge": challenge, "cue_ms": cue_ms, "client_id": client_id,
               "lv_passive_min": float(passive_min) if challenge else 0.0,
               "dlib_frames": int(dlib_frames), "dlib_done": 0, "mirror": bool(mirror)}
        self.coll.insert_one(doc)
        return doc

    @staticmethod
    def wants_dlib(doc: dict) -> bool:
        """Whether the capture's next good frame is to be embedded by dlib: while fewer of its good frames
        than its ``dlib_frames`` have been (frames analysed in parallel may take it one or two over)."""
        return int(doc.get("dlib_done") or 0) < int(doc.get("dlib_frames") or 0)

    @staticmethod
    def mirrored(doc: dict) -> bool:
        """Whether the capture's frames are embedded with their mirrored crop too (``analyze``'s mirror),
        for a template version that flips; a session created before this was recorded: yes, as then."""
        return bool(doc.get("mirror", True))

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
        if aware(doc["expires"]) <= utcnow():
            raise CaptureError(410, "capture_expired", "This capture has expired. Start again.")
        if doc["status"] != "open":
            raise CaptureError(409, "capture_finished", "This capture is already finished. Start again.")
        return doc

    def add_frame(self, doc: dict, analysis, *, client_ts=None, extra: dict | None = None,
                  set_fields: dict | None = None, max_fields: dict | None = None, inc: dict | None = None,
                  with_frames: bool = False, max_count: int | None = None) -> dict:
        """Record one analysed frame (embedding encrypted, for every embedded frame); returns the updated doc
        (without its frames unless ``with_frames``); 409 once the session holds ``max_count`` frames
        (default MAX_FRAMES_PER_CAPTURE). ``analysis`` None records a frame that was not
        analysed (an in-session duplicate). ``extra``: more fields of the frame record (liveness: t_ms,
        w, h, dup); ``set_fields`` / ``max_fields`` / ``inc``: more updates of the session document. A frame
        with a ``t_ms`` is stored only if no frame stored meanwhile has a later one (``lv_last_t``; 400
        ``frame_out_of_order``): a request whose body was held back while later frames were served was
        checked against the capture as it was when it arrived, and went in out of filming order."""
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
            if getattr(analysis, "embedding", None) is not None:  # (good frames; with liveness any face frame)
                frame["emb"] = self.cipher.encrypt(_frame_embeddings(analysis), self._aad(doc))
        else:
            frame.update({"ok": False, "reasons": []})
        frame.update(_plain(extra or {}))
        good = frame["ok"] and "emb" in frame
        with_dlib = good and getattr(analysis, "dlib_embedding", None) is not None
        update = {"$push": {"frames": frame},
                  "$inc": {"count": 1, "good": 1 if good else 0, "dlib_done": 1 if with_dlib else 0, **(inc or {})}}
        if set_fields:
            update["$set"] = set_fields
        if max_fields:
            update["$max"] = max_fields
        flt = {"_id": doc["_id"], "status": "open", "count": {"$lt": max_count or MAX_FRAMES_PER_CAPTURE}}
        t_ms = frame.get("t_ms")
        if t_ms is not None:  # in filming order against the frames stored now, not the ``doc`` read earlier
            flt["$or"] = [{"lv_last_t": None}, {"lv_last_t": {"$lte": t_ms}}]
            update.setdefault("$max", {})["lv_last_t"] = t_ms
        updated = self.coll.find_one_and_update(flt, update, return_document=ReturnDocument.AFTER,
                                                projection=None if with_frames else {"frames": 0})
        if updated is None:
            now = self.coll.find_one({"_id": doc["_id"]}, {"lv_last_t": 1}) if t_ms is not None else None
            if now is not None and float(now.get("lv_last_t") or 0.0) > t_ms:
                raise out_of_order()
            raise CaptureError(409, "too_many_frames", "Too many pictures for one capture. Start again.")
        return updated

    def set_once(self, doc: dict, field: str, value) -> dict:
        """Set ``field`` of an open session unless already set (first frame's time origin, reference
        thumbnail); returns the value now stored."""
        self.coll.update_one({"_id": doc["_id"], "status": "open", field: None}, {"$set": {field: value}})
        now = self.coll.find_one({"_id": doc["_id"]}, {field: 1}) or {}
        return now.get(field, value)

    def close(self, doc: dict, result: dict) -> bool:
        """Finish an open session at once (e.g. a replayed frame); False if it was not open any more, or was erased
        between the two steps (its face data deleted: nothing is left to finish, and nothing of it is to be
        counted or audited after the deletion)."""
        closed = self.coll.update_one({"_id": doc["_id"], "status": "open"}, {"$set": {"status": "finishing"}})
        if not closed.modified_count:
            return False
        current = self.coll.find_one({"_id": doc["_id"]})
        if current is None:
            return False
        self.finish(current, result)
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

    def embeddings(self, doc: dict, any_face: bool = False) -> list:
        """Decrypt the embeddings of the good frames (``any_face``: of every embedded face frame, good or
        not), in order of arrival: ``(frame, {template version: embedding})``, plus ``{DLIB: dlib's
        embedding}`` for a frame that has one. A frame stored before versions were recorded holds one
        embedding, of the version its record names."""
        out = []
        for frame in doc.get("frames", []):
            if frame.get("emb") and (any_face or frame.get("ok")):
                sealed = self.cipher.decrypt(frame["emb"], self._aad(doc))
                versions = sealed.quality.get("versions") or [sealed.model_version]
                embs = dict(zip((str(v) for v in versions), sealed.embeddings))
                if sealed.dlib_mean is not None:
                    embs[DLIB] = sealed.dlib_mean
                out.append((frame, embs))
        return out

    def rekey(self, *, dry_run: bool = False) -> dict:
        """Re-seal the embeddings that unfinished sessions hold under a key other than the cipher's current
        one (template key rotation). Each frame is updated only if it still holds the ciphertext read, so a
        session finished meanwhile (its embeddings dropped) is left as it is. Returns
        ``{old key id: {outcome: count}}`` with the outcomes of ``idp.face.repository.rekey_template``."""
        from idp.face import TemplateTamperedError

        counts: dict[str, dict[str, int]] = {}
        for doc in self.coll.find({"frames.emb": {"$exists": True}}, {"frames": 1, "user_id": 1}):
            for i, frame in enumerate(doc.get("frames", [])):
                emb = frame.get("emb") if isinstance(frame, dict) else None
                if not emb or emb.get("key_id") == self.cipher.key_id:
                    continue
                if emb.get("key_id") not in self.cipher.key_ids:
                    outcome = "unknown_key"
                else:
                    try:
                        template = self.cipher.decrypt(emb, self._aad(doc))
                    except TemplateTamperedError:
                        outcome = "unreadable"
                    else:
                        outcome = "rekeyed"
                        if not dry_run:
                            done = self.coll.update_one(
                                {"_id": doc["_id"], f"frames.{i}.emb.ciphertext": emb.get("ciphertext")},
                                {"$set": {f"frames.{i}.emb": self.cipher.encrypt(template, self._aad(doc))}})
                            outcome = "rekeyed" if done.modified_count == 1 else "changed"
                per_key = counts.setdefault(str(emb.get("key_id")), {})
                per_key[outcome] = per_key.get(outcome, 0) + 1
        return counts

    def finish(self, doc: dict, result: dict) -> None:
        """Mark the session finished and drop every embedding and every piece of face geometry from it (each
        frame's :data:`FACE_FIELDS`, the liveness pose reference and thumbnail): they serve only the open
        capture's judgement; what stays until the session expires (times, reasons, the result, quality figures
        such as the head's yaw) identifies no face. (The face hashes the replay store keeps are in
        ``liveness_face_hashes``, with their own lifetime.)"""
        frames = [{k: v for k, v in f.items() if k not in FACE_FIELDS} for f in doc.get("frames", [])]
        self.coll.update_one({"_id": doc["_id"]}, {"$set": {"status": "finished", "frames": frames,
                                                            "finished": utcnow(), "result": _plain(result)},
                                                   "$unset": {"lv_ref_thumb": "", "lv_ref_dense": ""}})


#: What a stored frame holds of the face (encrypted embeddings; the dense mesh and its centre, the five landmarks,
#: the box, the face hashes): dropped when its session finishes.
FACE_FIELDS = frozenset({"emb", "dense", "dense_c", "landmarks", "box", "fh", "fhm"})


#: The key of a frame's dlib embedding in what ``Captures.embeddings`` returns (not a template version).
DLIB = "dlib"


def _frame_embeddings(analysis):
    """What a good frame keeps until its session finishes (encrypted): its embedding under every template
    version the engine computed (``quality["versions"]`` names the rows), so that the finish can judge the
    frames against a template of any version; and dlib's embedding when it was computed (``dlib_mean``)."""
    import numpy as np

    from idp.face import settings
    from idp.face.template import Template

    embs = getattr(analysis, "embeddings", None) or {settings.MODEL_VERSION: analysis.embedding}
    versions = sorted(embs)
    return Template(mean=np.asarray(analysis.embedding, np.float32),
                    embeddings=np.stack([np.asarray(embs[v], np.float32) for v in versions]),
                    quality={"versions": versions},
                    dlib_mean=None if getattr(analysis, "dlib_embedding", None) is None
                    else np.asarray(analysis.dlib_embedding, np.float32))


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
