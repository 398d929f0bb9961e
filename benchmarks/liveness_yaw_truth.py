"""Does the turn measure read degrees? A measurement of the product's yaw (``idp.liveness.rigidity.yaw_deg``:
the best rotation between two frames' predicted 3-D landmark sets) against known head turns, and of a
candidate measure that reads the turned frame's 2-D landmarks only (docs/liveness.md, "Yaw: measured bias").

* ``truth`` (default): each shared clip's most frontal frame (of its first 60) turned by a known yaw as a
  2.5-D head whose shape is the model's own predicted landmarks of that frame (``render.turned_head``),
  analysed by the product's face engine and dense landmark model, measured against the unturned render
  by both measures; and their cost per frame (the render: ``liveness_bench.render.turned_head``). ~3 min.
* ``pitch``: the same about the horizontal axis (a known nod, chin up > 0) read by the product's pitch
  (``idp.liveness.rigidity.pitch_deg``); docs/liveness.md "Pitch: measured bias". ~3 min.
* ``nods``: the clips' own nods (pitch excursions of at least 8 degrees outside a turn) measured as the
  decision measures a tilt: pitch, parallax ratio, shape residual. Seconds.
* ``attacks``: the largest yaw and pitch the decision reads from each rendered attack and bona fide capture of
  the liveness evaluation, and how many reach each threshold (the margin of a threshold). A few minutes.
* ``decision [--product] [DEG ...]``: the liveness evaluation (``benchmarks/liveness_eval.py``, same
  presentations: its ground truth stays the product's measure) with the candidate measure in the decision
  (``--product``: the product's own), at the default ``min_turn_deg`` (every set) and at each DEG (bona fide and
  rendered sets, as the evaluation's ablation). ~10 min.

Both need the analysed clips of ``benchmarks/liveness_eval.py data``. Prints Markdown.

    .venv/bin/python benchmarks/liveness_yaw_truth.py [truth | pitch | nods | attacks | decision 13 14 15 | decision --product 9 10 11]
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

YAWS = (-20, -15, -12, -8, 8, 12, 15, 20)
#: further true angles rendered only for the reach tables (between the 12 degrees of the issue's bona fide
#: target and the 15 the page asks for); the means and the read shares stay over YAWS
REACH_EXTRA = (-14, -13, 13, 14)
#: ... and for tilts, whose read spreads more, also 25 degrees
PITCH_EXTRA = REACH_EXTRA + (-25, 25)
THRESHOLDS = (9, 10, 11, 12)  # product yaw / pitch thresholds whose reach is counted per true angle


def reach_table(a: np.ndarray, col: int = 1, by_sign: bool = False) -> str:
    """Markdown: per true angle (``a[:, 0]``; its size, or signed with ``by_sign``), how many renders read
    at least each of :data:`THRESHOLDS` in the right direction (``a[:, col]``)."""
    keys = sorted(set(a[:, 0].astype(int))) if by_sign else sorted({abs(int(v)) for v in a[:, 0]})
    rows = ["| true angle (deg) | " + " | ".join(f"reaches {t}" for t in THRESHOLDS) + " |",
            "|---|" + "---|" * len(THRESHOLDS)]
    for deg in keys:
        sel = (a[:, 0] == deg) if by_sign else (np.abs(a[:, 0]) == deg)
        read = np.sign(a[sel, 0]) * a[sel, col]
        rows.append(f"| {deg:+d} | " if by_sign else f"| {deg} | ")
        rows[-1] += " | ".join(f"{(read >= t).sum()}/{sel.sum()}" for t in THRESHOLDS) + " |"
    return "\n".join(rows)


def pose_rotation(ref3: np.ndarray, cur2: np.ndarray, iters: int = 20) -> np.ndarray:
    """Rotation R for which a scaled orthographic camera shows the rigid shape ``ref3`` (N, 3) as the 2-D
    points ``cur2`` (N, 2): least squares of ``cur2 ~ s (R ref3)[:, :2] + t`` (Gauss-Newton on rotation and
    scale from the identity, t = the centroid shift). Only the second view's 2-D positions are used."""
    a = np.asarray(ref3, np.float64)
    b = np.asarray(cur2, np.float64)[:, :2]
    a = (a - a.mean(0)) / np.sqrt(((a - a.mean(0)) ** 2).sum(1).mean())
    b = (b - b.mean(0)) / np.sqrt(((b - b.mean(0)) ** 2).sum(1).mean())
    r, s = np.eye(3), 1.0 / np.sqrt((a[:, :2] ** 2).sum(1).mean())
    zero = np.zeros(len(a))
    for _ in range(iters):
        p = a @ r.T
        res = np.r_[b[:, 0] - s * p[:, 0], b[:, 1] - s * p[:, 1]]
        jac = np.r_[np.c_[zero, s * p[:, 2], -s * p[:, 1], p[:, 0]],  # d(p + w x p)/dw (x, y rows), d/ds
                    np.c_[-s * p[:, 2], zero, s * p[:, 0], p[:, 1]]]
        step = np.linalg.solve(jac.T @ jac, jac.T @ res)
        w, t = step[:3], float(np.linalg.norm(step[:3]))
        if t > 0:
            k = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]]) / t
            r = (np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k) @ r
        s += float(step[3])
        if t < 1e-7:
            break
    return r


