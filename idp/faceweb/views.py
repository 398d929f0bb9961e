"""Hosted face pages (enrollment, verification, recovery, /account/face) and the capture API.

Pages
  GET  /face/enroll               notice + consent form, then the webcam capture (purpose "enroll")
  POST /face/consent              records consent (time, notice version); nothing happens without it
  GET  /face/enroll/done          the recovery codes, shown once
  GET  /face/verify               the face step of the sign-in (purpose "verify")
  GET/POST /face/recover          a recovery code: resets the lock, deletes the old template → enroll again
  GET  /face/continue             back into the sign-in flow (next step or the pending request)
  GET  /account/face              status, re-enroll, delete (login_required)
  POST /account/face/reenroll     password check → fresh face match → enrollment
  POST /account/face/delete       deletes template, captures, recovery codes, consent, counters

Capture API (JSON; CSRF token in X-CSRFToken; purpose is "enroll" or "verify")
  POST /api/face/<purpose>/captures                    → {capture_id, nonce, frames_needed, challenge,
                                                          instruction, window_ms, interval_ms, max_frames, ...}
  POST /api/face/<purpose>/captures/<id>/frames        raw image/jpeg|png body, X-Capture-Nonce header,
                                                       X-Frame-Time (capture time, ms) → {ok, done, liveness?}
  POST /api/face/<purpose>/captures/<id>/finish        X-Capture-Nonce header → {ok, message, redirect}

Liveness (issue 5, idp.faceweb.liveness; off with IDP_LIVENESS_ENABLED=false): each capture gets a random
challenge (e.g. turn_left) shown as an instruction; the page films for up to window_ms and sends the
frames as the server keeps up; a frame answer says ``done`` once the burst passes the liveness checks
with enough good frames, or the window is over. /finish runs ``idp.liveness.assess`` on the capture's
frames, and only if it passes checks identity on the same frames. A frame whose exact pixels were seen
in another capture fails the capture at once (409 ``replayed_frame``).
"""
from __future__ import annotations

import logging
import math
import time

from flask import (Blueprint, current_app, flash, jsonify, redirect, render_template, request, session,
                   url_for)

from idp import audit
from idp.signin import advance, auth_state, complete_step, pending_request
from idp.signin.flow import flow
from idp.signin.guards import login_required, signed_in_uid

from . import liveness, store
from .step import STEP_NAME, face_required, has_template

log = logging.getLogger("idp.faceweb")
bp = Blueprint("face", __name__)

PURPOSES = ("enroll", "verify")
ACCEPTED_TYPES = ("image/jpeg", "image/png")
REENROLL_WINDOW_S = 600  # password re-entry → face match → enrollment must fit in this window
FRAME_INTERVAL_MS = 200  # the browser sends at most ~5 frames per second
MAX_WIDTH, MAX_HEIGHT = 640, 480


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
        ext["cipher"] = TemplateCipher(_config().template_key)
    return ext["cipher"]


def _captures() -> store.Captures:
    return store.Captures(_db(), _cipher(), _config().capture_ttl_s)


def _limits() -> store.Limits:
    return store.Limits.from_config(_config())


def engine():
    """The process-wide face engine for this configuration (loaded once, ≈7 s)."""
    from idp.face import get_engine
    cfg = _config()
    return get_engine(cfg.data_dir, threshold=cfg.face_threshold, max_image_bytes=cfg.max_image_bytes,
                      max_image_pixels=cfg.max_image_pixels)


def _load_user(uid):
    ext = current_app.extensions.get("accounts") or {}
    loader = ext.get("load_user")
    return loader(uid) if loader else None


def _advance():
    return advance(_load_user if "accounts" in current_app.extensions else None)


def _password_uid() -> str | None:
    """The user who passed the password step of this session (face step pending or done), else None."""
    state = auth_state()
    if not state.uid or "pwd" not in state.amr:
        return None
    step = flow.next_step(state, pending_request())
    if step is not None and step.name == "password":  # stale for the pending request (max_age, prompt)
        return None
    return state.uid


