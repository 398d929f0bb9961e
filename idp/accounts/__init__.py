"""Accounts: registration, the password sign-in step, the account page, users repository, throttling.

Public pieces for other features:
  ``idp.accounts.users``    create_user, get_user, find_by_login, verify_password, authenticate, delete_user;
                            request_email_change / confirm_email / cancel_email_change (a change of a confirmed
                            address is pending until its link is used)
  ``idp.accounts.throttle`` Throttle(db, free_failures, base_delay_s, max_delay_s).reserve/release/success,
                            RateLimit(db, limit, window_s).hit, wait_text(seconds)
  ``idp.accounts.load_user(uid)`` the flask-login user loader (pass it to ``idp.signin.advance``)
  ``idp.accounts.request_user(db, uid)`` the users document, read at most once per request
  ``idp.accounts.usable_user(db, uid)``  the same, or None when the account may not sign in
  ``idp.accounts.guard.check_password`` the one throttled password check (sign-in, password change, ...)
  ``idp.accounts.emaillinks`` single-use hashed tokens of emailed links (verification 24 h, reset 30 min)

Hook other packages fill: ``app.extensions["idp_end_user_grants"]``, callables ``(db, user_id) -> int`` that
end what apps hold for a user (OAuth tokens); run on password change and "sign out everywhere".
"""
from __future__ import annotations

from flask import g, has_request_context, session
from flask_login import LoginManager, UserMixin

from .throttle import RateLimit, Throttle


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
    from . import users
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
    from . import users
    doc = request_user(db, uid) if uid else None
    return doc if users.may_sign_in(doc) else None


def forget_user(uid: str | None = None) -> None:
    """Drop the request's cached users document(s) (after changing or deleting one)."""
    if has_request_context():
        cache = g.get("_idp_user_docs")
        if cache is not None:
            cache.clear() if uid is None else cache.pop(uid, None)


def end_app_grants(db, uid: str) -> int:
    """End every grant apps hold for ``uid`` (the ``idp_end_user_grants`` hooks); returns how many ended."""
    from flask import current_app
    return sum(int(hook(db, uid) or 0) for hook in current_app.extensions.get("idp_end_user_grants", []))


def load_user(uid: str):
    from flask import current_app
    return current_app.extensions["accounts"]["load_user"](uid)


def init_app(app) -> None:
    from idp import get_config, get_db

    from . import emailviews  # noqa: F401  (its routes join the accounts blueprint)
    from .views import bp

    config = get_config(app)
    db = get_db(app)

    def _load_user(uid):
        # flask-login's user must be the one the sign-in steps proved (defence in depth).
        if not uid or (session.get("auth") or {}).get("uid") != uid:
            return None
        doc = usable_user(db, uid)
        return User(doc) if doc else None  # disabled or being deleted: ended at once

    manager = LoginManager()
    manager.login_view = "accounts.login"
    manager.session_protection = None  # session ids are rotated at sign-in; IP changes are legitimate
    manager.user_loader(_load_user)
    manager.init_app(app)

    window = config.register_ip_window_s
    app.extensions["accounts"] = {
        "load_user": _load_user,
        "user_throttle": Throttle(db, config.login_free_failures, config.login_base_delay_s,
                                  config.login_max_delay_s),
        "ip_throttle": Throttle(db, config.login_ip_free_failures, config.login_base_delay_s,
                                config.login_max_delay_s),
        # Each registration attempt counts (before hashing, created or not); the one reaching the limit blocks
        # the IP for a window, and the count is forgotten a window after the last attempt (or the block's end).
        "register_throttle": (Throttle(db, config.register_ip_limit, window, window, reset_after_s=window)
                              if config.register_ip_limit > 0 else None),
        # Reset and verification mails asked for, per client IP and per account (or name typed), per hour.
        "mail_ip_limit": RateLimit(db, config.reset_ip_limit, 3600),
        "mail_account_limit": RateLimit(db, config.reset_account_limit, 3600),
    }
    app.register_blueprint(bp)
    from .guard import remember_browser
    app.after_request(remember_browser)
    # The password step is the first step of the sign-in; a sign-in without a pending authorization
    # request ends on the account page.
    from idp.signin import flow_for

    from .step import password_step
    flow = flow_for(app)
    flow.register(password_step("accounts.login"))
    flow.home_endpoint = "accounts.account"
