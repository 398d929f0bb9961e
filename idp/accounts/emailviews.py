"""Email pages: verification links, email change and its undo, "Forgot password?" and the reset link.

Every emailed link is absolute on ``IDP_ISSUER`` (never the request's Host header, which an attacker could
choose) and single use (``emaillinks``). Opening a link only shows a page; the token is used by the form
posted from it, so a mail scanner fetching the link does not spend it. A bad link (unknown, expired, used,
garbage) is a 400 page that says so and offers the way forward.

An account with a confirmed address keeps it until a new one is confirmed: the change form only makes the new
address pending (``users.request_email_change``) and the confirmed address is told; the link sent to the new
address makes it the account's (``users.confirm_email``) and the previous address is told again. Until then
sign-in by address, reset links and notices stay with the confirmed address; a password reset cancels the
pending change, and so does asking for the address the account has. The previous address's notice carries a
link that undoes the change for ``IDP_EMAIL_UNDO_WINDOW`` (:func:`undo_email_change`): an intruder who owns the
new mailbox can confirm it at once, and only the previous mailbox can then take the account back.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import logout_user

from idp.signin import sign_out
from idp.signin.guards import login_required, signed_in_uid
from idp.store import durable
from idp.throttle import wait_text
from idp.web.sessions import end_all_sessions

from idp import audit, get_config
from idp.mail import notify

from . import emaillinks, users
from .current import forget_user
from .forms import (ChangeEmailForm, ConfirmLinkForm, ForgotPasswordForm, ResendVerificationForm,
                    ResetPasswordForm, UndoEmailChangeForm)
from .grants import end_app_grants
from .guard import account_key, check_password, known_here
from .pages import WRONG_CURRENT_PASSWORD, bp, registration_wait, throttled_message
from .verification import (VERIFY_SESSION_KEY, absolute_link, address_to_confirm, email_change_dropped,
                           send_verification)

FORGOT_SENT = ("If an account with that name or address exists, we sent a link to its email address. "
               "The link works once, for 30 minutes.")
RESET_DONE = "Your password was reset and every session and app was signed out. Sign in with the new password."
LINK_INVALID = "This link is not valid: it has expired, was already used or was replaced by a newer one."
CHANGED_RECENTLY = ("Your email address was changed recently. While the previous address can still undo that change, "
                    "it cannot be changed again: you can ask for another change from {until}. An administrator can "
                    "help sooner.")
UNDO_INVALID = ("This link is not valid: it was already used, its time to undo the change has passed, or the email "
                "address of the account was changed again since it was sent.")
UNDO_TAKEN = ("Another account uses {previous} now, so it cannot be given back to yours. Nothing was changed; ask "
              "your administrator.")
UNDO_DONE = ("{previous} is the email address of your account again and your new password is set. Every session "
             "and app was signed out. Sign in with the new password.")


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
    """Confirm the address the link went to: the account's own (unconfirmed) one, or its pending one, which then
    becomes the account's address (the previous address is told, ``idp.mail.notify``)."""
    db = _db()
    form = ConfirmLinkForm()
    if request.method == "GET" or not form.validate_on_submit():
        if emaillinks.peek(db, emaillinks.VERIFY, token) is None:
            return _invalid_link("verify")
        return render_template("accounts/confirm_link.html", form=form, title="Confirm your email address",
                               text="Confirm that this address belongs to you.")
    doc = emaillinks.consume(db, emaillinks.VERIFY, token)
    if doc is None or users.deletion_claimed(users.get_user(db, doc["user_id"])):
        return _invalid_link("verify")
    uid = doc["user_id"]
    answer = _confirmed(db, uid, doc.get("email") or "")
    # an account deletion that claimed the account after the check above erased it while this wrote: nothing of
    # what was written stays under its id (audit entry, notice, undo link), and the link proved nothing
    return _invalid_link("verify") if users.erased_if_claimed_since(db, uid) else answer


