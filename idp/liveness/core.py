"""Liveness (presentation-attack detection) for a short burst of webcam frames.

A capture session gets an unpredictable challenge (:func:`pick_challenge`); the browser sends a
burst of ~10-20 frames at ~5-8 fps over 2-4 s; the web layer runs the face engine on each frame,
turns each result into a :class:`FrameObservation` (:func:`observation_from_analysis`) and calls
:func:`assess`. Checks, in order (all failures are reported, the first one drives the message):

* burst sanity -- enough frames with a face, increasing timestamps, duration within the window,
  no big gaps, no face "teleporting" between frames (spliced feeds);
* static feed -- near-identical frames (thumbnail differences and landmark motion both tiny);
* planar motion -- the eye/mouth quad changes shape (a tilted / perspective-warped picture)
  while the nose keeps its projective position relative to it (no parallax): a flat picture;
* challenge -- the canonical nose position (see :mod:`.geometry`) moves the right way by enough
  (turns / look up / look down), or the face grows (move closer), within the time window.

See docs/liveness.md for the measured error rates and the limits of the method.
"""
from __future__ import annotations

import enum
import math
import secrets
from dataclasses import asdict, dataclass, field

import numpy as np

from .fingerprint import thumbnail
from .geometry import LANDMARK_NAMES, QUAD_NAMES, canonical_nose, face_scale, inter_ocular, landmark_array, similarity_residual


class Challenge(str, enum.Enum):
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    LOOK_UP = "look_up"
    LOOK_DOWN = "look_down"
    MOVE_CLOSER = "move_closer"

    def __str__(self) -> str:  # "turn_left", not "Challenge.TURN_LEFT"
        return self.value


CHALLENGE_INSTRUCTIONS: dict[str, str] = {
    "turn_left": "Slowly turn your head to your left, then back to the camera.",
    "turn_right": "Slowly turn your head to your right, then back to the camera.",
    "look_up": "Tilt your head back and look up, then back to the camera.",
    "look_down": "Tilt your head down and look down, then back to the camera.",
    "move_closer": "Move your face closer to the camera.",
}

REASON_MESSAGES: dict[str, str] = {
    "too_few_frames": "We did not get enough pictures of your face. Keep your face in view and try again.",
    "face_lost": "Your face left the picture. Keep your whole face in view and try again.",
    "bad_timing": "The capture did not arrive in time. Please try again.",
    "face_discontinuity": "The picture jumped between frames. Please try again with a steady camera.",
    "static_feed": "The picture did not move at all. Please use a live camera and follow the instruction.",
    "planar_motion": "This looks like a photo or a screen being moved. Please show your real face.",
    "challenge_not_performed": "We could not see the movement we asked for. Please follow the instruction.",
    "challenge_wrong_direction": "You moved the other way. Please follow the instruction as shown.",
    "challenge_too_late": "The movement came too late. Please start moving right after the capture starts.",
    "unknown_challenge": "Unknown challenge. Please reload the page.",
    "replayed_frame": "These pictures were already used. Please capture new ones.",
}

#: Per-challenge messages for challenge_not_performed (more helpful than the generic one).
CHALLENGE_NOT_PERFORMED_MESSAGES: dict[str, str] = {
    "turn_left": "Please turn your head to the left as shown.",
    "turn_right": "Please turn your head to the right as shown.",
    "look_up": "Please tilt your head back and look up as shown.",
    "look_down": "Please tilt your head down as shown.",
    "move_closer": "Please move your face closer to the camera as shown.",
}


def reason_message(reason: str, challenge: str | None = None) -> str:
    """Human message for a reason code (challenge-specific where that helps)."""
    if reason in ("challenge_not_performed", "challenge_wrong_direction") and challenge in CHALLENGE_NOT_PERFORMED_MESSAGES:
        return CHALLENGE_NOT_PERFORMED_MESSAGES[str(challenge)]
    return REASON_MESSAGES.get(reason, "Liveness check failed. Please try again.")


