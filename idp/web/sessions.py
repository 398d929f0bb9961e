"""Server-side sessions in MongoDB.

The cookie carries only a random 256-bit session id; the data lives in the
``sessions`` collection under the id's SHA-256 (a database leak does not
reveal live cookies), with a TTL index purging expired sessions. Any IdP
instance can serve any request.

A session is written only when a request changed it (or rotates it at sign-in / sign-out). The API
endpoints listed in ``stateless_paths`` (token, introspection, revocation, userinfo, JWKS, discovery,
static files) are called by relying parties, not by the browser session: a cookie sent to them is
ignored — the session is neither read nor written there.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from flask import session as flask_session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict


class MongoSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid: str | None = None, new: bool = False):
        def on_update(self):
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        self.rotate = False
        self.old_sid: str | None = None
        self.stateless = False  # an API request: never read from nor written to the database


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def end_other_sessions(collection, uid: str) -> int:
    """Sign ``uid`` out everywhere but in the current session (after a password change)."""
    query = {"data.auth.uid": uid}
    current = getattr(flask_session._get_current_object(), "sid", None)
    if current:
        query["_id"] = {"$ne": _key(current)}
    return collection.delete_many(query).deleted_count


def rotate_session() -> None:
    """Give the current session a new id at the next save (sign-in, sign-out)."""
    s = flask_session._get_current_object()
    if isinstance(s, MongoSession) and not s.rotate:
        s.rotate = True
        s.old_sid = s.sid
        s.modified = True


class MongoSessionInterface(SessionInterface):
    def __init__(self, collection, lifetime_s: int, secure: bool, stateless_paths=()):
        self.collection = collection
        self.lifetime = timedelta(seconds=lifetime_s)
        self.secure = secure
        self.cookie_name = "__Host-session" if secure else "deepauth_session"
        # exact paths, or prefixes when they end with "/"
        self.stateless_exact = frozenset(p for p in stateless_paths if not p.endswith("/"))
        self.stateless_prefixes = tuple(p for p in stateless_paths if p.endswith("/"))

    def is_stateless(self, path: str) -> bool:
        return path in self.stateless_exact or (bool(self.stateless_prefixes)
                                                and path.startswith(self.stateless_prefixes))

    def open_session(self, app, request):
        if self.is_stateless(request.path):
            session = MongoSession(new=True)
            session.stateless = True
            return session
        sid = request.cookies.get(self.cookie_name)
        if sid and 20 <= len(sid) <= 100:
            doc = self.collection.find_one({"_id": _key(sid)})
            if doc and doc["expires"] > datetime.now(timezone.utc):
                return MongoSession(doc.get("data") or {}, sid=sid)
        return MongoSession(new=True)

    def save_session(self, app, session: MongoSession, response):
        if not session.modified or session.stateless:
            return
        if not session:  # emptied: forget it
            for sid in (session.sid, session.old_sid):
                if sid:
                    self.collection.delete_one({"_id": _key(sid)})
            if session.sid:
                response.delete_cookie(self.cookie_name, path="/", secure=self.secure, samesite="Lax")
            return
        if session.rotate or session.sid is None:
            if session.sid:
                self.collection.delete_one({"_id": _key(session.sid)})
            session.sid = secrets.token_urlsafe(32)
        expires = datetime.now(timezone.utc) + self.lifetime
        self.collection.replace_one({"_id": _key(session.sid)}, {"data": dict(session), "expires": expires},
                                    upsert=True)
        response.set_cookie(self.cookie_name, session.sid, expires=expires, path="/", httponly=True,
                            secure=self.secure, samesite="Lax")
        response.vary.add("Cookie")
