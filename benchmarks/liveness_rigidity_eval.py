"""Evaluate the dense-landmark liveness decision with the product's own code.

Usage (after ``benchmarks/liveness_data.py`` has filled the cache)::

    .venv/bin/python benchmarks/liveness_rigidity_eval.py        # prints the markdown tables

Every presentation is judged exactly as the capture API does: its frames (time in the burst, box,
five landmarks, dense landmarks stored as :func:`idp.faceweb.liveness.dense_fields` stores them) go
into a capture-session document, and :func:`idp.faceweb.liveness.evaluate` - the function /finish and
every frame answer call - judges each prefix; the page stops filming at the first prefix that passes
with ``face_verify_frames`` (5) good frames, so a presentation is accepted iff some prefix passes.
Deviation: "good" here = a face was detected (the quality gate needs the FaceNet pass, not replayed).

Sets: bona fide = bursts of the shared talking-head clips starting frontal 0.5-2.5 s before a
turn of the clip (turn extent measured from the 3-D landmarks), judged against the direction turned;
attacks = every rendered sequence of ``liveness_data.py`` against both turn challenges (the
attacker picks), and the clips' bursts against a turn the clip never performs (replay of a
recording that does not contain the requested move).
"""
from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from liveness_data import CACHE, load  # noqa: E402
from liveness_eval import excursions  # noqa: E402

POOL = ("turn_left", "turn_right")
INTERVAL_MS, WINDOW_MS, NEEDED = 150, 4500, 5
GT_SMOOTH = 5
GT_FRONTAL_DEG = 4.0  # a burst starts with the head within this of the clip's neutral yaw ...
STEADY_MS = 300  # ... and stays so for this long
LEAD_MS = (500, 2500)  # ... this long before the turn's peak
GT_MIN_FRAMES = 3


def clip_yaw(obs):
    """Per-frame yaw (degrees, > 0 = nose to the image right) relative to the clip's neutral pose,
    5-frame median smoothed; NaN without dense landmarks."""
    from idp.liveness.core import _median_filter
    from idp.liveness.rigidity import yaw_deg

    ref = next(o.dense for o in obs if o.dense is not None)
    y = np.array([yaw_deg(ref, o.dense) if o.dense is not None else np.nan for o in obs])
    ok = np.isfinite(y)
    ys = np.full_like(y, np.nan)
    ys[ok] = _median_filter(y[ok], GT_SMOOTH)
    return ys - np.nanmedian(ys)


def turns(obs, min_deg):
    """(challenge, peak time ms, peak degrees) of each excursion beyond ``min_deg`` (>= 3 frames)."""
    y = clip_yaw(obs)
    t = np.array([o.t_ms for o in obs])
    out = []
    for name, sign in (("turn_left", 1.0), ("turn_right", -1.0)):
        d = np.nan_to_num(sign * y, nan=-99)
        out += [(name, tk, dk) for tk, dk in excursions(t, d, d >= min_deg, GT_MIN_FRAMES)]
    return sorted(out, key=lambda e: e[1]), y


