"""View guards: a page that needs a fully signed-in user (every applicable step passed)."""
from __future__ import annotations

import functools

from flask import redirect, request, session, url_for

from .flow import auth_state, flow


def signed_in_uid() -> str | None:
    """The user id when the session has passed every applicable sign-in step, else None."""
    state = auth_state()
    if not state.uid:
        return None
    if flow.next_step(state, None) is not None:
        return None
    return state.uid


def login_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if signed_in_uid() is None:
            session.pop("authz", None)
            session["next"] = request.full_path if request.method == "GET" else url_for("accounts.account")
            return redirect(flow.next_url())
        return view(*args, **kwargs)
    return wrapper


def admin_required(view):
    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        from idp import get_db
        from idp.web import abort_with
        user = get_db().users.find_one({"_id": signed_in_uid()}, {"is_admin": 1})
        if not user or not user.get("is_admin"):
            abort_with(403, "This page is for administrators.")
        return view(*args, **kwargs)
    return wrapper
