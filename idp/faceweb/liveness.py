"""Liveness in the capture sessions: challenge, per-frame observations, replay store.

Glue between the capture API (views.py), the capture sessions (capture_sessions.py) and the pure
presentation-attack package :mod:`idp.liveness`. No Flask here.

Per capture session (``capture_sessions`` document) while liveness is on:

* ``challenge``: drawn with :func:`idp.liveness.pick_challenge` (``secrets.SystemRandom``) from the
  configured pool when the session starts; ``None`` = liveness off for this capture.
* ``lv_t0``: ``{server, client}`` ms timestamps of its first frame (the burst's time origin).
* ``lv_ref_thumb``: the first frame's 32x32 grey thumbnail (1 KB) - the only picture-derived data
  kept, and only until the session finishes (removed then, like the embeddings; the session TTL
  removes it otherwise). ``lv_thumb_diff``: the running static-feed statistic (max mean |diff| of a
  frame's thumbnail against it), so no other thumbnail is ever stored.
* ``lv_dups``: frames byte-identical (same decoded pixels) to an earlier frame of the same session.
* each frame: ``t_ms`` (its time in the burst), ``w``/``h``, ``box``/``landmarks`` (already stored),
  ``dup`` for an in-session duplicate, ``dense``: the 468 3-D landmarks of :mod:`idp.liveness.landmarks`
  (:func:`dense_fields`; int16 eighth-pixels relative to the box centre ``dense_c``, base64, 3.7 KB) - geometry, not a picture.

Replay store (``liveness_frames``, migration 0005): the exact part (sha256 of the decoded pixels) of
:func:`idp.liveness.frame_fingerprint` of every frame a session accepted, unique, kept 30 days. A frame
whose hash is already there from *another* session is a replay. Only the exact part is used: the
perceptual hash also matches different frames of the same scene (docs/liveness.md).
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from pymongo.errors import DuplicateKeyError

from idp.liveness import (FrameObservation, LivenessResult, LivenessSettings, assess, challenge_instruction,
                          challenge_moves, hint_message, live_hint, pick_challenge, reason_message)
from idp.liveness.fingerprint import face_hash, hamming, pixel_digest, thumbnail

REPLAY_TTL_DAYS = 30
#: The browser films for at most this long (ms of its own clock from the first frame); the server
#: also ends the capture ("done") once a frame is this late. Within LivenessSettings.challenge_window_ms.
WINDOW_MS = 4500
#: ... plus this much per move after the first (a two-move sequence: 6 s; three moves: capped at 6 s).
WINDOW_PER_MOVE_MS = 1500


def window_ms(challenge: str | None) -> int:
    """How long the page films for this challenge: WINDOW_MS for one move, more for a sequence, never
    beyond LivenessSettings.challenge_window_ms (the last move must be reached within it)."""
    try:
        n = len(challenge_moves(challenge)) if challenge else 1
    except ValueError:
        n = 1
    return int(min(WINDOW_MS + WINDOW_PER_MOVE_MS * (n - 1), LivenessSettings.challenge_window_ms))

#: Frame interval the page uses while liveness is on (~6.7 fps: 20-30 frames per burst).
INTERVAL_MS = 150
#: How far the browser's clock may run ahead of the server's between two frames of one capture
#: (upload latency of the first frame); beyond that the server's own receive time bounds it.
CLOCK_SLACK_MS = 2000
#: In-session duplicates (same pixels again: a frozen or looped-picture feed) at or above this share of
#: the frames make the burst a static feed.
DUP_SHARE = 0.25
#: Failures that are evidence of an attack: they fail the attempt even when too few good frames arrived
#: (otherwise a short capture is "incomplete", which does not count toward the sign-in lock).
#: Failures that more frames cannot undo (the first move went the wrong way, a move before the cue):
#: the capture ends at once so that the failure is shown without waiting for the window.
FINAL_REASONS = frozenset({"challenge_wrong_direction", "challenge_too_early"})
ATTACK_REASONS = frozenset({"static_feed", "planar_motion", "face_discontinuity", "replayed_frame"})


#: The page shows the instruction (the cue) this long after its first frame, drawn per capture, uniform
#: in [CUE_MIN_MS, CUE_MAX_MS]; a turn reached before cue + min_reaction_ms fails (challenge_too_early).
CUE_MIN_MS, CUE_MAX_MS = 200, 500


def challenge_pool(config) -> tuple[str, ...]:
    """The configured challenges (``liveness_challenges``: comma-separated, each one move or a
    ``+``-joined sequence, e.g. ``turn_left+turn_right`` to pin a sequence in tests); () = the default
    draw (:func:`idp.liveness.pick_challenge`: ``sequence_length`` random turns)."""
    raw = (getattr(config, "liveness_challenges", "") or "").strip()
    pool = []
    for item in raw.split(","):
        if not item.strip():
            continue
        try:
            pool.append("+".join(challenge_moves(item)))
        except ValueError:
            raise ValueError(f"IDP_LIVENESS_CHALLENGES: unknown challenge {item.strip().lower()!r} "
                             f"(known moves: turn_left, turn_right, look_up, look_down, move_closer; "
                             f"join a sequence with '+')") from None
    return tuple(dict.fromkeys(pool))


def new_challenge(config) -> str | None:
    """A fresh unpredictable challenge for a capture session, or None when liveness is off."""
    if not getattr(config, "liveness_enabled", True):
        return None
    pool = challenge_pool(config)
    if pool:
        return secrets.SystemRandom().choice(pool)
    return pick_challenge(length=max(1, min(int(getattr(config, "liveness_moves", 2) or 2), 4)))


def new_cue_ms() -> int:
    """When the page shows the instruction, in ms after its first frame (unpredictable)."""
    return CUE_MIN_MS + secrets.randbelow(CUE_MAX_MS - CUE_MIN_MS + 1)


def instruction(challenge: str | None) -> str | None:
    return challenge_instruction(challenge) if challenge else None


def settings() -> LivenessSettings:
    return LivenessSettings()


# --- replay store --------------------------------------------------------------------------------

def exact_fingerprint(rgb: np.ndarray) -> str:
    """sha256 (hex) of the decoded pixels (the exact part of :func:`frame_fingerprint`, computed without
    its perceptual hash, which the replay store does not use: ~45 ms a frame on a loaded machine)."""
    return pixel_digest(rgb)


NEW, DUPLICATE, REPLAYED = "new", "duplicate", "replayed"


def remember_frame(db, fingerprint: str, capture_id: str, now) -> str:
    """Record a frame's fingerprint for this capture: NEW, DUPLICATE (seen earlier in the same capture)
    or REPLAYED (seen in another capture). One atomic insert against the unique index."""
    try:
        db.liveness_frames.insert_one({"fingerprint": fingerprint, "capture_id": capture_id, "created": now,
                                       "expires": now + timedelta(days=REPLAY_TTL_DAYS)})
        return NEW
    except DuplicateKeyError:
        seen = db.liveness_frames.find_one({"fingerprint": fingerprint}, {"capture_id": 1})
        return DUPLICATE if seen is not None and seen.get("capture_id") == capture_id else REPLAYED


# --- per-frame ----------------------------------------------------------------------------------

def frame_time(doc: dict, server_ms: float, client_ts: float | None) -> tuple[float, dict | None]:
    """The frame's time in the burst (ms since the first frame) and, for the first frame, the origin to
    store. The browser's capture time is used (frames are filmed at a steady rate and uploaded as the
    server keeps up), bounded by the server's receive times so that a client cannot stretch a burst."""
    t0 = doc.get("lv_t0")
    if not t0:
        return 0.0, {"server": server_ms, "client": client_ts}
    st = server_ms - float(t0["server"])
    if client_ts is not None and t0.get("client") is not None:
        return min(client_ts - float(t0["client"]), st + CLOCK_SLACK_MS), None
    return st, None


