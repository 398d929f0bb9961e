"""The one way a password is checked in a request: on the account counter and the client-IP counter.

Every place that verifies a password (the sign-in page, password change, face re-enrollment, ...) calls
``check_password``. It reserves the attempt on both counters *before* running argon2 (see
``Throttle.reserve``), so parallel guesses cannot overshoot the limit, and it counts on one key per account
— ``pwd:user:<user id>`` — whichever name (username or email) was typed and whichever page asked. An
unknown name counts on ``pwd:login:<name as typed>`` and the IP, and is verified against a dummy hash: same
work, same answers, same throttling as an existing account, so neither timing nor throttling tells them
apart. The client IP is ``request.remote_addr``, which ``idp.web.proxy`` corrects behind trusted proxies.

The address counter stops one address spraying guesses over many accounts; it must not let that address (an
office, campus or carrier NAT: everyone behind it) lock its other users out, since a block refuses the right
password too. So a browser that vouches for the account - a signed cookie naming it, set when its password
was right in this browser (:func:`remember_browser`, ``KNOWN_BROWSER_MAX_AGE_S``; a password change or reset
ends it), or a session signed in as it - is not counted on the address: its guesses count on the account's
counter only, as everyone's do.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, request

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


KNOWN_BROWSER_MAX_AGE_S = 90 * 24 * 3600  # how long a browser where the password was right vouches for the account
_KNOWN_BROWSER_SALT = "deepauth known browser"


def known_browser_cookie() -> str:
    from idp.web.sessions import browser_cookie
    return browser_cookie("known-browser")


def _signer(password_hash: str | None):
    """Signs for the account's password of ``password_hash``: a password change or reset (the answer to a password
    known to someone else) ends what every other browser vouched for with the old one, as it ends their sessions."""
    from idp.keyring import signer
    return signer(current_app.config["IDP"], f"{_KNOWN_BROWSER_SALT}\0{password_hash or ''}")


def vouched_for(user: dict | None) -> bool:
    """Whether this browser vouches for ``user``: its known-browser cookie names the account, or its session is
    signed in as it."""
    if user is None:
        return False
    from itsdangerous import BadData

    from idp.signin.guards import signed_in_uid
    if signed_in_uid() == user["_id"]:
        return True
    token = request.cookies.get(known_browser_cookie())
    if not token or len(token) > 512:
        return False
    try:
        return _signer(user.get("password_hash")).loads(token, max_age=KNOWN_BROWSER_MAX_AGE_S) == user["_id"]
    except BadData:
        return False


def known_here(uid: str, password_hash: str) -> None:
    """This browser knows the account's password of ``password_hash`` (right in this request, or set here: a
    change, a reset): :func:`remember_browser` makes it a known browser for the account, for that password only
    (not for one stored meanwhile by someone else)."""
    g.known_browser = (uid, password_hash)


def remember_browser(response):
    """(after each request) The known-browser cookie for the account whose password this browser showed it knows
    in this request (:func:`known_here`)."""
    known = g.pop("known_browser", None)
    if known is not None:
        from idp.web.sessions import set_browser_cookie
        uid, password_hash = known
        set_browser_cookie(response, "known-browser", _signer(password_hash).dumps(uid), KNOWN_BROWSER_MAX_AGE_S)
    return response


def check_password(db, user: dict | None, password: str, *, login_value: str | None = None) -> PasswordCheck:
    """Verify ``password`` for ``user`` (None = unknown account named ``login_value``) under the throttles.

    A wrong password stays counted on both keys (on the account's alone from a browser that vouches for the
    account, :func:`vouched_for`); a right one forgets the account's failures, is not counted against the
    address, and makes the browser a known one for the account."""
    ext = current_app.extensions["accounts"]
    user_throttle, ip_throttle = ext["user_throttle"], ext["ip_throttle"]
    akey = account_key(user, login_value)
    wait, held_account = user_throttle.reserve(akey)
    if wait:
        return PasswordCheck(False, wait)
    held_ip = None
    if not vouched_for(user):
        wait, held_ip = ip_throttle.reserve(ip_key())
        if wait:
            user_throttle.release(held_account)
            return PasswordCheck(False, wait)
    if not users.verify_password(db, user, password):
        return PasswordCheck(False)
    user_throttle.success(akey)
    ip_throttle.release(held_ip)
    known_here(user["_id"], user["password_hash"])  # (verify_password keeps it the stored one across a rehash)
    return PasswordCheck(True)
