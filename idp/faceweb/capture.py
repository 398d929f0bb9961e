"""The capture protocol without Flask: who may capture, which frames a capture accepts (size, type,
replays), what a finished capture means (enrollment, verification, failure counting, lock) and what
the audit log says about it. The views parse requests and turn these answers into HTTP.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from functools import cached_property

from idp import audit
from idp.keyring import secret_keys
from idp.throttle import wait_text

from . import attempts, capture_sessions, erasure, face_status, liveness, lockout, notice, recovery, reenrollment
from .limits import FaceRates
from .step import has_template

log = logging.getLogger("idp.faceweb")

PURPOSES = ("enroll", "verify")
ACCEPTED_TYPES = ("image/jpeg", "image/png")
FRAME_INTERVAL_MS = 200  # the browser sends at most ~5 frames per second
#: The page scales frames down to this before upload. Not smaller: at 480x360 the frames cost ~15 % less
#: to analyse, but the 3-D landmarks lost enough precision that a 13-degree turn was refused in 3 of 4
#: attempts instead of 0 of 4 (docs/benchmarks.md, face step in the browser).
MAX_WIDTH, MAX_HEIGHT = 640, 480
BUSY_MESSAGE = "Another face check is in progress. Try again in a moment."
UNUSABLE_MESSAGE = ("Your stored face data cannot be used (it failed an integrity check or was made for another "
                    "face model). Use a recovery code or ask an administrator to reset face sign-in for you.")
ERASED_MEANWHILE = "erased_meanwhile"
ERASED_MEANWHILE_MESSAGE = ("Your face data (or your account) was deleted while this capture ran; nothing was kept. "
                            "Sign in and give your consent again to enroll.")
ENROLLED_MEANWHILE = "enrolled_meanwhile"
ENROLLED_MEANWHILE_MESSAGE = ("Your face was enrolled from another page while this capture ran; this capture was not "
                              "saved. Open your account page to see your face sign-in.")
RECOVERY_SESSION_MESSAGE = ("This sign-in used a recovery code, so it cannot also count as a face check. "
                            "Sign out and sign in again to use face sign-in.")


def format_time(when) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def cooloff_message(until) -> str:
    return (f"Your face data was enrolled again through a recovery code or an administrator's reset. For your "
            f"protection, face sign-in with it becomes available on {format_time(until)}.")


def frames_needed(config, purpose: str) -> int:
    return config.face_enroll_frames if purpose == "enroll" else config.face_verify_frames


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


def _analyses(frames_with_embeddings):
    from idp.face import FrameAnalysis, settings
    out = []
    for frame, embs in frames_with_embeddings:
        embs = dict(embs)
        dlib = embs.pop(capture_sessions.DLIB, None)
        box = frame.get("box")
        landmarks = frame.get("landmarks")
        analysis = FrameAnalysis(ok=True, reasons=[], box=tuple(box) if box else None,
                                 landmarks={k: tuple(v) for k, v in landmarks.items()} if landmarks else None,
                                 confidence=float(frame.get("confidence") or 0.0), quality=frame.get("quality") or {},
                                 embeddings=embs, dlib_embedding=dlib)
        analysis.embedding = analysis.embedding_for(settings.MODEL_VERSION)
        out.append(analysis)
    return out


#: ``lv_gate`` of a sign-in capture (:meth:`CaptureService._gate`): being judged, passed (the next moves shown),
#: failed (counted, the capture over).
GATE_JUDGING, GATE_PASSED, GATE_FAILED = "judging", "passed", "failed"


def _gate_charge(doc) -> lockout.Charge | None:
    """The charge a sign-in capture took at its next-move gate and that is still to settle (None: none, or
    the gate said no and counted it)."""
    stored = (doc or {}).get("lv_charge")
    if not stored or doc.get("lv_gate") == GATE_FAILED:
        return None
    return lockout.Charge(failures=int(stored["failures"]), at=stored["at"], previous_at=stored.get("previous_at"))


def _live_details(live) -> dict:
    return live.audit() if live is not None else {"liveness_passed": None}


#: Quality reasons that a head turn itself causes: while a turn challenge runs, the turn hint is shown instead.
_TURN_REASONS = frozenset({"head_turned", "head_tilted", "blurry"})


def _frame_body(analysis, updated, *, done: bool, live: dict | None = None) -> dict:
    good, needed = updated["good"], updated["needed"]
    reasons = list(analysis.reasons) if analysis is not None else []
    ok = bool(analysis is not None and analysis.ok and analysis.embedding is not None)
    if done:
        message = "Done. Checking…"
    elif live is not None:
        message = _live_guidance(reasons, live)
    elif analysis is None:
        message = "Keep following the instruction."
    else:
        message = _face_guidance(reasons) if reasons else "Good. Hold still."
    body = {
        "ok": ok, "reasons": reasons, "message": message,
        "good_frames": good, "frames_needed": needed, "frames": updated["count"], "done": bool(done),
        "box": [round(float(v), 1) for v in analysis.box] if analysis is not None and analysis.box else None,
        "size": list(getattr(analysis, "size", ()) or ()) if analysis is not None else [],
    }
    if live is not None:
        body["liveness"] = live
    return body


def _live_guidance(reasons, live: dict) -> str:
    """The guidance while a turn challenge is filmed: a problem the person can fix ("come closer"), else
    the challenge's own hint ("turn a little further", "the other way", "now back to the camera")."""
    fixable = [r for r in reasons if r not in _TURN_REASONS]
    if fixable:
        return _face_guidance(fixable)
    if "head_turned" in reasons and not live.get("moves_done") and live.get("before_cue"):
        return "Face the camera first."
    if not live.get("challenge"):  # no face found yet: the moves are not shown
        return "Look at the camera."
    return live.get("hint_message") or "Keep following the instruction."


@dataclass
class Finished:
    """What a finished capture means; the session side (face step, recovery codes, re-enrollment
    grant) and the URLs are the caller's."""
    body: dict  # the JSON answer, less its redirect
    record: dict  # kept as the capture's result
    redirect: str | None = None  # endpoint the page goes to next (None: none, or the caller decides on a match)
    codes: list[str] | None = None  # fresh recovery codes of an enrollment, to show once
    codes_withheld: bool = False  # an enrollment that made no recovery codes (some left, or no face proven)
    matched: bool = False  # the verification passed
    template_stamp: str | None = None  # which save of the template it matched (repository.stored_stamp)
    next_url: str | None = None  # set by the caller's ``then`` (see CaptureService.finish)


def _liveness_failed(live) -> bool:
    """A counted failed attempt, as the capture decision says (idp.liveness.decide_capture): too few usable
    frames without attack evidence stays an incomplete attempt, as without liveness."""
    return live is not None and live.failed


def _quality_reason(doc) -> list[str]:
    """The quality reason most of the capture's frames failed on (e.g. ``head_turned``), as a list of
    at most one code: an incomplete capture names what kept its frames out, not only that it is short."""
    from collections import Counter

    from idp.face.reasons import GUIDANCE_ORDER
    counts = Counter(r for f in doc.get("frames", []) for r in (f.get("reasons") or []) if r in GUIDANCE_ORDER)
    return [max(counts, key=lambda r: (counts[r], -GUIDANCE_ORDER.index(r)))] if counts else []


def _rejected(reasons) -> Finished:
    reasons = list(reasons)
    return Finished({"ok": False, "reasons": reasons, "message": _result_message(reasons)},
                    {"ok": False, "reasons": reasons})


