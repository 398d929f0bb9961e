"""The account of the current request: its users document, read from the database at most once per request
(the password step, flask-login's user loader and the views of one request share it), whether that account may
still sign in, and flask-login's user. Nothing is kept across requests, so a change or deletion is seen by the
next request."""
from __future__ import annotations

from flask import current_app, g, has_request_context
from flask_login import UserMixin

from . import users


class User(UserMixin):
    """A user document wrapped for flask-login; ``get_id()`` is the document's ``_id`` (the OIDC sub)."""

    def __init__(self, doc: dict):
        self.doc = doc

    def get_id(self) -> str:
        return self.doc["_id"]

    @property
    def id(self) -> str:
        return self.doc["_id"]

    @property
    def is_admin(self) -> bool:
        return bool(self.doc.get("is_admin"))

    def __getattr__(self, name):
        try:
            return self.__dict__["doc"][name]
        except KeyError:
            raise AttributeError(name) from None


def remember_user(doc: dict | None) -> None:
    """Keep a users document just read for the rest of this request (see ``request_user``)."""
    if doc is not None and has_request_context():
        g.setdefault("_idp_user_docs", {})[doc["_id"]] = doc


def request_user(db, uid: str) -> dict | None:
    """The users document of ``uid``, read from the database at most once per request: the password
    step, flask-login's user loader and the views of one request share it. Nothing is kept across
    requests, so a change or deletion is seen by the next request."""
    if not has_request_context():
        return users.get_user(db, uid)
    cache = g.setdefault("_idp_user_docs", {})
    if uid not in cache:
        cache[uid] = users.get_user(db, uid)
    return cache[uid]


def usable_user(db, uid: str) -> dict | None:
    """The users document of ``uid`` (:func:`request_user`) when the account may sign in
    (``users.may_sign_in``: not disabled, no deletion claimed it), else None. What a session, a consent or a
    code proved for an account counts only through this."""
    doc = request_user(db, uid) if uid else None
    return doc if users.may_sign_in(doc) else None


def forget_user(uid: str | None = None) -> None:
    """Drop the request's cached users document(s) (after changing or deleting one)."""
    if has_request_context():
        cache = g.get("_idp_user_docs")
        if cache is not None:
            cache.clear() if uid is None else cache.pop(uid, None)


def load_user(uid: str):
    """flask-login's user loader (pass it to ``idp.signin.advance``)."""
    return current_app.extensions["accounts"]["load_user"](uid)
