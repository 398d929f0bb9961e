"""Does the turn measure read degrees? A measurement of the product's yaw (``idp.liveness.rigidity.yaw_deg``:
the best rotation between two frames' predicted 3-D landmark sets) against known head turns, and of a
candidate measure that reads the turned frame's 2-D landmarks only (docs/liveness.md, "Yaw: measured bias").

* ``truth`` (default): each shared clip's most frontal frame (of its first 60) turned by a known yaw as a
  2.5-D head whose shape is the model's own predicted landmarks of that frame (:func:`turned_head`),
  analysed by the product's face engine and dense landmark model, measured against the unturned render
  by both measures; and their cost per frame. ~3 min.
* ``pitch``: the same about the horizontal axis (a known nod, chin up > 0) read by the product's pitch
  (``idp.liveness.rigidity.pitch_deg``); docs/liveness.md "Pitch: measured bias". ~3 min.
* ``decision [--product] [DEG ...]``: the liveness evaluation (``benchmarks/liveness_eval.py``, same
  presentations: its ground truth stays the product's measure) with the candidate measure in the decision
  (``--product``: the product's own), at ``min_turn_deg`` = 12 (every set) and at each DEG (bona fide and
  rendered sets, as the evaluation's ablation). ~10 min.

Both need the analysed clips of ``benchmarks/liveness_eval.py data``. Prints Markdown.

    .venv/bin/python benchmarks/liveness_yaw_truth.py [truth | pitch | decision 13 14 15 | decision --product 9 10 11]
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


def turned_head(rgb: np.ndarray, points: np.ndarray, yaw: float, pitch: float = 0.0) -> np.ndarray:
    """``rgb`` with its face turned by ``yaw`` degrees about the vertical axis (> 0: the nose moves to the
    image right), or tilted by ``pitch`` degrees about the horizontal axis (> 0: chin up, the nose moves
    to the image top), as a 2.5-D head: the face's (468, 3) landmarks ``points`` (frame px; their depth is the
    head's shape), plus two rings beyond the face outline (1.25 / 1.6 x its radius, 0.35 / 0.8 radius further
    back: hair, ears), rotate about the axis through the landmarks' centroid (orthographic); a ring
    at 2.6 x and the frame border stay put; each Delaunay triangle is warped affinely, far ones first."""
    from scipy.spatial import Delaunay

    from idp.liveness.rigidity import FACE_OVAL, INNER

    img = np.asarray(rgb, np.float32)
    h, w = img.shape[:2]
    p = np.asarray(points, np.float64)
    c = p[INNER].mean(0)
    oval = p[list(FACE_OVAL)]
    rad = float(np.sqrt(((oval[:, :2] - c[:2]) ** 2).sum(1).mean()))
    rings = [np.c_[c[:2] + f * (oval[:, :2] - c[:2]), oval[:, 2] + dz * rad] for f, dz in ((1.25, 0.35), (1.6, 0.8))]
    moving = np.vstack([p] + rings)
    ang = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    still = np.r_[np.c_[c[0] + 2.6 * rad * np.cos(ang), c[1] + 2.6 * rad * np.sin(ang)],
                  [[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [w / 2, 0], [w / 2, h - 1], [0, h / 2], [w - 1, h / 2]]]
    a = math.radians(-yaw)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    b = math.radians(pitch)
    rx = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]])
    turned = (moving - c) @ (rx @ ry).T + c
    src, dst = np.r_[moving[:, :2], still], np.r_[turned[:, :2], still]
    depth = np.r_[turned[:, 2], np.full(len(still), np.inf)]  # smaller = nearer: drawn last
    tri = Delaunay(src).simplices
    out = img.copy()
    for t in tri[np.argsort(-depth[tri].mean(1))]:
        d, s = dst[t], src[t]
        x0, y0 = np.maximum(np.floor(d.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(d.max(0)).astype(int), [w - 1, h - 1])
        m = np.c_[d, np.ones(3)]
        if x1 < x0 or y1 < y0 or abs(np.linalg.det(m)) < 1e-9:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        q = np.c_[xx.ravel(), yy.ravel(), np.ones(xx.size)]
        q = q[(q @ np.linalg.inv(m) >= -1e-6).all(1)]  # barycentric coordinates >= 0: inside
        sx, sy = (q @ np.linalg.solve(m, s)).T
        sx, sy = np.clip(sx, 0, w - 1.001), np.clip(sy, 0, h - 1.001)
        ix, iy = sx.astype(int), sy.astype(int)
        fx, fy = (sx - ix)[:, None], (sy - iy)[:, None]
        out[q[:, 1].astype(int), q[:, 0].astype(int)] = (
            img[iy, ix] * (1 - fx) * (1 - fy) + img[iy, ix + 1] * fx * (1 - fy)
            + img[iy + 1, ix] * (1 - fx) * fy + img[iy + 1, ix + 1] * fx * fy)
    return np.clip(out, 0, 255).astype(np.uint8)


def pitch_3d(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """The product's pitch (``rigidity.pitch_deg``, > 0 = chin up) as ``rigidity.compare`` calls it."""
    from idp.liveness.rigidity import INNER, pitch_deg
    return pitch_deg(np.asarray(ref3, np.float64)[INNER], np.asarray(cur3, np.float64)[INNER])