def product_burst(obs, start_ms, rng):
    import dataclasses

    t = np.array([o.t_ms for o in obs])
    out = []
    for k in range(int(WINDOW_MS // INTERVAL_MS) + 1):
        tick = start_ms + k * INTERVAL_MS
        i = int(np.argmin(np.abs(t - tick)))
        if abs(t[i] - tick) > 40:
            break
        out.append(dataclasses.replace(obs[i], t_ms=k * INTERVAL_MS + float(rng.normal(0, 8))))
    return out if len(out) * INTERVAL_MS >= 2000 else None


def to_doc(obs, challenge) -> dict:
    """A capture-session document holding these frames as the capture API stores them."""
    from idp.faceweb import liveness as web

    frames = []
    for o in obs:
        f = {"t_ms": round(o.t_ms, 1), "w": o.frame_w, "h": o.frame_h, "box": None, "landmarks": None}
        if o.has_face:
            f["box"] = [round(v, 1) for v in o.box]
            f["landmarks"] = {k: [round(v[0], 1), round(v[1], 1)] for k, v in o.landmarks.items()}
            if o.dense is not None:
                f.update(web.encode_dense(o.dense, o.box))
        frames.append(f)
    thumbs = [o.thumb for o in obs if o.thumb is not None]
    diff = max((float(np.abs(th.astype(np.float32) - thumbs[0].astype(np.float32)).mean()) for th in thumbs[1:]),
               default=None)
    return {"challenge": challenge, "frames": frames, "count": len(frames), "lv_dups": 0, "lv_thumb_diff": diff}


def _memoise():
    """Cache idp.liveness.rigidity's pure functions by their array arguments' bytes: each prefix of a
    burst repeats the comparisons of the shorter ones (results identical, only faster)."""
    import hashlib

    from idp.liveness import rigidity

    def key(v):
        return hashlib.blake2b(np.ascontiguousarray(v).tobytes(), digest_size=16).digest() if isinstance(v, np.ndarray) else v

    for name in ("compare", "predicted_planar_residual"):
        fn = getattr(rigidity, name)
        if getattr(fn, "_memo", False):
            continue
        cache = {}

        def wrapped(*args, _fn=fn, _cache=cache):
            k = tuple(key(a) for a in args)
            if k not in _cache:
                _cache[k] = _fn(*args)
            return _cache[k]
        wrapped._memo = True
        setattr(rigidity, name, wrapped)


def decide(obs, challenge, settings=None):
    """The product's decision: the first prefix with NEEDED face frames that passes, else the whole burst."""
    from idp.faceweb import liveness as web

    _memoise()
    faces, out = 0, None
    for m in range(1, len(obs) + 1):
        faces += obs[m - 1].has_face
        if faces < NEEDED and m < len(obs):
            continue
        out = web.evaluate(to_doc(obs[:m], challenge), settings)
        if out.passed and faces >= NEEDED:
            return out
    return out


def build(min_deg):
    rng = np.random.default_rng(7)
    bona, attacks, clips = [], collections.defaultdict(list), {}
    for path in sorted(CACHE.glob("clip__*.json")):
        meta, obs = load(path)
        ev, y = turns(obs, min_deg)
        clips[meta["clip"]] = dict(events=ev, left=float(np.nanmax(y)), right=float(-np.nanmin(y)), y=y)
        t = np.array([o.t_ms for o in obs])
        dev = np.abs(np.nan_to_num(y, nan=99))
        steady = np.array([bool(np.all(dev[(t >= ti) & (t <= ti + STEADY_MS)] < GT_FRONTAL_DEG)) for ti in t])
        for ch, tp, deg in ev:
            cand = np.flatnonzero((t >= tp - LEAD_MS[1]) & (t <= tp - LEAD_MS[0]) & steady)
            for i in sorted(set(cand[np.linspace(0, len(cand) - 1, 3).round().astype(int)])) if len(cand) else []:
                b = product_burst(obs, t[i], rng)
                if b is not None:
                    bona.append((meta["clip"], ch, b, dict(peak=deg, t_peak=tp, start=t[i])))
        # replay: a recording that does not contain the requested move (no excursion >= 8 degrees that way)
        ev8, _ = turns(obs, 8.0)
        never = [c for c in POOL if c not in {e[0] for e in ev8}]
        for start in np.arange(0, obs[-1].t_ms, 500.0):
            b = product_burst(obs, start, rng)
            if b is not None:
                for ch in never:
                    attacks["replay (move not in the recording)"].append((meta["clip"], ch, b, {}))
    for path in sorted(CACHE.glob("attack__*.json")):
        meta, obs = load(path)
        for ch in POOL:
            attacks[meta["kind"]].append((f"{meta['source']}:{meta['who']}", ch, obs, {}))
    return bona, attacks, clips


def main() -> int:
    from idp.liveness import LivenessSettings

    s = LivenessSettings()
    bona, attacks, clips = build(s.min_turn_deg)
    print("## clips: turn extent (degrees of yaw from the clip's neutral pose, 3-D landmarks)\n")
    print("| clip | max left | max right | turns >= %g deg (time s: direction, size) |" % s.min_turn_deg)
    print("|---|---|---|---|")
    for c, d in clips.items():
        ev = ", ".join(f"{tp / 1000:.1f}: {'L' if ch == 'turn_left' else 'R'} {deg:.0f}" for ch, tp, deg in d["events"])
        print(f"| {c} | {d['left']:.0f} | {d['right']:.0f} | {ev or 'none'} |")
    print()
    rows = []
    res_b = [(lab, ch, decide(obs, ch), m) for lab, ch, obs, m in bona]
    k = sum(r[2].passed for r in res_b)
    rows.append(("bona fide (turns >= %g deg)" % s.min_turn_deg, len(res_b), len(res_b) - k, "BPCER"))
    reasons = collections.Counter(r[2].reasons[0] for r in res_b if not r[2].passed)
    fails = [(lab, ch, round(m["peak"], 1), r.reasons[:2], {k2: round(v, 2) for k2, v in r.result.scores.items()
                                                          if k2 in ("turn_left_deg", "turn_right_deg", "parallax_ratio", "shape_residual")})
             for lab, ch, r, m in res_b if not r.passed]
    per_reason = {}
    for kind, items in sorted(attacks.items()):
        res = [(lab, ch, decide(obs, ch)) for lab, ch, obs, m in items]
        acc = [r for r in res if r[2].passed]
        rows.append((f"attack: {kind}", len(res), len(acc), "APCER"))
        per_reason[kind] = collections.Counter(r[2].reasons[0] if r[2].reasons else "passed" for r in res)
        degs = [r[2].result.scores.get(f"{r[1]}_deg", float("nan")) for r in res]
        print(f"  {kind}: requested-turn yaw reached (deg) median {np.nanmedian(degs):.1f}, "
              f"95th pct {np.nanpercentile(degs, 95):.1f}, max {np.nanmax(degs):.1f}")
        for lab, ch, r in acc[:8]:
            print("  accepted:", kind, lab, ch, {k2: round(v, 3) for k2, v in r.result.scores.items()
                                                  if k2 in ("turn_left_deg", "turn_right_deg", "parallax_ratio",
                                                            "shape_residual")})
        shapes = [r[2].result.scores["shape_residual"] for r in res if "shape_residual" in r[2].result.scores]
        if shapes:
            print(f"  {kind}: shape_residual where the turn was reached: {sorted(round(v, 3) for v in shapes)}")
    print("\n## ablation: the parallax test (min_parallax_ratio) and the turn threshold (min_turn_deg)\n")
    import dataclasses
    inf = float("inf")
    variants = [("default", s), ("no parallax test", dataclasses.replace(s, min_parallax_ratio=0.0)),
                ("no shape test", dataclasses.replace(s, max_shape_residual=inf)),
                ("yaw only (neither test)", dataclasses.replace(s, min_parallax_ratio=0.0, max_shape_residual=inf)),
                ("max_shape_residual 0.06", dataclasses.replace(s, max_shape_residual=0.06)),
                ("max_shape_residual 0.10", dataclasses.replace(s, max_shape_residual=0.10)),
                ("min_turn_deg 10", dataclasses.replace(s, min_turn_deg=10.0)),
                ("min_turn_deg 14", dataclasses.replace(s, min_turn_deg=14.0))]
    print("| settings | BPCER | " + " | ".join(f"APCER {k}" for k in sorted(attacks)) + " |")
    print("|---|---|" + "---|" * len(attacks))
    for vname, vs in variants:
        rb = [decide(obs, ch, vs) for lab, ch, obs, m in bona]
        cells = [f"{100.0 * sum(not r.passed for r in rb) / max(len(rb), 1):.1f}%"]
        for kind in sorted(attacks):
            ra = [decide(obs, ch, vs) for lab, ch, obs, m in attacks[kind]]
            cells.append(f"{100.0 * sum(r.passed for r in ra) / max(len(ra), 1):.1f}% ({sum(r.passed for r in ra)})")
        print(f"| {vname} | " + " | ".join(cells) + " |")
    for key in ("parallax_ratio", "shape_residual"):
        print(f"\n{key} of accepted bona fide bursts:",
              sorted(round(r[2].result.scores.get(key, float("nan")), 3) for r in res_b if r[2].passed))
    print()
    print("| set | presentations | errors | rate |\n|---|---|---|---|")
    for name, n, e, what in rows:
        print(f"| {name} | {n} | {e} | {what} {100.0 * e / max(n, 1):.1f}% ({e}/{n}) |")
    print("\nbona fide rejections:", dict(reasons))
    for f in fails:
        print("  ", f)
    print("\nfirst reason per attack type:")
    for kind, c in per_reason.items():
        print(f"  {kind}: {dict(c)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
