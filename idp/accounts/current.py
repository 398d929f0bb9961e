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


def note_request_account() -> None:
    """(before each request) The account this browser's session has proved a password for as the request begins
    (signed in, or on its way through the sign-in steps), for :func:`erased_meanwhile`."""
    from idp.signin import auth_state
    g._idp_account_at_start = auth_state().uid


def erased_meanwhile(response):
    """(after each request) Every request made for an account (the one its session proved a password for as it
    began or as it ends, or whose email address it is confirming) reads the account again: when a deletion
    claimed it while the view ran, what the view wrote under it (an audit entry, a notice, an emailed link, ...)
    may have come after the erasure passed those collections, so it goes again
    (``users.erased_if_claimed_since``). When that account is the one the session acts for (signed in as it at the
    end of the request, else at its start), the browser is signed out and the answer is the sign-in page (JSON
    401 to the pages' API), unless it is addressed to a relying party (the authorization and end-session
    endpoints: ``ApiRegistry.answers_relying_parties``), which gets its protocol answer; an account the session
    only had an address to confirm for is forgotten by the session. A request that failed (5xx) reads nothing."""
    from flask import redirect, request, session, url_for
    from flask_login import logout_user

    from idp.signin import auth_state, sign_out
    from idp.web.api import api_registry
    from idp.web.errors import error_response, wants_json

    from .verification import VERIFY_SESSION_KEY
    started = g.pop("_idp_account_at_start", None)
    if response.status_code >= 500:  # (the database may be what failed: the error is answered as it is)
        return response
    acting = auth_state().uid or started
    uids = {started, acting, session.get(VERIFY_SESSION_KEY)}
    db = current_app.extensions["db"]
    erased = {uid for uid in sorted(u for u in uids if isinstance(u, str)) if users.erased_if_claimed_since(db, uid)}
    if not erased:
        return response
    if session.get(VERIFY_SESSION_KEY) in erased:
        session.pop(VERIFY_SESSION_KEY, None)
    if acting not in erased:
        return response
    g.pop("known_browser", None)  # (guard.remember_browser) no cookie vouching for a deleted account
    logout_user()
    sign_out()
    if api_registry(current_app).answers_relying_parties(request.path):
        return response
    if wants_json():
        return error_response(401, "This account no longer exists.", "login_required")
    return redirect(url_for("accounts.login"))
