"""Encrypted face templates in MongoDB: collection ``face_templates``, one document per user."""
from __future__ import annotations

from datetime import datetime, timezone

from pymongo.database import Database

from idp.store import durable

from .template import Template, TemplateCipher

COLLECTION = "face_templates"


def _collection(db: Database):
    return durable(db, COLLECTION)  # a template write that is acknowledged is not lost


def save_template(db: Database, user_id: str, template: Template, cipher: TemplateCipher) -> None:
    """Store (or replace) the user's template, encrypted and bound to ``user_id``."""
    doc = cipher.encrypt(template, user_id)
    doc.update({
        "_id": user_id,
        "model_version": template.model_version,
        "created_at": template.created_at,
        "updated_at": datetime.now(timezone.utc),
    })
    _collection(db).replace_one({"_id": user_id}, doc, upsert=True)


def load_template(db: Database, user_id: str, cipher: TemplateCipher) -> Template | None:
    """The user's decrypted template, or None; raises TemplateTamperedError if it fails authentication."""
    doc = _collection(db).find_one({"_id": user_id})
    if doc is None:
        return None
    return cipher.decrypt(doc, user_id)


def template_info(db: Database, user_id: str) -> dict | None:
    """Metadata of the stored template without decrypting it (model id, dates)."""
    return _collection(db).find_one({"_id": user_id}, {"ciphertext": 0, "nonce": 0})


def delete_template(db: Database, user_id: str) -> bool:
    return _collection(db).delete_one({"_id": user_id}).deleted_count == 1
