"""Hosted face pages (enrollment, verification, recovery, /account/face) and the capture API.

Pages
  GET  /face/enroll               notice + consent form, then the webcam capture (purpose "enroll")
  POST /face/consent              records consent (time, notice version); nothing happens without it
  GET  /face/enroll/done          new recovery codes, shown once (kept encrypted in the session, 10 minutes),
                                  made only when none is left unused (never voiding any) and never after a
                                  recovery code or admin reset, or in cooling-off; else says why none were made
  GET  /face/verify               the face step of the sign-in (purpose "verify")
  GET/POST /face/recover          a recovery code: lifts the lock; the sign-in counts as amr ["pwd","otp"] (never
                                  "face", for the rest of the browser session) → enroll again (cooling-off)
  GET  /face/continue             back into the sign-in flow (next step or the pending request)
  GET  /account/face              status, re-enroll, delete (login_required)
  POST /account/face/reenroll     password check → fresh face match → enrollment
  POST /account/face/delete       deletes template, captures, consent, counters (the recovery codes stay)

Capture API (JSON; CSRF token in X-CSRFToken; purpose is "enroll" or "verify")
  POST /api/face/<purpose>/captures                    → {capture_id, nonce, frames_needed, challenge,
                                                          instruction, window_ms, interval_ms, max_frames, ...}
  POST /api/face/<purpose>/captures/<id>/frames        raw image/jpeg|png body, X-Capture-Nonce header,
                                                       X-Frame-Time (capture time, ms) → {ok, done, liveness?}
  POST /api/face/<purpose>/captures/<id>/finish        X-Capture-Nonce header, optional JSON body
                                                       {signin_request} (the page's request, "" for none)
                                                       → {ok, message, redirect}
  Starts and frames over the face rate limits get 429 ``face_rate_limited``, frames beyond this worker's
  face slots 429 ``face_busy``, both with Retry-After (see :mod:`.limits`).

Liveness (idp.faceweb.liveness; off with IDP_LIVENESS_ENABLED=false): each capture gets a random
challenge (e.g. turn_left) shown as an instruction; the page films for up to window_ms and sends the
frames as the server keeps up; a frame answer says ``done`` once the burst passes the liveness checks
with enough good frames, or the window is over. /finish runs ``idp.liveness.assess`` on the capture's
frames, and only if it passes checks identity on the same frames. A frame whose exact pixels were seen
in another capture fails the capture at once (409 ``replayed_frame``).

The capture protocol's decisions live in :mod:`.capture` (no Flask there); these views parse the
request, keep the session side (sign-in step, re-enrollment grant, recovery codes to show) and render.
"""
from __future__ import annotations

import functools
import math
import time

from flask import (Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session,
                   url_for)

from idp import audit
from idp.face.engine import engine_for
from idp.keyring import secret_keys
from idp.signin import (REQUEST_FIELD, advance, auth_state, clear_request, complete_step, follow_posted_request,
                         follow_request, pending_request, request_link)
from idp.signin.flow import flow
from idp.signin.guards import login_required, signed_in_uid, still_usable
from idp.throttle import wait_text as _wait_text
from idp.web import large_body

from . import capture, capture_sessions, erasure, face_status, lockout, notice, recovery, reenrollment
from .capture import FRAME_INTERVAL_MS, MAX_HEIGHT, MAX_WIDTH, PURPOSES
from .step import FACE_CHECKED_KEY, STEP_NAME, face_required, has_template, stamp_face_check

RECOVERED_KEY = "face_recovered"  # session: the user id whose sign-in used a recovery code in this browser session
RECOVERY_GRANT_KEY = "face_recovery_grant"  # session: {uid, at}: may enroll (replace the template) for a while

bp = Blueprint("face", __name__)
# links between the face pages name the page's request, as their forms do (idp.signin.request_link)
bp.add_app_template_global(request_link, "signin_link")

REENROLL_WINDOW_S = 600  # password re-entry → face match → enrollment must fit in this window
NEW_CODES_TTL_S = 600  # fresh recovery codes can be shown (once) for this long after enrollment