@dataclass
class LivenessSettings:
    """Every threshold of the liveness checks, in one place.

    Units: times in ms; "quad units" are canonical nose coordinates, where the eye/mouth
    quadrilateral is the unit square (a 20 degree head turn moves the nose by ~0.15-0.25).
    Defaults were calibrated on the evaluation sets in docs/liveness.md.
    """

    # --- the burst ------------------------------------------------------------------------
    min_frames: int = 6  # frames with a detected face needed at all
    max_missing_fraction: float = 0.34  # frames without a face allowed (blur, motion)
    min_duration_ms: float = 800.0  # first-to-last frame; shorter bursts cannot show a movement
    max_duration_ms: float = 8000.0  # the whole burst must fit in this window
    max_gap_ms: float = 1500.0  # largest allowed gap between consecutive frames
    challenge_window_ms: float = 6000.0  # the movement must be reached within this of the first frame
    max_jump: float = 0.6  # face centre move between consecutive frames, in face widths (splice)
    max_scale_jump: float = 1.6  # face size ratio between consecutive frames (splice)
    # --- static feed ------------------------------------------------------------------------
    static_thumb_diff: float = 1.0  # max mean |diff| of 32x32 grey thumbnails (0..255) vs first frame
    static_landmark_motion: float = 0.02  # max landmark displacement / inter-ocular distance
    # --- planar motion ----------------------------------------------------------------------
    planar_min_distortion: float = 0.06  # quad shape change (similarity residual) to judge planarity
    planar_max_parallax: float = 0.05  # canonical nose displacement below which the motion is planar
    planar_parallax_ratio: float = 0.6  # ... or below this fraction of the shape change
    # --- challenges -------------------------------------------------------------------------
    yaw_threshold: float = 0.10  # canonical u displacement for a turn (~13 degrees on the 3-D model)
    pitch_threshold: float = 0.08  # canonical v displacement for look up / down
    closer_ratio: float = 1.25  # face-size growth for move_closer
    baseline_frames: int = 2  # the starting pose = median of this many first frames (at most n/3)
    smooth: int = 3  # odd median-filter length on the per-frame measures (landmark glitches)
    mirrored: bool = False  # True if the frames are mirror images (selfie preview sent as is)
    # --- challenge pool ---------------------------------------------------------------------
    #: challenges pick_challenge() draws from by default: the two head turns, the only ones
    #: measured on real video (docs/liveness.md). look_up / look_down work on the 3-D model but the
    #: 5-point pitch measure moves with the mouth (opening it shifts the canonical nose like a nod),
    #: so a talking replay can trigger them; move_closer is excluded because a picture moved
    #: towards the camera grows exactly like a face, so it proves nothing on its own.
    allowed_challenges: tuple[str, ...] = ("turn_left", "turn_right")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FrameObservation:
    """What the liveness checks need from one frame. ``box``/``landmarks`` None = no face found."""

    t_ms: float
    box: tuple[float, float, float, float] | None
    landmarks: dict[str, tuple[float, float]] | None
    frame_w: int
    frame_h: int
    thumb: np.ndarray | None = None  # small grey thumbnail of the whole frame (see fingerprint.thumbnail)

    @property
    def has_face(self) -> bool:
        return self.box is not None and self.landmarks is not None


@dataclass
class LivenessResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    def messages(self, challenge: str | None = None) -> list[str]:
        return [reason_message(r, challenge) for r in self.reasons]


def pick_challenge(rng=None, allowed=None) -> str:
    """An unpredictable challenge (a plain str value of :class:`Challenge`).

    ``rng`` defaults to :class:`secrets.SystemRandom` (do not pass a seeded PRNG in production);
    ``allowed`` restricts the pool (default :attr:`LivenessSettings.allowed_challenges`).
    """
    rng = rng or secrets.SystemRandom()
    pool = [str(Challenge(c)) for c in (allowed or LivenessSettings.allowed_challenges)]
    if not pool:
        raise ValueError("empty challenge pool")
    return rng.choice(pool)


def observation_from_analysis(analysis, t_ms: float, frame_w: int, frame_h: int, image_rgb=None) -> FrameObservation:
    """Build a :class:`FrameObservation` from the face engine's FrameAnalysis (duck-typed).

    Uses ``analysis.box`` (x, y, w, h) and ``analysis.landmarks`` (dict of the 5 points); either
    may be None / missing when no face was found. ``image_rgb`` (if given) yields the thumbnail
    for the static-feed check.
    """
    box = getattr(analysis, "box", None)
    lm = getattr(analysis, "landmarks", None)
    if box is not None and lm:
        box = tuple(float(v) for v in box)
        lm = {k: (float(v[0]), float(v[1])) for k, v in dict(lm).items()}
        if any(n not in lm for n in LANDMARK_NAMES):
            box, lm = None, None
    else:
        box, lm = None, None
    thumb = thumbnail(image_rgb) if image_rgb is not None else None
    return FrameObservation(t_ms=float(t_ms), box=box, landmarks=lm, frame_w=int(frame_w), frame_h=int(frame_h), thumb=thumb)