def _confirmed(db, uid: str, address: str):
    """The confirmation of ``address`` for ``uid`` (a link just used up): its writes and the answer."""
    try:
        result = users.confirm_email(db, uid, address, hold_s=get_config().email_undo_window_s)
    except users.DuplicateUser as e:
        # another account has the address now (or one that reads as it): this change can never take effect, so it
        # ends here
        if users.cancel_email_change(db, uid, address) is not None:
            audit.record(db, audit.EMAIL_CHANGE_CANCELLED, user_id=uid,
                         details={"reason": "address_taken", "new_email": address}, **audit.request_context())
        taken = ("Another account's email address looks like this one now" if isinstance(e, users.LookalikeEmail)
                 else "Another account uses this email address now")
        return render_template("accounts/message.html", title="Address not available", hint="signin",
                               message=f"{taken}, so it cannot become the address of yours. Your email address "
                                       "stays as it was."), 409
    if result is None:
        return _invalid_link("verify")
    forget_user(uid)
    if session.get(VERIFY_SESSION_KEY) == uid:
        session.pop(VERIFY_SESSION_KEY, None)
    if result["changed"]:
        # links mailed to the previous address die with it (emaillinks.fits refuses them anyway)
        emaillinks.revoke(db, uid)
        audit.record(db, audit.EMAIL_CHANGED, user_id=uid, details={
            "previous_email": result["previous_email"], "previous_verified": True, "new_email": address},
            **audit.request_context())
        return render_template("accounts/message.html", title="Email address changed", hint="signin",
                               message=f"Thank you: {address} is confirmed and is now the email address of "
                                       "your account.")
    audit.record(db, audit.EMAIL_VERIFIED, user_id=uid, **audit.request_context())
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
    to = address_to_confirm(user)
    if to is None:  # nothing to confirm: not counted
        flash("Your email address is already confirmed.", "info")
        return redirect(url_for("accounts.account"))
    wait = _limited(user)
    if wait > 0:
        return _too_many(wait)
    if wait == 0:
        send_verification(db, user)
    return render_template("accounts/message.html", title="Check your email",
                           message=f"We sent a new confirmation link to {to}. It works once, for 24 hours.",
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
        elif (new := users.normalize_email(form.email.data)) == user["email"] and user.get("pending_email"):
            # asking for the address the account has withdraws the change asked for before
            email_change_dropped(db, uid, users.cancel_email_change(db, uid), "owner")
            forget_user(uid)
            flash(f"The change was cancelled: your email address stays {user['email']}.", "success")
            return redirect(url_for("accounts.account"))
        elif new == user["email"]:
            form.email.errors.append("This is already your email address.")
        # the answer tells whether the address belongs to another account, as registration's does: counted
        # on the same limit, so a signed-in account is no faster oracle
        elif wait := registration_wait():
            status = 429
            form.email.errors.append(f"Too many attempts from your network. Please wait {wait_text(wait)} and try "
                                     "again.")
        else:
            # a confirmed address stays the account's until the new one is confirmed through its link; one never
            # confirmed (a registration whose link was not used) has nothing to protect and is replaced at once
            pending = users.has_confirmed_email(user)
            try:
                stored = (users.request_email_change(db, user, new, quiet_s=get_config().email_undo_window_s)
                          if pending else users.set_email(db, uid, new, password_hash=user["password_hash"]))
            except users.DuplicateUser as e:
                form.email.errors.append(e.message)
            except users.ChangedRecently as e:
                status = 409
                form.email.errors.append(CHANGED_RECENTLY.format(until=e.until.strftime("%Y-%m-%d %H:%M UTC")))
            else:
                if not stored:
                    status = 409
                    form.email.errors.append("Your email address or password changed meanwhile. Please check "
                                             "them and try again.")
                else:
                    forget_user(uid)
                    # a link to an earlier pending address dies; without a confirmed address every emailed link
                    # dies with the address it went to (a reset link in the previous mailbox must not take the
                    # account back)
                    emaillinks.revoke(db, uid, emaillinks.VERIFY if pending else None)
                    send_verification(db, users.get_user(db, uid))
                    if pending:  # the confirmed address is told (idp.mail.notify): the request may be an intruder's
                        audit.record(db, audit.EMAIL_CHANGE_REQUESTED, user_id=uid, details={"new_email": new},
                                     **audit.request_context())
                        flash(f"We sent a confirmation link to {new}. Your email address stays {user['email']} "
                              "until that link is opened.", "success")
                    else:
                        audit.record(db, audit.EMAIL_CHANGED, user_id=uid, details={
                            "previous_email": user["email"], "previous_verified": False, "new_email": new},
                            **audit.request_context())
                        flash(f"Your email address is now {new}. We sent a confirmation link to it.", "success")
                    return redirect(url_for("accounts.account"))
    form.current_password.data = ""
    response = current_app.make_response((render_template("accounts/change_email.html", form=form, user=user),
                                                  status))
    if status == 429:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/forgot", methods=["GET", "POST"])
def forgot_password():
    """Same page, same work whether or not the account exists: a link is mailed only when it does, to the
    account's address (``email``): its confirmed one, never a pending change's (which finds no account here);
    an account that never confirmed an address gets it at that unconfirmed address, the only one it has."""
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


def _taken_back(db, user: dict, new_hash: str) -> tuple[int, int]:
    """The owner took the account back through an emailed link (a reset, an email change undone) and set the
    password of ``new_hash``: every session (this browser's too) and every app token ends, the failed-password
    counter starts over, and this browser is a known one for the new password (its owner signing in here is not
    held back by the address). The numbers of sessions and app grants ended."""
    uid = user["_id"]
    forget_user(uid)
    ended = end_all_sessions(durable(db, "sessions"), uid)
    revoked = end_app_grants(db, uid)
    current_app.extensions["accounts"]["user_throttle"].success(account_key(user))
    logout_user()
    sign_out()  # whatever this browser was signed in as
    known_here(uid, new_hash)
    return ended, revoked


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
        # (the link fits the account as read, its address too: see above) the owner of the confirmed mailbox took
        # the account back: a change asked for before (perhaps by whoever held the old password or a session)
        # goes in the same write
        new_hash, dropped = users.set_password(
            db, user["_id"], form.new_password.data, replacing=user["password_hash"], email=user["email"])
        if new_hash is None:
            return _invalid_link("forgot")
        uid = user["_id"]
        emaillinks.revoke(db, uid, emaillinks.RESET)
        if not user.get("email_verified"):
            users.mark_email_verified(db, uid, user["email"])  # the mailbox just proved itself
        email_change_dropped(db, uid, dropped, "password_reset")
        ended, revoked = _taken_back(db, user, new_hash)
        audit.record(db, audit.PASSWORD_RESET, user_id=uid,
                     details={"sessions_ended": ended, "app_grants_ended": revoked}, **audit.request_context())
        if users.erased_if_claimed_since(db, uid):  # deleted meanwhile (see verify_email): nothing of this stays
            return _invalid_link("forgot")
        flash(RESET_DONE, "success")
        return redirect(url_for("accounts.login"))
    form.new_password.data = ""
    form.confirm.data = ""
    return render_template("accounts/reset.html", form=form, token=token)


def _undo_refused(message: str, status: int):
    return render_template("accounts/message.html", title="The change cannot be undone", message=message,
                           hint="undo"), status


@bp.route("/undo-email/<token>", methods=["GET", "POST"])
def undo_email_change(token):
    """Undo a change of the email address from the link in the notice to the previous (confirmed) address:
    that address is the account's confirmed one again, a pending change is dropped, the password is set anew
    (whoever made the change may know it) and every session and app token ends, as after a reset; one audit
    event. Opening the link only shows the form (nothing changes); the link works once, until
    ``IDP_EMAIL_UNDO_WINDOW`` has passed, and only while the address it undoes is still the account's. When
    another account has the previous address now, the page says so (409) and the link stays usable."""
    db = _db()
    doc = emaillinks.peek(db, emaillinks.UNDO, token)
    user = users.get_user(db, doc["user_id"]) if doc else None
    if user is None or users.deletion_claimed(user) or not emaillinks.fits(doc, user):
        return _undo_refused(UNDO_INVALID, 400)
    uid, previous = user["_id"], doc["email"]
    if db.users.find_one({"email": previous, "_id": {"$ne": uid}}, {"_id": 1}):
        return _undo_refused(UNDO_TAKEN.format(previous=previous), 409)
    form = UndoEmailChangeForm(user={**user, "email": previous})
    if form.validate_on_submit():
        # used up first, atomically: of two racing submissions one restores, the other sees a used link
        if emaillinks.consume(db, emaillinks.UNDO, token) is None:
            return _undo_refused(UNDO_INVALID, 400)
        try:
            result = users.restore_email(db, uid, previous, doc["changed_to"], form.new_password.data)
        except users.DuplicateUser:  # taken between the check above and the write: nothing written
            emaillinks.reinstate(db, doc)
            return _undo_refused(UNDO_TAKEN.format(previous=previous), 409)
        if result is None:  # changed again or claimed by a deletion since the link was read
            return _undo_refused(UNDO_INVALID, 400)
        emaillinks.revoke(db, uid)  # links mailed to the undone address (reset, confirmation) die with it
        ended, revoked = _taken_back(db, user, result["password_hash"])
        audit.record(db, audit.EMAIL_CHANGE_UNDONE, user_id=uid, details={
            "restored_email": previous, "new_email": doc["changed_to"], "dropped_pending": result["dropped_pending"],
            "sessions_ended": ended, "app_grants_ended": revoked}, **audit.request_context())
        if users.erased_if_claimed_since(db, uid):  # deleted meanwhile (see verify_email): nothing of this stays
            return _undo_refused(UNDO_INVALID, 400)
        flash(UNDO_DONE.format(previous=previous), "success")
        return redirect(url_for("accounts.login"))
    form.new_password.data = ""
    form.confirm.data = ""
    return render_template("accounts/undo_email.html", form=form, token=token, previous=previous,
                           changed_to=notify.masked_address(doc["changed_to"]))