def pitch_2d(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """The candidate measure's pitch (:func:`pose_rotation` of the upper face; > 0 = chin up)."""
    from idp.liveness.rigidity import UPPER
    r = pose_rotation(np.asarray(ref3, np.float64)[UPPER], np.asarray(cur3, np.float64)[UPPER, :2])
    return math.degrees(math.atan2(r[1, 2], r[2, 2]))


def truth_pitch() -> int:
    """``truth`` about the horizontal axis: each clip's most frontal frame tilted by a known pitch (chin up
    > 0), read by the product's pitch (and the candidate's 2-D fit, for comparison); the product's yaw
    on the same renders is the cross-talk of a pure nod into the turn measure."""
    from idp.liveness.landmarks import shared_landmarker
    from liveness_bench import data, media, sets

    def points(rgb):
        a = media.engine().analyze(rgb, embed="never")
        return None if a.box is None else shared_landmarker()(rgb, a.box, a.landmarks).points.astype(np.float64)

    rows = []
    for clip in data.CLIPS:
        _, recs, _ = data.load(f"clip__{clip}")
        k = int(np.nanargmin(np.abs(sets.clip_yaw(recs)[:60])))
        rgb = next(im for i, (_, im) in enumerate(media.decode_video(media.VIDEO_DIR / f"{clip}.mp4")) if i == k)
        p0 = points(rgb)
        ref = points(turned_head(rgb, p0, 0.0))
        for pitch in YAWS:
            cur = points(turned_head(rgb, p0, 0.0, pitch))
            if cur is not None and ref is not None:
                rows.append((pitch, pitch_3d(ref, cur), pitch_2d(ref, cur), yaw_3d(ref, cur)))
            else:
                print(f"{clip} {pitch:+d}: no face", flush=True)
    a = np.array(rows, float)
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
    return 0


def truth() -> int:
    from idp.liveness import rigidity
    from idp.liveness.landmarks import shared_landmarker
    from liveness_bench import data, media, sets

    def points(rgb):
        a = media.engine().analyze(rgb, embed="never")
        return None if a.box is None else shared_landmarker()(rgb, a.box, a.landmarks).points.astype(np.float64)

    rows, pairs = [], []
    for clip in data.CLIPS:
        _, recs, _ = data.load(f"clip__{clip}")
        k = int(np.nanargmin(np.abs(sets.clip_yaw(recs)[:60])))
        rgb = next(im for i, (_, im) in enumerate(media.decode_video(media.VIDEO_DIR / f"{clip}.mp4")) if i == k)
        p0 = points(rgb)
        ref = points(turned_head(rgb, p0, 0.0))
        for yaw in YAWS:
            cur = points(turned_head(rgb, p0, yaw))
            if cur is not None and ref is not None:
                rows.append((yaw, yaw_3d(ref, cur), yaw_2d(ref, cur)))
                pairs.append((ref, cur))
    a = np.array(rows, float)
    print("| true yaw (deg) | renders | product (3-D rotation): mean (min-max) | candidate (2-D fit): mean (min-max) |")
    print("|---|---|---|---|")
    for deg in sorted({abs(y) for y in YAWS}):
        sel = np.abs(a[:, 0]) == deg
        cells = [np.sign(a[sel, 0]) * a[sel, j] for j in (1, 2)]
        print(f"| {deg} | {sel.sum()} | " + " | ".join(f"{v.mean():.1f} ({v.min():.1f}-{v.max():.1f})" for v in cells) + " |")
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
    print(f"### results ({'candidate' if candidate else 'product'} measure, min_turn_deg 12)\n\n"
          + report.table_results(results))
    print("\n### errors\n\n" + report.table_errors(results))
    report.VARIANTS = [(f"min_turn_deg {d:g}", dict(min_turn_deg=d)) for d in degs]
    print("\n### thresholds\n\n" + report.table_ablation(results, s))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:] or ["truth"]
    if args[0] == "pitch":
        raise SystemExit(truth_pitch())
    if args[0] == "decision":
        raise SystemExit(decision([float(v) for v in args[1:] if v != "--product"], "--product" not in args))
    raise SystemExit(truth())