DENSE_SCALE = 8.0  # stored dense landmarks: int16 of 1/8 pixel, relative to the face box centre


def dense_fields(rgb: np.ndarray, analysis) -> dict:
    """The frame fields the 3-D check and the perceptual replay store need: ``{"dense", "dense_c",
    "fh"}`` for a frame with a face (``fh``: :func:`idp.liveness.fingerprint.face_hash` of the
    dense-landmark-aligned face crop, 64 hex digits), else {}. Raises
    :class:`idp.liveness.landmarks.LandmarkModelError` if the model cannot be used (fail closed)."""
    from idp.liveness.landmarks import shared_landmarker

    box = getattr(analysis, "box", None) if analysis is not None else None
    if not box:
        return {}
    points = shared_landmarker()(rgb, box, getattr(analysis, "landmarks", None)).points
    return {**encode_dense(points, box), "fh": f"{face_hash(rgb, points):064x}"}


# --- perceptual replay store (per user) -------------------------------------------------------------
#
# ``liveness_face_hashes`` (migration 0006): the face hashes of the frames of a user's *accepted*
# captures (enrolled, or matched at sign-in), at most FACE_HASHES_KEPT per user, each kept
# REPLAY_TTL_DAYS. A frame of a new capture within FACE_HASH_MAX_BITS of one of them is a near copy
# (re-encoded, rescaled, shifted); FACE_HASH_MIN_FRAMES such frames in one capture refuse it as a
# replay. Only earlier captures are compared (consecutive frames of one capture look alike), and one
# near frame is not enough: different frames of a person who barely moves, in the same scene, match too.
# Measured (docs/liveness.md): 16 bits / 4 frames refused 3 of 26 later same-scene bursts of the shared
# clips (24 bits: 9 of 26) and caught 59 of 60 transformed 10-frame replays.