def _median_filter(x: np.ndarray, k: int) -> np.ndarray:
    """Running median of odd length ``k``; the ends copy the nearest full-window value, so a
    single-frame landmark glitch cannot survive at either end of the burst."""
    x = np.asarray(x, np.float64)
    if k <= 1 or len(x) < k:
        return x.copy()
    r = k // 2
    core = np.median(np.lib.stride_tricks.sliding_window_view(x, k), axis=1)
    return np.r_[np.repeat(core[0], r), core, np.repeat(core[-1], r)]


def assess(observations: list[FrameObservation], challenge: str, settings: LivenessSettings | None = None,
           *, thumb_diff: float | None = None) -> LivenessResult:
    """Decide whether a burst of frames shows a live person performing ``challenge``.

    Returns every failed check in ``reasons`` (most telling first) and the measured values in
    ``scores`` (for logs and threshold tuning; not for display).

    ``thumb_diff``: the static-feed statistic (max mean |diff| of each frame's thumbnail against the
    first frame's) computed by the caller as the frames arrived, so that no thumbnails need to be
    kept; when given, the observations' ``thumb`` fields are ignored.
    """
    s = settings or LivenessSettings()
    reasons: list[str] = []
    scores: dict[str, float] = {}
    try:
        challenge = str(Challenge(str(challenge)))
    except ValueError:
        return LivenessResult(False, ["unknown_challenge"], {})

    obs = sorted(observations, key=lambda o: o.t_ms)
    faces = [o for o in obs if o.has_face]
    n, nf = len(obs), len(faces)
    scores["n_frames"] = float(n)
    scores["n_faces"] = float(nf)
    if n:
        scores["duration_ms"] = float(obs[-1].t_ms - obs[0].t_ms)

    # --- burst sanity -----------------------------------------------------------------------
    if nf < s.min_frames:
        reasons.append("too_few_frames")
    if n and (n - nf) / n > s.max_missing_fraction:
        reasons.append("face_lost")
    ts = np.array([o.t_ms for o in observations], dtype=np.float64)  # in the order received
    if n >= 2:
        gaps = np.diff(ts)
        scores["max_gap_ms"] = float(gaps.max())
        if (np.any(gaps <= 0) or gaps.max() > s.max_gap_ms
                or not (s.min_duration_ms <= ts[-1] - ts[0] <= s.max_duration_ms)):
            reasons.append("bad_timing")
    if nf < 2:
        return LivenessResult(False, reasons or ["too_few_frames"], scores)

    lms = [f.landmarks for f in faces]
    t = np.array([f.t_ms for f in faces])
    boxes = np.array([f.box for f in faces], np.float64)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    widths = np.maximum(boxes[:, 2], 1.0)
    jump = np.hypot(*np.diff(centres, axis=0).T) / widths[:-1]
    size_jump = np.exp(np.abs(np.diff(np.log(widths))))
    scores["max_jump"] = float(jump.max())
    scores["max_scale_jump"] = float(size_jump.max())
    if jump.max() > s.max_jump or size_jump.max() > s.max_scale_jump:
        reasons.append("face_discontinuity")

    # --- per-frame geometry -------------------------------------------------------------------
    pts = np.stack([landmark_array(l) for l in lms])  # (nf, 5, 2)
    iod = np.array([max(inter_ocular(l), 1e-6) for l in lms])
    canon = [canonical_nose(l) for l in lms]
    valid = np.array([c is not None for c in canon])
    uv = np.array([c if c is not None else (np.nan, np.nan) for c in canon])
    scale = np.array([face_scale(l) for l in lms])

    # --- static feed --------------------------------------------------------------------------
    ref_pts = np.median(pts[: min(3, nf)], axis=0)
    motion = np.max(np.linalg.norm(pts - ref_pts, axis=2), axis=1) / iod
    scores["landmark_motion"] = float(motion.max())
    if thumb_diff is not None and n >= 2:
        have_thumbs = True
        thumb_diff = float(thumb_diff)
        scores["thumb_diff"] = thumb_diff
    else:
        thumbs = [o.thumb for o in obs if o.thumb is not None]
        have_thumbs = len(thumbs) >= 2
        thumb_diff = math.nan
        if have_thumbs:
            ref = thumbs[0].astype(np.float32)
            thumb_diff = max(float(np.abs(th.astype(np.float32) - ref).mean()) for th in thumbs[1:])
            scores["thumb_diff"] = thumb_diff
    still = motion.max() < s.static_landmark_motion
    if (have_thumbs and thumb_diff < s.static_thumb_diff) or (not have_thumbs and still):
        reasons.append("static_feed")

    # --- smoothed per-frame measures, relative to the starting pose -------------------------
    # (median filter against single-frame landmark glitches; baseline = first frames, the pose
    # the user holds when the capture starts)
    quad_idx = [("left_eye", "right_eye", "nose", "mouth_left", "mouth_right").index(q) for q in QUAD_NAMES]
    quads = pts[:, quad_idx]
    vi = np.flatnonzero(valid)
    performed, wrong, peak_t = False, False, None
    if len(vi) >= 2:
        tv = t[vi]
        nb = max(1, min(s.baseline_frames, len(vi) // 3))
        u = _median_filter(uv[vi, 0], s.smooth)
        v = _median_filter(uv[vi, 1], s.smooth)
        du, dv = u - np.median(u[:nb]), v - np.median(v[:nb])
        k0 = vi[0]
        dist = _median_filter(np.array([similarity_residual(quads[k0], quads[k]) for k in vi]), s.smooth)
        dmax = float(dist.max())
        pmax = float(np.hypot(du, dv).max())
        scores["distortion"] = dmax
        scores["parallax"] = pmax

        # planar motion: the quad changed shape (tilt / perspective) but the nose kept its
        # projective position -> a flat picture
        if dmax >= s.planar_min_distortion and pmax < max(s.planar_max_parallax, s.planar_parallax_ratio * dmax):
            reasons.append("planar_motion")

        # challenges. Turning to the subject's left moves the nose tip to the image right in an
        # unmirrored frame; looking up moves it towards the eye line.
        sign = -1.0 if s.mirrored else 1.0
        moves = {"turn_left": sign * du, "turn_right": -sign * du, "look_up": -dv, "look_down": dv}
        for name, series in moves.items():
            scores[f"{name}_score"] = float(series.max())
        ls = _median_filter(np.log(np.maximum(scale[vi], 1e-6)), s.smooth)
        grow = ls - np.median(ls[:nb])
        scores["move_closer_score"] = float(math.exp(grow.max()))
        if challenge == "move_closer":
            hits = np.flatnonzero(grow >= math.log(s.closer_ratio))
        else:
            thr = s.yaw_threshold if challenge.startswith("turn") else s.pitch_threshold
            hits = np.flatnonzero(moves[challenge] >= thr)
            opposite = {"turn_left": "turn_right", "turn_right": "turn_left",
                        "look_up": "look_down", "look_down": "look_up"}[challenge]
            wrong = len(hits) == 0 and moves[opposite].max() >= thr
        if len(hits):
            peak_t = float(tv[hits[0]] - obs[0].t_ms)  # first frame where the movement is reached
            scores["challenge_time_ms"] = peak_t
            performed = peak_t <= s.challenge_window_ms
            if not performed:
                reasons.append("challenge_too_late")
    if not performed and "challenge_too_late" not in reasons:
        reasons.append("challenge_wrong_direction" if wrong else "challenge_not_performed")

    # order: most specific attack evidence first (drives the message shown)
    order = ["unknown_challenge", "static_feed", "planar_motion", "face_discontinuity", "bad_timing",
             "too_few_frames", "face_lost", "challenge_wrong_direction", "challenge_too_late",
             "challenge_not_performed", "replayed_frame"]
    reasons = sorted(dict.fromkeys(reasons), key=lambda r: order.index(r) if r in order else len(order))
    return LivenessResult(passed=not reasons, reasons=reasons, scores=scores)
