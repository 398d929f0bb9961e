"""The accounts blueprint, and what its two page modules share: ``views`` (registration, the password step,
the account page, sign-out) and ``emailviews`` (the email pages); each adds its routes to ``bp``."""
from __future__ import annotations

from flask import Blueprint, current_app, request

from idp.throttle import Throttle, wait_text

bp = Blueprint("accounts", __name__)

WRONG_CURRENT_PASSWORD = "Your current password is not correct."


def registration_wait() -> int:
    """Count one attempt on the registration limit of the client IP (``IDP_REGISTER_IP_LIMIT`` per
    ``IDP_REGISTER_IP_WINDOW``; 0 = off); the seconds to wait, 0 when allowed. Every form whose answer tells
    whether an address or name is taken (registration, email change) counts here: one limit for all."""
    from idp.web.proxy import limit_address
    throttle: Throttle | None = current_app.extensions["accounts"]["register_throttle"]
    return throttle.reserve(f"register:ip:{limit_address(request.remote_addr)}")[0] if throttle is not None else 0


def throttled_message(seconds: int) -> str:
    return f"Too many failed sign-in attempts. Please wait {wait_text(seconds)} and try again."
