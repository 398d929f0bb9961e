"""/admin/audit: browse the audit log (filter by user and event, paginated); reset a user's face sign-in
(after a confirmation). Administrators only, with a session that proved the face (``admin_required``)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from idp import audit, get_config
from idp.accounts.users import deletion_claimed, erased_if_claimed_since
from idp.signin.guards import admin_required, signed_in_uid
from idp.web import confirm_page, confirmed

bp = Blueprint("admin", __name__, url_prefix="/admin")
PER_PAGE = 50
MAX_PAGE = 1_000_000  # a larger page number is clamped (its offset would not fit MongoDB's 8-byte skip)


def _db():
    from idp import get_db
    return get_db()


def _resolve_user(db, value: str) -> tuple[str | None, dict | None]:
    """A user id from an id, username or email typed into the filter."""
    value = (value or "").strip()
    if not value:
        return None, None
    user = db.users.find_one({"$or": [{"_id": value}, {"username": value.lower()}, {"email": value.lower()}]},
                             {"username": 1, "email": 1})
    return (user["_id"] if user else value), user


@bp.route("/")
@admin_required
def index():
    return redirect(url_for("admin.audit_log"))


@bp.route("/audit")
@admin_required
def audit_log():
    db = _db()
    user_q = request.args.get("user", "")[:200]
    event = request.args.get("event", "")[:80].strip() or None
    try:
        page = min(MAX_PAGE, max(1, int(request.args.get("page", "1"))))
    except ValueError:
        page = 1
    user_id, user = _resolve_user(db, user_q)
    entries, total = audit.query(db, user_id=user_id, event=event, page=page, per_page=PER_PAGE)
    ids = {e.get("user_id") for e in entries if e.get("user_id")}
    names = {u["_id"]: u.get("username") for u in db.users.find({"_id": {"$in": list(ids)}}, {"username": 1})}
    try:
        events = sorted(set(db.audit_log.distinct("event")) | set(audit.EVENTS))
    except Exception:  # noqa: BLE001 - the list is only a convenience for the filter
        events = list(audit.EVENTS)
    pages = max(1, -(-total // PER_PAGE))
    face_status = db.face_status.find_one({"_id": user_id}) if user_id else None
    from idp.faceweb import reenrollment
    reset_until = (reenrollment.reset_grant_until(db, user_id, get_config().face_reset_grant_lifetime_s)
                   if user_id else None)
    return render_template("admin/audit.html", entries=entries, names=names, total=total, page=page, pages=pages,
                           user_q=user_q, event=event or "", events=events, user=user, user_id=user_id,
                           face_status=face_status, reset_until=reset_until, is_self=user_id == signed_in_uid())


def _lifetime_text() -> str:
    """How long a face-reset grant lets the user enroll (IDP_FACE_RESET_GRANT_LIFETIME), in words."""
    from idp.throttle import wait_text
    seconds = get_config().face_reset_grant_lifetime_s
    return f"{seconds / 3600:g} hours" if seconds >= 7200 else wait_text(seconds)


def being_deleted(user: dict):
    """An action other than "Delete account" on an account a deletion has claimed writes nothing under it (the
    erasure, maybe running now, may have passed those collections: what is written after it outlives the
    account): the user page, which says so and offers to delete the account again (finishing a deletion that
    died). None when no deletion has claimed it."""
    if not deletion_claimed(user):
        return None
    flash(f"{user['username']} is being deleted: nothing was changed. Delete the account to finish it.", "error")
    return redirect(url_for("admin.user_view", uid=user["_id"]))


def deleted_meanwhile(user: dict):
    """The answer to an action on ``user`` that a deletion overtook (:func:`erased_if_claimed_since`)."""
    flash(f"{user['username']} is being deleted: nothing of this change was kept.", "error")
    return redirect(url_for("admin.users_search"))


def not_yourself(uid: str, what: str):
    """Refuses (flash and redirect; nothing is changed or audited) an action on the signed-in administrator's
    own account: one that would lock them out (disable, delete; use another admin or the CLI), or lift a face
    protection of their own (unlock, reset: a session of theirs - someone else's hands on it, with the
    password - could then get past their face check for good; ask another administrator or use the CLI).
    None for another account."""
    if uid == signed_in_uid():
        flash(f"You cannot {what} your own account here.", "error")
        return redirect(url_for("admin.user_view", uid=uid))
    return None


def before_acting(user: dict, *, own: str | None = None, deleting: bool = False, ask: dict | None = None):
    """The opening every administrator's action on ``user`` shares, in this order: nothing is written under an
    account a deletion claimed (:func:`being_deleted`; ``deleting``: the action is "Delete account", which may
    finish such a deletion), nothing on one's own account when ``own`` names what the action does
    (:func:`not_yourself`), and with ``ask`` (``confirm_page``'s arguments; cancel goes back to the user page
    unless given) the confirmation page until the POST confirms. A response that ends the request, or None:
    act."""
    if not deleting and (refused := being_deleted(user)) is not None:
        return refused
    if own and (refused := not_yourself(user["_id"], own)) is not None:
        return refused
    if ask and not confirmed():
        return confirm_page(**{"cancel_url": url_for("admin.user_view", uid=user["_id"]), **ask})
    return None


@bp.route("/face/reset", methods=["POST"])
@admin_required
def face_reset():
    """The "password + admin reset" recovery path, after a confirmation: the user's face lock and failure
    count are lifted and they may enroll again after their password (the new template gives no amr
    "face" during the cooling-off period; the old one stays usable until replaced). Never an administrator's
    own (:func:`not_yourself`)."""
    from idp.faceweb import reenrollment
    db = _db()
    user_id = request.form.get("user_id", "")
    user = db.users.find_one({"_id": user_id}, {"username": 1, "deleting": 1})
    if not user:
        flash("No such user.", "error")
        return redirect(url_for("admin.audit_log"))
    ask = {"form_id": "confirm-face-reset", "title": f"Reset face sign-in of {user.get('username')}?",
           "message": "The lock is lifted and the user may enroll a new face after their password alone, within "
                      f"{_lifetime_text()}; face sign-in with the new face data starts only after the waiting "
                      "period. Do this only once you are sure who asks.",
           "button": "Reset face sign-in", "cancel_url": url_for("admin.audit_log", user=user_id),
           "fields": {"user_id": user_id}}
    if (refused := before_acting(user, own="reset the face sign-in of", ask=ask)) is not None:
        return refused
    reenrollment.grant_reset(db, user_id, signed_in_uid())
    until = reenrollment.reset_grant_until(db, user_id, get_config().face_reset_grant_lifetime_s)
    audit.record(db, audit.FACE_RESET, user_id=user_id, decision="unlocked",
                 details={"admin": signed_in_uid(), "reenroll_allowed": True,
                          "until": until.isoformat() if until else None}, **audit.request_context())
    if erased_if_claimed_since(db, user_id):
        return deleted_meanwhile(user)
    flash(f"Face sign-in was reset for this user: unlocked, and a new enrollment is allowed within {_lifetime_text()}.",
          "success")
    return redirect(url_for("admin.audit_log", user=user_id))