class CaptureService:
    """The capture API of one user and purpose ("enroll" or "verify"), and what the face step of that
    user can do now (:meth:`blocker`).

    ``engine`` and ``cipher`` are zero-argument callables: loading the engine takes seconds, and
    neither is needed for a refused request. ``client_id`` (of the pending authorization request),
    ``ip`` and ``user_agent`` go into the audit entries; ``ip`` also keys the per-address rate limits.
    ``slots`` (a :class:`~.limits.FaceSlots` of this worker) bounds concurrent frame analysis.
    """

    def __init__(self, db, config, uid: str, purpose: str, *, engine, cipher, client_id: str | None = None,
                 ip: str | None = None, user_agent: str | None = None, grant: str | None = None,
                 recovered: bool = False, slots=None, capture_id: str | None = None):
        self.db, self.config, self.uid, self.purpose = db, config, uid, purpose
        self.capture_id = capture_id  # the capture a frame or finish request is for (None: a start)
        self._engine, self._cipher = engine, cipher
        self.client_id, self.ip, self.user_agent = client_id, ip, user_agent
        self.limits = lockout.Limits.from_config(config)
        # grant: what allows replacing a stored template in this request: "reenroll" (password and a
        # fresh face match), "recovery" (a recovery code in this sign-in) or "admin_reset".
        # recovered: this browser session used a recovery code (it never counts as a face check).
        self.grant, self.recovered = grant, recovered
        self.rates = FaceRates(db, config)
        self._slots = slots
        self._charge: lockout.Charge | None = None  # the finish's attempt, charged before it is judged
        self._compared = False  # the finish compared the faces (a charge is never given back after that)
        self._gate_charged = False  # the capture was charged at its next-move gate (never given back)
        self._frame_taken = False  # the frame being handled was recorded in its capture

    @cached_property
    def engine(self):
        return self._engine()

    @cached_property
    def captures(self) -> capture_sessions.Captures:
        return capture_sessions.Captures(self.db, self._cipher(), self.config.capture_ttl_s)

    def _audit(self, event: str, *, by: dict | None = None, **kw) -> None:
        """An audit entry of this user; ``by``: the address and browser it is about, when not this
        request's (an abandoned capture settled by a later request)."""
        kw.setdefault("client_id", self.client_id)
        who = by if by is not None else {"ip": self.ip, "user_agent": self.user_agent}
        audit.record(self.db, event, user_id=self.uid, ip=who.get("ip"), user_agent=who.get("user_agent"), **kw)

    # --- access and start -------------------------------------------------------------------------

    def check_access(self) -> None:
        """Raises CaptureError unless this user may capture for this purpose now."""
        if self.purpose == "enroll":
            if has_template(self.db, self.uid) and self.grant is None:
                raise capture_sessions.CaptureError(403, "enroll_not_allowed", "Confirm your password and face on your "
                                         "account page before enrolling again.")
            if not notice.has_consent(self.db, self.uid):
                raise capture_sessions.CaptureError(403, "consent_required", "Please read the notice and give your consent first.")
            return
        if not has_template(self.db, self.uid):
            raise capture_sessions.CaptureError(409, "not_enrolled", "You have not enrolled your face yet.", redirect="face.enroll")
        blocker = self.blocker()
        if blocker is not None:
            raise capture_sessions.CaptureError(403, blocker[0], blocker[1], redirect="face.verify")
        self._check_lock(own_charge=self.capture_id is not None and self._holds_gate_charge(self.capture_id))

    def blocker(self) -> tuple[str, str] | None:
        """Why no face check can give amr "face" now, as ``(code, message)``; None when one can.
        ``template_unusable`` is also logged (error level) and audited."""
        from .integrity import COOLOFF, refusal
        refused = refusal(self.db, self.uid, self._cipher())
        if refused is not None and refused[0] != COOLOFF:
            self.report_unusable(refused[0])
            return ("template_unusable", UNUSABLE_MESSAGE)
        if self.recovered:
            return ("recovery_session", RECOVERY_SESSION_MESSAGE)
        if refused is not None:
            return (COOLOFF, cooloff_message(refused[1]))
        return None

    def report_unusable(self, problem: str) -> None:
        """An error line (ids only, never biometric data) and an audit entry: the template is kept. Every view of
        the face step reports it again, so the audit log keeps the first few per user, problem and hour
        (``audit.record``'s ``repeat_key``)."""
        log.error("face template unusable; face step fails closed", extra={"user_id": self.uid, "problem": problem})
        self._audit(audit.FACE_TEMPLATE_UNUSABLE, decision=problem, repeat_key=f"{self.uid}|{problem}")

    def _holds_gate_charge(self, capture_id: str) -> bool:
        """Whether this user's open capture ``capture_id`` was charged at its next-move gate (:meth:`_gate`)."""
        return self.db.capture_sessions.count_documents({"_id": str(capture_id)[:64], "user_id": self.uid,
                                                         "status": "open", "lv_charge": {"$ne": None}}, limit=1) > 0

    def _check_lock(self, own_charge: bool = False) -> None:
        """Raises CaptureError while face sign-in is locked or a waiting time runs. ``own_charge``: the request
        is for a capture whose attempt is already charged (at its gate): the waiting time that charge started
        is not one before it, so only the lock refuses it."""
        state = lockout.lock_state(self.db, self.uid, self.limits)
        if state.locked and self.purpose == "verify":
            # open captures cannot be finished before a recovery code or an administrator lifts the lock: they
            # are not charged later as abandoned (their frames are kept as a failed capture's all the same). A
            # waiting time clears nothing: it ends by itself, and a charged finish shows one to the user's other
            # requests while it is judged - clearing then let a capture rehearsed beside it go uncharged.
            attempts.clear_unsettled(self.db, self.uid)
        if state.locked:
            raise capture_sessions.CaptureError(403, "face_locked", "Face sign-in is locked for this account after too many "
                                     "failed attempts. Use a recovery code or ask an administrator.",
                                     redirect="face.recover")
        if state.wait_s and not own_charge:
            raise capture_sessions.CaptureError(429, "slow_down", f"Too many failed attempts. Please wait "
                                     f"{wait_text(state.wait_s)} and try again.", retry_after=state.wait_s)

    def start(self, binding: str) -> dict:
        """A new capture session with a fresh liveness challenge; the answer's fields (URLs aside).
        Raises CaptureError 429 over the capture-session rate limits (nothing is created)."""
        self.rates.capture_started(self.uid, self.ip)
        needed = frames_needed(self.config, self.purpose)
        if self.purpose == "verify":
            self._settle_abandoned()
        challenge = attempts.challenge_for(self.db, self.uid, self.config, self.purpose)
        cue_ms = liveness.new_cue_ms() if challenge else None
        dlib_frames, mirror = self._embedding_plan()
        doc = self.captures.create(self.uid, self.purpose, needed, client_id=self.client_id, binding=binding,
                                   challenge=challenge, cue_ms=cue_ms,
                                   passive_min=self.config.liveness_passive_min_score,
                                   dlib_frames=dlib_frames, mirror=mirror)
        return {
            "capture_id": doc["_id"], "nonce": doc["nonce"], "purpose": self.purpose,
            "frames_needed": needed, "expires_in": self.config.capture_ttl_s,
            "max_width": MAX_WIDTH, "max_height": MAX_HEIGHT,
            "interval_ms": liveness.INTERVAL_MS if challenge else FRAME_INTERVAL_MS,
            "max_frames": capture_sessions.MAX_FRAMES_PER_CAPTURE,
            # presentation-attack challenge (liveness off: False): film for up to window_ms while the
            # user follows the instruction; the frame responses say when the server has enough. The moves
            # themselves come in the answer to the first frame with a face (liveness.reveal_at).
            "liveness": bool(challenge),
            "moves_needed": len(challenge.split("+")) if challenge else 0,
            "window_ms": liveness.window_ms(challenge) if challenge else None,
            # while a move is still to be shown (the first ones; at sign-in the next, one at a time), the
            # page films on past window_ms by up to this much: an answer showing it late lengthens the
            # window by as much (liveness.shown_late_ms)
            "late_max_ms": liveness.SHOWN_LATE_CAP_MS if challenge else 0,
            # show the instruction this long after the first frame is filmed (or once the moves arrive, if
            # later); a turn before it fails
            "cue_ms": cue_ms,
        }

    def _embedding_plan(self) -> tuple[int, bool]:
        """What a new capture computes for its frames, as ``(dlib_frames, mirror)``, from the template
        version it serves (the one place that reads it): at enrollment the current version's; at sign-in
        the stored template's (read from its record, nothing decrypted). ``dlib_frames``: how many good
        frames dlib embeds (every good frame at enrollment, the first settings.DLIB_SIGNIN_FRAMES at
        sign-in, none for a version without dlib); ``mirror``: whether FaceNet embeds the mirrored crop
        too (only for a version that flips, settings.TemplateVersion.flip). A version the record does not
        name gets both (it fails closed at the finish anyway)."""
        from idp.face import settings
        from idp.face.repository import stored_version, template_info
        if self.purpose == "enroll":
            spec = settings.TEMPLATE_VERSIONS[settings.MODEL_VERSION]
            return (capture_sessions.MAX_FRAMES_PER_CAPTURE if spec.dlib else 0), spec.flip
        info = template_info(self.db, self.uid)
        spec = settings.TEMPLATE_VERSIONS.get(stored_version(info)) if info is not None else None
        if spec is None:
            return settings.DLIB_SIGNIN_FRAMES, True
        return (settings.DLIB_SIGNIN_FRAMES if spec.dlib else 0), spec.flip

    def _dlib_wanted(self, doc) -> str:
        """``analyze``'s dlib argument for this capture's next frame: its good frame is embedded by dlib
        while the capture wants more (Captures.wants_dlib)."""
        return "ok" if capture_sessions.Captures.wants_dlib(doc) else "never"

    # --- frames -----------------------------------------------------------------------------------

    def open_frame(self, capture_id: str, nonce: str | None, binding: str, *, mimetype: str | None,
                   content_length: int | None, arrived_ms: float | None = None) -> dict:
        """The capture a frame is for, checked before its body is read; the frame counts against the
        frame rate limits from here (429 over them). ``arrived_ms``: when the request reached the server
        (default: now), its receive time."""
        # the request's arrival (before its body and any face work)
        self._arrived_ms = float(arrived_ms) if arrived_ms is not None else time.time() * 1000.0
        doc = self.captures.open_for(capture_id, self.uid, self.purpose, nonce, binding)
        if mimetype not in ACCEPTED_TYPES:
            raise capture_sessions.CaptureError(415, "unsupported_media_type", "Send the picture as image/jpeg or image/png.")
        if content_length is not None and content_length > self.config.max_image_bytes:
            raise self._too_large()
        self.rates.frame_sent(self.uid, self.ip)
        return doc

    def _too_large(self) -> capture_sessions.CaptureError:
        limit = self.config.max_image_bytes
        return capture_sessions.CaptureError(413, "image_too_large", f"The picture is too large (limit {limit} bytes).")

    def add_frame(self, doc: dict, data: bytes, client_ts: float | None, body_ms: float = 0.0) -> dict:
        """Analyse and record one frame; returns the frame answer (progress and guidance). ``body_ms``: how
        long reading the request's body took (the client's time, see below).

        Decoding and analysis run in one of this worker's face slots (429 ``face_busy`` when none is
        free in time; see .limits). The file's structure bounds the decoding work before it starts (idp.face.imageio);
        a decode that still takes over ``IDP_FACE_DECODE_BUDGET`` ms of CPU is refused before the analysis."""
        if len(data) > self.config.max_image_bytes:
            raise self._too_large()
        # receive time: the request's arrival (open_frame), so that the server's own delays under load are
        # not taken for the client's (liveness.frame_time), plus the time its body took to come in, which is
        # the client's: a body sent slowly over a pause would hide it (as a proxy that buffers bodies, nginx's
        # default, makes it anyway: the app sees the request once its body is in)
        server_ms = (self.__dict__.pop("_arrived_ms", None) or time.time() * 1000.0) + max(0.0, float(body_ms))
        # its body read: the server's own time on it starts (shown_late_ms); for a frame that waited for the
        # share of its network (see below), once that wait is over: a client's frames of another account
        # behind the same address are no load of the server's that could make its answers look late
        received = {"ms": time.time() * 1000.0}
        _ = (self.engine, self.captures)  # resolved here: the callables may need the caller's (Flask) context

        def work():
            if doc.get("challenge"):
                served = None  # the frame's body received, once it was served (a refusal leaves the queue)
                try:
                    body = self._liveness_frame(doc, self._decode(data), server_ms, client_ts, received["ms"])
                    served = received["ms"]
                    return body
                finally:  # answered (whatever the answer): the next frame is due about an interval later
                    self.captures.coll.update_one({"_id": doc["_id"]}, liveness.answered_update(
                        doc, server_ms, time.time() * 1000.0, received_ms=served))
            rgb = self._decode(data)
            analysis = self.engine.analyze(rgb, dlib=self._dlib_wanted(doc),
                                           mirror=capture_sessions.Captures.mirrored(doc))
            updated = self.captures.add_frame(doc, analysis, client_ts=client_ts)
            # the frame budget spent (frames that never pass the quality gate): the finish names the reason
            return _frame_body(analysis, updated, done=updated["good"] >= updated["needed"]
                               or updated["count"] >= capture_sessions.MAX_FRAMES_PER_CAPTURE)
        if self._slots is None:
            return work()
        from idp.web.proxy import limit_address
        network = (f"net:{limit_address(self.ip)}",) if self.ip else ()
        try:  # (other people behind the same address wait for its share; the account's own frames do not)
            return self._slots.run(work, (f"user:{self.uid}",) + network, patient=network,
                                   admitted=lambda: received.update(ms=max(received["ms"], time.time() * 1000.0)))
        except capture_sessions.CaptureError as e:
            if e.code == "face_busy" and doc.get("challenge"):  # the page sends again after retry_after
                retry_ms = 1000.0 * float(e.extra.get("retry_after") or 0)
                self.captures.coll.update_one({"_id": doc["_id"]}, liveness.answered_update(
                    doc, server_ms, time.time() * 1000.0, retry_ms=retry_ms))
            raise

    def _decode(self, data: bytes):
        from idp.face import FaceInputError, decode_image
        from idp.face.reasons import IMAGE_TOO_COMPLEX
        # CPU time of this thread: the decoder's own work, not time spent waiting for a busy CPU.
        t0 = time.thread_time()
        try:
            rgb = decode_image(data, self.config.max_image_bytes, self.config.max_image_pixels)
        except FaceInputError as e:
            raise capture_sessions.CaptureError(413 if e.reason == "image_too_large" else 400, e.reason, e.message) from None
        took_ms = (time.thread_time() - t0) * 1000.0
        budget = self.config.face_decode_budget_ms
        if budget > 0 and took_ms > budget:
            log.warning("face frame over the decoding budget", extra={"user_id": self.uid, "ms": round(took_ms),
                                                                      "budget_ms": budget, "bytes": len(data)})
            raise capture_sessions.CaptureError(400, IMAGE_TOO_COMPLEX, f"The picture took too long to decode (limit {budget} "
                                     "ms). Send an ordinary JPEG or PNG.")
        return rgb

    def _liveness_frame(self, doc, rgb, server_ms, client_ts, received_ms) -> dict:
        """One frame of a capture with a liveness challenge: replay check, observation, progress. The frame's
        fingerprint is kept only when the capture took the frame (a refused one takes it back), and not once a
        deletion of the face data or account erased the capture meanwhile (``liveness.forget_if_erased``)."""
        # a frame of one colour (a camera starting up) is the same for every camera: neither kept nor a replay
        fingerprint = None if liveness.one_colour(rgb) else liveness.exact_fingerprint(rgb)
        seen = liveness.NEW if fingerprint is None else liveness.remember_frame(
            self.db, fingerprint, doc["_id"], self.uid, face_status.utcnow())
        stored = fingerprint is not None and seen == liveness.NEW
        self._frame_taken = False
        try:
            body = self._observe_frame(doc, rgb, seen, server_ms, client_ts, received_ms)
        except BaseException:
            if stored and not self._frame_taken:  # (a frame the capture recorded, then failed on, keeps it)
                liveness.forget_frame(self.db, fingerprint, doc["_id"])
            raise
        if stored:
            liveness.forget_if_erased(self.db, self.uid, doc["_id"])
        return body

    def _observe_frame(self, doc, rgb, seen: str, server_ms, client_ts, received_ms) -> dict:
        """:meth:`_liveness_frame` once the frame's fingerprint was looked up (``seen``)."""
        captures = self.captures
        analysis = None
        if seen == liveness.REPLAYED:
            # another capture's pixels: a replay, unless no face is found in them (a camera's placeholder
            # picture is the same for every camera of a kind, and anyone could have sent it first; a frame
            # without a face is evidence of nothing, and goes on as one)
            analysis = self.engine.analyze(rgb, embed="never")
            if analysis.box:
                raise self._replayed(doc)
            seen = liveness.NEW
        h, w = rgb.shape[:2]
        t_ms, origin, shift = liveness.frame_time(doc, server_ms, client_ts)
        if origin is not None:
            stored = captures.set_once(doc, "lv_t0", origin)
            if stored != origin:  # another frame of this capture was first
                doc = {**doc, "lv_t0": stored}
                t_ms, _, shift = liveness.frame_time(doc, server_ms, client_ts)
        if shift > float(doc.get("lv_shift") or 0.0):  # a pause (or a long upload lag): later frames move too
            captures.coll.update_one({"_id": doc["_id"]}, {"$max": {"lv_shift": shift}})
        last_t = max((f["t_ms"] for f in doc.get("frames", []) if f.get("t_ms") is not None), default=0.0)
        if not math.isfinite(t_ms) or t_ms < last_t or t_ms < 0:
            # the page films and sends frames in order: one stamped before an earlier one would reorder
            # the burst the decision reads (e.g. move its time origin before the cue)
            raise capture_sessions.out_of_order()
        extra = {"t_ms": round(t_ms, 1), "w": w, "h": h}
        shows = None  # (field, moment due, the frame's moment) when this frame's answer shows moves
        if liveness.revealed(doc):
            self._committed(doc)
        if seen == liveness.DUPLICATE:  # the same pixels again in this capture: not a new moment
            updated = captures.add_frame(doc, None, client_ts=client_ts, extra={**extra, "dup": True},
                                         inc={"lv_dups": 1}, with_frames=True, max_count=liveness.frame_budget(doc))
            analysis = None
        else:
            # every face frame is embedded (kept encrypted like the good ones; never part of the template or of
            # the finish's match): the next-move gate and the finish check the face that performed each move,
            # usable or not, against the enrolled template, and an enrollment against the one it builds
            analysis = analysis or self.engine.analyze(rgb, embed="always",
                                                       dlib=self._dlib_wanted(doc),
                                                       mirror=capture_sessions.Captures.mirrored(doc))
            if not liveness.revealed(doc) and analysis.box:
                # the first face found: its answer shows the moves, and the capture is an attempt now (a face
                # frame that fails the quality gate still carries the landmarks the decision reads, so
                # anything judged before this point would have to be told nothing about the moves). The
                # frames filmed before it do not count against the frame budget.
                pre = captures.set_once(doc, "lv_pre", int(doc.get("count") or 0))
                at = liveness.shown_at(doc, t_ms, server_ms)  # (its time, not later than it arrived)
                cue = captures.set_once(doc, "lv_cue_t", liveness.reveal_at(doc, at))
                doc = {**doc, "lv_cue_t": cue, "lv_pre": pre}
                shows = ("lv_cue_late", cue, at)  # this answer shows the moves: how late, once its work is done
                self._committed(doc)
            extra.update(liveness.dense_fields(rgb, analysis))  # 468 3-D landmarks, face hash
            extra.update(liveness.passive_fields(doc, rgb, analysis))  # MiniFASNet score of the face
            # the reference pose: the capture's first face frame, pinned once (parallel frames agree)
            pose_ref = doc.get("lv_ref_dense") or (captures.set_once(
                doc, "lv_ref_dense", {"dense": extra["dense"], "dense_c": extra["dense_c"]})
                if extra.get("dense") else None)
            turned = liveness.turned_pose(pose_ref, extra)
            # a near copy of another capture's frame (accepted or not: either is a replay); of the motion
            # between two stored frames only when turned (a pose held from the start falls on the motion
            # of a person who sits still; the first face frame is the client's to choose, so copies of
            # single frames are looked for in every frame)
            near = liveness.near_copy(self.db, self.uid, extra.get("fh"), exclude=doc["_id"], segments=turned,
                                      mirrored=extra.pop("fhm", None))
            thumb = liveness.thumb_of(rgb)
            ref = doc.get("lv_ref_thumb") or captures.set_once(doc, "lv_ref_thumb", thumb.tobytes())
            diff = liveness.thumb_diff(ref, thumb)
            updated = captures.add_frame(doc, analysis, client_ts=client_ts, extra=extra,
                                         max_fields={"lv_thumb_diff": diff}, with_frames=True,
                                         max_count=liveness.frame_budget(doc),
                                         inc={"lv_near": 1} if near else None)
            self._frame_taken = True
            if self.purpose == "verify" and extra.get("fh"):  # kept at once, as a failed capture's
                prev = liveness.previous_turned_hash(updated.get("frames", []), extra["t_ms"], pose_ref) if turned else None
                liveness.remember_frame_hash(self.db, self.uid, doc["_id"], extra["fh"], turned, face_status.utcnow(),
                                             prev=prev)
                liveness.forget_if_erased(self.db, self.uid, doc["_id"])  # (a deletion ran while it was analysed)
            if int(updated.get("lv_near") or 0) >= liveness.FACE_HASH_MIN_FRAMES:
                # several frames are near copies of this user's earlier frames (accepted or not): a replay,
                # and a counted failure either way (an uncounted one would be a free way out of any capture)
                raise self._replayed(updated)
        gate = None
        if self.purpose == "verify" and analysis is not None and analysis.box and not updated.get("lv_gate"):
            spans = liveness.next_move_spans(updated, t_ms)
            gate = self._gate(updated, spans) if spans is not None else None
            if gate:
                shows = ("lv_next_late", t_ms, t_ms)  # (set before lv_all_shown, which makes it count)
        if shows is not None:
            # this answer shows moves: how late it reaches the page lengthens the time for them
            field, due, at = shows
            late = captures.set_once(updated, field, liveness.shown_late_ms(updated, at, due, received_ms,
                                                                            time.time() * 1000.0))
            updated = {**updated, field: late}
            if field == "lv_next_late":
                captures.set_once(updated, "lv_all_shown", True)
                updated = {**updated, "lv_all_shown": True}
        live = liveness.progress(updated, t_ms)
        # done (stop filming) is the capture decision's (idp.liveness.decide_capture), or the failed gate's
        if gate is False or updated.get("lv_gate") == GATE_FAILED:  # (its outcome cannot change any more)
            live = {**live, "done": True, "final": True}
        return _frame_body(analysis, updated, done=live["done"], live=live)

    def _gate(self, doc, spans) -> bool | None:
        """The next-move gate of a sign-in capture (the shown moves performed: were the faces that performed
        them the enrolled one, :meth:`_moves_made_by_owner`): True shows the next moves; False: the capture
        failed (its answer says done); None: not judged now. Its answer says whether a face matches, so it
        is judged once per capture and only once the capture's one charge is taken (``lockout.charge_attempt``,
        the charge the finish would take; refused while face sign-in is locked or a waiting time runs: then
        nothing is compared, and the next frame asks again). The charge is kept with the capture
        (``lv_charge``): a no counts it as a failure at once - the capture is over, its finish reports the
        failure and nothing else of it is judged (a later frame cannot have another face's move judged) -
        and a yes leaves it to the finish (a match resets the count, anything else keeps it; it is never
        given back), or to the settlement of the capture as abandoned."""
        charge = lockout.charge_attempt(self.db, self.uid, self.limits)
        if charge is None:
            return None
        coll = self.captures.coll
        stored = {"failures": charge.failures, "at": charge.at, "previous_at": charge.previous_at}
        if not coll.update_one({"_id": doc["_id"], "status": "open", "lv_gate": None},
                               {"$set": {"lv_gate": GATE_JUDGING, "lv_charge": stored}}).modified_count:
            lockout.refund_attempt(self.db, self.uid, charge)  # another frame, or the finish, came first
            return None
        # (an error from here on leaves the charge with the capture: the finish or the settlement counts it)
        matched = self._moves_made_by_owner(doc, spans)
        judged = {"_id": doc["_id"], "status": "open", "lv_gate": GATE_JUDGING}
        if matched:
            coll.update_one(judged, {"$set": {"lv_gate": GATE_PASSED}})
            return True
        if not coll.update_one(judged, {"$set": {"lv_gate": GATE_FAILED}}).modified_count:
            return None  # the finish began meanwhile: it judges the capture, and counts the charge
        attempts.finished(self.db, self.uid, doc["_id"])  # (counted here: nothing left to settle)
        state = self._count_failure(doc.get("client_id"), charge=charge)
        coll.update_one({"_id": doc["_id"]}, {"$set": {"lv_gate_failures": state.failures}})
        from idp.face.reasons import BELOW_THRESHOLD
        self._audit(audit.FACE_VERIFY, client_id=doc.get("client_id"), decision="no_match", reasons=[BELOW_THRESHOLD],
                    details={"failures": state.failures, "move_face_matched": False, "gate": True,
                             "liveness_challenge": liveness.shown_challenge(doc)})
        return False

    def _moves_made_by_owner(self, doc, windows: list[tuple[float, float]], template=None) -> bool:
        """Whether the face that performed each of the moves is the enrolled one: the condition for showing
        the next moves (the shown ones), for a match at the finish (every move of the challenge) and for an
        enrollment to be kept (every move, against the template it built from its good frames). Judged
        on the frames of each move itself - every face frame filmed in its window (:func:`~.liveness.move_spans`:
        each frame the move's evidence was read from, from the facing pose it left to the one it came back to
        or the last frame so far, and at least the :data:`~.liveness.GATE_SPAN_MS` up to the frame that
        completed it), good or not (a turning head is often not), at least two of them per move - so neither
        the frames before the turn, nor a picture of the owner held up after someone else turned, nor someone
        else's face lending its angle to pictures of the owner (the frame in between, read through the median
        filter), nor someone else performing a move between two of the owner's, passes. Each frame is judged
        on its own by the engine's one match decision, and every one must match: a mean over the frames could
        be outvoted by frames of a picture of the owner held up (or, frame times being the client's, stamped
        many times) in the second before someone else turns. Any problem with the template answers no (fail
        closed). A template whose version fuses dlib's ResNet is judged here on its FaceNet part alone
        (``facenet_only``: its ``facenet_version``'s scorer and threshold, as a version-2 or version-1
        template is), since the turn's frames are not embedded by dlib (each would cost as much again); the
        finish's match itself is the fused one. ``template``: the stored template already loaded (the
        finish's) or the one an enrollment built, else the stored one is loaded here."""
        from idp.face import TemplateTamperedError
        from idp.face.repository import load_template
        if not windows:
            return False

        def in_turn(f, window) -> bool:
            return f.get("t_ms") is not None and window[0] <= float(f["t_ms"]) <= window[1]
        embedded = self.captures.embeddings(doc, any_face=True)
        judged = {}  # every frame of any move, judged once
        for window in windows:
            span = [(f, e) for f, e in embedded if in_turn(f, window)]
            faces = [f for f in doc.get("frames", []) if f.get("box") and in_turn(f, window)]
            if len(span) < 2 or len(span) < len(faces):  # every face frame of the move must be judged
                return False
            judged.update((id(f), (f, e)) for f, e in span)
        if template is None:
            try:  # (the cipher resolved with the capture sessions: this may run outside the request's context)
                template = load_template(self.db, self.uid, self.captures.cipher)
            except TemplateTamperedError:
                return False
        if template is None:
            return False
        return all(self.engine.verify(template, [analysis], threshold=self.config.face_threshold,
                                      facenet_only=True).match for analysis in _analyses(judged.values()))

    def _committed(self, doc) -> None:
        """A sign-in capture whose moves were shown: it must be finished, or it counts as abandoned (listed
        again at every frame, so a lock that cleared the list does not let it go on uncharged); another
        capture of this user left open after its moves were shown is settled now (no rehearsal in
        parallel). Nothing for an enrollment: its challenge is its own and its failures are not counted."""
        if self.purpose != "verify" or doc.get("lv_gate") == GATE_FAILED:  # (a failed gate counted it)
            return
        attempts.committed(self.db, self.uid, doc["_id"], by={"ip": self.ip, "user_agent": self.user_agent})
        if not doc.get("lv_committed"):
            self.captures.set_once(doc, "lv_committed", True)
            self._settle_abandoned(keep=doc["_id"])

    def _replayed(self, doc) -> capture_sessions.CaptureError:
        """A frame already used by another capture session: the capture fails now (and counts as a
        failed face attempt at sign-in)."""
        from idp.liveness import reason_message
        reasons = ["replayed_frame"]
        shown = liveness.shown_challenge(doc)
        details = {"liveness_passed": False, "liveness_reasons": reasons, "liveness_challenge": shown}
        if self.captures.close(doc, {"ok": False, "reasons": reasons}):
            if self.purpose == "verify":
                attempts.finished(self.db, self.uid, doc["_id"])
                gated = self.captures.coll.find_one({"_id": doc["_id"]}, {"lv_gate": 1, "lv_charge": 1}) or {}
                details["failures"] = (lockout.lock_state(self.db, self.uid, self.limits).failures
                                       if gated.get("lv_gate") == GATE_FAILED  # (counted at its gate)
                                       else self._count_failure(doc.get("client_id"),
                                                                charge=_gate_charge(gated)).failures)
                self._audit(audit.FACE_VERIFY, client_id=doc.get("client_id"), decision="liveness_failed",
                            reasons=reasons, details=details)
            else:
                self._audit(audit.FACE_ENROLL, decision="rejected", reasons=reasons, details=details)
        return capture_sessions.CaptureError(409, "replayed_frame", reason_message("replayed_frame"), reasons=reasons,
                                  liveness={"passed": False, "reasons": reasons, "challenge": shown})

    # --- finish -----------------------------------------------------------------------------------

    def finish(self, capture_id: str, nonce: str | None, binding: str, *, then=None) -> Finished:
        """Judge the capture (liveness, then identity on the same frames) and close it. ``then(finished)``
        does the session side and returns the URL to go to next; it runs before the capture is closed,
        so that its failure closes the capture as a server error like any other."""
        if self.purpose != "verify":
            return self._finish(capture_id, nonce, binding, then)
        # One verification judged at a time per user (the reservation), and none judged before it is
        # charged: the attempt is counted as a failure first, atomically and only while the lock, the waiting
        # time and the count allow one (lockout.charge_attempt), so parallel finishes cannot get more judged
        # attempts than the limits allow even when a reservation expires under a slow judgment. A match resets
        # the count, an outcome that is no attempt gives the charge back. Busy: the capture stays open. A capture
        # charged at its next-move gate (:meth:`_gate`) is not charged again: its charge is settled here, and
        # never given back (its faces were compared); one whose gate said no was counted then and is reported.
        doc = self.captures.open_for(capture_id, self.uid, self.purpose, nonce, binding)
        token = lockout.reserve_judging(self.db, self.uid)
        if token is None:
            raise capture_sessions.CaptureError(429, "check_in_progress", BUSY_MESSAGE, retry_after=2)
        try:
            if doc.get("lv_charge"):
                self._gate_charged, self._charge = True, _gate_charge(doc)
                if self._charge is not None and lockout.lock_state(self.db, self.uid, self.limits).locked:
                    self._check_lock()  # locked meanwhile by other failures: not judged (the charge stays)
            else:
                self._check_lock()
                self._charge = lockout.charge_attempt(self.db, self.uid, self.limits)
                if self._charge is None:
                    self._check_lock()  # locked or waiting meanwhile; else the count kept changing: busy
                    raise capture_sessions.CaptureError(429, "check_in_progress", BUSY_MESSAGE, retry_after=2)
            return self._finish(capture_id, nonce, binding, then)
        finally:
            charge, self._charge = self._charge, None
            try:
                if charge is not None and (self._compared or self._gate_charged):  # compared (here or at its gate),
                    # then an error or no decision: it stays a failure, so that an error after a match is no free signal
                    self._count_failure(self.client_id, charge=charge)
                elif charge is not None:  # neither a failure nor a match: no attempt was judged
                    lockout.refund_attempt(self.db, self.uid, charge)
            finally:  # (released however that went: else the user waits for the reservation to expire)
                lockout.release_judging(self.db, self.uid, token)

    def _finish(self, capture_id: str, nonce: str | None, binding: str, then) -> Finished:
        captures = self.captures
        doc = captures.begin_finish(capture_id, self.uid, self.purpose, nonce, binding)
        if self.purpose == "verify" and doc.get("lv_charge") and not self._gate_charged:
            # its gate charged it after this finish did: one attempt, one charge - this one goes back (fail
            # closed: unless something else was counted since)
            lockout.refund_attempt(self.db, self.uid, self._charge)
            self._gate_charged, self._charge = True, _gate_charge(doc)
        try:
            # Identity is checked on this capture's frames only: the burst the liveness checks judged.
            analyses = _analyses(captures.embeddings(doc))
            live = liveness.evaluate(doc) if doc.get("challenge") else None
            done = self._enroll(doc, analyses, live) if self.purpose == "enroll" else self._verify(doc, analyses, live)
            if then is not None:
                done.next_url = then(done)
        except Exception:
            captures.finish(doc, {"ok": False, "error": "server_error"})
            raise
        finally:
            if self.purpose == "verify":
                attempts.finished(self.db, self.uid, doc["_id"])
        captures.finish(doc, done.record)
        return done

    def _enroll(self, doc, analyses, live) -> Finished:
        db, uid = self.db, self.uid
        if not notice.has_consent(db, uid):  # consent may have been withdrawn (face data deleted) meanwhile
            return Finished({"ok": False, "reasons": ["consent_required"],
                             "message": "Please read the notice and give your consent first."}, {"ok": False})
        if _liveness_failed(live):
            self._audit(audit.FACE_ENROLL, decision="rejected", reasons=live.reasons,
                        details={**live.audit(), "good_frames": len(analyses), "frames": doc.get("count", 0)})
            return Finished({"ok": False, "reasons": live.reasons, "liveness": live.public(), "message": live.message()},
                            {"ok": False, "reasons": live.reasons, "liveness": live.public()})
        if len(analyses) < doc["needed"] or (live is not None and not live.accepted):
            # incomplete: liveness proceeds to identity only when the decision accepted the capture
            from idp.face.reasons import NOT_ENOUGH_GOOD_FRAMES
            reasons = [NOT_ENOUGH_GOOD_FRAMES] + _quality_reason(doc)
            self._audit(audit.FACE_ENROLL, decision="rejected", reasons=reasons,
                        details={"good_frames": len(analyses), "frames": doc.get("count", 0)})
            return _rejected(reasons)
        result = self.engine.enroll(analyses)
        stats = {k: v for k, v in (result.stats or {}).items() if isinstance(v, (int, float, str))}
        if not result.ok:
            self._audit(audit.FACE_ENROLL, decision="rejected", reasons=result.reasons,
                        details={**stats, **_live_details(live)})
            return _rejected(result.reasons)
        if live is not None and not self._moves_made_by_owner(doc, liveness.move_spans(doc, live) or [],
                                                               result.template):
            # The template is built from the good frames alone, and a turning head seldom gives one: a photo of
            # someone else held up before or after the moves would be enrolled for the live face that performed
            # them. Every move's frames must match the new template, judged as at sign-in; else nothing is kept.
            from idp.face.reasons import INCONSISTENT_FRAMES
            self._audit(audit.FACE_ENROLL, decision="rejected", reasons=[INCONSISTENT_FRAMES],
                        details={**stats, "move_face_matched": False, **_live_details(live)})
            return _rejected([INCONSISTENT_FRAMES])
        from idp.face.repository import save_template, template_info
        # Read again here: another enrollment may have been saved since check_access allowed this one. It
        # is never overwritten without the re-enrollment grant, and the save below is a compare-and-swap
        # against this read, so two enrollments of one user cannot both be saved, on any instance.
        stored = template_info(db, uid)
        replaced = stored is not None
        if replaced and self.grant is None:
            return self._enrolled_meanwhile(stats, replaced)
        # A template made after a recovery code or an admin reset (or after a deletion by such a sign-in)
        # starts a cooling-off period: nothing proved that the person enrolling is the account's owner.
        via = reenrollment.VIA_RECOVERY if self.recovered or self.grant == reenrollment.VIA_RECOVERY else None
        via = via or (reenrollment.VIA_ADMIN_RESET if self.grant == reenrollment.VIA_ADMIN_RESET else None)
        mark = reenrollment.enroll_cooloff_mark(db, uid)  # lifted after the save only if still this one
        via = via or reenrollment.enrollment_cooloff_via(mark)
        # New recovery codes only for an account that has none left, and only from an enrollment nothing
        # doubts: the account's first, or a re-enrollment confirmed by a fresh face match; never after a recovery
        # code, an admin reset or a deletion by a sign-in without the face, nor while a cooling-off period runs.
        # So no enrollment voids unused codes: neither whoever holds the password and one stolen code, nor
        # whoever passes the face step without being the owner (a face match is not proof enough to take away
        # the owner's way back), can keep the account by minting a new set. Two enrollments issuing at once:
        # both sets stay (retire_other_codes takes used codes only).
        new_codes = (via is None and not self.recovered and reenrollment.cooloff_until(db, uid) is None
                     and recovery.remaining_recovery_codes(db, uid, secret_keys(self.config)) == 0)
        if via is not None:  # before the template is saved: no face check may use it before the period runs
            reenrollment.start_cooloff(db, uid, self.config.face_recovery_cooloff_s)
        saved = save_template(db, uid, result.template, self._cipher(), replacing=stored)
        if saved is None:
            return self._enrolled_meanwhile(stats, replaced)
        erased = erasure.erased_meanwhile(db, uid, saved)
        if erased is not None:  # a deletion passed the templates while this one was judged
            return self._erased_meanwhile(erased, saved, mark)
        self._accepted(doc, live)
        until = reenrollment.after_enrollment(db, uid, self.config.face_recovery_cooloff_s, via, mark)
        codes, batch = (recovery.add_recovery_codes(db, uid, self.config.secret_key) if new_codes
                        else (None, None))
        lockout.reset_failures(db, uid, unlock=True)
        # Read again once written: a deletion that ran since the read above removed the template and may have
        # passed the codes and the status before the writes just made. The new codes go (the owner's, which a
        # deletion by a recovery-code sign-in keeps, were not touched yet), its mark was not lifted (another
        # than the one read), nothing is audited as enrolled. A deletion after this read erases what it finds.
        erased = erasure.erased_meanwhile(db, uid, saved)
        if erased is not None:
            if batch is not None:
                recovery.drop_codes(db, uid, batch)
            return self._erased_meanwhile(erased, saved, mark)
        self._audit(audit.FACE_ENROLL, decision="enrolled", details={**stats, "replaced": replaced,
                                                                     "via": via or self.grant or "first",
                                                                     "codes_issued": new_codes,
                                                                     "used_frames": result.used_frames,
                                                                     **_live_details(live)})
        if via is not None:  # the account owner's notice (audit now; email once email exists)
            self._audit(audit.FACE_COOLOFF, decision="started" if until else "none",
                        details={"via": via, "replaced": replaced, "until": until.isoformat() if until else None})
        from idp.accounts.users import erased_if_claimed_since
        if erased_if_claimed_since(db, uid):  # an account deletion overtook the writes above: none of them is kept
            return self._erased_meanwhile("account", saved, mark)
        if batch is not None:  # the enrollment stands: the used codes before its set are history
            recovery.retire_other_codes(db, uid, batch)
        return Finished({"ok": True, "message": "Your face is enrolled."}, {"ok": True, "used_frames": result.used_frames},
                        redirect="face.enroll_done", codes=codes, codes_withheld=not new_codes)

    def _erased_meanwhile(self, erased: str, saved, mark: dict | None) -> Finished:
        """A deletion of the account (``erased`` "account") or of the face data overtook this enrollment after its
        save: the template it saved (``saved``) goes again and the re-enrollment mark it read (``mark``) stays;
        under a deleted account every row goes (no audit entry either), else the refusal is audited."""
        erasure.undo_enrollment(self.db, self.uid, erased, saved, mark)
        if erased != "account":
            self._audit(audit.FACE_ENROLL, decision="rejected", reasons=[ERASED_MEANWHILE])
        return Finished({"ok": False, "reasons": [ERASED_MEANWHILE], "message": ERASED_MEANWHILE_MESSAGE},
                        {"ok": False, "reasons": [ERASED_MEANWHILE]})

    def _enrolled_meanwhile(self, stats: dict, replaced: bool) -> Finished:
        """Another enrollment of this user was saved while this one ran: refused, nothing written."""
        self._audit(audit.FACE_ENROLL, decision="rejected", reasons=[ENROLLED_MEANWHILE],
                    details={**stats, "replaced": replaced})
        return Finished({"ok": False, "reasons": [ENROLLED_MEANWHILE], "message": ENROLLED_MEANWHILE_MESSAGE},
                        {"ok": False, "reasons": [ENROLLED_MEANWHILE]})

    def _verify(self, doc, analyses, live) -> Finished:
        from idp.face import TemplateTamperedError
        from idp.face.reasons import BELOW_THRESHOLD, NO_USABLE_FRAMES, NOT_ENOUGH_GOOD_FRAMES, REENROLL_REQUIRED
        from idp.face.repository import load_template, stored_stamp
        db, uid = self.db, self.uid
        client_id = doc.get("client_id")
        advice = ("Make sure your face is well lit and inside the oval." if live is not None
                  else "Make sure your face is well lit and look straight at the camera.")
        if doc.get("lv_gate") == GATE_FAILED:  # counted (and audited) when its gate said no: reported, nothing judged
            state = lockout.lock_state(db, uid, self.limits)
            state = replace(state, failures=int(doc.get("lv_gate_failures") or state.failures))
            done = Finished({"ok": False, "reasons": [BELOW_THRESHOLD], "failures": state.failures},
                            {"ok": False, "reasons": [BELOW_THRESHOLD], "gate": True})
            return self._failure_followup(done, state, "Your face did not match.", advice)
        if _liveness_failed(live):
            # A failed liveness check is a failed face attempt (delay, lock); identity is not compared.
            state = self._count_failure(client_id)  # (its frames stay failed ones)
            self._audit(audit.FACE_VERIFY, client_id=client_id, decision="liveness_failed", reasons=live.reasons,
                        details={**live.audit(), "failures": state.failures})
            done = Finished({"ok": False, "reasons": live.reasons, "liveness": live.public(), "failures": state.failures},
                            {"ok": False, "reasons": live.reasons, "liveness": live.public()})
            return self._failure_followup(done, state, live.message())
        if len(analyses) < doc["needed"] or (live is not None and not live.accepted):
            # incomplete: liveness proceeds to identity only when the decision accepted the capture. What it
            # filmed stays in the replay store (no free rehearsal). Once its moves were shown it is a counted
            # attempt: reading the pending challenge and stopping there is not free.
            reasons = [NOT_ENOUGH_GOOD_FRAMES if analyses else NO_USABLE_FRAMES] + _quality_reason(doc)
            if live is None or not liveness.revealed(doc):
                self._audit(audit.FACE_VERIFY, client_id=client_id, decision="incomplete", reasons=reasons)
                return _rejected(reasons)
            state = self._count_failure(client_id)
            self._audit(audit.FACE_VERIFY, client_id=client_id, decision="incomplete", reasons=reasons,
                        details={**live.audit(), "counted": True, "failures": state.failures})
            done = _rejected(reasons)
            done.body["failures"] = state.failures
            return self._failure_followup(done, state, _result_message(reasons))
        try:
            # the stamp first: a template saved between the two reads is then never credited (fail closed)
            template_stamp = stored_stamp(db, uid)
            template = load_template(db, uid, self._cipher())
        except TemplateTamperedError:  # still never deleted
            self.report_unusable("tampered")
            return Finished({"ok": False, "reasons": ["template_unusable"], "message": UNUSABLE_MESSAGE},
                            {"ok": False, "reasons": ["template_unusable"]}, redirect="face.verify")
        # read after the template: an enrollment that starts a cooling-off period does so before it saves the
        # template, so a template enrolled meanwhile is never judged without its period
        blocker = self.blocker()
        if blocker is not None:  # template unusable, recovery-code session, cooling-off: fail closed
            return Finished({"ok": False, "reasons": [blocker[0]], "message": blocker[1]},
                            {"ok": False, "reasons": [blocker[0]]}, redirect="face.verify")
        self._compared = True
        result = self.engine.verify(template, analyses, threshold=self.config.face_threshold)
        if REENROLL_REQUIRED in result.reasons:
            # No template any more (deleted meanwhile) or one from another model: kept, never replaced here.
            self._compared = False  # nothing was compared: the charge goes back
            self._audit(audit.FACE_VERIFY, client_id=client_id, decision="reenroll", reasons=result.reasons)
            done = _rejected(result.reasons)
            done.redirect = "face.verify"
            return done
        turn_checked = None
        if result.match and live is not None:
            # The good frames may be a picture of the owner held up after someone else turned: the face that
            # performed each move must be the enrolled one too - every move, not only the last (the gate
            # judged the first alone; with three moves, the middle one was judged by nothing). No time for
            # one, or no verdict, is a no-match (fail closed).
            spans = liveness.move_spans(doc, live)
            turn_checked = spans is not None and self._moves_made_by_owner(doc, spans, template)
            if not turn_checked:
                result = replace(result, match=False, reasons=[BELOW_THRESHOLD])
        if result.match:
            self._charge = None  # (the reset clears it with the rest of the run)
            lockout.reset_failures(db, uid)
            self._accepted(doc, live)
            self._audit(audit.FACE_VERIFY, client_id=client_id, score=result.score, decision="match",
                        details={"threshold": result.threshold, "frames_used": result.frames_used,
                                 **_live_details(live)})
            return Finished({"ok": True, "message": "Your face matched."}, {"ok": True, "score": result.score},
                            matched=True, template_stamp=template_stamp)
        if not result.frames_used:  # no decision was made (e.g. no usable frame): not counted as a failure
            self._compared = False
            self._audit(audit.FACE_VERIFY, client_id=client_id, decision="incomplete", reasons=result.reasons)
            return _rejected(result.reasons)
        # Its frames stay a failed capture's, like any other sign-in that was not accepted.
        state = self._count_failure(client_id)
        self._audit(audit.FACE_VERIFY, client_id=client_id, score=result.score, decision="no_match",
                    reasons=result.reasons, details={"threshold": result.threshold, "failures": state.failures,
                                                     **({"move_face_matched": False} if turn_checked is False
                                                        else {}), **_live_details(live)})
        done = Finished({"ok": False, "reasons": list(result.reasons), "failures": state.failures},
                        {"ok": False, "reasons": list(result.reasons), "score": result.score})
        # (after a turn instruction, the advice does not ask to look straight at the camera: frames may be turned)
        return self._failure_followup(done, state, "Your face did not match.", advice)

    def _accepted(self, doc, live) -> None:
        """An accepted capture: its face hashes join this user's accepted kind (an enrollment's are stored
        now, a sign-in's were stored frame by frame) and at sign-in its challenge is used up. (A sign-in
        capture that is not accepted needs nothing: its frames were stored as a failed capture's.)"""
        if live is None:
            return
        if self.purpose == "enroll":
            liveness.remember_face_hashes(self.db, self.uid, doc, face_status.utcnow())
            liveness.forget_if_erased(self.db, self.uid, doc["_id"])
            return
        liveness.accept_face_hashes(self.db, self.uid, doc["_id"])
        attempts.matched(self.db, self.uid, doc.get("challenge"))

    def _settle_abandoned(self, keep: str | None = None) -> None:
        """Count this user's sign-in captures that filmed past their cue and were never finished (other than
        ``keep``) as failed attempts, and keep their face hashes as a failed capture's: closing the page
        when the frames go badly, or rehearsing in a second capture, is an attempt like any other."""
        for cid, by in attempts.claim_abandoned(self.db, self.uid, keep):
            doc = self.captures.coll.find_one({"_id": cid}, {"client_id": 1, "lv_gate": 1, "lv_charge": 1})
            if doc is not None and not self.captures.close(doc, {"ok": False, "reasons": ["abandoned"]}):
                continue  # being finished, or finished, by its own request: judged there
            if (doc or {}).get("lv_gate") == GATE_FAILED:
                continue  # counted when its gate said no
            # audited (and mailed) as the attempt of whoever was shown its moves, not of this request; one
            # charged at its gate is counted with that charge (not once more)
            state = self._count_failure((doc or {}).get("client_id"), by=by, charge=_gate_charge(doc))
            self._audit(audit.FACE_VERIFY, by=by, client_id=(doc or {}).get("client_id"), decision="abandoned",
                        reasons=["abandoned"], details={"failures": state.failures, "expired": doc is None})

    def _count_failure(self, client_id, by: dict | None = None, charge: lockout.Charge | None = None
                       ) -> lockout.LockState:
        """Count one failed face attempt (every kind goes through here: the finish's own is the one it charged
        before judging, ``charge`` or this request's); the one that locks face sign-in is audited as the lock
        (which mails the owner), as ``by``'s (see :meth:`_audit`)."""
        if charge is None:
            charge, self._charge = self._charge, None
        state = (lockout.charged_failure(self.db, self.uid, self.limits, charge) if charge is not None
                 else lockout.register_failure(self.db, self.uid, self.limits))
        if state.locked_now:
            self._audit(audit.FACE_LOCKOUT, by=by, client_id=client_id, decision="locked",
                        details={"failures": state.failures})
        return state

    def _failure_followup(self, done: Finished, state, what: str, advice: str = "") -> Finished:
        """Message (and lock / waiting time) after a counted face failure."""
        if state.locked:
            done.body.update({"locked": True, "message": f"{what} Face sign-in is now locked for this account: "
                                                         "use a recovery code or ask an administrator."})
            done.redirect = "face.recover"
        elif state.wait_s:
            done.body.update({"retry_after": state.wait_s,
                              "message": f"{what} Please wait {wait_text(state.wait_s)} before trying again."})
        else:
            left = self.limits.free_failures - state.failures
            done.body["message"] = " ".join(p for p in (what, advice, f"{left} more attempt{'s' if left != 1 else ''} "
                                                        "before a waiting time.") if p)
        return done
