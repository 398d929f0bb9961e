"""/admin/users: search accounts, view one (enrollment, face lock, cooling-off, last sign-ins),
disable/enable, unlock face sign-in, void recovery codes, delete (never disable, delete, unlock or reset one's own
account). Every action opens with ``before_acting`` (an account being deleted, one's own, and the confirmation
that every action taking something away asks first: ``idp.web.confirm``) and is audited with the acting
administrator's id. The face reset is ``admin.face_reset`` (idp/admin/views.py). Administrators only
(``admin_required``)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from idp import audit, get_config
from idp.accounts.current import forget_user
from idp.accounts.grants import end_app_grants
from idp.accounts import users as repo
from idp.keyring import secret_keys
from idp.signin.guards import admin_required, signed_in_uid
from idp.store import durable
from idp.web.sessions import end_all_sessions

from .views import MAX_PAGE, _db, before_acting, bp, deleted_meanwhile

PER_PAGE = 25
SIGN_IN_EVENTS = ("account.login", "face.verify")
RECENT = 10


def _page() -> int:
    try:
        return min(MAX_PAGE, max(1, int(request.args.get("page", "1"))))
    except ValueError:
        return 1


def _audit(db, event: str, user_id: str | None, **details) -> bool:
    """Record the action (on the account ``user_id``, if any); False when a deletion of that account overtook it
    (nothing under the account is kept then: :func:`~idp.accounts.users.erased_if_claimed_since`)."""
    audit.record(db, event, user_id=user_id, details={"admin": signed_in_uid(), **details},
                 **audit.request_context())
    return user_id is None or not repo.erased_if_claimed_since(db, user_id)


def _user_or_404(db, uid: str) -> dict:
    user = repo.get_user(db, uid)
    if user is None:
        from flask import abort
        abort(404)
    return user


@bp.route("/users")
@admin_required
def users_search():
    db = _db()
    q = request.args.get("q", "")[:254]
    page = _page()
    rows, total = repo.search_users(db, q, page=page, per_page=PER_PAGE)
    enrolled = {d["_id"] for d in db.face_templates.find({"_id": {"$in": [u["_id"] for u in rows]}}, {"_id": 1})}
    pages = max(1, -(-total // PER_PAGE))
    return render_template("admin/users.html", rows=rows, total=total, q=q, page=page, pages=pages,
                           enrolled=enrolled)


@bp.route("/users/<uid>")
@admin_required
def user_view(uid):
    from idp.face.repository import template_info
    from idp.faceweb import recovery, reenrollment

    db = _db()
    user = _user_or_404(db, uid)
    recent = list(db.audit_log.find({"user_id": uid, "event": {"$in": list(SIGN_IN_EVENTS)}})
                  .sort("at", -1).limit(RECENT))
    return render_template("admin/user.html", user=user, template=template_info(db, uid),
                           face_status=db.face_status.find_one({"_id": uid}) or {},
                           cooloff_until=reenrollment.cooloff_until(db, uid),
                           reset_until=reenrollment.reset_grant_until(db, uid,
                                                                      get_config().face_reset_grant_lifetime_s),
                           recovery_codes=recovery.remaining_recovery_codes(db, uid, secret_keys(get_config())),
                           recent=recent,
                           sessions=db.sessions.count_documents({"data.auth.uid": uid}),
                           is_self=uid == signed_in_uid(), delete_claim_min=repo.DELETE_CLAIM_S // 60)


@bp.route("/users/<uid>/disable", methods=["POST"])
@admin_required
def user_disable(uid):
    db = _db()
    user = _user_or_404(db, uid)
    ask = {"form_id": "confirm-user-disable", "title": f"Disable {user['username']}?", "button": "Disable account",
           "message": "The account cannot sign in until it is enabled again; every session of it and every token "
                      "its apps hold end now."}
    if (refused := before_acting(user, own="disable", ask=ask)) is not None:
        return refused
    repo.set_disabled(db, uid, True, by=signed_in_uid())
    forget_user(uid)
    sessions = end_all_sessions(durable(db, "sessions"), uid)
    grants = end_app_grants(db, uid)
    if not _audit(db, audit.USER_DISABLED, uid, sessions_ended=sessions, app_grants_ended=grants):
        return deleted_meanwhile(user)
    flash(f"{user['username']} is disabled: {sessions} session(s) and {grants} app grant(s) ended.", "success")
    return redirect(url_for("admin.user_view", uid=uid))


@bp.route("/users/<uid>/enable", methods=["POST"])
@admin_required
def user_enable(uid):
    db = _db()
    user = _user_or_404(db, uid)
    if (refused := before_acting(user)) is not None:
        return refused
    repo.set_disabled(db, uid, False)
    forget_user(uid)
    if not _audit(db, audit.USER_ENABLED, uid):
        return deleted_meanwhile(user)
    flash(f"{user['username']} is enabled and can sign in again.", "success")
    return redirect(url_for("admin.user_view", uid=uid))


@bp.route("/users/<uid>/unlock-face", methods=["POST"])
@admin_required
def user_unlock_face(uid):
    from idp.faceweb import lockout

    db = _db()
    user = _user_or_404(db, uid)
    ask = {"form_id": "confirm-face-unlock", "title": f"Unlock face sign-in of {user['username']}?",
           "message": "The face lock and the count of failed face checks are lifted; the enrolled face data stays "
                      "as it is. Do this only once you are sure who asks.", "button": "Unlock face sign-in"}
    if (refused := before_acting(user, own="unlock the face sign-in of", ask=ask)) is not None:
        return refused
    lockout.reset_failures(db, uid, unlock=True)
    if not _audit(db, audit.FACE_UNLOCKED, uid):
        return deleted_meanwhile(user)
    flash(f"Face sign-in of {user['username']} is unlocked.", "success")
    return redirect(url_for("admin.user_view", uid=uid))


@bp.route("/users/<uid>/void-recovery-codes", methods=["POST"])
@admin_required
def user_void_recovery_codes(uid):
    """Every unused recovery code of the account stops working, after a confirmation. For an account where
    someone else may hold them: a first enrollment the owner did not make (the codes went to whoever
    enrolled), or codes the owner reports lost. The owner gets new codes at their next re-enrollment
    confirmed by a face match; an admin reset alone keeps the codes, so this is the separate step."""
    db = _db()
    user = _user_or_404(db, uid)
    ask = {"form_id": "confirm-void-codes", "title": f"Void the recovery codes of {user['username']}?",
           "message": "Every unused recovery code of this account stops working at once. Do this when someone "
                      "else may hold them (for example after a face enrollment the owner did not make). New codes "
                      "come with the owner's next re-enrollment confirmed by a face match.",
           "button": "Void recovery codes"}
    if (refused := before_acting(user, ask=ask)) is not None:
        return refused
    voided = durable(db, "recovery_codes").delete_many({"user_id": uid, "used_at": None}).deleted_count
    if not _audit(db, audit.RECOVERY_CODES_VOIDED, uid, voided=voided):
        return deleted_meanwhile(user)
    flash(f"{voided} unused recovery code{'' if voided == 1 else 's'} of {user['username']} voided.", "success")
    return redirect(url_for("admin.user_view", uid=uid))


@bp.route("/users/<uid>/delete", methods=["POST"])
@admin_required
def user_delete(uid):
    db = _db()
    user = _user_or_404(db, uid)
    ask = {"form_id": "confirm-user-delete", "title": f"Delete {user['username']}?", "button": "Delete account",
           "message": "The account and all of its data are erased for good: sessions, app tokens and consents, "
                      "face data, recovery codes and its audit entries. This cannot be undone."}
    if (refused := before_acting(user, own="delete", deleting=True, ask=ask)) is not None:
        return refused
    grants = []  # ended first (by the deletion that wins): what the OAuth package keeps outside the user's documents
    counts = repo.delete_user(db, uid, before=lambda db_, uid_: grants.append(end_app_grants(db_, uid_)))
    forget_user(uid)
    if counts is None:  # another request (a double click, a second administrator) is deleting it: it audits
        flash(f"{user['username']} was already being deleted.", "info")
        return redirect(url_for("admin.users_search"))
    _audit(db, audit.USER_DELETED, None, deleted_user=uid, app_grants_ended=sum(grants),
           documents=sum(counts.values()))
    flash(f"{user['username']} was deleted with all of its data.", "success")
    return redirect(url_for("admin.users_search"))
