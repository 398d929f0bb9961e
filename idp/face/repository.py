"""Encrypted face templates in MongoDB: collection ``face_templates``, one document per user."""
from __future__ import annotations

from datetime import datetime, timezone

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from idp.store import durable, written_before

from . import settings
from .template import Template, TemplateCipher

COLLECTION = "face_templates"


def _collection(db: Database):
    return durable(db, COLLECTION)  # a template write that is acknowledged is not lost


_UNCONDITIONAL = object()


def save_template(db: Database, user_id: str, template: Template, cipher: TemplateCipher, *,
                  replacing=_UNCONDITIONAL) -> datetime | None:
    """Store the user's template, encrypted and bound to ``user_id``; when it was stored, the record's
    ``updated_at``, which names this save (:func:`delete_template`'s ``saved``; a re-keying keeps it), else None.

    ``replacing`` makes the write a compare-and-swap: the stored record this template replaces (as
    :func:`template_info` returned it), or None when it must be the user's first. The template is then
    stored only if the stored state is still that one (None otherwise, nothing written), so of two
    enrollments judged against the same state only one is saved, whichever instance judges them.
    Omitted: stored or replaced unconditionally (the operator's CLI)."""
    doc = cipher.encrypt(template, user_id)
    doc.update({
        "_id": user_id,
        "model_version": template.model_version,
        "created_at": template.created_at,
        "updated_at": datetime.now(timezone.utc),
    })
    coll = _collection(db)
    saved = doc["updated_at"].replace(microsecond=doc["updated_at"].microsecond // 1000 * 1000)  # as stored
    doc["updated_at"] = saved
    if replacing is _UNCONDITIONAL:
        coll.replace_one({"_id": user_id}, doc, upsert=True)
        return saved
    if replacing is None:
        try:
            coll.insert_one(doc)
        except DuplicateKeyError:
            return None
        return saved
    # updated_at is set by every save (a record without one matches None: its field is missing)
    matched = coll.replace_one({"_id": user_id, "updated_at": replacing.get("updated_at")}, doc).matched_count
    return saved if matched == 1 else None


def load_template(db: Database, user_id: str, cipher: TemplateCipher) -> Template | None:
    """The user's decrypted template, or None; raises TemplateTamperedError if it fails authentication."""
    doc = _collection(db).find_one({"_id": user_id})
    if doc is None:
        return None
    return cipher.decrypt(doc, user_id)


def template_info(db: Database, user_id: str) -> dict | None:
    """Metadata of the stored template without decrypting it (model id, dates)."""
    return _collection(db).find_one({"_id": user_id}, {"ciphertext": 0, "nonce": 0})


def stored_stamp(db: Database, user_id: str) -> str | None:
    """Which save of the user's template is stored (its ``updated_at``, "" for a record without one), None when
    there is none: a face check names the template it matched by this."""
    doc = _collection(db).find_one({"_id": user_id}, {"updated_at": 1}) if user_id else None
    if doc is None:
        return None
    at = doc.get("updated_at")
    return at.isoformat(timespec="milliseconds") if isinstance(at, datetime) else ""


def stored_version(info: dict) -> str:
    """The template version a stored template records (from its metadata, without decrypting it)."""
    return str(info.get("model_version") or settings.LEGACY_MODEL_VERSION)


def is_older_version(info: dict) -> bool:
    """Whether a stored template records an earlier version the engine still scores (not
    settings.MODEL_VERSION). It keeps working, scored as it records, but rejects its owner more often
    (docs/evaluation.md): only a new enrollment moves it to the current version (its photos are not
    kept), so its owner is invited. (A version the engine does not know fails closed elsewhere.)"""
    version = stored_version(info)
    return version != settings.MODEL_VERSION and version in settings.TEMPLATE_VERSIONS


def version_counts(db: Database) -> dict[str, int]:
    """How many stored templates record each template version (metadata only)."""
    counts: dict[str, int] = {}
    for doc in _collection(db).find({}, {"model_version": 1}):
        counts[stored_version(doc)] = counts.get(stored_version(doc), 0) + 1
    return counts


def is_stored(db: Database, user_id: str, saved: datetime) -> bool:
    """Whether the template that a save answered with ``saved`` is still the user's."""
    return bool(_collection(db).count_documents({"_id": user_id, "updated_at": saved}, limit=1))


def delete_template(db: Database, user_id: str, saved: datetime | None = None, *,
                    before: datetime | None = None) -> bool:
    """Delete the user's template (with ``saved``, as :func:`save_template` answered: only the one that save
    stored, not one saved since; with ``before``: only one saved before that moment); whether one went."""
    query = {"_id": user_id} if saved is None else {"_id": user_id, "updated_at": saved}
    if before is not None:
        query.update(written_before("updated_at", before))
    return _collection(db).delete_one(query).deleted_count == 1


_SEALED_FIELDS = ("alg", "format", "key_id", "model_id", "nonce", "ciphertext")


def rekey_template(db: Database, cipher: TemplateCipher, doc: dict, *, dry_run: bool = False) -> str:
    """Re-seal one stored template ``doc`` (as read earlier) under ``cipher``'s current key.

    Returns ``"current"`` (already under the current key), ``"unknown_key"`` (its key is not configured),
    ``"unreadable"`` (fails authentication), ``"rekeyed"`` (or, with ``dry_run``, would be), or ``"changed"``:
    the stored document is no longer the one read (a re-enrollment or deletion meanwhile), so nothing was
    written. The update is conditional on the key id, nonce and ciphertext read, so a concurrent
    re-enrollment is never overwritten by the older template; every other field is kept."""
    from .reasons import TemplateTamperedError

    if doc.get("key_id") == cipher.key_id:
        return "current"
    if doc.get("key_id") not in cipher.key_ids:
        return "unknown_key"
    try:
        template = cipher.decrypt(doc, doc["_id"])
    except TemplateTamperedError:
        return "unreadable"
    if dry_run:
        return "rekeyed"
    sealed = cipher.encrypt(template, doc["_id"])
    result = _collection(db).update_one(
        {"_id": doc["_id"], "key_id": doc.get("key_id"), "nonce": doc.get("nonce"), "ciphertext": doc.get("ciphertext")},
        {"$set": {**{k: sealed[k] for k in _SEALED_FIELDS}, "rekeyed_at": datetime.now(timezone.utc)}})
    return "rekeyed" if result.modified_count == 1 else "changed"


def rekey_templates(db: Database, cipher: TemplateCipher, *, dry_run: bool = False, batch: int = 200) -> dict:
    """Re-seal every stored template that is not under the current key (see :func:`rekey_template`).

    Returns ``{old key id: {outcome: count}}``. Resumable: it only ever looks at templates not yet under the
    current key, one document at a time, so an interrupted run is finished by running it again. Never reads
    more than ``batch`` documents at once (walks by ``_id``, no long-lived cursor)."""
    counts: dict[str, dict[str, int]] = {}
    last = None
    while True:
        flt: dict = {"key_id": {"$ne": cipher.key_id}}
        if last is not None:
            flt["_id"] = {"$gt": last}
        docs = list(_collection(db).find(flt).sort("_id", 1).limit(batch))
        if not docs:
            return counts
        for doc in docs:
            outcome = rekey_template(db, cipher, doc, dry_run=dry_run)
            per_key = counts.setdefault(str(doc.get("key_id")), {})
            per_key[outcome] = per_key.get(outcome, 0) + 1
        last = docs[-1]["_id"]
