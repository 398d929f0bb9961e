"""View guards: a page that needs a fully signed-in user (every applicable step passed), and
administration pages, which also need the face (amr "face")."""
from __future__ import annotations

import functools

from flask import redirect, request, session, url_for

from .flow import EXTENSION, auth_state, clear_request, flow


def still_usable(uid: str) -> bool:
    """Whether the account a session signed in as may still sign in (the flow's ``account_usable``, which the
    accounts feature gives: ``idp.accounts.current.usable_user``: exists, not disabled, no deletion claimed it).
    If not, the session forgets its sign-in, so the flow starts again at the password step (which refuses it)
    instead of going round between a page and the resume URL, and nothing more is made for the account in this
    session."""
    from flask import current_app

    signin = current_app.extensions.get(EXTENSION)
    usable = signin.account_usable if signin is not None else None
    if usable is None or usable(uid):
        return True
    session.pop("auth", None)
    return False


def signed_in_uid() -> str | None:
    """The user id when the session has passed every applicable sign-in step and its account may still sign
    in (:func:`still_usable`), else None: a session signed in before an account was disabled or claimed for
    deletion opens no page from then on."""
    state = auth_state()
    if not state.uid:
        return None
    if flow.next_step(state, None) is not None:
        return None
    return state.uid if still_usable(state.uid) else None


def login_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if signed_in_uid() is None:
            clear_request()  # the sign-in is for this page, not for a request another tab left pending
            session["next"] = request.full_path if request.method == "GET" else url_for("accounts.account")
            return redirect(flow.next_url())
        return view(*args, **kwargs)
    return wrapper


ADMIN_METHOD = "face"  # the amr value an administration session must carry (and the step that proves it)


def admin_required(view):
    """An administrator whose session proved the face (amr "face"): a password-only or recovery-code
    session is sent to the face step (enrollment first for an administrator without a template) and
    comes back here, not into a request another tab left pending (set aside: that tab's pages name it,
    ``idp.signin.follow_request``); with face sign-in off, administration pages are refused (use the command
    line)."""
    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        from idp import get_config, get_db
        from idp.web import abort_with
        user = get_db().users.find_one({"_id": signed_in_uid()}, {"is_admin": 1})
        if not user or not user.get("is_admin"):
            abort_with(403, "This page is for administrators.")
        if ADMIN_METHOD not in auth_state().amr:
            step = next((s for s in flow.steps if s.name == ADMIN_METHOD), None)
            if step is None or not get_config().face_enabled:
                abort_with(403, "Administration pages need a face sign-in, and face sign-in is turned off on "
                                "this server. Use the idp command line instead.")
            session["next"] = request.full_path.rstrip("?") if request.method == "GET" else url_for("accounts.account")
            clear_request()  # the step-up is for this page, not for a request another tab left pending
            return redirect(url_for(step.endpoint))
        return view(*args, **kwargs)
    return wrapper
