"""Server-side sessions in MongoDB.

The cookie carries only a random 256-bit session id; the data lives in the
``sessions`` collection under the id's SHA-256 (a database leak does not
reveal live cookies), with a TTL index purging expired sessions. Any IdP
instance can serve any request.

A session is written only when a request changed it (or rotates it at sign-in / sign-out). Only the
request that creates a session (or signs in afresh) inserts its document; every later save is an update of
the existing, unexpired document. So a request still in flight when the session is ended (sign-out, password
change, "sign out everywhere") can never write it back: its save matches nothing and its cookie is dropped.
A request that signs in may make its insert conditional (:func:`keep_only_if`): checked once stored, so a
sign-in that proved something another request changed meanwhile (the password) does not outlive that change.

A rotation that carries the session on under a new id (a sign-in step, a password change) leaves a tombstone
under the old id for ``ROTATED_GRACE_S``: no session data, only the time the id was superseded and the key of
the id it moved to. The browser's other requests still in flight with the old id (a second tab, a page's
parallel calls) must not sign it out: a request opening a tombstoned id within ``ROTATED_OPEN_S`` of the
rotation gets an empty session that is never stored and never touches the cookie, and a request that read the
session before the rotation and saves after it leaves the cookie alone too (its writes, made under the old
state, are lost). Either way the browser keeps the newer cookie. A request opening the old id later is none of
those (the rotating response went out long before): its browser never got the new cookie (the response was
lost), and it opens a new session as with any ended id, so that browser can sign in again rather than being
kept out for the rest of ``ROTATED_GRACE_S``. The old id opens nothing of the session, as before. A sign-out
ends its session outright (no tombstone): its in-flight requests drop their cookie like those of any ended
session. A sign-out that read the session just before another tab's sign-in step rotated it ends the session
it moved to as well (the tombstone's ``next``): the browser's sign-in ends, whichever id holds it now. So does
another account's sign-in over it (which ends the first account's sign-in as a sign-out does). Both end (or
supersede) the old session in the view, before the sign-out hooks end what was made for the sign-in
(:func:`end_session_now`, :func:`supersede_session_now`): what another request makes for that sign-in meanwhile
(an authorization code) and checks once stored (:func:`sign_in_lives`) is either ended by the hooks or sees
the end. A re-authentication of the same sign-in stands only while that sign-in lives (``rotate_session``'s
``continues``).

A session that has not signed in (no ``auth.uid``: the login page's CSRF token, a pending authorization
request) lives ``anon_lifetime_s`` (minutes, extended while the browser keeps using it); a signed-in one
``lifetime_s`` (hours) from its password step (``auth.at``, set again when the account authenticates again),
however much it is used: every save stores that end, and a session read after it opens nothing.

A request stored in a session (a pending authorization request) gets one answer however often its form is
posted, even at once: :func:`answer_once` claims it in the ``request_answers`` collection, which no session
save touches, and keeps the answer a short while for the other posts of the same session.

Paths for which ``is_stateless(path)`` is true (the API paths of ``idp.web.api``: token, introspection,
revocation, userinfo, JWKS, discovery, probes, static files) are called by relying parties, not by the
browser session: a cookie sent to them is ignored — the session is neither read nor written there.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flask import current_app
from flask import session as flask_session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from idp.store import UNAVAILABLE


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
        self.continues: tuple[str, str] | None = None  # (uid, sid) of the sign-in a fresh one re-authenticates
        self.old_sid: str | None = None
        self.end = False  # the rotation ends the old session (sign-out) rather than superseding it
        self.superseded = False  # opened under an id rotated away by another request: never stored (see _save)
        self.opened_uid: str | None = None  # the account signed in when the session was read (see _end)
        self.stateless = False  # an API request: never read from nor written to the database
        self.expires: datetime | None = None  # of the stored document, when read from the database
        self.unavailable: Exception | None = None  # the database could not be read: the request is refused
        self.insert_checks: list[tuple[Callable[[], bool], Callable[[], None] | None]] = []  # keep_only_if


def cookie_name(name: str, secure: bool) -> str:
    """The name of this IdP's cookie ``name`` (``session``, ``known-browser``): ``__Host-<name>`` with secure
    cookies, so the browser keeps it only as set over HTTPS by this host for path ``/`` (no sibling subdomain
    can plant or shadow it); ``deepauth_<name>`` over plain HTTP in development, where that prefix is refused."""
    return f"__Host-{name}" if secure else "deepauth_" + name.replace("-", "_")


def browser_cookie(name: str) -> str:
    """The name of this IdP's long-lived browser cookie ``name`` (``known-browser``, ``device``) under this app's
    ``secure_cookies`` (:func:`cookie_name`)."""
    return cookie_name(name, current_app.config["IDP"].secure_cookies)


def write_cookie(response, name: str, value: str | None, secure: bool, **lifetime) -> None:
    """Set this IdP's cookie ``name`` (:func:`cookie_name`) to ``value`` (``None``: delete it) with ``lifetime``
    (``max_age`` or ``expires``). The one place every cookie's flags are chosen: HttpOnly (no script reads it),
    SameSite=Lax, path ``/`` and Secure with secure cookies (as the ``__Host-`` prefix requires)."""
    flags = {"path": "/", "secure": secure, "samesite": "Lax"}
    if value is None:
        response.delete_cookie(cookie_name(name, secure), **flags)
    else:
        response.set_cookie(cookie_name(name, secure), value, httponly=True, **flags, **lifetime)


def set_browser_cookie(response, name: str, value: str, max_age: int) -> None:
    """Set the long-lived browser cookie ``name`` (:func:`browser_cookie`) to ``value`` for ``max_age`` seconds
    under this app's ``secure_cookies``, with every cookie's flags (:func:`write_cookie`)."""
    write_cookie(response, name, value, current_app.config["IDP"].secure_cookies, max_age=max_age)


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


def rotate_session(*, fresh: bool = False, end: bool = False, continues: tuple[str, str] | None = None) -> None:
    """Give the current session a new id at the next save (sign-in, sign-out, password change).

    ``fresh``: this request proved a new sign-in, so the session is stored under its new id even when the
    old document is gone. ``continues``: the ``(uid, sid)`` of the sign-in that this fresh one re-authenticates
    (the same account, its OIDC ``sid`` kept): stored only while that sign-in lives, under the old id or the
    one another request of the browser rotated it to (a step in another tab, a double submit); ended meanwhile
    (a sign-out, "sign out everywhere", another account's sign-in), it stays ended with its ``sid``. Otherwise a
    rotation of a session that another request ended meanwhile ends it here too (the sign-out wins), and one that
    another request rotated meanwhile is left to it (the newer cookie stands). ``end``: the old session ends
    (sign-out): its document is deleted, no tombstone, so its requests still in flight drop their cookie."""
    s = flask_session._get_current_object()
    if isinstance(s, MongoSession):
        s.fresh = s.fresh or fresh
        s.end = s.end or end
        s.continues = continues if fresh else s.continues
        if not s.rotate:
            s.rotate = True
            s.old_sid = s.sid
            s.modified = True


def end_session_now() -> None:
    """End the current session's stored document now, not at the save (a sign-out, before it tells the sign-out
    hooks, which end what was made for the sign-in): what another request makes for the sign-in meanwhile and
    checks with :func:`sign_in_lives` once stored is either ended by the hooks or sees the end. The save that
    follows ends it as before (nothing left to end by then) and stores what the request put in the new session."""
    s = flask_session._get_current_object()
    if isinstance(s, MongoSession) and s.sid and not (s.stateless or s.superseded):
        current_app.session_interface._end(_key(s.sid), s.opened_uid)


def supersede_session_now() -> None:
    """Leave the current session's stored document a tombstone now, not at the save (another account signing in
    over its sign-in, before the sign-out hooks end that sign-in): as :func:`end_session_now`, what is made for
    the replaced sign-in meanwhile sees it gone (:func:`sign_in_lives`), while the browser's requests in flight
    leave its cookie alone (a tombstone, as a rotation leaves). The save then stores the new sign-in afresh."""
    s = flask_session._get_current_object()
    if isinstance(s, MongoSession) and s.sid and not (s.stateless or s.superseded):
        now = datetime.now(timezone.utc)
        current_app.session_interface.collection.replace_one({"_id": _key(s.sid), **_LIVE}, {
            "rotated": now, "expires": now + timedelta(seconds=ROTATED_GRACE_S)})


def sign_in_lives(uid: str, sid: str) -> bool:
    """Whether the sign-in ``(uid, sid)`` that this request read from its session is still stored: under the id
    the request read, or the one another request of the browser rotated it to. For what a request makes for the
    sign-in and stores elsewhere (an authorization code), checked after storing it: a sign-out (which ends its
    session before its hooks run, :func:`end_session_now`) either ended it or is seen here."""
    s = flask_session._get_current_object()
    if not isinstance(s, MongoSession) or not s.sid:
        return False
    iface = current_app.session_interface
    key = _key(s.sid)
    doc = iface.collection.find_one({"_id": key})
    if doc is not None and "rotated" not in doc:
        auth = (doc.get("data") or {}).get("auth") or {}
        return auth.get("uid") == uid and auth.get("sid") == sid
    return iface._lives(key, uid, sid)


def keep_only_if(check: Callable[[], bool], dropped: Callable[[], None] | None = None) -> None:
    """Store the session this request inserts (a sign-in) only if ``check()`` still holds once it is stored:
    it runs after the insert, and a False (or an error) deletes the new session, drops its cookie and then
    calls ``dropped`` (say, to audit that the sign-in did not stand). For what a sign-in proved against a
    record that another request may change and then end every session of (the password hash that a password
    change or reset replaces before it ends the account's sessions): either that end runs after the insert and
    deletes it, or the change was written before the check, which sees it."""
    s = flask_session._get_current_object()
    if isinstance(s, MongoSession):
        s.insert_checks.append((check, dropped))


ROTATED_GRACE_S = 180  # how long a rotated-away id is known as such: well beyond a request's run (sent
# before the rotation, answered after it); the browser holds the new cookie by then
ROTATED_OPEN_S = 15  # how long a request opening the rotated-away id is taken for one sent before the new cookie
# arrived (opened at once, as it arrives); later, the browser never got it (a lost response) and must not be
# kept from signing in for the rest of ROTATED_GRACE_S
ROTATIONS_FOLLOWED = 8  # a sign-out follows a chain of rotations this long at most (steps within ROTATED_GRACE_S)
_LIVE = {"rotated": {"$exists": False}}  # a session document, not the tombstone of a rotated-away id

ANSWERS = "request_answers"  # the collection of answer_once
ANSWER_WAIT_S = 5.0  # how long a request waits for the answer another request of its session is giving
_ANSWER_POLL_S = 0.05


def answer_once(name: str, created: float, make: Callable[[], dict], *, keep_s: float) -> dict | None:
    """The one answer to ``name``, the id of a request stored in this session (a pending authorization
    request): ``make()`` runs for the first request to ask, of all requests of all sessions, and its result
    is every answer: a request of this session asking meanwhile (the same form posted twice at once) waits
    for it (at most ``ANSWER_WAIT_S``) and gets the same. The claim is an insert under ``name`` into its own
    collection, kept as long as a session lives: a session document written back by a concurrent request
    (with the request still in it) cannot undo it. The result is kept ``keep_s`` seconds, encrypted under
    this session's cookie, which the database never holds, in a document of its own purged then (it is as large
    as the request's ``state``: kept as long as the claim, anonymous requests cancelled in a loop stored 7 KB each
    for 8 hours). A request stored (``created``, epoch seconds)
    longer ago than a session lives gets no answer: its claim, kept that long from the answer, may be purged
    already. None: no answer for this request (given to another session, expired, too old, or never given
    because its request failed). Without a stored session (no cookie yet) there is nothing stored to answer
    twice: ``make()`` answers."""
    from pymongo.errors import DuplicateKeyError
    s = flask_session._get_current_object()
    iface = current_app.session_interface
    if not isinstance(s, MongoSession) or not s.sid:  # no stored session: nothing stored to answer twice
        return make()
    if time.time() - created >= iface.lifetime.total_seconds():
        return None
    now = datetime.now(timezone.utc)
    try:
        iface.answers.insert_one({"_id": name, "claimed": now, "expires": now + iface.lifetime})
    except DuplicateKeyError:
        return kept_answer(name)
    try:
        value = make()
    except BaseException:  # no answer to keep: the claim goes, so no later post waits for one
        iface.answers.delete_one({"_id": name, "answered": {"$exists": False}})
        raise
    nonce = secrets.token_bytes(12)
    sealed = nonce + AESGCM(_answer_key(s.sid)).encrypt(nonce, json.dumps(value).encode(), name.encode())
    until = datetime.now(timezone.utc) + timedelta(seconds=keep_s)
    # the answer (as large as the request it carries back: its state) is its own document, purged once it is
    # given no more; only the small claim is kept as long as a session lives
    iface.answers.insert_one({"_id": _answer_id(name), "answer": sealed, "answer_until": until, "expires": until})
    iface.answers.update_one({"_id": name}, {"$set": {"answered": True}})
    return value


def _answer_id(name: str) -> str:
    """The id of the document holding the answer to the request ``name`` (request ids never contain '#')."""
    return name + "#answer"


def _request_id(name) -> bool:
    """Whether ``name`` may be a request id (not an answer document's id)."""
    return isinstance(name, str) and bool(name) and len(name) <= 100 and "#" not in name


def kept_answer(name: str) -> dict | None:
    """The answer :func:`answer_once` gave to ``name`` in this session, while it is kept; when the request
    that claimed it is still answering, waits for it (at most ``ANSWER_WAIT_S`` from the claim)."""
    from flask import current_app
    s = flask_session._get_current_object()
    if not isinstance(s, MongoSession) or not s.sid or not _request_id(name):
        return None
    answers = current_app.session_interface.answers
    deadline = time.monotonic() + ANSWER_WAIT_S
    while (doc := answers.find_one({"_id": name})) is not None and not ("answered" in doc or "answer" in doc):
        # an answer never written (its process died) is not waited for: a claim older than the wait has none
        claimed = doc.get("claimed")
        if time.monotonic() >= deadline or claimed is None or (
                datetime.now(timezone.utc) - claimed).total_seconds() >= ANSWER_WAIT_S:
            return None
        time.sleep(_ANSWER_POLL_S)
    if doc is not None and "answer" not in doc:  # (an answer written into its claim: an earlier version's)
        doc = answers.find_one({"_id": _answer_id(name)})
    if doc is None or doc["answer_until"] <= datetime.now(timezone.utc):
        return None
    sealed = bytes(doc["answer"])
    try:
        plain = AESGCM(_answer_key(s.sid)).decrypt(sealed[:12], sealed[12:], name.encode())
    except InvalidTag:  # given to another session
        return None
    return json.loads(plain)


def answer_claimed(name: str) -> bool:
    """Whether :func:`answer_once` claimed ``name`` (in any session): the claim is kept as long as a session
    lives, whether or not its answer still is."""
    from flask import current_app
    return _request_id(name) and current_app.session_interface.answers.find_one({"_id": name}, {"_id": 1}) is not None


def forget_answer(db, name: str) -> None:
    """The answer kept for ``name`` is given no more: what it carried is used up (a redeemed authorization
    code, which a replayed answer would make its client present a second time)."""
    now = datetime.now(timezone.utc)
    db[ANSWERS].update_one({"_id": _answer_id(name)}, {"$set": {"answer_until": now, "expires": now}})
    # an answer an earlier version wrote into its claim (read by kept_answer too); the claim itself stays
    db[ANSWERS].update_one({"_id": name, "answer": {"$exists": True}}, {"$set": {"answer_until": now}})


def _answer_key(sid: str) -> bytes:
    return hmac.new(sid.encode(), b"deepauth request answer", hashlib.sha256).digest()


class MongoSessionInterface(SessionInterface):
    def __init__(self, collection, lifetime_s: int, secure: bool, is_stateless=lambda path: False,
                 anon_lifetime_s: int = 600):
        self.collection = collection
        self.answers = collection.database[ANSWERS]  # see answer_once
        self.lifetime = timedelta(seconds=lifetime_s)
        self.anon_lifetime = timedelta(seconds=min(anon_lifetime_s, lifetime_s))
        self.secure = secure
        self.cookie_name = cookie_name("session", secure)
        self.is_stateless = is_stateless

    def open_session(self, app, request):
        if self.is_stateless(request.path):
            session = MongoSession(new=True)
            session.stateless = True
            return session
        sid = request.cookies.get(self.cookie_name)
        if sid and 20 <= len(sid) <= 100:
            try:
                doc = self.collection.find_one({"_id": _key(sid)})
            except UNAVAILABLE as e:  # raised again before the view (init_error_handlers), where a page can answer
                session = MongoSession(new=True)
                session.stateless, session.unavailable = True, e
                return session
            if doc and doc["expires"] > datetime.now(timezone.utc) and not self._sign_in_over(doc.get("data")):
                if "rotated" in doc:  # another request of this browser rotated it away
                    at = doc["rotated"]  # when
                    if isinstance(at, datetime) and datetime.now(timezone.utc) - at < timedelta(
                            seconds=ROTATED_OPEN_S):  # sent before its newer cookie arrived
                        session = MongoSession(new=True)
                        session.superseded = True
                        return session
                    return MongoSession(new=True)  # that cookie never arrived: opens nothing, as an ended id
                session = MongoSession(doc.get("data") or {}, sid=sid)
                session.expires = doc["expires"]
                session.opened_uid = (session.get("auth") or {}).get("uid")
                return session
        return MongoSession(new=True)

    def save_session(self, app, session: MongoSession, response):
        try:
            self._save(session, response)
        except UNAVAILABLE as e:  # the view's answer stands on a session that was not stored: "try again"
            from .errors import replace_with_outage
            replace_with_outage(response, e)

    def _save(self, session: MongoSession, response):
        if session.stateless or session.superseded:
            return
        if not session.modified:
            self._extend_anonymous(session, response)
            return
        now = datetime.now(timezone.utc)
        if not session:  # emptied: forget it
            if session.sid:
                key = _key(session.sid)
                if session.rotate:  # signed out: its id ends, whatever the document is now
                    self._end(key, session.opened_uid)
                elif not self.collection.delete_one({"_id": key, **_LIVE}).deleted_count:
                    self._gone(key, now, response)
                    return
                self._drop_cookie(response)
            return
        signed_in = bool((session.get("auth") or {}).get("uid"))
        expires = self._signed_in_until(session, now) if signed_in else now + self.anon_lifetime
        fields = {"data": dict(session), "expires": expires}
        new_sid = secrets.token_urlsafe(32)
        if session.rotate and session.sid:
            key = _key(session.sid)
            if session.end:
                live = self._end(key, session.opened_uid)
            else:  # the tombstone replaces the data at once: the old id opens nothing from here on
                live = self.collection.replace_one({"_id": key, **_LIVE}, {
                    "rotated": now, "next": _key(new_sid),
                    "expires": now + timedelta(seconds=ROTATED_GRACE_S)}).matched_count
                if not live and session.fresh and session.opened_uid not in (None, (
                        session.get("auth") or {}).get("uid")):
                    # another account signs in over a sign-in that a step of another tab moved meanwhile: that
                    # sign-in ended (its sign-out hooks ran in the view), so the session it moved to ends too
                    self._end_successor(self.collection.find_one({"_id": key}), session.opened_uid)
            if not live and (not session.fresh or (session.continues is not None and not self._lives(
                    key, *session.continues))):  # ended (it stays ended) or rotated by another request meanwhile
                self._gone(key, now, response)
                return
            session.sid = None
        if session.sid is None:  # created (or signed in afresh) by this request: the only insert
            session.sid = new_sid
            self.collection.insert_one({"_id": _key(session.sid), **fields})
            failed = self._failed_check(session)
            if failed is not None:  # what the sign-in proved changed meanwhile (keep_only_if)
                self.collection.delete_one({"_id": _key(session.sid)})
                self._drop_cookie(response)
                if failed[1] is not None:
                    failed[1]()
                return
        elif not self.collection.update_one({"_id": _key(session.sid), **_LIVE, "expires": {"$gt": now}},
                                            {"$set": fields}).matched_count:
            # signed out, ended elsewhere, expired or rotated while this request ran: never write it back
            self._gone(_key(session.sid), now, response)
            return
        write_cookie(response, "session", session.sid, self.secure, expires=expires)
        response.vary.add("Cookie")

    def _end(self, key: str, uid: str | None) -> bool:
        """End the session stored under ``key`` (a sign-out of the account ``uid``, signed in when the request
        read it) and, when another request of the browser rotated it away meanwhile (a tombstone naming the key
        it moved to, ``next``), the session it moved to if the same account is signed in there: a sign-out that
        read the session just before another tab's sign-in step ends the browser's sign-in, whichever id holds
        it now. Only for a signed-in session (an anonymous one read before a password step ends nothing of the
        sign-in made over it), and never another account's sign-in. Whether a session was ended."""
        doc = self.collection.find_one({"_id": key})
        if doc is None:
            return False
        ended = bool(self.collection.delete_one({"_id": key}).deleted_count) and "rotated" not in doc
        return self._end_successor(doc, uid) or ended

    def _successor(self, doc: dict | None) -> tuple[str, dict, list[str]] | None:
        """The live session that the tombstone ``doc`` leads to (through further rotations): its key, its
        document and the keys of the tombstones on the way; None when the chain ends in nothing."""
        passed = []
        for _ in range(ROTATIONS_FOLLOWED):
            if doc is None or "next" not in doc:
                return None
            key = doc["next"]
            doc = self.collection.find_one({"_id": key})
            if doc is None:
                return None
            if "rotated" not in doc:
                return key, doc, passed
            passed.append(key)  # rotated again: follow on
        return None

    def _end_successor(self, doc: dict | None, uid: str | None) -> bool:
        """End the session that the tombstone ``doc`` leads to if the account ``uid`` is signed in there, with
        the tombstones on the way; whether a session was ended."""
        found = self._successor(doc) if uid is not None else None
        if found is None or ((found[1].get("data") or {}).get("auth") or {}).get("uid") != uid:
            return False
        ended = bool(self.collection.delete_one({"_id": found[0], **_LIVE}).deleted_count)
        self.collection.delete_many({"_id": {"$in": found[2]}})
        return ended

    def _lives(self, key: str, uid: str, sid: str) -> bool:
        """Whether the sign-in ``(uid, sid)`` stored under ``key`` when a request read it still lives: ``key`` is
        a tombstone (rotated by another request of the browser) leading to a live session of that sign-in."""
        found = self._successor(self.collection.find_one({"_id": key, "rotated": {"$exists": True}}))
        auth = ((found[1].get("data") or {}).get("auth") or {}) if found is not None else {}
        return auth.get("uid") == uid and auth.get("sid") == sid

    def _signed_in_until(self, data, now: datetime) -> datetime:
        """When the sign-in stored in ``data`` (session data) ends: ``lifetime`` after its password step
        (``auth.at``, or ``auth.auth_time``), whatever was saved since; ``now + lifetime`` for data that records
        neither."""
        auth = (data or {}).get("auth") or {}
        since = auth.get("at") or auth.get("auth_time")
        if isinstance(since, bool) or not isinstance(since, (int, float)):
            return now + self.lifetime
        try:
            return min(now + self.lifetime, datetime.fromtimestamp(since, timezone.utc) + self.lifetime)
        except (OverflowError, OSError, ValueError):
            return now

    def _sign_in_over(self, data) -> bool:
        """Whether ``data`` (a stored session's) holds a sign-in whose lifetime has run out (stored by a version
        that extended a signed-in session at every save): it opens nothing."""
        if not ((data or {}).get("auth") or {}).get("uid"):
            return False
        now = datetime.now(timezone.utc)
        return self._signed_in_until(data, now) <= now

    @staticmethod
    def _failed_check(session: MongoSession) -> tuple | None:
        """The first :func:`keep_only_if` ``(check, dropped)`` of the request whose check does not hold (an
        error counts as not: fail closed), or None. The database unreachable is an outage, not a bug: it goes
        on to ``save_session``, which answers "try again" without the cookie (so the session just stored is
        never used), and is logged there, without a trace."""
        for entry in session.insert_checks:
            try:
                if entry[0]():
                    continue
            except UNAVAILABLE:
                raise
            except Exception:
                import logging
                logging.getLogger("idp.web").exception("session insert check failed")
            return entry
        return None

    def _gone(self, key: str, now: datetime, response) -> None:
        """The session this request read is no longer stored, so its writes are lost. Rotated away by another
        request of the browser (a tombstone under ``key``): that request's newer cookie stands, this response
        leaves the cookie alone. Ended (signed out, ended elsewhere, expired): the cookie is dropped."""
        if self.collection.find_one({"_id": key, "rotated": {"$exists": True}, "expires": {"$gt": now}}) is None:
            self._drop_cookie(response)

    def _extend_anonymous(self, session: MongoSession, response) -> None:
        """Keep a pre-sign-in session alive while it is used (someone reading the login page): at most one
        write per half lifetime, and only to a document that still exists (not to a tombstone)."""
        if not session.sid or session.expires is None or (session.get("auth") or {}).get("uid"):
            return
        now = datetime.now(timezone.utc)
        if session.expires - now > self.anon_lifetime / 2:
            return
        expires = now + self.anon_lifetime
        if self.collection.update_one({"_id": _key(session.sid), **_LIVE, "expires": {"$gt": now}},
                                      {"$set": {"expires": expires}}).matched_count:
            write_cookie(response, "session", session.sid, self.secure, expires=expires)
            response.vary.add("Cookie")

    def _drop_cookie(self, response) -> None:
        write_cookie(response, "session", None, self.secure)
        response.vary.add("Cookie")
