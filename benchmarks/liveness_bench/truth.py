"""Ground truth of the clips: the moves a recorded person performs (:func:`clip_turns`).

The yaw and the pitch of each frame's dense landmarks
against the clip's first frame (``idp.liveness.rigidity.yaw_deg`` / ``pitch_deg``), 5-frame median, minus
the clip's median; a turn (a tilt) is an excursion of the yaw (the pitch) of at least ``min_deg`` for at
least 3 frames (0.2 s), at its peak; a pitch excursion whose peak falls in a turn (yaw at least CLEAR_DEG) or
within 0.7 s of a turn's peak is that turn's nod, not a tilt (:func:`turn_nod`).
"""
from __future__ import annotations

import numpy as np

from idp.faceweb import liveness as web

GT_SMOOTH = 5  # median filter (frames at 15 fps) of the ground-truth yaw
GT_MIN_FRAMES = 3  # a turn lasts at least this many 15 fps frames
CLEAR_DEG = 8.0  # a recording "does not contain" a move it never turns at least this far


def excursions(t, d, above, min_frames: int = GT_MIN_FRAMES) -> list[tuple[float, float]]:
    """(time, value) at the peak of ``d`` in every run of ``above`` lasting at least ``min_frames`` frames."""
    out, i = [], 0
    while i < len(d):
        if above[i]:
            j = i
            while j < len(d) and above[j]:
                j += 1
            if j - i >= min_frames:
                k = i + int(np.nanargmax(d[i:j]))
                out.append((float(t[k]), float(d[k])))
            i = j
        else:
            i += 1
    return out


def clip_yaw(records: list[dict], axis: str = "yaw") -> np.ndarray:
    """Per-frame yaw (degrees, > 0 = towards the person's left; ``axis="pitch"``: the pitch, > 0 = chin
    up) from the clip's neutral pose; NaN without a face."""
    from idp.liveness.core import _median_filter
    from idp.liveness.rigidity import INNER, pitch_deg, yaw_deg

    fn = yaw_deg if axis == "yaw" else pitch_deg
    obs = web.observations({"frames": records})
    ref = next(o.dense for o in obs if o.dense is not None)
    y = np.array([fn(ref[INNER], o.dense[INNER]) if o.dense is not None else np.nan for o in obs])
    ok = np.isfinite(y)
    ys = np.full_like(y, np.nan)
    ys[ok] = _median_filter(y[ok], GT_SMOOTH)
    return ys - np.nanmedian(ys)


def clip_turns(records: list[dict], min_deg: float) -> tuple[list[tuple[str, float, float]], np.ndarray]:
    """``[(move, peak time ms, peak degrees)]`` of a clip in time order (turns and tilts), and its yaw
    series."""
    y, p = clip_yaw(records), clip_yaw(records, "pitch")
    t = np.array([r["t_ms"] for r in records])
    out = []
    for name, sign in (("turn_left", 1.0), ("turn_right", -1.0)):
        d = np.nan_to_num(sign * y, nan=-99)
        out += [(name, tk, dk) for tk, dk in excursions(t, d, d >= min_deg)]
    turn_peaks = [tk for sign in (1.0, -1.0)
                  for tk, _ in excursions(t, np.nan_to_num(sign * y, nan=-99),
                                          np.nan_to_num(sign * y, nan=-99) >= CLEAR_DEG)]
    for name, sign in (("look_up", 1.0), ("look_down", -1.0)):
        d = np.nan_to_num(sign * p, nan=-99)
        out += [(name, tk, dk) for tk, dk in excursions(t, d, d >= min_deg) if not turn_nod(tk, t, y, turn_peaks)]
    return sorted(out, key=lambda e: e[1]), y


NOD_OF_TURN_MS = 700  # a pitch excursion peaking this close to a turn's peak is that turn's nod


def turn_nod(tk: float, t, y, turn_peaks) -> bool:
    """Whether the pitch excursion peaking at ``tk`` ms belongs to a turn: the yaw is at least CLEAR_DEG
    there, or a turn of at least CLEAR_DEG peaks within NOD_OF_TURN_MS (heads nod as they turn and come
    back; the decision reads such a nod as part of the turn, :func:`idp.liveness.head_moves`)."""
    at = abs(np.nan_to_num(y[int(np.argmin(np.abs(np.asarray(t) - tk)))], nan=99))
    return at >= CLEAR_DEG or any(abs(tk - tp) <= NOD_OF_TURN_MS for tp in turn_peaks)


def clip_pitch(records: list[dict]) -> np.ndarray:
    """Per-frame pitch (degrees, > 0 = chin up) from the clip's neutral pose (:func:`clip_yaw`)."""
    return clip_yaw(records, "pitch")
