"""Registration, the password step, the account page and sign-out."""
from __future__ import annotations

import logging

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import logout_user

from idp.signin import advance, complete_step, follow_posted_request, pending_request, sign_out
from idp.signin.guards import login_required, signed_in_uid
from idp.store import durable
from idp.throttle import wait_text
from idp.web import error_response, rotate_session
from idp.web.sessions import browser_cookie, end_all_sessions, end_other_sessions, keep_only_if, set_browser_cookie

from idp import audit

from . import devices, users
from .current import forget_user, load_user, remember_user
from .forms import (ChangePasswordForm, LoginForm, RegisterForm, ResendVerificationForm, SignOutEverywhereForm,
                    SignOutForm)
from .grants import end_app_grants
from .guard import check_password, known_here
from .pages import WRONG_CURRENT_PASSWORD, bp, registration_wait, throttled_message
from .verification import email_change_dropped, send_verification, verification_required

log = logging.getLogger("idp.accounts")

INVALID_CREDENTIALS = "Invalid username or password."
# Shown only after the right password, so it tells nothing to someone guessing.
ACCOUNT_DISABLED = "This account is disabled and cannot sign in. Contact your administrator."
PASSWORD_CHANGED_MEANWHILE = ("Your password was changed meanwhile (by another window or request), so it was not "
                              "changed here. Enter your current password and try again.")
PASSWORD_CHANGED_MESSAGE = "Your password was changed. Other sessions and connected apps were signed out."
SIGNED_OUT_EVERYWHERE_MESSAGE = "You were signed out everywhere: every browser and every connected app."


def _db():
    from idp import get_db
    return get_db()


def device_cookie() -> str:
    """The name of the cookie carrying this browser's device token (``idp.accounts.devices``)."""
    return browser_cookie("device")


def known_device(response, uid: str, *, notice: bool = True):
    """``response`` of a password step of ``uid`` completed in this browser, which is now known for the account
    (``IDP_NEW_DEVICE_NOTICE``): one not known before is audited as ``account.new_device`` (the owner's notice,
    ``notice=False`` at the registration that made the account), one known has its sighting refreshed. The
    cookie is set anew each time (its Max-Age runs from the last sign-in, as the row's expiry does), with the
    session cookie's flags; its value is never logged or audited."""
    if not current_app.config["IDP"].new_device_notice:
        return response
    db, token = _db(), request.cookies.get(device_cookie())
    if not devices.usable_token(token):
        token = devices.new_token()
    if not devices.seen(db, uid, token) and notice:
        audit.record(db, audit.NEW_DEVICE, user_id=uid, decision="signed_in", **audit.request_context())
    response = current_app.make_response(response)
    set_browser_cookie(response, "device", token, devices.MAX_AGE_S)
    return response