def _binding(uid: str) -> str:
    """Ties a capture to this browser session and this sign-in (a fresh password login changes it)."""
    import hashlib
    import secrets
    key = session.get("face_binding")
    if not key:
        key = session["face_binding"] = secrets.token_urlsafe(24)
    return hashlib.sha256(f"{key}:{uid}:{auth_state().auth_time}".encode()).hexdigest()


def _audit(event: str, user_id: str | None, **kw) -> None:
    pending = pending_request()
    kw.setdefault("client_id", pending.client_id if pending else None)
    try:
        audit.record(_db(), event, user_id=user_id, ip=request.remote_addr,
                     user_agent=request.headers.get("User-Agent"), **kw)
    except Exception:  # auditing must never break a sign-in; the failure itself is logged
        log.exception("audit write failed", extra={"event": event})


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


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


def _may_enroll(uid: str) -> bool:
    """First enrollment (no template), or a re-enrollment after password + fresh face match."""
    if not has_template(_db(), uid):
        return True
    grant = _reenroll_grant(uid)
    return bool(grant and grant.get("face_at") and time.time() - grant["face_at"] <= REENROLL_WINDOW_S)


def _face_guidance(reasons) -> str:
    from idp.face import REASON_MESSAGES
    from idp.face.reasons import GUIDANCE_ORDER
    reasons = list(reasons or [])
    for code in GUIDANCE_ORDER:
        if code in reasons:
            return REASON_MESSAGES[code]
    return REASON_MESSAGES.get(reasons[0], "Please try again.") if reasons else "Good. Hold still."


def _result_message(reasons) -> str:
    from idp.face import REASON_MESSAGES
    reasons = [r for r in (reasons or []) if r in REASON_MESSAGES]
    return " ".join(dict.fromkeys(REASON_MESSAGES[r] for r in reasons[:2])) or "Please try again."


def _capture_context(purpose: str) -> dict:
    cfg = _config()
    return {
        "purpose": purpose,
        "frames_needed": cfg.face_enroll_frames if purpose == "enroll" else cfg.face_verify_frames,
        "start_url": url_for("face.api_start", purpose=purpose),
        "max_width": MAX_WIDTH, "max_height": MAX_HEIGHT, "interval_ms": FRAME_INTERVAL_MS,
        "liveness": bool(cfg.liveness_enabled),
    }


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
    uid = _password_uid()
    if uid is None:
        session["next"] = url_for("face.enroll")
        return redirect(flow.next_url())
    if not _may_enroll(uid):
        flash("You already have face data. To enroll again, confirm your password and your face first.", "info")
        return redirect(url_for("face.account_face"))
    db = _db()
    # "Not now" only when nothing the user is signing in to needs the face step.
    optional = not face_required(db, auth_state(), pending_request())
    return render_template("face/enroll.html", consented=store.has_consent(db, uid), optional=optional,
                           notice_version=store.NOTICE_VERSION,
                           capture=_capture_context("enroll"), reenroll=has_template(db, uid))


@bp.route("/face/consent", methods=["POST"])
def consent():
    _require_face_enabled()
    uid = _password_uid()
    if uid is None:
        return redirect(flow.next_url())
    if request.form.get("consent") != "yes" or request.form.get("notice_version") != store.NOTICE_VERSION:
        db = _db()
        return render_template("face/enroll.html", consented=False, consent_error=True,
                               optional=not face_required(db, auth_state(), pending_request()),
                               notice_version=store.NOTICE_VERSION, capture=_capture_context("enroll"),
                               reenroll=has_template(db, uid)), 400
    store.record_consent(_db(), uid, ip=request.remote_addr)
    _audit(audit.FACE_CONSENT, uid, decision="given", details={"notice_version": store.NOTICE_VERSION})
    return redirect(url_for("face.enroll"))


@bp.route("/face/enroll/done")
def enroll_done():
    uid = _password_uid()
    codes = session.pop("face_new_codes", None)
    if uid is None or not codes or codes.get("uid") != uid:
        return redirect(url_for("face.continue_"))
    return render_template("face/enroll_done.html", codes=codes["codes"])


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
    state = store.lock_state(db, uid, _limits())
    return render_template("face/verify.html", locked=state.locked, wait_s=state.wait_s,
                           wait_text=_wait_text(state.wait_s), capture=_capture_context("verify"),
                           reenroll=reenroll)


