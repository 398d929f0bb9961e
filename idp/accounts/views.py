"""Registration, the password step, the account page and sign-out."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import logout_user

from idp.signin import advance, complete_step, pending_request, sign_out
from idp.signin.guards import login_required, signed_in_uid
from idp.store import durable
from idp.web import error_response, rotate_session
from idp.web.sessions import end_other_sessions

from . import audit, forget_user, remember_user, users
from .forms import ChangePasswordForm, LoginForm, RegisterForm, SignOutForm
from .throttle import Throttle

log = logging.getLogger("idp.accounts")
bp = Blueprint("accounts", __name__)

INVALID_CREDENTIALS = "Invalid username or password."
WRONG_CURRENT_PASSWORD = "Your current password is not correct."
PASSWORD_CHANGED_MESSAGE = "Your password was changed. Other sessions were signed out."


def _db():
    from idp import get_db
    return get_db()


def _throttles():
    return current_app.extensions["accounts"]["user_throttle"], current_app.extensions["accounts"]["ip_throttle"]


REGISTER_THROTTLED = "account.register_throttled"  # audit event (idp.accounts.audit has no constant for it)


def _register_throttle() -> Throttle | None:
    """Registrations per client IP (``IDP_REGISTER_IP_LIMIT`` per ``IDP_REGISTER_IP_WINDOW``; None = off)."""
    return current_app.extensions["accounts"]["register_throttle"]


def load_user(uid: str):
    """flask-login's user loader (also passed to ``advance``)."""
    return current_app.extensions["accounts"]["load_user"](uid)


def wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes"


def throttled_message(seconds: int) -> str:
    return f"Too many failed sign-in attempts. Please wait {wait_text(seconds)} and try again."


@bp.route("/")
def index():
    return redirect(url_for("accounts.account"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    pending = pending_request()
    if request.method == "GET":
        hint = (pending.args.get("login_hint") if pending else None) or request.args.get("login_hint")
        if hint and not form.username.data:
            form.username.data = str(hint)[:254]
    error, status = None, 200
    if form.validate_on_submit():
        login_value = form.username.data.strip().lower()
        user_key, ip_key = f"pwd:user:{login_value}", f"pwd:ip:{request.remote_addr}"
        user_throttle, ip_throttle = _throttles()
        # one query for both keys; ``recorded`` says which have failures to forget on success
        wait, recorded = Throttle.check_many([(user_throttle, user_key), (ip_throttle, ip_key)])
        if wait:
            # Blocked: the password is not even checked (same answer whether or not the account exists).
            audit.record(_db(), audit.LOGIN_THROTTLED)
            error, status = throttled_message(wait), 429
        else:
            user = users.find_by_login(_db(), login_value)
            remember_user(user)  # advance() loads the same account for flask-login: no second read
            # Unknown accounts are checked against a dummy hash: same work, same answer, same time.
            if not users.verify_password(_db(), user, form.password.data):
                user_throttle.failure(user_key)
                ip_throttle.failure(ip_key)
                audit.record(_db(), audit.LOGIN_FAILED, user["_id"] if user else None)
                error = INVALID_CREDENTIALS
            else:
                if user_key in recorded:  # nothing to forget otherwise (no write on the usual sign-in)
                    user_throttle.success(user_key)
                logout_user()  # a previous account's flask-login state must not survive a new sign-in
                complete_step(user["_id"], "pwd", new_login=True)
                audit.record(_db(), audit.LOGIN, user["_id"])
                return advance(load_user)
    form.password.data = ""
    response = current_app.make_response((render_template(
        "accounts/login.html", form=form, error=error, pending=pending), status))
    if status == 429:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        throttle, ip_key = _register_throttle(), f"register:ip:{request.remote_addr}"
        wait = throttle.check(ip_key) if throttle is not None else 0
        if wait:
            # checked before the (costly) password hashing; the form is not processed at all
            audit.record(_db(), REGISTER_THROTTLED)
            response = current_app.make_response(error_response(
                429, "Too many accounts have been created from your network. "
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
            if throttle is not None:
                throttle.failure(ip_key)  # counts registrations, not failures
            audit.record(_db(), audit.REGISTER, user["_id"])
            logout_user()
            complete_step(user["_id"], "pwd", new_login=True)  # keeps session["authz"]: the flow continues
            after = current_app.extensions.get("idp_after_register")  # e.g. face enrollment
            return redirect(url_for(after)) if after else advance(load_user)
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
    return render_template("accounts/account.html", user=user, signout_form=SignOutForm())


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
        # Same keys as the password step of /login (a login by username counts on pwd:user:<username>), so a
        # stolen session cannot be used to guess the password faster than the sign-in page allows.
        user_key, email_key = f"pwd:user:{user['username']}", f"pwd:user:{user['email']}"
        ip_key = f"pwd:ip:{request.remote_addr}"
        user_throttle, ip_throttle = _throttles()
        wait, recorded = Throttle.check_many([(user_throttle, user_key), (user_throttle, email_key),
                                              (ip_throttle, ip_key)])
        if wait:  # blocked: the current password is not even checked
            audit.record(db, audit.PASSWORD_CHANGE_FAILED, uid, reason="throttled")
            form.current_password.errors.append(throttled_message(wait))
            status = 429
        elif not users.verify_password(db, user, form.current_password.data):
            user_throttle.failure(user_key)
            ip_throttle.failure(ip_key)
            audit.record(db, audit.PASSWORD_CHANGE_FAILED, uid, reason="wrong_password")
            form.current_password.errors.append(WRONG_CURRENT_PASSWORD)
        else:
            if user_key in recorded:
                user_throttle.success(user_key)
            if not users.set_password(db, uid, form.new_password.data):  # deleted meanwhile
                logout_user()
                sign_out()
                return redirect(url_for("accounts.login"))
            forget_user(uid)
            # Sign out every other session of this account; this one survives with a new id.
            ended = end_other_sessions(durable(db, "sessions"), uid)
            rotate_session()
            audit.record(db, audit.PASSWORD_CHANGED, uid, other_sessions_signed_out=ended)
            flash(PASSWORD_CHANGED_MESSAGE, "success")
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
        audit.record(_db(), audit.SIGN_OUT, uid)
    return redirect(url_for("accounts.login"))
