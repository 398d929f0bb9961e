"""Email pages: verification links, email change, "Forgot password?" and the reset link.

Every emailed link is absolute on ``IDP_ISSUER`` (never the request's Host header, which an attacker could
choose) and single use (``emaillinks``). Opening a link only shows a page; the token is used by the form
posted from it, so a mail scanner fetching the link does not spend it. A bad link (unknown, expired, used,
garbage) is a 400 page that says so and offers the way forward.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import logout_user

from idp.signin import sign_out
from idp.signin.guards import login_required, signed_in_uid
from idp.store import durable
from idp.throttle import wait_text
from idp.web.sessions import end_all_sessions

from idp import audit

from . import emaillinks, users
from .current import forget_user
from .forms import (ChangeEmailForm, ConfirmLinkForm, ForgotPasswordForm, ResendVerificationForm,
                    ResetPasswordForm)
from .grants import end_app_grants
from .guard import account_key, check_password, known_here
from .pages import WRONG_CURRENT_PASSWORD, bp, registration_wait, throttled_message
from .verification import VERIFY_SESSION_KEY, absolute_link, send_verification

FORGOT_SENT = ("If an account with that name or address exists, we sent a link to its email address. "
               "The link works once, for 30 minutes.")
RESET_DONE = "Your password was reset and every session and app was signed out. Sign in with the new password."
LINK_INVALID = "This link is not valid: it has expired, was already used or was replaced by a newer one."


def _db():
    from idp import get_db
    return get_db()


def _limited(user: dict | None, login_value: str = "") -> int:
    """Count one mail request on the client IP and on the account ``user`` (None: no account has the name
    typed, ``login_value``; counted under that name); the seconds to wait for the IP, -1 when only the account's
    limit is reached (answered like a success: the page must not tell accounts apart). A browser that vouches
    for the account (``guard.vouched_for``) is not counted on the IP: others behind a shared address spending
    its limit do not keep the account's owner from a reset mail; the account's own limit still holds."""
    ext = current_app.extensions["accounts"]
    from idp.web.proxy import limit_address

    from .guard import vouched_for
    if not vouched_for(user):
        wait = ext["mail_ip_limit"].hit(f"mail:ip:{limit_address(request.remote_addr)}")
        if wait:
            return wait
    user_id = user["_id"] if user else None
    account = user_id or f"login:{login_value}"
    return -1 if ext["mail_account_limit"].hit(f"mail:account:{account}", owner=user_id) else 0


def _too_many(wait: int):
    response = current_app.make_response((render_template(
        "accounts/message.html", title="Too many requests",
        message=f"Too many emails were requested from your network. Please wait {wait_text(wait)} and try again."),
        429))
    response.headers["Retry-After"] = str(wait)
    return response


def _invalid_link(endpoint_hint: str):
    return render_template("accounts/message.html", title="Link not valid", message=LINK_INVALID,
                           hint=endpoint_hint), 400


@bp.route("/verify-email/<token>", methods=["GET", "POST"])
def verify_email(token):
    db = _db()
    form = ConfirmLinkForm()
    if request.method == "GET" or not form.validate_on_submit():
        if emaillinks.peek(db, emaillinks.VERIFY, token) is None:
            return _invalid_link("verify")
        return render_template("accounts/confirm_link.html", form=form, title="Confirm your email address",
                               text="Confirm that this address belongs to you.")
    doc = emaillinks.consume(db, emaillinks.VERIFY, token)
    if (doc is None or users.deletion_claimed(users.get_user(db, doc["user_id"]))
            or not users.mark_email_verified(db, doc["user_id"], doc.get("email") or "")):
        return _invalid_link("verify")
    forget_user(doc["user_id"])
    audit.record(db, audit.EMAIL_VERIFIED, user_id=doc["user_id"], **audit.request_context())
    if session.get(VERIFY_SESSION_KEY) == doc["user_id"]:
        session.pop(VERIFY_SESSION_KEY, None)
    return render_template("accounts/message.html", title="Email address confirmed",
                           message="Thank you: your email address is confirmed.", hint="signin")


@bp.route("/verify-email/resend", methods=["POST"])
def resend_verification():
    db = _db()
    form = ResendVerificationForm()
    uid = signed_in_uid() or session.get(VERIFY_SESSION_KEY)
    user = users.get_user(db, uid) if uid and form.validate_on_submit() else None
    if user is None or users.deletion_claimed(user):
        return redirect(url_for("accounts.login"))
    wait = _limited(user)
    if wait > 0:
        return _too_many(wait)
    if not user.get("email_verified") and wait == 0:
        send_verification(db, user)
    return render_template("accounts/message.html", title="Check your email",
                           message=f"We sent a new confirmation link to {user['email']}. It works once, for 24 hours.",
                           hint="signin")


@bp.route("/account/email", methods=["GET", "POST"])
@login_required
def change_email():
    db, uid = _db(), signed_in_uid()
    user = users.get_user(db, uid)
    if user is None:
        logout_user()
        sign_out()
        return redirect(url_for("accounts.login"))
    form = ChangeEmailForm()
    status, wait = 200, 0
    if form.validate_on_submit():
        result = check_password(db, user, form.current_password.data)
        if result.wait:
            wait, status = result.wait, 429
            form.current_password.errors.append(throttled_message(wait))
        elif not result.ok:
            audit.record(db, audit.PASSWORD_CHANGE_FAILED, user_id=uid,
                         details={"reason": "wrong_password", "during": "email_change"}, **audit.request_context())
            form.current_password.errors.append(WRONG_CURRENT_PASSWORD)
        elif users.normalize_email(form.email.data) == user["email"]:
            form.email.errors.append("This is already your email address.")
        # the answer tells whether the address belongs to another account, as registration's does: counted
        # on the same limit, so a signed-in account is no faster oracle
        elif wait := registration_wait():
            status = 429
            form.email.errors.append(f"Too many attempts from your network. Please wait {wait_text(wait)} and try "
                                     "again.")
        else:
            previous = {"previous_email": user["email"], "previous_verified": bool(user.get("email_verified"))}
            try:
                users.set_email(db, uid, form.email.data)
            except users.DuplicateUser as e:
                form.email.errors.append(e.message)
            else:
                forget_user(uid)
                # every emailed link dies with the address it went to: a verification link proves nothing now,
                # and a reset link in the previous mailbox must not take the account back
                emaillinks.revoke(db, uid)
                user = users.get_user(db, uid)
                send_verification(db, user)
                # the previous address is told (idp.mail.notify): the new one may be an intruder's
                audit.record(db, audit.EMAIL_CHANGED, user_id=uid, details=previous, **audit.request_context())
                flash(f"Your email address is now {user['email']}. We sent a confirmation link to it.", "success")
                return redirect(url_for("accounts.account"))
    form.current_password.data = ""
    response = current_app.make_response((render_template("accounts/change_email.html", form=form), status))
    if status == 429:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/forgot", methods=["GET", "POST"])
def forgot_password():
    """Same page, same work whether or not the account exists: a link is mailed only when it does."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        db = _db()
        login_value = form.login.data.strip().lower()
        user = users.find_for_sign_in(db, login_value)
        wait = _limited(user, login_value)
        if wait > 0:
            return _too_many(wait)
        audit.record(db, audit.PASSWORD_RESET_REQUESTED, user_id=user["_id"] if user else None,
                     details={"sent": bool(user) and wait == 0}, **audit.request_context())
        if user is None and wait == 0:
            # the same token write as for an account (a link to nobody, unusable, purged at expiry), so
            # the database work - and the time - hardly differ; only the outbox insert is missing
            emaillinks.issue(db, emaillinks.RESET, None)
        if user is not None and wait == 0:
            from idp.mail import greeting, send
            token = emaillinks.issue(db, emaillinks.RESET, user["_id"], user["email"],
                                     password_hash=user["password_hash"])
            body = (f"{greeting(user)}\n\n"
                    "Someone (hopefully you) asked to reset the password of your account. To choose a new "
                    "password, open this link within 30 minutes:\n\n"
                    f"{absolute_link('accounts.reset_password', token=token)}\n\n"
                    "The link works once. If you did not ask for it, ignore this mail: your password stays as it "
                    "is.\n\n— Deep Authenticator")
            send(db, user["email"], "Reset your password", body, kind="reset_password", user_id=user["_id"])
        return render_template("accounts/message.html", title="Check your email", message=FORGOT_SENT,
                               hint="signin")
    return render_template("accounts/forgot.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    db = _db()
    doc = emaillinks.peek(db, emaillinks.RESET, token)
    user = users.get_user(db, doc["user_id"]) if doc else None
    # made for the account as it is: an email or password change since (racing the request that made the link,
    # which their deletion of the account's links missed) voids it
    if user is None or users.deletion_claimed(user) or not emaillinks.fits(doc, user):
        return _invalid_link("forgot")
    form = ResetPasswordForm(user=user)
    if form.validate_on_submit():
        # Used up only now, atomically: of two racing submissions one wins, the other sees a used link. The
        # write replaces only the hash read with the link: a password change that won meanwhile (it voids
        # reset links) is not overwritten by a link it should have voided.
        if emaillinks.consume(db, emaillinks.RESET, token) is None:
            return _invalid_link("forgot")
        new_hash = users.set_password(db, user["_id"], form.new_password.data, replacing=user["password_hash"])
        if new_hash is None:
            return _invalid_link("forgot")
        uid = user["_id"]
        emaillinks.revoke(db, uid, emaillinks.RESET)
        if not user.get("email_verified"):
            users.mark_email_verified(db, uid, user["email"])  # the mailbox just proved itself
        forget_user(uid)
        ended = end_all_sessions(durable(db, "sessions"), uid)
        revoked = end_app_grants(db, uid)
        current_app.extensions["accounts"]["user_throttle"].success(account_key(user))
        logout_user()
        sign_out()  # whatever this browser was signed in as
        known_here(uid, new_hash)  # it set the new password: its owner signing in here is not held back by the address
        audit.record(db, audit.PASSWORD_RESET, user_id=uid,
                     details={"sessions_ended": ended, "app_grants_ended": revoked}, **audit.request_context())
        flash(RESET_DONE, "success")
        return redirect(url_for("accounts.login"))
    form.new_password.data = ""
    form.confirm.data = ""
    return render_template("accounts/reset.html", form=form, token=token)