@bp.route("/face/continue")
def continue_():
    return _advance()


@bp.route("/face/recover", methods=["GET", "POST"])
def recover():
    _require_face_enabled()
    uid = _password_uid()
    if uid is None:
        session["next"] = url_for("face.recover")
        return redirect(flow.next_url())
    db = _db()
    error, status = None, 200
    if request.method == "POST":
        limits = _limits()
        state = store.lock_state(db, uid, limits, prefix="recovery_")
        if state.wait_s:
            error, status = f"Too many wrong codes. Please wait {_wait_text(state.wait_s)} and try again.", 429
        elif store.use_recovery_code(db, uid, _config().secret_key, request.form.get("code", "")):
            store.reset_failures(db, uid, unlock=True)
            store.reset_failures(db, uid, prefix="recovery_")
            from idp.face.repository import delete_template
            delete_template(db, uid)
            _audit(audit.FACE_RECOVERY, uid, decision="accepted",
                   details={"codes_left": store.remaining_recovery_codes(db, uid)})
            session.pop("face_reenroll", None)
            flash("Recovery code accepted. Your old face data was removed; please enroll your face again.",
                  "success")
            return redirect(url_for("face.enroll"))
        else:
            store.register_failure(db, uid, limits, prefix="recovery_")
            _audit(audit.FACE_RECOVERY, uid, decision="rejected")
            error, status = "That recovery code is not valid or was already used.", 400
    return render_template("face/recover.html", error=error), status


@bp.route("/account/face")
@login_required
def account_face():
    from idp.face.repository import template_info
    uid = signed_in_uid()
    db = _db()
    status = store.get_status(db, uid)
    lock = store.lock_state(db, uid, _limits())
    return render_template("face/account.html", info=template_info(db, uid), consent=status.get("consent"),
                           lock=lock, codes_left=store.remaining_recovery_codes(db, uid),
                           face_enabled=_config().face_enabled)


@bp.route("/account/face/reenroll", methods=["POST"])
@login_required
def reenroll():
    _require_face_enabled()
    uid = signed_in_uid()
    db = _db()
    from idp.accounts import users
    user = users.get_user(db, uid)
    throttle = (current_app.extensions.get("accounts") or {}).get("user_throttle")
    key = f"pwd:user:{uid}"
    wait = throttle.check(key) if throttle else 0
    if wait:
        flash(f"Too many wrong passwords. Please wait {_wait_text(wait)} and try again.", "error")
        return redirect(url_for("face.account_face"))
    if not users.verify_password(db, user, request.form.get("password", "")):
        if throttle:
            throttle.failure(key)
        flash("That password is not right.", "error")
        return redirect(url_for("face.account_face"))
    if throttle:
        throttle.success(key)
    session["face_reenroll"] = {"uid": uid, "pwd_at": time.time()}
    if not has_template(db, uid):
        return redirect(url_for("face.enroll"))
    return redirect(url_for("face.verify", reenroll="1"))


@bp.route("/account/face/delete", methods=["POST"])
@login_required
def delete():
    uid = signed_in_uid()
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm that your face data should be deleted.", "error")
        return redirect(url_for("face.account_face"))
    counts = store.delete_face_data(_db(), uid)
    session.pop("face_reenroll", None)
    _audit(audit.FACE_DELETE, uid, decision="deleted", details=counts)
    flash("Your face data was deleted: template, captures, recovery codes and consent.", "success")
    return redirect(url_for("face.account_face"))


# --- capture API ----------------------------------------------------------------------------------

def _api_uid(purpose: str):
    """(uid, error response) for the capture API."""
    if purpose not in PURPOSES:
        return None, _api_error(404, "not_found", "Unknown capture purpose.")
    if not _config().face_enabled:
        return None, _api_error(503, "face_disabled", "Face sign-in is not available on this server.")
    uid = _password_uid()
    if uid is None:
        return None, _api_error(401, "login_required", "Sign in with your password first.")
    db = _db()
    if purpose == "enroll":
        if not _may_enroll(uid):
            return None, _api_error(403, "enroll_not_allowed",
                                    "Confirm your password and face on your account page before enrolling again.")
        if not store.has_consent(db, uid):
            return None, _api_error(403, "consent_required", "Please read the notice and give your consent first.")
    else:
        if not has_template(db, uid):
            return None, _api_error(409, "not_enrolled", "You have not enrolled your face yet.",
                                    redirect=url_for("face.enroll"))
        state = store.lock_state(db, uid, _limits())
        if state.locked:
            return None, _api_error(403, "face_locked", "Face sign-in is locked for this account after too many "
                                    "failed attempts. Use a recovery code or ask an administrator.",
                                    redirect=url_for("face.recover"))
        if state.wait_s:
            return None, _api_error(429, "slow_down", f"Too many failed attempts. Please wait "
                                    f"{_wait_text(state.wait_s)} and try again.", retry_after=state.wait_s)
    return uid, None


