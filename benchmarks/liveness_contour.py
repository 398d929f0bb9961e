"""Does the face outline tell a turned head from turned (bent) paper? A measurement of the **occluding
contour** cue (docs/liveness.md, "The face outline (occluding contour): a measurement, not a test").

On a real head the face outline (MediaPipe's FACE_OVAL ring, which ``rigidity`` leaves out of its fits) is
an occluding contour: when the head turns, the far-side outline stays at the head's visual edge while the
surface moves behind it, and the head's width in the image barely changes. On paper, flat or bent, the
outline is printed texture: it moves with the inner landmarks under the paper's geometry and its width
shrinks with the paper's foreshortening. Both measures below compare the outline's side points (the cheeks'
outline, :data:`SIDE`) with where a rigid motion fitted on the inner landmarks (``rigidity.INNER``) puts
them, along the image's horizontal axis, relative to the face size (RMS radius of the inner 2-D points):

* :func:`outline_squash` - the rigid motion is the inner face's best 3-D rotation (Kabsch, the rotation
  the product's yaw is read from) seen by a scaled orthographic camera (one image scale, fitted with the
  translation on the inner 2-D points): the mean of how far each side's outline lies *inside* its predicted
  place. ~0 for a rigid head; a print turned by a larger angle than the model reads shows its
  foreshortening here (the outline, far from the centre, carries it most).
* :func:`outline_occlusion` - the rigid motion is the best affine camera from the reference's 3-D inner
  points to the current 2-D ones (``rigidity.rigid_residual``'s model, which absorbs a foreshortening):
  the signed residual along the turn (the direction the nose moved) of the far-side and of the near-side
  outline. What is left is the outline's own motion: an occluding contour slides, printed texture does not.

Modes (both need the analysed data of ``benchmarks/liveness_eval.py data``; Markdown on stdout):

* ``table`` (default): every presentation of the evaluation (clips' bona fide captures and rendered
  attacks; not the rendered heads, whose 2.5-D warp has no occlusion; not the screen replays) sent whole;
  its moves cut by the decision's own series (``idp.liveness.core.head_moves``) at ``min_turn_deg`` 8, 9
  and 10; per turn, the smallest measure over the frames that pass the decision's parallax and shape tests
  (the decision accepts a move if any one frame passes). A minute or two.
* ``decision [SQUASH ...]``: the evaluation's bona fide and rendered sets judged by the product's decision
  with one more condition at the frames that reach a move - ``outline_squash`` at most SQUASH - at
  ``min_turn_deg`` 10, 9 and 8 (``liveness_yaw_truth.py decision``'s way: ``rigidity.compare`` wrapped, here
  so that its ``shape`` fails the shape test where the squash is over SQUASH). About 15 min (13 min of CPU).

* ``full SQUASH DEG``: the whole evaluation (``liveness_eval.py evaluate``'s sets, screen replays, re-sent
  captures and rendered heads included) with that condition and ``min_turn_deg`` DEG. Prints the results and
  errors tables. 5-8 min.

    .venv/bin/python benchmarks/liveness_contour.py [table | decision 0.06 0.08 0.1 | full 0.06 9]
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from idp.liveness import rigidity  # noqa: E402

OVAL = np.array(rigidity.FACE_OVAL)
#: outline points whose horizontal offset from the inner face's centre (in the reference frame) is at least
#: this share of the largest one on their side: the cheeks' and temples' outline, not the forehead's top or
#: the chin (per side: a face printed turned is not centred in its outline)
SIDE = 0.6
THRESHOLDS = (8.0, 9.0, 10.0)


def _sides(ref3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of OVAL: the outline's side points at the image right and at the image left of ``ref3``."""
    rel = ref3[OVAL, 0] - ref3[rigidity.INNER, 0].mean()
    return rel >= SIDE * max(float(rel.max()), 1e-9), rel <= SIDE * min(float(rel.min()), -1e-9)


