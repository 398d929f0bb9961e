"""Account events for the shared audit log (``idp.audit``): ids and outcomes only, never secrets."""
from __future__ import annotations

import logging

log = logging.getLogger("idp.accounts")

REGISTER = "account.register"
LOGIN = "account.login"
LOGIN_FAILED = "account.login_failed"
LOGIN_THROTTLED = "account.login_throttled"
SIGN_OUT = "account.sign_out"
PASSWORD_CHANGED = "account.password_changed"
PASSWORD_CHANGE_FAILED = "account.password_change_failed"  # wrong current password (or throttled)
SIGNED_OUT_EVERYWHERE = "account.signed_out_everywhere"  # every session and app token of the account ended
PASSWORD_RESET = "account.password_reset"  # through an emailed link: every session and app token ended
PASSWORD_RESET_REQUESTED = "account.password_reset_requested"  # user_id None when no such account
EMAIL_CHANGED = "account.email_changed"
EMAIL_VERIFIED = "account.email_verified"
LOGIN_UNVERIFIED = "account.login_unverified"  # right password, email not verified (IDP_REQUIRE_VERIFIED_EMAIL)
EVENTS = (REGISTER, LOGIN, LOGIN_FAILED, LOGIN_THROTTLED, SIGN_OUT, PASSWORD_CHANGED, PASSWORD_CHANGE_FAILED,
          SIGNED_OUT_EVERYWHERE, PASSWORD_RESET, PASSWORD_RESET_REQUESTED, EMAIL_CHANGED, EMAIL_VERIFIED,
          LOGIN_UNVERIFIED)


def record(db, event: str, user_id: str | None = None, **details) -> None:
    from flask import has_request_context, request

    from idp import audit
    ip = ua = None
    if has_request_context():
        ip, ua = request.remote_addr, request.user_agent.string
    try:
        audit.record(db, event, user_id=user_id, ip=ip, user_agent=ua, details=details or None)
    except Exception:  # auditing must never break a sign-in
        log.exception("audit write failed", extra={"event": event})
    log.info(event, extra={"user_id": user_id})
