"""Accounts: registration, the password sign-in step, the account page, users repository, throttling.

Public pieces for other features:
  ``idp.accounts.users``    create_user, get_user, find_by_login, verify_password, authenticate, delete_user
  ``idp.accounts.throttle`` Throttle(db, free_failures, base_delay_s, max_delay_s).check/failure/success
  ``idp.accounts.load_user(uid)`` the flask-login user loader (pass it to ``idp.signin.advance``)
"""
from __future__ import annotations

from flask import session
from flask_login import LoginManager, UserMixin

from .throttle import Throttle


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


def load_user(uid: str):
    from flask import current_app
    return current_app.extensions["accounts"]["load_user"](uid)


def init_app(app) -> None:
    from idp import get_config, get_db

    from . import users
    from .views import bp

    config = get_config(app)
    db = get_db(app)

    def _load_user(uid):
        # flask-login's user must be the one the sign-in steps proved (defence in depth).
        if not uid or (session.get("auth") or {}).get("uid") != uid:
            return None
        doc = users.get_user(db, uid)
        return User(doc) if doc else None

    manager = LoginManager()
    manager.login_view = "accounts.login"
    manager.session_protection = None  # session ids are rotated at sign-in; IP changes are legitimate
    manager.user_loader(_load_user)
    manager.init_app(app)

    extra = config.extra
    app.extensions["accounts"] = {
        "load_user": _load_user,
        "user_throttle": Throttle(db, config.login_free_failures, config.login_base_delay_s,
                                  config.login_max_delay_s),
        "ip_throttle": Throttle(db, extra.get("login_ip_free_failures", 4 * config.login_free_failures),
                                config.login_base_delay_s, config.login_max_delay_s),
    }
    app.register_blueprint(bp)