@bp.before_request
def _note_arrival():
    """When the request reached this blueprint, before the session and sign-in state are read: a frame's
    receive time (idp.faceweb.liveness.frame_time), so the server's own work before the capture code
    (slow under load) is not taken for a pause of the client's."""
    g.face_arrived_ms = time.time() * 1000.0


# --- helpers -------------------------------------------------------------------------------------

def _db():
    from idp import get_db
    return get_db()


def _config():
    from idp import get_config
    return get_config()


def _cipher():
    ext = current_app.extensions["faceweb"]
    if ext.get("cipher") is None:
        from idp.face import TemplateCipher
        ext["cipher"] = TemplateCipher.from_config(_config())
    return ext["cipher"]


def _limits() -> lockout.Limits:
    return lockout.Limits.from_config(_config())


def engine():
    """The process-wide face engine for this configuration (loaded once, ≈7 s)."""
    return engine_for(_config())


def _load_user(uid):
    ext = current_app.extensions.get("accounts") or {}
    loader = ext.get("load_user")
    return loader(uid) if loader else None


def _advance():
    return advance(_load_user if "accounts" in current_app.extensions else None)


def _password_uid() -> str | None:
    """The user who passed the password step of this session (face step pending or done), else None. An
    account that may no longer sign in (``idp.accounts.current.usable_user``: gone, disabled, being deleted) has
    proven nothing: the session forgets its sign-in (``idp.signin.guards.still_usable``), so no face data is
    made for it and the flow starts again at the password step."""
    state = auth_state()
    if not state.uid or "pwd" not in state.amr:
        return None
    step = flow.next_step(state, pending_request())
    if step is not None and step.name == "password":  # stale for the pending request (max_age, prompt)
        return None
    return state.uid if still_usable(state.uid) else None


def _binding(uid: str) -> str:
    """Ties a capture to this browser session and this sign-in (a fresh password login changes it)."""
    import hashlib
    import secrets
    key = session.get("face_binding")
    if not key:
        key = session["face_binding"] = secrets.token_urlsafe(24)
    return hashlib.sha256(f"{key}:{uid}:{auth_state().auth_time}".encode()).hexdigest()


def _client_id() -> str | None:
    """The client of the pending authorization request (for the audit log)."""
    pending = pending_request()
    return pending.client_id if pending else None


def _audit(event: str, user_id: str | None, **kw) -> None:
    kw.setdefault("client_id", _client_id())
    audit.record(_db(), event, user_id=user_id, **audit.request_context(), **kw)


def _api_error(status: int, code: str, message: str, **extra):
    resp = jsonify({"error": code, "error_description": message, "message": message, **extra})
    resp.status_code = status
    if status == 429 and extra.get("retry_after"):
        resp.headers["Retry-After"] = str(extra["retry_after"])
    return resp


def _reenroll_grant(uid: str) -> dict | None:
    grant = session.get("face_reenroll")
    if not grant or grant.get("uid") != uid or time.time() - grant.get("pwd_at", 0) > REENROLL_WINDOW_S:
        return None
    return grant


def _reenroll_confirmed(uid: str) -> bool:
    """Password and a fresh face match, within the window: the template may be replaced."""
    grant = _reenroll_grant(uid)
    return bool(grant and grant.get("face_at") and time.time() - grant["face_at"] <= REENROLL_WINDOW_S)


def _face_fresh(uid: str) -> bool:
    """This session matched ``uid``'s face (amr "face") within ``REENROLL_WINDOW_S``: what deleting the face data
    needs to count as proven by the face, as replacing the template needs a fresh match. A face check of hours
    ago (a stolen or unattended session) proves nothing about who deletes now."""
    stamp = session.get(FACE_CHECKED_KEY)
    return ("face" in auth_state().amr and isinstance(stamp, dict) and stamp.get("uid") == uid
            and isinstance(stamp.get("at"), (int, float)) and 0 <= time.time() - stamp["at"] <= REENROLL_WINDOW_S)


def _recovered(uid: str) -> bool:
    """This browser session used a recovery code for ``uid``: no face check counts in it."""
    return session.get(RECOVERED_KEY) == uid


