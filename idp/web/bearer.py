"""The bearer secrets an operator chooses - ``IDP_REGISTRATION_TOKEN`` (RFC 7591 initial access token) and
``IDP_METRICS_TOKEN`` (``/metrics``) - checked one way, under a failure throttle per client network.

``check`` counts the request on ``bearer:<name>:ip:<network>`` (``idp.web.proxy.limit_address``) with the
password throttle's mechanism (``idp.throttle.Throttle.reserve``: in the ``throttles`` collection,
shared by every worker and instance, a compare-and-set so that parallel requests cannot overshoot) *before*
the token is compared; the right token takes its count back (``release``). After
``IDP_BEARER_IP_FREE_FAILURES`` requests without the right token from one network, that network waits
``IDP_LOGIN_BASE_DELAY`` seconds, doubling up to ``IDP_LOGIN_MAX_DELAY``, and while it waits every request is
refused before any comparison, the right token too (fail closed: a guess is never confirmed by being let
through). The throttle lives in the database: with a token set, its endpoint needs the database to answer.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import jsonify, request


def sent_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case, RFC 6750 §2.1)."""
    parts = (authorization or "").split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1].strip()


def matches(authorization: str | None, expected: str | None) -> bool:
    """Whether the header carries ``expected`` (compared in constant time); never for an unset secret."""
    given = sent_token(authorization)
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class BearerCheck:
    ok: bool
    wait: int = 0  # > 0: the client's network is throttled for that many seconds; nothing was compared


def check(db, config, name: str, expected: str) -> BearerCheck:
    """The current request's bearer token against ``expected`` (the secret called ``name``), throttled in ``db``
    as the app's ``config`` says."""
    from idp.throttle import Throttle
    from idp.web.proxy import limit_address

    throttle = Throttle(db, config.bearer_ip_free_failures, config.login_base_delay_s, config.login_max_delay_s)
    wait, held = throttle.reserve(f"bearer:{name}:ip:{limit_address(request.remote_addr)}")
    if wait:
        return BearerCheck(False, wait)
    if not matches(request.headers.get("Authorization"), expected):
        return BearerCheck(False)
    throttle.release(held)
    return BearerCheck(True)


def throttled_response(wait: int):
    """429 ``slow_down`` (an OAuth-style JSON error) with ``Retry-After``."""
    from idp.throttle import wait_text
    resp = jsonify(error="slow_down", error_description="Too many requests without the right token from your "
                                                        f"network. Wait {wait_text(wait)} and try again.")
    resp.status_code = 429
    resp.headers["Retry-After"] = str(wait)
    resp.headers["Cache-Control"] = "no-store"
    return resp