def outline_squash(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """Mean distance (relative to the face size in ``cur3``) by which the side outline of ``cur3`` lies inside
    the place the inner landmarks' rigid motion from ``ref3`` predicts for it (> 0: narrower than a rigid
    face; < 0: wider). Rigid motion: the inner 3-D points' best rotation, then a scaled orthographic view
    (one scale and a translation, least squares on the inner 2-D points). Both (468, 3) frame pixels."""
    ref3, cur3 = np.asarray(ref3, np.float64), np.asarray(cur3, np.float64)
    ri, ci = ref3[rigidity.INNER], cur3[rigidity.INNER]
    r = rigidity.rotation(ri, ci)
    m = ri.mean(0)
    turned = ((ri - m) @ r.T)[:, :2]
    c2 = ci[:, :2] - ci[:, :2].mean(0)
    scale = float((turned * c2).sum() / max(float((turned * turned).sum()), 1e-12))
    pred = ((ref3[OVAL] - m) @ r.T)[:, :2] * scale + ci[:, :2].mean(0)
    dx = (cur3[OVAL, 0] - pred[:, 0]) / rigidity._size(ci[:, :2])
    right, left = _sides(ref3)
    return float((-dx[right].mean() + dx[left].mean()) / 2)


def outline_occlusion(ref3: np.ndarray, cur3: np.ndarray, yaw: float) -> tuple[float, float]:
    """``(far, near)``: mean residual, along the turn (the direction the nose moved: the image right for
    ``yaw`` > 0), of the far-side and of the near-side outline of ``cur3`` against the best affine camera
    (2x4) that maps the inner 3-D landmarks of ``ref3`` onto the inner 2-D landmarks of ``cur3``, relative
    to the face size in ``cur3``. The far side is the side the nose moves towards."""
    ref3, cur3 = np.asarray(ref3, np.float64), np.asarray(cur3, np.float64)
    ri, ci = ref3[rigidity.INNER], cur3[rigidity.INNER]
    m = ri.mean(0)
    p, *_ = np.linalg.lstsq(np.c_[ri - m, np.ones(len(ri))], ci[:, :2], rcond=None)
    pred = np.c_[ref3[OVAL] - m, np.ones(len(OVAL))] @ p
    sign = 1.0 if yaw >= 0 else -1.0
    dx = (cur3[OVAL, 0] - pred[:, 0]) * sign / rigidity._size(ci[:, :2])
    right, left = _sides(ref3)
    far, near = (right, left) if sign > 0 else (left, right)
    return float(dx[far].mean()), float(dx[near].mean())


# --- the evaluation's presentations --------------------------------------------------------------------

def _series(p, s):
    """The decision's series of one presentation sent whole (``idp.liveness.core.check_turns``, same steps):
    per dense frame the yaw towards the person's left and the pitch from the facing pose, the parallax
    ratio at the measured yaw and the shape residual (3-frame medians), and the two outline measures."""
    from idp.faceweb import liveness as web
    from idp.liveness.core import _median_filter

    faces = [o for o in web.observations({"frames": [r for r, _ in p.frames]}) if o.has_face and o.dense is not None]
    if len(faces) < max(2, s.min_frames):
        return None
    nb = max(1, min(s.baseline_frames, len(faces) // 3))
    ref = np.median(np.stack([f.dense for f in faces[:nb]]).astype(np.float64), axis=0)
    cmp = [rigidity.compare(ref, f.dense) for f in faces]
    angle = {}
    for axis in ("yaw", "pitch"):
        a = _median_filter(np.array([c[axis] for c in cmp]), s.smooth)
        facing = np.abs(a) < s.return_deg
        angle[axis] = a - float(np.median(a[facing])) if facing.sum() >= 2 else a
    planar = _median_filter(np.array([c["planar"] for c in cmp]), s.smooth)
    pred = np.array([rigidity.predicted_planar_residual(ref, y) for y in angle["yaw"]])
    occl = np.array([outline_occlusion(ref, f.dense, c["yaw"]) for f, c in zip(faces, cmp)])
    return dict(left=(-1.0 if s.mirrored else 1.0) * angle["yaw"], up=angle["pitch"],
                ratio=planar / np.maximum(pred, 1e-9),
                shape=_median_filter(np.array([c["shape"] for c in cmp]), s.smooth),
                squash=_median_filter(np.array([outline_squash(ref, f.dense) for f in faces]), s.smooth),
                far=_median_filter(occl[:, 0], s.smooth), near=_median_filter(occl[:, 1], s.smooth))


_SERIES: dict = {}  # per presentation of this run (its series does not depend on the threshold)


def turn_values(p, s, min_turn: float) -> list[dict]:
    """Per turn of the presentation's requested sequence reached at ``min_turn`` (moves cut by the decision's
    ``head_moves``, in order, whatever their direction, as far as the decision would read them), with at
    least one frame passing the parallax and shape tests: the most head-like outline measures over those
    frames (smallest squash, largest far-side residual) and the turn's largest yaw."""
    from idp.liveness.core import head_moves

    key = (id(p), s.smooth, s.return_deg, s.min_frames, s.baseline_frames, s.mirrored)
    if key not in _SERIES:
        _SERIES[key] = _series(p, s)
    x = _SERIES[key]
    if x is None:
        return []
    out = []
    for want, (got, idx) in zip(p.challenge.split("+"), head_moves(x["left"], x["up"], min_turn, s.min_pitch_deg,
                                                                  s.return_deg)):
        if got not in ("turn_left", "turn_right"):
            break
        idx = np.array(idx)
        ok = idx[(x["ratio"][idx] >= s.min_parallax_ratio) & (x["shape"][idx] <= s.max_shape_residual)]
        if not len(ok):
            break  # refused by the present tests already (planar_motion)
        out.append(dict(right_way=got == want, squash=float(x["squash"][ok].min()), far=float(x["far"][ok].max()),
                        near=float(x["near"][ok].min()), yaw=float(np.abs(x["left"][idx]).max())))
    return out


def _sets():
    from liveness_bench import protocol, report, sets
    s = protocol.product_settings()
    protocol.memoise_rigidity()
    pres, _, _ = report.build(s)
    keep = {n: v for n, v in pres.items() if not n.startswith("replay") and n != sets.HEADS}
    return s, keep


def _q(v) -> str:
    v = np.asarray(v, float)
    if not len(v):
        return "-"
    return f"{np.median(v):+.3f} ({v.min():+.3f} to {v.max():+.3f})"


def table() -> int:
    s, pres = _sets()
    for t in THRESHOLDS:
        print(f"\n### min_turn_deg {t:g}: turns reached with a frame passing the parallax and shape tests\n")
        print("| set | presentations | turns | squash: median (min to max) | squash > 0.05 | far-side residual: median "
              "(min to max) | near-side residual: median (min to max) |")
        print("|---|---|---|---|---|---|---|")
        for name, items in pres.items():
            vals = [v for p in items for v in turn_values(p, s, t)]
            npres = sum(1 for p in items if turn_values(p, s, t))
            if not vals:
                print(f"| {name} | 0 | 0 | - | - | - | - |")
                continue
            sq = [v["squash"] for v in vals]
            print(f"| {name} | {npres} | {len(vals)} | {_q(sq)} | {sum(q > 0.05 for q in sq)} | "
                  f"{_q([v['far'] for v in vals])} | {_q([v['near'] for v in vals])} |", flush=True)
    return 0


def decision(limits: list[float]) -> int:
    """Error rates of the evaluation's bona fide and rendered sets with the squash as a further condition."""
    from liveness_bench import report

    product = rigidity.compare
    s, pres = _sets()
    names = list(pres)
    print("| outline squash at most | min_turn_deg | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for limit in [None, *limits]:
        if limit is None:
            rigidity.compare = product
        else:
            @rigidity.memoised
            def compare(ref3, cur3, idx=rigidity.INNER, _limit=limit):
                c = product(ref3, cur3, idx)
                if outline_squash(ref3, cur3) > _limit:
                    c["shape"] = max(c["shape"], 1.0)  # fails the shape test at this frame
                return c
            rigidity.compare = compare
        for t in (10.0, 9.0, 8.0):
            st = dataclasses.replace(s, min_turn_deg=t)
            cells = []
            for name in names:
                res = report.judge(pres[name], st)
                bona = name.startswith("bona fide")
                e = sum((not c.accepted) if bona else c.accepted for _, c in res)
                cells.append(f"{e}/{len(res)}")
            print(f"| {'- (product)' if limit is None else f'{limit:g}'} | {t:g} | " + " | ".join(cells) + " |",
                  flush=True)
    rigidity.compare = product
    return 0


def full(limit: float, min_turn: float) -> int:
    """The whole evaluation (every set of ``liveness_eval.py evaluate``: screen replays, re-sent captures and
    rendered heads too) with the squash condition at ``limit`` and ``min_turn_deg`` = ``min_turn``."""
    from liveness_bench import protocol, report

    product = rigidity.compare

    @rigidity.memoised
    def compare(ref3, cur3, idx=rigidity.INNER):
        c = product(ref3, cur3, idx)
        if outline_squash(ref3, cur3) > limit:
            c["shape"] = max(c["shape"], 1.0)
        return c
    rigidity.compare = compare
    try:
        results, _ = report.run(dataclasses.replace(protocol.product_settings(), min_turn_deg=min_turn))
    finally:
        rigidity.compare = product
    print(f"### outline squash at most {limit:g}, min_turn_deg {min_turn:g}\n\n" + report.table_results(results))
    print("\n### errors\n\n" + report.table_errors(results))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:] or ["table"]
    if args[0] == "full":
        raise SystemExit(full(float(args[1]), float(args[2])))
    if args[0] == "decision":
        raise SystemExit(decision([float(v) for v in args[1:]] or [0.06, 0.08, 0.1]))
    raise SystemExit(table())