@bp.route("/")
def index():
    return redirect(url_for("accounts.account"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.is_submitted():
        follow_posted_request()  # the application this page named, even if another tab started another since
    pending = pending_request()
    if request.method == "GET":
        hint = (pending.args.get("login_hint") if pending else None) or request.args.get("login_hint")
        if hint and not form.username.data:
            form.username.data = str(hint)[:254]
    error, status, wait = None, 200, 0
    if form.validate_on_submit():
        login_value = form.username.data.strip().lower()
        user = users.find_for_sign_in(_db(), login_value)
        remember_user(user)  # advance() loads the same account for flask-login: no second read
        # Reserved on the account and IP counters before argon2 runs; unknown accounts are checked
        # against a dummy hash: same work, same answer, same time.
        result = check_password(_db(), user, form.password.data, login_value=login_value)
        if result.wait:
            # Blocked: the password is not even checked (same answer whether or not the account exists).
            audit.record(_db(), audit.LOGIN_THROTTLED, repeat_key=audit.network_key(), **audit.request_context())
            error, status, wait = throttled_message(result.wait), 429, result.wait
        elif not result.ok:
            audit.record(_db(), audit.LOGIN_FAILED, user_id=user["_id"] if user else None, **audit.request_context())
            error = INVALID_CREDENTIALS
        elif not users.may_sign_in(user):  # disabled (a claimed account was answered as none above)
            audit.record(_db(), audit.LOGIN_FAILED, user_id=user["_id"],
                         details={"reason": "disabled"}, **audit.request_context())
            error, status = ACCOUNT_DISABLED, 403
        elif current_app.config["IDP"].require_verified_email and not user.get("email_verified"):
            audit.record(_db(), audit.LOGIN_UNVERIFIED, user_id=user["_id"], **audit.request_context())
            return verification_required(user)
        else:
            logout_user()  # a previous account's flask-login state must not survive a new sign-in
            complete_step(user["_id"], "pwd", new_login=True)
            # a password change or reset landing while this request completes ends this sign-in too (checked
            # once the new session is stored: idp.web.sessions.keep_only_if)
            db, uid, checked, context = _db(), user["_id"], user["password_hash"], audit.request_context()
            keep_only_if(lambda: users.signs_in_with(db, uid, checked),
                         lambda: audit.record(db, audit.LOGIN_DROPPED, user_id=uid, **context))
            audit.record(db, audit.LOGIN, user_id=uid, **context)
            return known_device(advance(load_user), uid)
    form.password.data = ""
    response = current_app.make_response((render_template(
        "accounts/login.html", form=form, error=error, pending=pending), status))
    if status == 429:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.is_submitted():
        follow_posted_request()  # the application this page named, even if another tab started another since
    if form.validate_on_submit():
        # Every attempt counts (taken before the costly password hashing, whatever its outcome).
        wait = registration_wait()
        if wait:
            # checked before the (costly) password hashing; the form is not processed at all
            audit.record(_db(), audit.REGISTER_THROTTLED, repeat_key=audit.network_key(),
                         **audit.request_context())
            response = current_app.make_response(error_response(
                429, "Too many registration attempts from your network. "
                     f"Please wait {wait_text(wait)} and try again.", "too_many_registrations"))
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            user = users.create_user(_db(), form.username.data, form.email.data, form.password.data,
                                     name=form.name.data, phone=form.phone.data or None)
        except users.DuplicateUser as e:
            getattr(form, e.field).errors.append(e.message)
        except users.InvalidUser as e:  # same rules as the form; kept in case they diverge
            for field, message in e.errors.items():
                getattr(form, field).errors.append(message)
        else:
            audit.record(_db(), audit.REGISTER, user_id=user["_id"], **audit.request_context())
            send_verification(_db(), user)
            if current_app.config["IDP"].require_verified_email:  # its browser is known all the same
                return known_device(verification_required(user), user["_id"], notice=False)
            flash(f"We sent a link to {user['email']} to confirm your email address.", "info")
            logout_user()
            complete_step(user["_id"], "pwd", new_login=True)  # keeps session["authz"]: the flow continues
            after = current_app.extensions.get("idp_after_register")  # e.g. face enrollment
            done = redirect(url_for(after)) if after else advance(load_user)
            return known_device(done, user["_id"], notice=False)
    form.password.data = ""
    form.confirm.data = ""
    return render_template("accounts/register.html", form=form, pending=pending_request())


@bp.route("/account")
@login_required
def account():
    user = users.get_user(_db(), signed_in_uid())
    if user is None:  # deleted meanwhile
        logout_user()
        sign_out()
        return redirect(url_for("accounts.login"))
    return render_template("accounts/account.html", user=user, signout_form=SignOutForm(),
                           everywhere_form=SignOutEverywhereForm(), resend_form=ResendVerificationForm())


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    db, uid = _db(), signed_in_uid()
    user = users.get_user(db, uid)
    if user is None:  # deleted meanwhile
        logout_user()
        sign_out()
        return redirect(url_for("accounts.login"))
    form = ChangePasswordForm(user=user)
    status, wait = 200, 0
    if form.validate_on_submit():
        # The same account counter as the sign-in page: a stolen session cannot be used to guess the password
        # faster than /login allows (a session signed in as the account is not counted on the IP: guard.vouched_for).
        result = check_password(db, user, form.current_password.data)
        if result.wait:  # blocked: the current password is not even checked
            wait = result.wait
            audit.record(db, audit.PASSWORD_CHANGE_FAILED, user_id=uid, details={"reason": "throttled"},
                         repeat_key=uid, **audit.request_context())
            form.current_password.errors.append(throttled_message(wait))
            status = 429
        elif not result.ok:
            audit.record(db, audit.PASSWORD_CHANGE_FAILED, user_id=uid,
                         details={"reason": "wrong_password"}, **audit.request_context())
            form.current_password.errors.append(WRONG_CURRENT_PASSWORD)
        elif (changed := users.set_password(db, uid, form.new_password.data,
                                            replacing=user["password_hash"]))[0] is None:
            # the hash just checked is no longer the stored one: another change (a second tab, a double
            # submit, a reset) won meanwhile, or the account is gone
            forget_user(uid)
            if users.get_user(db, uid) is None:
                logout_user()
                sign_out()
                return redirect(url_for("accounts.login"))
            audit.record(db, audit.PASSWORD_CHANGE_FAILED, user_id=uid,
                         details={"reason": "changed_meanwhile"}, **audit.request_context())
            form.current_password.errors.append(PASSWORD_CHANGED_MEANWHILE)
        else:
            new_hash, dropped = changed  # (a pending email change went in the same write)
            forget_user(uid)
            known_here(uid, new_hash)  # the browser where the password was changed stays a known one
            from . import emaillinks
            emaillinks.revoke(db, uid, emaillinks.RESET)  # a reset link asked for before the change is void
            email_change_dropped(db, uid, dropped, "password_changed")
            # Sign out every other session of this account; this one survives with a new id.
            ended = end_other_sessions(durable(db, "sessions"), uid)
            rotate_session()
            revoked = end_app_grants(db, uid)  # apps signed in with the old password must sign in again
            audit.record(db, audit.PASSWORD_CHANGED, user_id=uid,
                         details={"other_sessions_signed_out": ended, "app_grants_ended": revoked},
                         **audit.request_context())
            flash(PASSWORD_CHANGED_MESSAGE, "success")
            if dropped:
                flash(f"The change of your email address to {dropped}, which was waiting for confirmation, was "
                      "cancelled. Ask for it again if it was yours.", "info")
            return redirect(url_for("accounts.account"))
    form.current_password.data = ""
    form.new_password.data = ""
    form.confirm.data = ""
    response = current_app.make_response((render_template("accounts/change_password.html", form=form), status))
    if status == 429:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/account/sign-out", methods=["POST"])
def logout():
    uid = signed_in_uid()
    logout_user()
    sign_out()
    if uid:
        audit.record(_db(), audit.SIGN_OUT, user_id=uid, **audit.request_context())
    return redirect(url_for("accounts.login"))


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    """Every session of the account (this one included) and every token its apps hold end now. The
    POST carries the CSRF token (checked by CSRFProtect before this view runs)."""
    db, uid = _db(), signed_in_uid()
    ended = end_all_sessions(durable(db, "sessions"), uid)
    revoked = end_app_grants(db, uid)
    logout_user()
    sign_out()
    audit.record(db, audit.SIGNED_OUT_EVERYWHERE, user_id=uid,
                 details={"sessions_ended": ended, "app_grants_ended": revoked}, **audit.request_context())
    flash(SIGNED_OUT_EVERYWHERE_MESSAGE, "success")
    return redirect(url_for("accounts.login"))
