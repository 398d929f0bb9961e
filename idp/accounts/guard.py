"""The one way a password is checked in a request: on the account counter and the client-IP counter.

Every place that verifies a password (the sign-in page, password change, face re-enrollment, ...) calls
``check_password``. It reserves the attempt on both counters *before* running argon2 (see
``Throttle.reserve``), so parallel guesses cannot overshoot the limit, and it counts on one key per account
— ``pwd:user:<user id>`` — whichever name (username or email) was typed and whichever page asked. An
unknown name counts on ``pwd:login:<name as typed>`` and the IP, and is verified against a dummy hash: same
work, same answers, same throttling as an existing account, so neither timing nor throttling tells them
apart. The client IP is ``request.remote_addr``, which ``idp.web.proxy`` corrects behind trusted proxies.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request

from . import users


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    wait: int = 0  # > 0: throttled for that many seconds; the password was not checked at all


def account_key(user: dict | None, login_value: str | None = None) -> str:
    if user is not None:
        return f"pwd:user:{user['_id']}"
    return f"pwd:login:{(login_value or '').strip().lower()}"


def ip_key() -> str:
    from idp.web.proxy import limit_address
    return f"pwd:ip:{limit_address(request.remote_addr)}"


def check_password(db, user: dict | None, password: str, *, login_value: str | None = None) -> PasswordCheck:
    """Verify ``password`` for ``user`` (None = unknown account named ``login_value``) under the throttles.

    A wrong password stays counted on both keys; a right one forgets the account's failures and is not
    counted against the address."""
    ext = current_app.extensions["accounts"]
    user_throttle, ip_throttle = ext["user_throttle"], ext["ip_throttle"]
    akey = account_key(user, login_value)
    wait, held_account = user_throttle.reserve(akey)
    if wait:
        return PasswordCheck(False, wait)
    wait, held_ip = ip_throttle.reserve(ip_key())
    if wait:
        user_throttle.release(held_account)
        return PasswordCheck(False, wait)
    if not users.verify_password(db, user, password):
        return PasswordCheck(False)
    user_throttle.success(akey)
    ip_throttle.release(held_ip)
    return PasswordCheck(True)