@bp.route("/api/face/<purpose>/captures", methods=["POST"])
def api_start(purpose):
    uid, err = _api_uid(purpose)
    if err is not None:
        return err
    ctx = _capture_context(purpose)
    pending = pending_request()
    challenge = liveness.new_challenge(_config())
    doc = _captures().create(uid, purpose, ctx["frames_needed"], client_id=pending.client_id if pending else None,
                              binding=_binding(uid), challenge=challenge)
    base = url_for("face.api_start", purpose=purpose) + "/" + doc["_id"]
    return jsonify({
        "capture_id": doc["_id"], "nonce": doc["nonce"], "purpose": purpose,
        "frames_needed": ctx["frames_needed"], "expires_in": _config().capture_ttl_s,
        "max_width": MAX_WIDTH, "max_height": MAX_HEIGHT,
        "interval_ms": liveness.INTERVAL_MS if challenge else FRAME_INTERVAL_MS,
        "max_frames": store.MAX_FRAMES_PER_CAPTURE,
        "frames_url": base + "/frames", "finish_url": base + "/finish",
        # presentation-attack challenge (None = liveness off): film for up to window_ms while the
        # user follows the instruction; the frame responses say when the server has enough.
        "challenge": challenge,
        "instruction": liveness.instruction(challenge),
        "window_ms": liveness.WINDOW_MS if challenge else None,
    }), 201


@bp.route("/api/face/<purpose>/captures/<capture_id>/frames", methods=["POST"])
def api_frame(purpose, capture_id):
    uid, err = _api_uid(purpose)
    if err is not None:
        return err
    captures = _captures()
    try:
        doc = captures.open_for(capture_id, uid, purpose, request.headers.get("X-Capture-Nonce"), _binding(uid))
    except store.CaptureError as e:
        return _api_error(e.status, e.code, e.message)
    cfg = _config()
    if request.mimetype not in ACCEPTED_TYPES:
        return _api_error(415, "unsupported_media_type", "Send the picture as image/jpeg or image/png.")
    if request.content_length is not None and request.content_length > cfg.max_image_bytes:
        return _api_error(413, "image_too_large", f"The picture is too large (limit {cfg.max_image_bytes} bytes).")
    data = request.get_data(cache=False)
    if len(data) > cfg.max_image_bytes:
        return _api_error(413, "image_too_large", f"The picture is too large (limit {cfg.max_image_bytes} bytes).")
    server_ms = time.time() * 1000.0  # receive time (before the analysis)
    client_ts = request.headers.get("X-Frame-Time")
    try:
        client_ts = float(client_ts) if client_ts else None
    except ValueError:
        client_ts = None
    if client_ts is not None and not math.isfinite(client_ts):
        client_ts = None
    from idp.face import FaceInputError
    try:
        rgb = engine().decode(data)
    except FaceInputError as e:
        status = 413 if e.reason == "image_too_large" else 400
        return _api_error(status, e.reason, e.message)
    if doc.get("challenge"):
        return _liveness_frame(uid, purpose, captures, doc, rgb, server_ms, client_ts)
    analysis = engine().analyze(rgb)
    try:
        updated = captures.add_frame(doc, analysis, client_ts=client_ts)
    except store.CaptureError as e:
        return _api_error(e.status, e.code, e.message)
    return jsonify(_frame_body(analysis, updated, done=updated["good"] >= updated["needed"]))