def yaw_2d(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """The candidate measure: yaw (degrees, the product's sign) of :func:`pose_rotation` of the upper face
    (``rigidity.UPPER``) of two (468, 3) landmark sets."""
    from idp.liveness.rigidity import UPPER
    r = pose_rotation(np.asarray(ref3, np.float64)[UPPER], np.asarray(cur3, np.float64)[UPPER, :2])
    return -math.degrees(math.atan2(r[0, 2], r[2, 2]))


def yaw_3d(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """The product's measure, as ``rigidity.compare`` calls it (432 inner landmarks)."""
    from idp.liveness.rigidity import INNER, yaw_deg
    return yaw_deg(np.asarray(ref3, np.float64)[INNER], np.asarray(cur3, np.float64)[INNER])


def pitch_3d(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """The product's pitch (``rigidity.pitch_deg``, > 0 = chin up) as ``rigidity.compare`` calls it."""
    from idp.liveness.rigidity import INNER, pitch_deg
    return pitch_deg(np.asarray(ref3, np.float64)[INNER], np.asarray(cur3, np.float64)[INNER])


def pitch_2d(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """The candidate measure's pitch (:func:`pose_rotation` of the upper face; > 0 = chin up)."""
    from idp.liveness.rigidity import UPPER
    r = pose_rotation(np.asarray(ref3, np.float64)[UPPER], np.asarray(cur3, np.float64)[UPPER, :2])
    return math.degrees(math.atan2(r[1, 2], r[2, 2]))


def _frontal_heads():
    """Per shared clip: ``(clip, points, rendered, ref)`` - its most frontal frame (of its first 60) as a 2.5-D
    head (``rendered(yaw, pitch=0)`` renders it turned / tilted by known angles, :func:`turned_head`),
    ``points(rgb)`` the product's dense landmarks of a render (None without a face), ``ref`` those of the
    unturned render."""
    from idp.liveness.landmarks import shared_landmarker
    from liveness_bench import data, media
    from liveness_bench.render import turned_head
    from liveness_bench.truth import clip_yaw

    def points(rgb):
        a = media.engine().analyze(rgb, embed="never")
        return None if a.box is None else shared_landmarker()(rgb, a.box, a.landmarks).points.astype(np.float64)

    for clip in data.CLIPS:
        _, recs, _ = data.load(f"clip__{clip}")
        k = int(np.nanargmin(np.abs(clip_yaw(recs)[:60])))
        rgb = next(im for i, (_, im) in enumerate(media.decode_video(media.VIDEO_DIR / f"{clip}.mp4")) if i == k)
        p0 = points(rgb)
        yield clip, points, (lambda yaw, pitch=0.0, rgb=rgb, p0=p0: turned_head(rgb, p0, yaw, pitch)), \
            points(turned_head(rgb, p0, 0.0))


def truth_pitch() -> int:
    """``truth`` about the horizontal axis: each clip's most frontal frame tilted by a known pitch (chin up
    > 0), read by the product's pitch (and the candidate's 2-D fit, for comparison); the product's yaw
    on the same renders is the cross-talk of a pure nod into the turn measure."""
    rows = []
    for clip, points, rendered, ref in _frontal_heads():
        for pitch in YAWS + PITCH_EXTRA:
            cur = points(rendered(0.0, pitch))
            if cur is not None and ref is not None:
                rows.append((pitch, pitch_3d(ref, cur), pitch_2d(ref, cur), yaw_3d(ref, cur)))
            else:
                print(f"{clip} {pitch:+d}: no face", flush=True)
    a_all = np.array(rows, float)
    a = a_all[np.isin(a_all[:, 0], YAWS)]
    print("| true pitch (deg, + = chin up) | renders | product (3-D rotation): mean (min-max) | candidate (2-D fit): mean (min-max) | product yaw: max abs |")
    print("|---|---|---|---|---|")
    for deg in YAWS:
        sel = a[:, 0] == deg
        cells = [a[sel, j] for j in (1, 2)]
        print(f"| {deg:+d} | {sel.sum()} | " + " | ".join(f"{v.mean():.1f} ({v.min():.1f}-{v.max():.1f})" for v in cells)
              + f" | {np.abs(a[sel, 3]).max():.1f} |")
    for name, sel in (("chin up", a[:, 0] > 0), ("chin down", a[:, 0] < 0), ("both", a[:, 0] != 0)):
        g3, g2 = a[sel, 1] / a[sel, 0], a[sel, 2] / a[sel, 0]
        print(f"\nmeasured / true, {name}, median (10th-90th percentile), {sel.sum()} renders: product "
              f"{np.median(g3):.2f} ({np.percentile(g3, 10):.2f}-{np.percentile(g3, 90):.2f}), candidate "
              f"{np.median(g2):.2f} ({np.percentile(g2, 10):.2f}-{np.percentile(g2, 90):.2f})")
    print("\nShare of renders whose product pitch reaches each `min_pitch_deg` the requested way (one frame "
          "each; the decision also takes a 3-frame median), by the tilt's size:\n")
    print(reach_table(a_all))
    print("\n... and by direction (+ = chin up):\n")
    print(reach_table(a_all, by_sign=True))
    return 0


def nods() -> int:
    """The clips' own nods (no clip was filmed for a tilt): every pitch excursion of at least 8 degrees of the
    ground truth (``liveness_bench.truth``) outside a turn, measured as the decision measures a move - from a
    frame facing the camera (yaw and pitch within 3 degrees, the last one 0.3-1.5 s before the peak) to the
    frames around the peak - by the product's pitch, the parallax ratio and the shape residual (the
    decision's thresholds: ``min_parallax_ratio`` 0.6, ``max_shape_residual`` 0.07)."""
    from idp.faceweb import liveness as web
    from idp.liveness import LivenessSettings, rigidity
    from liveness_bench import data
    from liveness_bench.truth import CLEAR_DEG, clip_pitch, clip_yaw, excursions, turn_nod

    s = LivenessSettings()
    print("| clip | nod (time s: direction, ground truth deg) | pitch read (deg) | parallax ratio | shape residual |")
    print("|---|---|---|---|---|")
    for clip in data.CLIPS:
        _, recs, _ = data.load(f"clip__{clip}")
        y, p = clip_yaw(recs), clip_pitch(recs)
        t = np.array([r["t_ms"] for r in recs])
        obs = web.observations({"frames": recs})
        turn_peaks = [tk for sign in (1.0, -1.0) for tk, _ in excursions(
            t, np.nan_to_num(sign * y, nan=-99), np.nan_to_num(sign * y, nan=-99) >= CLEAR_DEG)]
        for name, sign in (("U", 1.0), ("D", -1.0)):
            d = np.nan_to_num(sign * p, nan=-99)
            for tk, dk in excursions(t, d, d >= CLEAR_DEG):
                k = int(np.argmin(np.abs(t - tk)))
                if turn_nod(tk, t, y, turn_peaks):
                    continue  # a turn's nod
                facing = np.flatnonzero((t >= tk - 2500) & (t <= tk - 300) & (np.abs(np.nan_to_num(y, nan=99)) < 4)
                                        & (np.abs(np.nan_to_num(p, nan=99)) < 4))
                if not len(facing) or obs[facing[-1]].dense is None:
                    print(f"| {clip} | {tk / 1000:.1f}: {name} {dk:.0f} | no facing frame before it | - | - |")
                    continue
                ref = obs[facing[-1]].dense.astype(np.float64)
                rows = []
                for j in range(max(k - 1, 0), min(k + 2, len(obs))):
                    if obs[j].dense is None:
                        continue
                    c = rigidity.compare(ref, obs[j].dense)
                    pred = rigidity.predicted_planar_residual(ref, 0.0, pitch=c["pitch"])
                    rows.append((c["pitch"], c["planar"] / max(pred, 1e-9), c["shape"]))
                a = np.array(rows)
                best = int(np.argmax(np.abs(a[:, 0])))
                print(f"| {clip} | {tk / 1000:.1f}: {name} {dk:.0f} | {a[best, 0]:+.1f} | {a[best, 1]:.2f} | {a[best, 2]:.3f} |")
    print(f"\n(thresholds: min_pitch_deg {s.min_pitch_deg:g}, min_parallax_ratio {s.min_parallax_ratio:g}, "
          f"max_shape_residual {s.max_shape_residual:g})")
    return 0


def truth() -> int:
    from idp.liveness import rigidity
    from liveness_bench import data

    rows, pairs = [], []
    for _clip, points, rendered, ref in _frontal_heads():
        for yaw in YAWS + REACH_EXTRA:
            cur = points(rendered(yaw))
            if cur is not None and ref is not None:
                rows.append((yaw, yaw_3d(ref, cur), yaw_2d(ref, cur)))
                if yaw in YAWS:
                    pairs.append((ref, cur))
    a_all = np.array(rows, float)
    a = a_all[np.isin(a_all[:, 0], YAWS)]
    print("| true yaw (deg) | renders | product (3-D rotation): mean (min-max) | candidate (2-D fit): mean (min-max) |")
    print("|---|---|---|---|")
    for deg in sorted({abs(y) for y in YAWS}):
        sel = np.abs(a[:, 0]) == deg
        cells = [np.sign(a[sel, 0]) * a[sel, j] for j in (1, 2)]
        print(f"| {deg} | {sel.sum()} | " + " | ".join(f"{v.mean():.1f} ({v.min():.1f}-{v.max():.1f})" for v in cells) + " |")
    print("\nShare of renders whose product yaw reaches each `min_turn_deg` (one frame each; the decision also "
          "takes a 3-frame median):\n")
    print(reach_table(a_all))
    g3, g2 = a[:, 1] / a[:, 0], a[:, 2] / a[:, 0]
    print(f"\nmeasured / true, median (10th-90th percentile), {len(a)} renders of {len(data.CLIPS)} people: product "
          f"{np.median(g3):.2f} ({np.percentile(g3, 10):.2f}-{np.percentile(g3, 90):.2f}), candidate "
          f"{np.median(g2):.2f} ({np.percentile(g2, 10):.2f}-{np.percentile(g2, 90):.2f})\n")
    for name, fn in (("rigidity.compare (the product's per-frame comparison)", rigidity.compare.__wrapped__),
                     ("product yaw alone", yaw_3d), ("candidate yaw alone", yaw_2d)):
        t0 = time.perf_counter()
        for _ in range(5):
            for ref, cur in pairs:
                fn(ref, cur)
        print(f"- {name}: {(time.perf_counter() - t0) / (5 * len(pairs)) * 1e3:.2f} ms per frame")
    return 0


def attack_reads() -> int:
    """How far the decision reads the rendered attacks (and, for comparison, the bona fide captures) of the
    liveness evaluation turn and tilt: each presentation sent whole (the thresholds out of reach, the passive
    check off, so that no early decision stops it), its largest yaw and pitch either way from its facing pose
    (``turn_left_deg`` / ``turn_right_deg`` / ``look_up_deg`` / ``look_down_deg`` of the decision), and how
    many reach each of :data:`THRESHOLDS`. A reach is not an acceptance (the move must also be the requested
    one, in order, with the 3-D evidence): it is the margin each threshold leaves against each attack."""
    import dataclasses

    from liveness_bench import protocol, report

    s = protocol.product_settings()
    off = dataclasses.replace(s, min_turn_deg=99.0, min_pitch_deg=99.0, min_passive_score=0.0)
    protocol.memoise_rigidity()
    pres, _, _ = report.build(s)
    print("| set | presentations | yaw read: median / max | " + " | ".join(f"yaw >= {t}" for t in THRESHOLDS)
          + " | pitch read: median / max | " + " | ".join(f"pitch >= {t}" for t in THRESHOLDS) + " |")
    print("|---|---|---|" + "---|" * len(THRESHOLDS) + "---|" + "---|" * len(THRESHOLDS))
    for name, items in pres.items():
        if name.startswith("replay"):
            continue
        sc = [c.decision.result.scores for _, c in report.judge(items, off)]
        yaw = np.array([max(x.get("turn_left_deg", 0.0), x.get("turn_right_deg", 0.0)) for x in sc])
        pitch = np.array([max(x.get("look_up_deg", 0.0), x.get("look_down_deg", 0.0)) for x in sc])
        cells = []
        for v in (yaw, pitch):
            cells.append(f"{np.median(v):.1f} / {v.max():.1f}")
            cells += [f"{(v >= t).sum()}" for t in THRESHOLDS]
        print(f"| {name} | {len(items)} | " + " | ".join(cells) + " |", flush=True)
    return 0


def decision(degs: list[float], candidate: bool = True) -> int:
    """The evaluation with ``rigidity.compare``'s yaw replaced by the candidate (its ground truth, and so its
    presentations, unchanged); ``candidate=False``: the product as it is."""
    from idp.liveness import rigidity
    from liveness_bench import protocol, report

    product = rigidity.compare

    @rigidity.memoised
    def compare(ref3, cur3, idx=rigidity.INNER):
        return {**product(ref3, cur3, idx), "yaw": yaw_2d(ref3, cur3)}
    if candidate:
        rigidity.compare = compare
    s = protocol.product_settings()
    results, _ = report.run(s)
    print(f"### results ({'candidate' if candidate else 'product'} measure, min_turn_deg {s.min_turn_deg:g})\n\n"
          + report.table_results(results))
    print("\n### errors\n\n" + report.table_errors(results))
    report.VARIANTS = [(f"min_turn_deg {d:g}", dict(min_turn_deg=d)) for d in degs]
    print("\n### thresholds\n\n" + report.table_ablation(results, s))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:] or ["truth"]
    if args[0] == "nods":
        raise SystemExit(nods())
    if args[0] == "pitch":
        raise SystemExit(truth_pitch())
    if args[0] == "attacks":
        raise SystemExit(attack_reads())
    if args[0] == "decision":
        raise SystemExit(decision([float(v) for v in args[1:] if v != "--product"], "--product" not in args))
    raise SystemExit(truth())