#: Hamming distance (of 256 bits) at or below which two face hashes are the same picture (docs/liveness.md).
FACE_HASH_MAX_BITS = 16
#: Frames of one capture that must be near copies of earlier accepted frames before it is refused.
FACE_HASH_MIN_FRAMES = 4
#: Face hashes kept per user (the newest; about 5 captures of 30 frames).
FACE_HASHES_KEPT = 150


def near_copy(db, user_id: str, fh: str | None) -> bool:
    """Whether the face hash ``fh`` is within FACE_HASH_MAX_BITS of a stored hash of this user's earlier
    accepted captures (a capture's own frames are only stored once it is accepted)."""
    if not fh:
        return False
    h = int(fh, 16)
    for d in db.liveness_face_hashes.find({"user_id": user_id}, {"hash": 1}).limit(FACE_HASHES_KEPT * 2):
        if hamming(h, int(d["hash"], 16)) <= FACE_HASH_MAX_BITS:
            return True
    return False


def remember_face_hashes(db, user_id: str, doc: dict, now) -> int:
    """Store the face hashes of an accepted capture's frames and drop this user's oldest beyond
    FACE_HASHES_KEPT; returns how many were stored."""
    hashes = list(dict.fromkeys(f["fh"] for f in doc.get("frames", []) if f.get("fh") and not f.get("dup")))
    if not hashes:
        return 0
    expires = now + timedelta(days=REPLAY_TTL_DAYS)
    db.liveness_face_hashes.insert_many([{"user_id": user_id, "capture_id": doc["_id"], "hash": h, "created": now,
                                          "expires": expires} for h in hashes[-FACE_HASHES_KEPT:]])
    old = list(db.liveness_face_hashes.find({"user_id": user_id}, {"_id": 1}).sort("created", -1)
               .skip(FACE_HASHES_KEPT))
    if old:
        db.liveness_face_hashes.delete_many({"_id": {"$in": [d["_id"] for d in old]}})
    return len(hashes)


def encode_dense(points: np.ndarray, box) -> dict:
    """The stored form of a frame's (468, 3) dense landmarks (read back by :func:`observations`)."""
    c = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2, 0.0])
    q = np.clip(np.round((np.asarray(points, np.float64) - c) * DENSE_SCALE), -32767, 32767).astype("<i2")
    return {"dense": base64.b64encode(q.tobytes()).decode("ascii"), "dense_c": [float(c[0]), float(c[1])]}


def _dense_of(frame: dict) -> np.ndarray | None:
    enc, c = frame.get("dense"), frame.get("dense_c")
    try:
        raw = base64.b64decode(enc, validate=True) if isinstance(enc, str) else b""
    except ValueError:
        return None
    if not c or len(raw) != 468 * 3 * 2:
        return None
    return np.frombuffer(bytes(raw), "<i2").reshape(468, 3).astype(np.float32) / DENSE_SCALE + \
        np.array([c[0], c[1], 0.0], np.float32)