def _frame_body(analysis, updated, *, done: bool, live: dict | None = None) -> dict:
    good, needed = updated["good"], updated["needed"]
    if analysis is None:
        reasons, ok, message = [], False, "Keep following the instruction."
    else:
        reasons, ok = list(analysis.reasons), bool(analysis.ok and analysis.embedding is not None)
        if analysis.reasons:
            message = _face_guidance(analysis.reasons)
        elif done:
            message = "Done. Checking…"
        elif live is not None:
            message = "Good. Keep following the instruction."
        else:
            message = "Good. Hold still."
    body = {
        "ok": ok, "reasons": reasons, "message": message,
        "good_frames": good, "frames_needed": needed, "frames": updated["count"], "done": bool(done),
        "box": [round(float(v), 1) for v in analysis.box] if analysis is not None and analysis.box else None,
        "size": list(getattr(analysis, "size", ()) or ()) if analysis is not None else [],
    }
    if live is not None:
        body["liveness"] = live
    return body


def _liveness_frame(uid, purpose, captures, doc, rgb, server_ms, client_ts):
    """One frame of a capture with a liveness challenge: replay check, observation, progress."""
    db = _db()
    fingerprint = liveness.exact_fingerprint(rgb)
    seen = liveness.remember_frame(db, fingerprint, doc["_id"], store.utcnow())
    if seen == liveness.REPLAYED:
        return _replayed(uid, purpose, captures, doc)
    h, w = rgb.shape[:2]
    t_ms, origin = liveness.frame_time(doc, server_ms, client_ts)
    if origin is not None:
        stored = captures.set_once(doc, "lv_t0", origin)
        if stored != origin:  # another frame of this capture was first
            doc = {**doc, "lv_t0": stored}
            t_ms, _ = liveness.frame_time(doc, server_ms, client_ts)
    extra = {"t_ms": round(t_ms, 1), "w": w, "h": h}
    try:
        if seen == liveness.DUPLICATE:  # the same pixels again in this capture: not a new moment
            updated = captures.add_frame(doc, None, client_ts=client_ts, extra={**extra, "dup": True},
                                         inc={"lv_dups": 1}, with_frames=True)
            analysis = None
        else:
            analysis = engine().analyze(rgb)
            thumb = liveness.thumb_of(rgb)
            ref = doc.get("lv_ref_thumb") or captures.set_once(doc, "lv_ref_thumb", thumb.tobytes())
            diff = liveness.thumb_diff(ref, thumb)
            updated = captures.add_frame(doc, analysis, client_ts=client_ts, extra=extra,
                                         max_fields={"lv_thumb_diff": diff}, with_frames=True)
    except store.CaptureError as e:
        return _api_error(e.status, e.code, e.message)
    live = liveness.progress(updated, t_ms)
    done = (updated["good"] >= updated["needed"] and live["passed"]) or live["window_over"]
    return jsonify(_frame_body(analysis, updated, done=done, live=live))


def _replayed(uid, purpose, captures, doc):
    """A frame already used by another capture session: the capture fails now (and counts as a failed
    face attempt at sign-in)."""
    from idp.liveness import reason_message
    reasons = ["replayed_frame"]
    message = reason_message("replayed_frame")
    details = {"liveness_passed": False, "liveness_reasons": reasons, "liveness_challenge": doc.get("challenge")}
    if captures.close(doc, {"ok": False, "reasons": reasons}):
        if purpose == "verify":
            state = store.register_failure(_db(), uid, _limits())
            details["failures"] = state.failures
            _audit(audit.FACE_VERIFY, uid, client_id=doc.get("client_id"), decision="liveness_failed",
                   reasons=reasons, details=details)
        else:
            _audit(audit.FACE_ENROLL, uid, decision="rejected", reasons=reasons, details=details)
    return _api_error(409, "replayed_frame", message, reasons=reasons,
                      liveness={"passed": False, "reasons": reasons, "challenge": doc.get("challenge")})


def _analyses(frames_with_embeddings):
    from idp.face import FrameAnalysis
    out = []
    for frame, emb in frames_with_embeddings:
        box = frame.get("box")
        landmarks = frame.get("landmarks")
        out.append(FrameAnalysis(ok=True, reasons=[], box=tuple(box) if box else None,
                                 landmarks={k: tuple(v) for k, v in landmarks.items()} if landmarks else None,
                                 confidence=float(frame.get("confidence") or 0.0), quality=frame.get("quality") or {},
                                 embedding=emb))
    return out


