"""Accounts: registration, the password sign-in step, the account page, users repository.

Public pieces for other features:
  ``idp.accounts.users``    create_user, get_user, find_by_login, verify_password, authenticate, delete_user;
                            request_email_change / confirm_email / cancel_email_change (a change of a confirmed
                            address is pending until its link is used) / restore_email (its undo)
  ``idp.accounts.current``  load_user(uid), the flask-login user loader (pass it to ``idp.signin.advance``);
                            request_user(db, uid), the users document, read at most once per request;
                            usable_user(db, uid), the same, or None when the account may not sign in
  ``idp.accounts.guard.check_password`` the one throttled password check (sign-in, password change, ...)
  ``idp.accounts.emaillinks`` single-use hashed tokens of emailed links (verification 24 h, reset 30 min,
                            undo of an email change IDP_EMAIL_UNDO_WINDOW)

Hook other packages fill: ``app.extensions["idp_end_user_grants"]``, callables ``(db, user_id) -> int`` that
end what apps hold for a user (OAuth tokens); run on password change and "sign out everywhere"
(``idp.accounts.grants.end_app_grants``).
"""
from __future__ import annotations

from flask import session
from flask_login import LoginManager

from idp.throttle import RateLimit, Throttle

from .current import User, usable_user


def init_app(app) -> None:
    from idp import get_config, get_db

    from . import emailviews, views  # noqa: F401  (their routes join the accounts blueprint)
    from .pages import bp

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
    from .current import erased_meanwhile, note_request_account
    from .guard import remember_browser
    app.after_request(remember_browser)
    # registered after remember_browser, so it runs first (Flask runs after-request functions in reverse)
    app.before_request(note_request_account)
    app.after_request(erased_meanwhile)
    # The password step is the first step of the sign-in; a sign-in without a pending authorization
    # request ends on the account page.
    from idp.signin import flow_for

    from .step import password_step
    flow = flow_for(app)
    flow.register(password_step("accounts.login"))
    flow.home_endpoint = "accounts.account"
    flow.account_usable = lambda uid: usable_user(db, uid) is not None
