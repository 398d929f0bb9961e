"""Email verification shared by the sign-in and registration pages and the email pages.

Links are absolute on ``IDP_ISSUER``, never on the request's Host header, which an attacker could choose.
"""
from __future__ import annotations

from datetime import timedelta

from flask import render_template, session, url_for

from idp.mail import notify

from . import emaillinks
from .forms import ResendVerificationForm

VERIFY_SESSION_KEY = "verify_uid"  # the account that proved its password but has no verified email yet


def absolute_link(endpoint: str, **values) -> str:
    """The emailed form of a link to ``endpoint``: the configured issuer, then the route."""
    from idp import get_config
    return get_config().issuer + url_for(endpoint, **values)


def address_to_confirm(user: dict) -> str | None:
    """The address of ``user`` a confirmation link is for: its pending address, else its own one while it is
    unconfirmed; None when there is nothing to confirm."""
    if user.get("pending_email"):
        return user["pending_email"]
    return None if user.get("email_verified") else user.get("email")


def email_change_dropped(db, uid: str, dropped: str | None, reason: str) -> None:
    """After the account's pending email change was dropped (``dropped``, the address, or None when there was none):
    by a reset or a change of the password (:func:`users.set_password`: whoever secures the
    account after a compromise must not see a change asked for with the old password take effect later) or by its
    owner. The links sent for it are voided and the drop is audited with ``reason``."""
    from idp import audit
    if dropped is not None:
        emaillinks.revoke(db, uid, emaillinks.VERIFY)
        audit.record(db, audit.EMAIL_CHANGE_CANCELLED, user_id=uid, details={"reason": reason, "new_email": dropped},
                     **audit.request_context())


def send_verification(db, user: dict) -> str | None:
    """Mail a fresh verification link to :func:`address_to_confirm` (earlier links stop working); the address,
    or None when there is none. The greeting names no one: that address is not confirmed yet."""
    from idp.mail import greeting, send
    to = address_to_confirm(user)
    if not to:
        return None
    token = emaillinks.issue(db, emaillinks.VERIFY, user["_id"], to)
    body = (f"{greeting(user, confirmed=False)}\n\n"
            "Please confirm that this is your email address by opening this link within 24 hours:\n\n"
            f"{absolute_link('accounts.verify_email', token=token)}\n\n"
            "If you did not create an account or change its address, ignore this mail.\n\n— Deep Authenticator")
    send(db, to, "Confirm your email address", body, kind="verify_email", user_id=user["_id"])
    return to


def undo_link(db, uid: str, previous: str, changed_to: str) -> tuple[str, int]:
    """A fresh single-use link (``emaillinks.UNDO``) for the notice to ``previous``, the confirmed address the
    account just left for ``changed_to``, and its lifetime in seconds (``IDP_EMAIL_UNDO_WINDOW``). Needs the
    app (the issuer and the route)."""
    from idp import get_config
    window = get_config().email_undo_window_s
    token = emaillinks.issue(db, emaillinks.UNDO, uid, previous, changed_to=changed_to, lifetime_s=window)
    return absolute_link("accounts.undo_email_change", token=token), window


@notify.add_lines("account.email_changed")
def undo_lines(db, doc: dict) -> list[str]:
    """The notice of a change that took effect, to the previous (confirmed) address, carries a single-use link,
    valid for ``IDP_EMAIL_UNDO_WINDOW``, that undoes it (:func:`undo_link`). Without the app the notice goes
    without it (``idp.mail.notify`` logs why)."""
    details = doc["details"]
    link, window = undo_link(db, doc["user_id"], details["previous_email"], details.get("new_email") or "")
    until = (doc["at"] + timedelta(seconds=window)).strftime("%Y-%m-%d %H:%M UTC")
    return ["", "If you did not make this change, undo it with this link (it works once, until " + until + "):",
            "", link]


def verification_required(user: dict):
    """The page shown instead of signing in while the email is unverified (``IDP_REQUIRE_VERIFIED_EMAIL``)."""
    session[VERIFY_SESSION_KEY] = user["_id"]
    return render_template("accounts/verify_required.html", email=user["email"],
                           form=ResendVerificationForm()), 403