@bp.route("/api/face/<purpose>/captures/<capture_id>/finish", methods=["POST"])
def api_finish(purpose, capture_id):
    uid, err = _api_uid(purpose)
    if err is not None:
        return err
    captures = _captures()
    try:
        doc = captures.begin_finish(capture_id, uid, purpose, request.headers.get("X-Capture-Nonce"),
                                   _binding(uid))
    except store.CaptureError as e:
        return _api_error(e.status, e.code, e.message)
    try:
        # Identity is checked on this capture's frames only: the burst the liveness checks judged.
        analyses = _analyses(captures.embeddings(doc))
        live = liveness.evaluate(doc) if doc.get("challenge") else None
        if purpose == "enroll":
            body, result = _finish_enroll(uid, doc, analyses, live)
        else:
            body, result = _finish_verify(uid, doc, analyses, live)
    except Exception:
        captures.finish(doc, {"ok": False, "error": "server_error"})
        raise
    captures.finish(doc, result)
    return jsonify(body)


def _live_details(live) -> dict:
    return live.audit() if live is not None else {"liveness_passed": None}


def _finish_enroll(uid, doc, analyses, live=None):
    db = _db()
    if not store.has_consent(db, uid):  # consent may have been withdrawn (face data deleted) meanwhile
        return {"ok": False, "reasons": ["consent_required"],
                "message": "Please read the notice and give your consent first."}, {"ok": False}
    if live is not None and not live.passed and (live.attack or len(analyses) >= doc["needed"]):
        _audit(audit.FACE_ENROLL, uid, decision="rejected", reasons=live.reasons,
               details={**live.audit(), "good_frames": len(analyses), "frames": doc.get("count", 0)})
        return ({"ok": False, "reasons": live.reasons, "liveness": live.public(), "message": live.message()},
                {"ok": False, "reasons": live.reasons, "liveness": live.public()})
    if len(analyses) < doc["needed"]:
        from idp.face.reasons import NOT_ENOUGH_GOOD_FRAMES
        reasons = [NOT_ENOUGH_GOOD_FRAMES]
        _audit(audit.FACE_ENROLL, uid, decision="rejected", reasons=reasons,
               details={"good_frames": len(analyses), "frames": doc.get("count", 0)})
        return {"ok": False, "reasons": reasons, "message": _result_message(reasons)}, {"ok": False,
                                                                                      "reasons": reasons}
    result = engine().enroll(analyses)
    stats = {k: v for k, v in (result.stats or {}).items() if isinstance(v, (int, float, str))}
    if not result.ok:
        _audit(audit.FACE_ENROLL, uid, decision="rejected", reasons=result.reasons,
               details={**stats, **_live_details(live)})
        return ({"ok": False, "reasons": list(result.reasons), "message": _result_message(result.reasons)},
                {"ok": False, "reasons": list(result.reasons)})
    from idp.face.repository import save_template
    replaced = has_template(db, uid)
    save_template(db, uid, result.template, _cipher())
    codes = store.issue_recovery_codes(db, uid, _config().secret_key)
    store.reset_failures(db, uid, unlock=True)
    session.pop("face_reenroll", None)
    session["face_new_codes"] = {"uid": uid, "codes": codes}
    _audit(audit.FACE_ENROLL, uid, decision="enrolled", details={**stats, "replaced": replaced,
                                                                 "used_frames": result.used_frames,
                                                                 **_live_details(live)})
    return ({"ok": True, "message": "Your face is enrolled.", "redirect": url_for("face.enroll_done")},
            {"ok": True, "used_frames": result.used_frames})


