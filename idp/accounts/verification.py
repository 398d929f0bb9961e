"""Email verification shared by the sign-in and registration pages and the email pages.

Links are absolute on ``IDP_ISSUER``, never on the request's Host header, which an attacker could choose.
"""
from __future__ import annotations

from flask import render_template, session, url_for

from . import emaillinks
from .forms import ResendVerificationForm

VERIFY_SESSION_KEY = "verify_uid"  # the account that proved its password but has no verified email yet


def absolute_link(endpoint: str, **values) -> str:
    """The emailed form of a link to ``endpoint``: the configured issuer, then the route."""
    from idp import get_config
    return get_config().issuer + url_for(endpoint, **values)


def send_verification(db, user: dict) -> None:
    """Mail a fresh verification link to the account's current address (earlier links stop working)."""
    from idp.mail import greeting, send
    token = emaillinks.issue(db, emaillinks.VERIFY, user["_id"], user["email"])
    body = (f"{greeting(user)}\n\n"
            "Please confirm that this is your email address by opening this link within 24 hours:\n\n"
            f"{absolute_link('accounts.verify_email', token=token)}\n\n"
            "If you did not create an account or change its address, ignore this mail.\n\n— Deep Authenticator")
    send(db, user["email"], "Confirm your email address", body, kind="verify_email", user_id=user["_id"])


def verification_required(user: dict):
    """The page shown instead of signing in while the email is unverified (``IDP_REQUIRE_VERIFIED_EMAIL``)."""
    session[VERIFY_SESSION_KEY] = user["_id"]
    return render_template("accounts/verify_required.html", email=user["email"],
                           form=ResendVerificationForm()), 403