def thumb_of(rgb: np.ndarray) -> np.ndarray:
    return thumbnail(rgb)


def thumb_diff(ref: bytes, thumb: np.ndarray) -> float:
    a = np.frombuffer(ref, np.uint8).astype(np.float32).reshape(thumb.shape)
    return round(float(np.abs(thumb.astype(np.float32) - a).mean()), 4)


# --- the burst ------------------------------------------------------------------------------------

def observations(doc: dict) -> list[FrameObservation]:
    """The capture's frames as :class:`FrameObservation` (in-session duplicates left out)."""
    out = []
    for f in doc.get("frames", []):
        if f.get("dup") or f.get("t_ms") is None:
            continue
        box, lm = f.get("box"), f.get("landmarks")
        ok = bool(box) and bool(lm)
        out.append(FrameObservation(
            t_ms=float(f["t_ms"]), box=tuple(float(v) for v in box) if ok else None,
            landmarks={k: (float(v[0]), float(v[1])) for k, v in lm.items()} if ok else None,
            frame_w=int(f.get("w") or 0), frame_h=int(f.get("h") or 0), dense=_dense_of(f) if ok else None))
    return out


@dataclass
class Outcome:
    result: LivenessResult
    challenge: str

    @property
    def passed(self) -> bool:
        return self.result.passed

    @property
    def reasons(self) -> list[str]:
        return list(self.result.reasons)

    @property
    def final(self) -> bool:
        """A failure more frames could not undo (wrong first move, a move before the cue)."""
        return bool(FINAL_REASONS.intersection(self.result.reasons))

    @property
    def attack(self) -> bool:
        """Evidence of a presentation attack (not merely a short or face-less capture)."""
        return bool(ATTACK_REASONS.intersection(self.result.reasons))

    def message(self) -> str:
        return reason_message(self.reasons[0], self.challenge) if self.reasons else ""

    def audit(self) -> dict:
        """Flat audit details (the audit log keeps scalars and lists of scalars only)."""
        return {"liveness_passed": self.passed, "liveness_reasons": self.reasons,
                "liveness_challenge": self.challenge}

    def public(self) -> dict:
        return {"passed": self.passed, "reasons": self.reasons, "challenge": self.challenge}


def evaluate(doc: dict, s: LivenessSettings | None = None) -> Outcome:
    """Run :func:`idp.liveness.assess` on the capture's frames, with the incrementally computed
    static-feed statistic; in-session duplicates count toward ``static_feed``."""
    s = s or settings()
    challenge = doc.get("challenge")
    obs = observations(doc)
    diff = doc.get("lv_thumb_diff")
    result = assess(obs, challenge, s, thumb_diff=float(diff) if diff is not None and len(obs) >= 2 else None,
                    cue_ms=float(doc.get("cue_ms") or 0))
    dups, total = int(doc.get("lv_dups") or 0), int(doc.get("count") or 0)
    if dups >= 2 and dups >= DUP_SHARE * max(total, 1) and "static_feed" not in result.reasons:
        result = LivenessResult(False, ["static_feed"] + list(result.reasons), {**result.scores, "dups": dups})
    return Outcome(result, str(challenge))


def progress(doc: dict, t_ms: float, s: LivenessSettings | None = None) -> dict:
    """What the frame response says about the burst so far: elapsed time, window, the challenge's
    progress (moves done of moves needed), a live hint (code and text, see idp.liveness.live_hint) and
    whether the checks already pass (then the page may stop filming)."""
    s = s or settings()
    out = evaluate(doc, s)
    sc = out.result.scores
    done, needed = int(sc.get("moves_done", 0)), int(sc.get("moves_needed", 0))
    hint = live_hint(out.result, out.challenge, s)
    window = window_ms(doc.get("challenge"))
    return {"challenge": doc.get("challenge"), "elapsed_ms": int(max(0.0, t_ms)), "window_ms": window,
            "passed": out.passed, "window_over": t_ms >= window, "moves_done": done, "moves_needed": needed,
            "hint": hint, "hint_message": hint_message(hint, out.challenge, done),
            "before_cue": t_ms < float(doc.get("cue_ms") or 0),
            # the outcome cannot change any more: the page stops and the failure is reported at once
            "final": bool(FINAL_REASONS.intersection(out.reasons))}