def _finish_verify(uid, doc, analyses, live=None):
    from idp.face import TemplateTamperedError
    from idp.face.reasons import NO_USABLE_FRAMES, NOT_ENOUGH_GOOD_FRAMES, REENROLL_REQUIRED
    from idp.face.repository import delete_template, load_template
    db = _db()
    limits = _limits()
    client_id = doc.get("client_id")
    if live is not None and not live.passed and (live.attack or len(analyses) >= doc["needed"]):
        # A failed liveness check is a failed face attempt (delay, lock); identity is not compared.
        # (Too few usable frames without attack evidence stays an incomplete attempt, as without liveness.)
        state = store.register_failure(db, uid, limits)
        _audit(audit.FACE_VERIFY, uid, client_id=client_id, decision="liveness_failed", reasons=live.reasons,
               details={**live.audit(), "failures": state.failures})
        body = {"ok": False, "reasons": live.reasons, "liveness": live.public(), "failures": state.failures}
        body.update(_failure_followup(uid, client_id, state, limits, live.message()))
        return body, {"ok": False, "reasons": live.reasons, "liveness": live.public()}
    if len(analyses) < doc["needed"]:
        reasons = [NOT_ENOUGH_GOOD_FRAMES if analyses else NO_USABLE_FRAMES]
        _audit(audit.FACE_VERIFY, uid, client_id=client_id, decision="incomplete", reasons=reasons)
        return {"ok": False, "reasons": reasons, "message": _result_message(reasons)}, {"ok": False,
                                                                                      "reasons": reasons}
    try:
        template = load_template(db, uid, _cipher())
    except TemplateTamperedError:
        log.warning("face template failed authentication", extra={"user_id": uid})
        template = None
    result = engine().verify(template, analyses, threshold=_config().face_threshold)
    if REENROLL_REQUIRED in result.reasons:
        # Template missing, unreadable or from another model: it cannot be used any more.
        delete_template(db, uid)
        _audit(audit.FACE_VERIFY, uid, client_id=client_id, decision="reenroll", reasons=result.reasons)
        return ({"ok": False, "reasons": list(result.reasons), "message": _result_message(result.reasons),
                 "redirect": url_for("face.enroll")}, {"ok": False, "reasons": list(result.reasons)})
    if result.match:
        store.reset_failures(db, uid)
        complete_step(uid, STEP_NAME)
        _audit(audit.FACE_VERIFY, uid, client_id=client_id, score=result.score, decision="match",
               details={"threshold": result.threshold, "frames_used": result.frames_used, **_live_details(live)})
        grant = _reenroll_grant(uid)
        if grant is not None:
            grant["face_at"] = time.time()
            session["face_reenroll"] = grant
            target = url_for("face.enroll")
        else:
            target = _advance().location
        return ({"ok": True, "message": "Your face matched.", "redirect": target},
                {"ok": True, "score": result.score})
    if not result.frames_used:  # no decision was made (e.g. no usable frame): not counted as a failure
        _audit(audit.FACE_VERIFY, uid, client_id=client_id, decision="incomplete", reasons=result.reasons)
        return ({"ok": False, "reasons": list(result.reasons), "message": _result_message(result.reasons)},
                {"ok": False, "reasons": list(result.reasons)})
    state = store.register_failure(db, uid, limits)
    _audit(audit.FACE_VERIFY, uid, client_id=client_id, score=result.score, decision="no_match",
           reasons=result.reasons, details={"threshold": result.threshold, "failures": state.failures,
                                            **_live_details(live)})
    body = {"ok": False, "reasons": list(result.reasons), "failures": state.failures}
    body.update(_failure_followup(uid, client_id, state, limits, "Your face did not match.",
                                  "Make sure your face is well lit and look straight at the camera."))
    return body, {"ok": False, "reasons": list(result.reasons), "score": result.score}


def _failure_followup(uid, client_id, state, limits, what: str, advice: str = "") -> dict:
    """Message (and lock / waiting time) after a counted face failure."""
    if state.locked:
        if state.failures == limits.lock_after:
            _audit(audit.FACE_LOCKOUT, uid, client_id=client_id, decision="locked",
                   details={"failures": state.failures})
        return {"locked": True, "redirect": url_for("face.recover"),
                "message": f"{what} Face sign-in is now locked for this account: "
                           "use a recovery code or ask an administrator."}
    if state.wait_s:
        return {"retry_after": state.wait_s,
                "message": f"{what} Please wait {_wait_text(state.wait_s)} before trying again."}
    left = limits.free_failures - state.failures
    return {"message": " ".join(p for p in (what, advice, f"{left} more attempt{'s' if left != 1 else ''} "
                                            "before a waiting time.") if p)}