def _enroll_grant(uid: str) -> str | None:
    """What lets this request replace the user's stored template: "reenroll" (password + fresh face
    match), "recovery" (a recovery code, minutes ago, in this session), "admin_reset"; else None."""
    if _reenroll_confirmed(uid):
        return "reenroll"
    grant = session.get(RECOVERY_GRANT_KEY)
    if grant and grant.get("uid") == uid and 0 <= time.time() - grant.get("at", 0) <= REENROLL_WINDOW_S:
        return reenrollment.VIA_RECOVERY
    if reenrollment.reset_granted(_db(), uid, _config().face_reset_grant_lifetime_s):
        return reenrollment.VIA_ADMIN_RESET
    return None


def _may_enroll(uid: str) -> bool:
    """First enrollment (no template), or a re-enrollment allowed by :func:`_enroll_grant`."""
    return not has_template(_db(), uid) or _enroll_grant(uid) is not None


def _service(uid: str, purpose: str, capture_id: str | None = None) -> capture.CaptureService:
    return capture.CaptureService(_db(), _config(), uid, purpose, engine=engine, cipher=_cipher, capture_id=capture_id,
                                  client_id=_client_id(), ip=request.remote_addr,
                                  user_agent=request.headers.get("User-Agent"),
                                  grant=_enroll_grant(uid) if purpose == "enroll" else None,
                                  recovered=_recovered(uid),
                                  slots=current_app.extensions["faceweb"]["slots"])


