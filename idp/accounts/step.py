"""The password step of the sign-in flow (``idp.signin``), always the first step.

``satisfied``: the session proved the password (amr ``pwd``), and — when the pending authorization
request sets a bound (``prompt=login``, ``max_age``) — that login completed at or after the bound, to the
microsecond (a login in the same whole second as a ``prompt=login`` request does not count).
"""
from __future__ import annotations

from idp.signin.flow import AuthState, PendingRequest, Step

STEP_NAME = "password"


def password_satisfied(state: AuthState, request: PendingRequest | None) -> bool:
    if not state.uid or "pwd" not in state.amr or state.auth_time is None:
        return False
    if request is not None and request.min_auth_time is not None:
        at = state.authenticated_at if state.authenticated_at is not None else state.auth_time
        return at >= request.min_auth_time
    return True


def password_step(endpoint: str) -> Step:
    """The password step, answered at ``endpoint`` (the login page)."""
    return Step(name=STEP_NAME, endpoint=endpoint, satisfied=password_satisfied)
