"""Server-side sessions in MongoDB.

The cookie carries only a random 256-bit session id; the data lives in the
``sessions`` collection under the id's SHA-256 (a database leak does not
reveal live cookies), with a TTL index purging expired sessions. Any IdP
instance can serve any request.

A session is written only when a request changed it (or rotates it at sign-in / sign-out). Only the
request that creates a session (or signs in afresh) inserts its document; every later save is an update of
the existing, unexpired document. So a request still in flight when the session is ended (sign-out, password
change, "sign out everywhere") can never write it back: its save matches nothing and its cookie is dropped.

A session that has not signed in (no ``auth.uid``: the login page's CSRF token, a pending authorization
request) lives ``anon_lifetime_s`` (minutes, extended while the browser keeps using it); a signed-in one
``lifetime_s`` (hours).

Paths for which ``is_stateless(path)`` is true (the API paths of ``idp.web.api``: token, introspection,
revocation, userinfo, JWKS, discovery, probes, static files) are called by relying parties, not by the
browser session: a cookie sent to them is ignored — the session is neither read nor written there.
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
        self.fresh = False  # this request signed in afresh: may store the session even if the old one is gone
        self.old_sid: str | None = None
        self.stateless = False  # an API request: never read from nor written to the database
        self.expires: datetime | None = None  # of the stored document, when read from the database


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def end_other_sessions(collection, uid: str) -> int:
    """Sign ``uid`` out everywhere but in the current session (after a password change)."""
    query = {"data.auth.uid": uid}
    current = getattr(flask_session._get_current_object(), "sid", None)
    if current:
        query["_id"] = {"$ne": _key(current)}
    return collection.delete_many(query).deleted_count


def end_all_sessions(collection, uid: str) -> int:
    """Sign ``uid`` out everywhere, this browser included ("sign out everywhere")."""
    return collection.delete_many({"data.auth.uid": uid}).deleted_count


def rotate_session(*, fresh: bool = False) -> None:
    """Give the current session a new id at the next save (sign-in, sign-out, password change).

    ``fresh``: this request proved a new sign-in, so the session is stored under its new id even when the
    old document is gone. Otherwise a rotation of a session that another request ended meanwhile ends it
    here too (the sign-out wins)."""
    s = flask_session._get_current_object()
    if isinstance(s, MongoSession):
        s.fresh = s.fresh or fresh
        if not s.rotate:
            s.rotate = True
            s.old_sid = s.sid
            s.modified = True


def take_once(key: str, field: str) -> bool:
    """Remove ``session[key]``, a value read from the stored session, here and in the stored session at
    once: True only for the request whose conditional update removed it (its ``field`` unchanged), so of
    several requests of one session racing for it (a form posted twice at once) exactly one gets True."""
    from flask import current_app
    s = flask_session._get_current_object()
    value = (s.get(key) or {}).get(field)
    s.pop(key, None)
    if not isinstance(s, MongoSession) or not s.sid or value is None:
        return False
    return current_app.session_interface.collection.update_one(
        {"_id": _key(s.sid), f"data.{key}.{field}": value}, {"$unset": {f"data.{key}": ""}}).modified_count == 1


class MongoSessionInterface(SessionInterface):
    def __init__(self, collection, lifetime_s: int, secure: bool, is_stateless=lambda path: False,
                 anon_lifetime_s: int = 600):
        self.collection = collection
        self.lifetime = timedelta(seconds=lifetime_s)
        self.anon_lifetime = timedelta(seconds=min(anon_lifetime_s, lifetime_s))
        self.secure = secure
        self.cookie_name = "__Host-session" if secure else "deepauth_session"
        self.is_stateless = is_stateless

    def open_session(self, app, request):
        if self.is_stateless(request.path):
            session = MongoSession(new=True)
            session.stateless = True
            return session
        sid = request.cookies.get(self.cookie_name)
        if sid and 20 <= len(sid) <= 100:
            doc = self.collection.find_one({"_id": _key(sid)})
            if doc and doc["expires"] > datetime.now(timezone.utc):
                session = MongoSession(doc.get("data") or {}, sid=sid)
                session.expires = doc["expires"]
                return session
        return MongoSession(new=True)

    def save_session(self, app, session: MongoSession, response):
        if session.stateless:
            return
        if not session.modified:
            self._extend_anonymous(session, response)
            return
        if not session:  # emptied: forget it
            for sid in (session.sid, session.old_sid):
                if sid:
                    self.collection.delete_one({"_id": _key(sid)})
            if session.sid:
                response.delete_cookie(self.cookie_name, path="/", secure=self.secure, samesite="Lax")
            return
        now = datetime.now(timezone.utc)
        signed_in = bool((session.get("auth") or {}).get("uid"))
        expires = now + (self.lifetime if signed_in else self.anon_lifetime)
        fields = {"data": dict(session), "expires": expires}
        if session.rotate and session.sid:
            ended = self.collection.delete_one({"_id": _key(session.sid)}).deleted_count == 0
            if ended and not session.fresh:  # ended by another request meanwhile: it stays ended
                self._drop_cookie(response)
                return
            session.sid = None
        if session.sid is None:  # created (or signed in afresh) by this request: the only insert
            session.sid = secrets.token_urlsafe(32)
            self.collection.insert_one({"_id": _key(session.sid), **fields})
        elif not self.collection.update_one({"_id": _key(session.sid), "expires": {"$gt": now}},
                                            {"$set": fields}).matched_count:
            # signed out, ended elsewhere or expired while this request ran: never write it back
            self._drop_cookie(response)
            return
        response.set_cookie(self.cookie_name, session.sid, expires=expires, path="/", httponly=True,
                            secure=self.secure, samesite="Lax")
        response.vary.add("Cookie")

    def _extend_anonymous(self, session: MongoSession, response) -> None:
        """Keep a pre-sign-in session alive while it is used (someone reading the login page): at most one
        write per half lifetime, and only to a document that still exists."""
        if not session.sid or session.expires is None or (session.get("auth") or {}).get("uid"):
            return
        now = datetime.now(timezone.utc)
        if session.expires - now > self.anon_lifetime / 2:
            return
        expires = now + self.anon_lifetime
        if self.collection.update_one({"_id": _key(session.sid), "expires": {"$gt": now}},
                                      {"$set": {"expires": expires}}).matched_count:
            response.set_cookie(self.cookie_name, session.sid, expires=expires, path="/", httponly=True,
                                secure=self.secure, samesite="Lax")
            response.vary.add("Cookie")

    def _drop_cookie(self, response) -> None:
        response.delete_cookie(self.cookie_name, path="/", secure=self.secure, samesite="Lax")
        response.vary.add("Cookie")