def _codes_aead(secret_key: str | None = None):
    """AES-GCM under a key derived (HKDF) from the secret key (default: the current one): fresh recovery
    codes wait in the server-side session only encrypted (a copy of the sessions collection does not
    reveal them)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"deepauth face recovery codes",
               info=b"session stash v1").derive(str(secret_key or _config().secret_key).encode())
    return AESGCM(key)


def _stash_codes(uid: str, codes: list[str]) -> None:
    import base64
    import json
    import os
    at = int(time.time())
    nonce = os.urandom(12)
    ct = _codes_aead().encrypt(nonce, json.dumps(codes).encode(), f"face-new-codes:{uid}:{at}".encode())
    session["face_new_codes"] = {"uid": uid, "at": at, "nonce": base64.b64encode(nonce).decode(),
                                 "ct": base64.b64encode(ct).decode()}


def _unstash_codes(stash: dict, uid: str) -> list[str] | None:
    """The codes of a stash (removed from the session by the caller); None once expired or unreadable."""
    import base64
    import json
    from cryptography.exceptions import InvalidTag
    at = stash.get("at")
    if not isinstance(at, int) or not 0 <= time.time() - at <= NEW_CODES_TTL_S:
        return None
    for key in secret_keys(_config()):  # stashed under the current key or, across a rotation, a retired one
        try:
            data = _codes_aead(key).decrypt(base64.b64decode(stash["nonce"]), base64.b64decode(stash["ct"]),
                                            f"face-new-codes:{uid}:{at}".encode())
            codes = json.loads(data)
        except InvalidTag:
            continue
        except (KeyError, TypeError, ValueError):
            return None
        return codes if isinstance(codes, list) else None
    return None


def _capture_context(purpose: str) -> dict:
    cfg = _config()
    return {
        "purpose": purpose,
        "frames_needed": capture.frames_needed(cfg, purpose),
        "start_url": url_for("face.api_start", purpose=purpose),
        "max_width": MAX_WIDTH, "max_height": MAX_HEIGHT, "interval_ms": FRAME_INTERVAL_MS,
        "liveness": bool(cfg.liveness_enabled),
        # moves per challenge, for the progress shown before the camera starts (the start answer has the
        # exact challenge)
        "moves": _moves_per_challenge(cfg),
    }


def _moves_per_challenge(cfg) -> int:
    from .liveness import drawable
    return len(drawable(cfg)[0].split("+"))


@bp.context_processor
def _face_context():
    return {"ttl_minutes": max(1, -(-_config().capture_ttl_s // 60))}


def _require_face_enabled():
    if not _config().face_enabled:
        from idp.web import abort_with
        abort_with(503, "Face sign-in is not available on this server.")


# --- pages ----------------------------------------------------------------------------------------

@bp.route("/face/enroll")
def enroll():
    _require_face_enabled()
    follow_request(request.args.get(REQUEST_FIELD))  # a link's request (idp.signin.request_link), as for a form
    uid = _password_uid()
    if uid is None:
        session["next"] = url_for("face.enroll")
        return redirect(flow.next_url())
    if not _may_enroll(uid):
        if pending_request() is not None:  # e.g. Back from the recovery codes: the sign-in goes on
            return _advance()
        flash("You already have face data. To enroll again, confirm your password and your face first.", "info")
        return redirect(url_for("face.account_face"))
    return _enroll_page(uid)


def _enroll_page(uid: str, **kw):
    db = _db()
    # "Not now" only when nothing the user is signing in to needs the face step.
    optional = not face_required(db, pending_request()) and not has_template(db, uid)
    kw.setdefault("consented", notice.has_consent(db, uid))
    return render_template("face/enroll.html", optional=optional, notice_version=notice.NOTICE_VERSION,
                           capture=_capture_context("enroll"), reenroll=has_template(db, uid), **kw)


@bp.route("/face/consent", methods=["POST"])
def consent():
    _require_face_enabled()
    uid = _password_uid()
    if uid is None:
        return redirect(flow.next_url())
    if request.form.get("consent") != "yes" or request.form.get("notice_version") != notice.NOTICE_VERSION:
        return _enroll_page(uid, consented=False, consent_error=True), 400
    notice.record_consent(_db(), uid, ip=request.remote_addr)
    # the latest consent is kept with its time and address (face_status); of repeats a few per hour are audited
    _audit(audit.FACE_CONSENT, uid, decision="given", details={"notice_version": notice.NOTICE_VERSION},
           **audit.ordinary_use(uid, notice.NOTICE_VERSION))
    return redirect(url_for("face.enroll"))


@bp.route("/face/enroll/done")
def enroll_done():
    uid = _password_uid()
    stash = session.pop("face_new_codes", None)
    if uid is None or not isinstance(stash, dict) or stash.get("uid") != uid:
        return redirect(url_for("face.continue_"))
    codes = _unstash_codes(stash, uid)
    if codes == []:  # enrolled without making codes (unused ones left, or no face proven): the page says why
        db = _db()
        until = reenrollment.cooloff_until(db, uid)
        return render_template("face/enroll_done.html", codes=[], codes_withheld=True,
                               codes_left=recovery.remaining_recovery_codes(db, uid, secret_keys(_config())),
                               cooloff_until=capture.format_time(until) if until else None)
    if not codes:
        flash(f"Recovery codes are shown only once, within {NEW_CODES_TTL_S // 60} minutes of enrolling. If you did "
              "not save them, ask an administrator to void them: enrolling your face again from your account's "
              f"face sign-in page ({url_for('face.account_face')}) then makes a new set (it never voids unused "
              "codes).", "info")
        return redirect(url_for("face.continue_"))
    return render_template("face/enroll_done.html", codes=codes)


@bp.route("/face/verify")
def verify():
    _require_face_enabled()
    uid = _password_uid()
    if uid is None:
        return redirect(flow.next_url())
    reenroll = request.args.get("reenroll") == "1" and _reenroll_grant(uid) is not None
    if "face" in auth_state().amr and not reenroll:
        return _advance()
    db = _db()
    if not has_template(db, uid):
        return redirect(url_for("face.enroll"))
    grant = _enroll_grant(uid)
    blocker = _service(uid, "verify").blocker()
    if blocker is not None and blocker[0] == "template_unusable" and grant in (reenrollment.VIA_RECOVERY, "reenroll"):
        return redirect(url_for("face.enroll"))
    until = reenrollment.cooloff_until(db, uid)
    state = lockout.lock_state(db, uid, _limits())
    return render_template("face/verify.html", locked=state.locked, wait_s=state.wait_s,
                           wait_text=_wait_text(state.wait_s), capture=_capture_context("verify"),
                           reenroll=reenroll, blocker=blocker[0] if blocker else None,
                           blocker_message=blocker[1] if blocker else None,
                           cooloff_until=capture.format_time(until) if until else None,
                           face_required=face_required(db, pending_request()),
                           reset_granted=grant == reenrollment.VIA_ADMIN_RESET)


@bp.route("/face/continue")
def continue_():
    """Back into the sign-in flow with what the linking page was shown for (its ``signin_request`` in the
    query, as the sign-in forms send it, ``idp.signin.follow_request``: empty for none; a link without it goes
    on with the session's pending request). A GET naming a request starts nothing a link to the
    authorization endpoint could not."""
    follow_request(request.args.get(REQUEST_FIELD))
    return _advance()


@bp.route("/face/recover", methods=["GET", "POST"])
def recover():
    _require_face_enabled()
    if request.method == "GET":
        follow_request(request.args.get(REQUEST_FIELD))  # the linking page's request (idp.signin.request_link)
    uid = _password_uid()
    if uid is None:
        session["next"] = url_for("face.recover")
        return redirect(flow.next_url())
    db = _db()
    if request.method == "POST":
        follow_posted_request()  # the application this page named, even if another tab started another since
        # One code check at a time per user (lockout.reserve_judging), and none judged before it is charged:
        # the check is counted as a wrong code first, atomically and only while no waiting time runs
        # (lockout.charge_attempt), so parallel posts cannot get more codes judged than the waiting times allow
        # even when the reservation expires under a slow check or another worker takes it.
        token = lockout.reserve_judging(db, uid, prefix=recovery.COUNTER_PREFIX)
        if token is None:
            return render_template("face/recover.html", error=capture.BUSY_MESSAGE), 429
        try:
            return _recover_post(db, uid)
        finally:
            lockout.release_judging(db, uid, token, prefix=recovery.COUNTER_PREFIX)
    return render_template("face/recover.html", error=None)


def _recover_post(db, uid: str):
    """Checks one recovery code, charged before it is judged (the caller holds the user's recovery-check
    reservation): a wrong code keeps the charge, a right one resets the count, a post that judged no code (none
    given, an error before the check) gets it back; an error from the check on keeps it (fail closed)."""
    limits, prefix = _limits(), recovery.COUNTER_PREFIX
    charge = lockout.charge_attempt(db, uid, limits, prefix=prefix)
    if charge is None:
        state = lockout.lock_state(db, uid, limits, prefix=prefix)
        error = (f"Too many wrong codes. Please wait {_wait_text(state.wait_s)} and try again." if state.wait_s
                 else capture.BUSY_MESSAGE)
        return render_template("face/recover.html", error=error), 429
    judged = False
    try:
        code = request.form.get("code", "")
        if not recovery.normalise_code(code):
            return render_template("face/recover.html", error="Please enter one of your recovery codes."), 400
        keys = secret_keys(_config())
        judged = True
        if recovery.use_recovery_code(db, uid, keys, code):
            # The code is a one-time code (amr "otp"), never a face: this browser session carries
            # ["pwd", "otp"] from now on, and a template enrolled from here starts a cooling-off period.
            # The old template stays until a new one replaces it (audited as such).
            lockout.reset_failures(db, uid, unlock=True)
            lockout.reset_failures(db, uid, prefix=prefix)  # (the charge with the rest of the run)
            complete_step(uid, "otp")
            session[RECOVERED_KEY] = uid
            session[RECOVERY_GRANT_KEY] = {"uid": uid, "at": time.time()}
            _audit(audit.FACE_RECOVERY, uid, decision="accepted",
                   details={"codes_left": recovery.remaining_recovery_codes(db, uid, secret_keys(_config()))})
            session.pop("face_reenroll", None)
            cooloff = _config().face_recovery_cooloff_s
            period = f"{cooloff / 3600:g} hours" if cooloff >= 7200 else _wait_text(cooloff)
            later = (f"face sign-in with the new face data becomes available {period} after you enroll it"
                     if cooloff > 0 else "face sign-in with the new face data works from your next sign-in")
            flash("Recovery code accepted. This sign-in counts as password and recovery code, not as a face check. "
                  f"Please enroll your face again now: {later}.", "success")
            return redirect(url_for("face.enroll"))
        lockout.charged_failure(db, uid, limits, charge, prefix=prefix)
        _audit(audit.FACE_RECOVERY, uid, decision="rejected")
        return render_template("face/recover.html", error="That recovery code is not valid or was already used."), 400
    finally:
        if not judged:  # no code was judged: no attempt
            lockout.refund_attempt(db, uid, charge, prefix=prefix)


@bp.route("/account/face")
@login_required
def account_face():
    from idp.face.repository import is_older_version, template_info
    uid = signed_in_uid()
    db = _db()
    status = face_status.get_status(db, uid)
    lock = lockout.lock_state(db, uid, _limits())
    until = reenrollment.cooloff_until(db, uid)
    info = template_info(db, uid)
    return render_template("face/account.html", info=info, consent=status.get("consent"),
                           older_template=info is not None and is_older_version(info),
                           lock=lock, codes_left=recovery.remaining_recovery_codes(db, uid, secret_keys(_config())),
                           face_enabled=_config().face_enabled, face_proven=_face_fresh(uid),
                           cooloff_until=capture.format_time(until) if until else None)


def _password_refused(uid: str, wrong: str):
    """The password posted with an account-face form (``password``), checked by the sign-in page's throttled
    check (its counters, reserved before argon2 runs; a signed-in session counts on the account's only): None
    when it is right, else the response (back to the account page with ``wrong``, or the wait when throttled;
    the sign-in page when the account is gone)."""
    from idp.accounts import users
    from idp.accounts.guard import check_password
    user = users.get_user(_db(), uid)
    if user is None:  # deleted meanwhile
        return redirect(url_for("accounts.login"))
    result = check_password(_db(), user, request.form.get("password", ""))
    if result.ok:
        return None
    flash(f"Too many wrong passwords. Please wait {_wait_text(result.wait)} and try again." if result.wait
          else wrong, "error")
    return redirect(url_for("face.account_face"))


@bp.route("/account/face/reenroll", methods=["POST"])
@login_required
def reenroll():
    _require_face_enabled()
    uid = signed_in_uid()
    db = _db()
    refused = _password_refused(uid, "That password is not right.")
    if refused is not None:
        return refused
    session["face_reenroll"] = {"uid": uid, "pwd_at": time.time()}
    clear_request()  # the face pages of the re-enrollment name no request another tab left pending
    if not has_template(db, uid):
        return redirect(url_for("face.enroll"))
    return redirect(url_for("face.verify", reenroll="1"))


@bp.route("/account/face/delete", methods=["POST"])
@login_required
def delete():
    """Deletes the face data after the confirmation box and the password (the throttled check of the sign-in
    page), as re-enrolling asks for it: a signed-in session alone (unattended, stolen) must not be able to
    delete the owner's face and then enroll another face as the account's first. The recovery codes stay
    (``erasure.delete_face_data``)."""
    uid = signed_in_uid()
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm that your face data should be deleted.", "error")
        return redirect(url_for("face.account_face"))
    refused = _password_refused(uid, "That password is not right: your face data was not deleted.")
    if refused is not None:
        return refused
    face_proven = _face_fresh(uid)
    counts = erasure.delete_face_data(_db(), uid, face_proven=face_proven)
    session.pop("face_reenroll", None)
    if counts is None:
        # The deletion's claim tells which request deleted the face data: another request (a double submit)
        # holds it and audits and notifies, or there was nothing left to delete.
        flash("Your face data is being deleted by another request, or there was none left to delete.", "info")
        return redirect(url_for("face.account_face"))
    _audit(audit.FACE_DELETE, uid, decision="deleted", details=counts)
    kept = ("Your face data was deleted: template, captures, replay-check hashes and consent. Your unused "
            "recovery codes were kept (an administrator can void them).")
    if face_proven:
        flash(kept, "success")
    else:
        flash(f"{kept} This sign-in did not check your face in the last {REENROLL_WINDOW_S // 60} minutes (or used "
              "a recovery code instead), so a face enrolled next starts a waiting period.", "success")
    return redirect(url_for("face.account_face"))


# --- capture API ----------------------------------------------------------------------------------

def _capture_api(view):
    """Hands the view the caller's capture service; refusals and CaptureErrors become JSON errors."""
    @functools.wraps(view)
    def wrapper(purpose, **kw):
        if purpose not in PURPOSES:
            return _api_error(404, "not_found", "Unknown capture purpose.")
        if not _config().face_enabled:
            return _api_error(503, "face_disabled", "Face sign-in is not available on this server.")
        uid = _password_uid()
        if uid is None:
            return _api_error(401, "login_required", "Sign in with your password first.")
        svc = _service(uid, purpose, kw.get("capture_id"))
        try:
            svc.check_access()
            return view(svc, **kw)
        except capture_sessions.CaptureError as e:
            extra = {"redirect": url_for(e.redirect)} if e.redirect else {}
            return _api_error(e.status, e.code, e.message, **extra, **e.extra)
    return wrapper


@bp.route("/api/face/<purpose>/captures", methods=["POST"])
@_capture_api
def api_start(svc: capture.CaptureService):
    body = svc.start(_binding(svc.uid))
    base = url_for("face.api_start", purpose=svc.purpose) + "/" + body["capture_id"]
    return jsonify({**body, "frames_url": base + "/frames", "finish_url": base + "/finish"}), 201


@bp.route("/api/face/<purpose>/captures/<capture_id>/frames", methods=["POST"])
@large_body
@_capture_api
def api_frame(svc: capture.CaptureService, capture_id):
    doc = svc.open_frame(capture_id, request.headers.get("X-Capture-Nonce"), _binding(svc.uid),
                         mimetype=request.mimetype, content_length=request.content_length,
                         arrived_ms=g.get("face_arrived_ms"))
    reading = time.time() * 1000.0
    data = request.get_data(cache=False)
    return jsonify(svc.add_frame(doc, data, _client_time(request.headers.get("X-Frame-Time")),
                                 body_ms=time.time() * 1000.0 - reading))


#: A frame time (ms) beyond this is not a clock reading (Date.now() is about 1.8e12): differences of two
#: usable times stay finite.
MAX_CLIENT_TIME_MS = 1e15


def _client_time(raw: str | None) -> float | None:
    """The browser's capture time of a frame (ms), if it sent a usable one."""
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and abs(value) <= MAX_CLIENT_TIME_MS else None


@bp.route("/api/face/<purpose>/captures/<capture_id>/finish", methods=["POST"])
@_capture_api
def api_finish(svc: capture.CaptureService, capture_id):
    body = request.get_json(silent=True) if request.content_length else None
    shown_for = body.get(REQUEST_FIELD) if isinstance(body, dict) else None  # None: not sent (follow_request)
    done = svc.finish(capture_id, request.headers.get("X-Capture-Nonce"), _binding(svc.uid),
                      then=lambda done: _after_finish(svc.uid, done, shown_for))
    return jsonify({**done.body, **({"redirect": done.next_url} if done.next_url else {})})


def _after_finish(uid: str, done: capture.Finished, shown_for=None) -> str | None:
    """The session side of a finished capture; returns where the page goes next. The sign-in goes on with what
    the capture page was shown for, ``shown_for`` (the page's ``signin_request`` as sent with the finish: ""
    when it named no request), as after a sign-in form (``idp.signin.follow_request``), not with a request
    another tab started or left pending in the same session: the user is never sent with a code into (or to
    the consent page of) an application the page did not name."""
    follow_request(shown_for)
    if done.codes is not None or done.codes_withheld:  # enrolled: the grant is spent
        session.pop("face_reenroll", None)
        session.pop(RECOVERY_GRANT_KEY, None)
        _stash_codes(uid, done.codes or [])  # [] = the old codes were kept (the page says why)
    if not done.matched or _recovered(uid):  # a session that used a recovery code never gets "face"
        return url_for(done.redirect) if done.redirect else None
    complete_step(uid, STEP_NAME)
    stamp_face_check(uid, done.template_stamp)
    grant = _reenroll_grant(uid)
    if grant is None:
        return _advance().location
    grant["face_at"] = time.time()
    session["face_reenroll"] = grant
    return url_for("face.enroll")
