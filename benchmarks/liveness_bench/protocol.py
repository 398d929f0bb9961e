"""A capture as the product runs it, judged by the product's own decision.

The page films a frame every ``INTERVAL_MS`` (150 ms) for ``window_ms(challenge)`` and uploads each;
for every frame the capture API stores the analysed record (box, five landmarks, dense landmarks, face
hash, quality gate), keeps its counters (frames, good frames, near copies of the user's earlier
accepted frames, the running static-feed statistic) and asks :func:`idp.faceweb.liveness.decide` -
that is :func:`idp.liveness.decide_capture` on the stored document - whether to stop. /finish asks
the same function once more (``evaluate``); liveness accepts when it passed with the purpose's good
frames (``CaptureDecision.accepted``). :func:`run_capture` does exactly that, without a server: the
frames come from the cache (:mod:`.data`), already analysed by the product's code.

Only what needs a database or a camera is done here: the capture document is a dict, the user's
perceptual replay store a list of face hashes (compared by :func:`idp.liveness.fingerprint.near_copy`,
the function the capture API calls on the stored hashes).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from idp.config import Config
from idp.faceweb import liveness as web
from idp.liveness import CaptureDecision, LivenessSettings
from idp.liveness.fingerprint import FACE_HASH_MAX_BITS, near_copy

INTERVAL_MS = web.INTERVAL_MS
CUE_MS = (web.CUE_MIN_MS, web.CUE_MAX_MS)
#: The capture threshold of the passive check, as a capture created under the default configuration records it.
PASSIVE_MIN = Config.liveness_passive_min_score


def product_settings() -> LivenessSettings:
    """The settings a capture created under the default configuration is judged with (the web layer's
    :func:`idp.faceweb.liveness.settings` of such a capture document)."""
    return web.settings({"lv_passive_min": PASSIVE_MIN})


def needed_frames() -> int:
    """Good frames a sign-in needs (``Config.face_verify_frames``, the default configuration)."""
    from idp.config import Config
    return int(Config().face_verify_frames)


def default_moves() -> int:
    """Moves per challenge in the default configuration (``IDP_LIVENESS_MOVES``)."""
    from idp.config import Config
    return int(Config().liveness_moves)


@dataclass
class Capture:
    """One judged presentation: the decision at the frame that ended it and the frames sent."""

    decision: CaptureDecision
    frames: list[dict]

    @property
    def accepted(self) -> bool:
        return self.decision.accepted

    @property
    def reason(self) -> str:
        return self.decision.reasons[0] if self.decision.reasons else "passed"


def film(records: list[dict], thumbs: np.ndarray, start_ms: float, window_ms: float, rng,
         cut: list[tuple[float, float]] | None = None) -> list[tuple[dict, np.ndarray]] | None:
    """The frames the page sends when it films a source (records of a sequence with ``t_ms``) from
    ``start_ms``: one every INTERVAL_MS up to ``window_ms``, the nearest source frame to each tick (none
    farther than 40 ms), its time in the burst jittered by 8 ms (``src_ms``: its time in the source). ``cut``: ``[(at_ms, to_ms)]`` - when the
    source time passes ``at_ms`` the filming continues at source time ``to_ms`` (a spliced second move).
    None if the source ends before 2 s."""
    t = np.array([r["t_ms"] for r in records])
    out, offset, cuts = [], 0.0, list(cut or [])
    for k in range(int(window_ms // INTERVAL_MS) + 1):
        tick = start_ms + offset + k * INTERVAL_MS
        if cuts and tick >= cuts[0][0]:
            offset += cuts[0][1] - tick
            tick = cuts.pop(0)[1]
        i = int(np.argmin(np.abs(t - tick)))
        if abs(t[i] - tick) > 40:
            break
        out.append(({**records[i], "t_ms": round(k * INTERVAL_MS + float(rng.normal(0, 8)), 1),
                     "src_ms": float(t[i])}, thumbs[i]))
    return out if len(out) * INTERVAL_MS >= 2000 else None


def pixel_key(rec: dict) -> str:
    """Stand-in for the exact replay store's sha256 of the decoded pixels: a cached frame is identified
    by its stored record (two different frames never share dense landmarks to 1/8 px)."""
    return hashlib.sha256((rec.get("dense") or repr(sorted(rec.items()))).encode()).hexdigest()


def run_capture(frames: list[tuple[dict, np.ndarray]], challenge: str, *, cue_ms: float, needed: int,
                stored_hashes=(), stored_segments=(), settings: LivenessSettings | None = None,
                trace: list | None = None) -> Capture:
    """Send ``frames`` (stored records with their time in the burst, and thumbnails) to a capture with
    ``challenge`` and ``cue_ms`` as the capture API does (the moves shown with the first face frame),
    until the decision says ``done``; then judge
    it as /finish does. ``stored_hashes``: this user's perceptual replay store (face hashes of earlier
    accepted captures that take part in the comparison: their passing poses,
    :func:`idp.liveness.fingerprint.passing_poses`); ``stored_segments``: pairs of consecutive turned
    frames of earlier sign-in captures (the motion between them, as the sign-in stores it). ``trace``: if
    a list, each frame's ``(t_ms, decision)`` is appended to it."""
    doc = {"challenge": challenge, "cue_ms": cue_ms, "needed": needed, "count": 0, "good": 0, "lv_near": 0,
           "lv_dups": 0, "lv_thumb_diff": None, "frames": [], "lv_passive_min": PASSIVE_MIN}
    ref, pose_ref, seen = None, None, set()
    stored = list(stored_hashes)
    for rec, thumb in frames:
        doc["count"] += 1
        key = pixel_key(rec)
        if key in seen:  # the same pixels again in this capture: not analysed, counted as a duplicate
            doc["frames"].append({"t_ms": rec["t_ms"], "dup": True, "ok": False})
            doc["lv_dups"] += 1
        else:
            seen.add(key)
            frame = dict(rec)
            doc["frames"].append(frame)
            if ref is None:
                ref = thumb.tobytes()
            diff = web.thumb_diff(ref, thumb)
            doc["lv_thumb_diff"] = diff if doc["lv_thumb_diff"] is None else max(doc["lv_thumb_diff"], diff)
            # a frame counts as good when it passed the quality gate (it is then embedded); the first one
            # with a face shows the moves (its time becomes the cue if later than the drawn one), as in
            # the capture API
            doc["good"] += int(bool(frame.get("ok")) and "box" in frame)
            if "box" in frame and not web.revealed(doc):
                doc["lv_cue_t"] = web.reveal_at(doc, rec["t_ms"])
            if pose_ref is None and frame.get("dense"):
                pose_ref = frame  # the capture's first face frame: the reference of the "turned" rule
            # as the capture API: the motion between stored frames only for a turned frame
            doc["lv_near"] += int(near_copy(frame.get("fh"), stored, FACE_HASH_MAX_BITS,
                                            segments=stored_segments if web.turned_pose(pose_ref, frame) else ()))
        answer = web.decide(doc, rec["t_ms"], settings)
        if trace is not None:
            trace.append((rec["t_ms"], answer))
        if answer.done:  # the frame answer says "done": the page stops
            break
    decision = web.evaluate(doc, settings)  # /finish (or the 409 of a replay) judges it once more
    return Capture(decision, [f for f in doc["frames"] if not f.get("dup")])


def memoise_rigidity() -> None:
    """Make the decision after every frame cheaper still: decoded dense landmarks are cached by their stored
    form (the comparisons of idp.liveness.rigidity are memoised by the product itself). The results are
    identical, only computed once."""
    if getattr(web._dense_of, "_memo", False):
        return
    decoded = {}
    dense_of = web._dense_of

    def cached_dense(frame, _fn=dense_of):
        k = (frame.get("dense"), tuple(frame.get("dense_c") or ()))
        if k not in decoded:
            v = _fn(frame)
            if v is not None:
                v.setflags(write=False)
            decoded[k] = v
        return decoded[k]
    cached_dense._memo = True
    web._dense_of = cached_dense


def stored_record(o, ok: bool = True, fh: str | None = None) -> dict:
    """The record the capture API stores for an observation (:class:`idp.liveness.FrameObservation`,
    e.g. a synthetic one): time, frame size, box, five landmarks, dense landmarks, quality gate, face hash, passive score."""
    rec = {"t_ms": round(o.t_ms, 1), "w": o.frame_w, "h": o.frame_h, "ok": False, "reasons": []}
    if o.has_face:
        rec.update(box=[round(v, 1) for v in o.box], ok=bool(ok),
                   landmarks={k: [round(v[0], 1), round(v[1], 1)] for k, v in o.landmarks.items()})
        if o.dense is not None:
            rec.update(web.encode_dense(o.dense, o.box))
        if fh:
            rec["fh"] = fh
        if o.passive is not None:
            rec["ps"] = o.passive
    return rec
