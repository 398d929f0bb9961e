"""Is the frame in between a move's facing pose and its peak only the facing picture, warped? A measurement
on pixels (docs/liveness.md, "Moves between two pictures"), not a test of the product.

The dense landmark model fits a head to whatever face it sees, so the landmarks of the facing photograph
warped as a print held at an angle read a small head turn with the parallax a head would show. The pixels do
not: a warp of one picture is a homography of it. Per pair (the last facing frame ``F`` of a clip before a
frame ``G``), the best homography from ``F`` to ``G`` (started from the inner landmarks' fit, refined on the
grey pixels of the inner face with a gain and a bias, Gauss-Newton) leaves a residual of ``1 - NCC`` over the
inner face: about 0 when ``G`` is ``F`` warped, larger when the face itself changed (a turn's parallax, but
also an expression, the light, a blink). Measured, at the frame's resolution and with the face box scaled
to 64 px:

* the same frame warped: ``F`` warped with a far edge 0.6 or 0.8 as tall (both ways), as is, or with
  sensor noise (sigma 4), blurred (Gaussian 1.5 px) or re-encoded (JPEG q50);
* another facing frame warped: a facing frame of the clip at least a second away, warped: what an attacker
  with a second facing photograph sends;
* the clip's real frames that read 3-12 degrees of yaw after its last facing frame (within a second): the
  frames a head passes through;
* two consecutive facing frames of the clip (a person holding still).

    .venv/bin/python benchmarks/liveness_in_between_pixels.py [--seconds 40] [clip ...]

A few minutes on the shared clips (``../shared/data/faces/video/liveportrait_driving``). Markdown on stdout.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from liveness_bench.media import FACES_DIR, decode_video, engine, jpeg  # noqa: E402
from liveness_bench.render import held_at_an_angle  # noqa: E402

from idp.liveness import rigidity  # noqa: E402

CLIPS = ("d3", "d12", "d11", "d6", "d9", "d0", "d10")
FPS = 7.5  # the page films a frame every 150 ms; 7.5 fps is every second page frame, as the faceweb tests send


def analysed(rgb: np.ndarray) -> dict | None:
    """The frame's grey pixels, its 468 dense landmarks (``pts3``: x, y in pixels and the model's depth;
    ``pts``: x, y) and its face box, as the capture API finds them (None: no face)."""
    from idp.liveness.landmarks import shared_landmarker
    a = engine().analyze(rgb, embed="never")
    if a.box is None:
        return None
    pts3 = shared_landmarker()(rgb, a.box, a.landmarks).points.astype(np.float64)
    return {"grey": rgb.astype(np.float64) @ [0.299, 0.587, 0.114], "pts3": pts3, "pts": pts3[:, :2],
            "box": a.box}


def _project(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    q = np.c_[xy, np.ones(len(xy))] @ h.T
    return q[:, :2] / q[:, 2:3]


def _sample(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    from scipy import ndimage
    return ndimage.map_coordinates(img, [xy[:, 1], xy[:, 0]], order=1, mode="nearest")


def residual(f: dict, g: dict, face_px: float | None = None, iters: int = 15) -> float:
    """``1 - NCC`` of ``f``'s inner face and ``g`` mapped onto it by the best homography (plus gain and bias);
    ``face_px``: both frames first scaled so that ``f``'s face box is that wide."""
    from matplotlib.path import Path as Polygon
    from scipy import ndimage
    from scipy.spatial import ConvexHull
    a, b, pa, pb = f["grey"], g["grey"], f["pts"], g["pts"]
    if face_px:
        k = face_px / float(f["box"][2])
        a, b = (ndimage.zoom(ndimage.gaussian_filter(x, 0.5 / k), k, order=1) for x in (a, b))
        pa, pb = pa * k, pb * k
    inner = rigidity.INNER
    h = rigidity.fit_homography(pa[inner], pb[inner])
    (x0, y0), (x1, y1) = pa[inner].min(0), pa[inner].max(0)
    step = 1.0 if face_px else 2.0
    gx, gy = np.meshgrid(np.arange(x0, x1, step), np.arange(y0, y1, step))
    xy = np.c_[gx.ravel(), gy.ravel()]
    xy = xy[Polygon(pa[inner][ConvexHull(pa[inner]).vertices]).contains_points(xy)]
    dy, dx = np.gradient(b)
    ref = _sample(a, xy)
    x, y = xy[:, 0], xy[:, 1]
    for _ in range(iters):
        q = _project(h, xy)
        w = (np.c_[xy, np.ones(len(xy))] @ h.T)[:, 2]
        cur, ix, iy = _sample(b, q), _sample(dx, q), _sample(dy, q)
        u = ix * q[:, 0] + iy * q[:, 1]
        jac = np.c_[ix * x, ix * y, ix, iy * x, iy * y, iy, -u * x, -u * y] / w[:, None]
        step_, *_ = np.linalg.lstsq(np.c_[jac, cur, np.ones_like(cur)], ref - cur, rcond=None)
        h = (h.reshape(-1) + np.r_[step_[:8], 0.0]).reshape(3, 3)
        ref = (ref - step_[9]) / (1 + step_[8])
        if np.abs(step_[:8]).max() < 1e-9:
            break
    s, t = _sample(a, xy), _sample(b, _project(h, xy))
    s, t = (s - s.mean()) / (s.std() + 1e-9), (t - t.mean()) / (t.std() + 1e-9)
    return 1.0 - float((s * t).mean())


def _variants(facing: np.ndarray, other: np.ndarray, rng) -> list[tuple[str, np.ndarray]]:
    """The attacker's frames in between: the facing frame warped (far edge 0.6 or 0.8 as tall, each way), as
    is and degraded, and another facing frame warped."""
    from PIL import Image, ImageFilter
    out = []
    for narrowing in (0.6, 0.8):
        for flip in (False, True):
            src = facing[:, ::-1] if flip else facing
            warped = held_at_an_angle(src, narrowing)
            out.append(("the same frame, warped", np.ascontiguousarray(warped[:, ::-1] if flip else warped)))
        warped = held_at_an_angle(facing, narrowing)
        noisy = np.clip(warped + rng.normal(0, 4.0, warped.shape), 0, 255).astype(np.uint8)
        out.append(("the same frame, warped, sensor noise (sigma 4)", jpeg(noisy, 90)))
        out.append(("the same frame, warped, JPEG q50", jpeg(warped, 50)))
        out.append(("the same frame, warped, blurred (1.5 px)",
                    np.asarray(Image.fromarray(warped).filter(ImageFilter.GaussianBlur(1.5)))))
        out.append(("another facing frame (a second away), warped", held_at_an_angle(other, narrowing)))
    return out


def measure(clip: str, seconds: float, rows: dict) -> None:
    """Add the residuals of one clip's pairs (its first ``seconds``) to ``rows`` (label -> [(full, 64 px)])."""
    rng = np.random.default_rng(7)
    frames = []
    for t_ms, rgb in decode_video(FACES_DIR / "video" / "liveportrait_driving" / f"{clip}.mp4", FPS):
        if t_ms >= seconds * 1000:
            break
        frames.append(jpeg(rgb, 90))
    an = [analysed(f) for f in frames]
    ok = [k for k, a in enumerate(an) if a is not None]
    if len(ok) < 10:
        return
    # each face frame's yaw from the clip's facing pose, as the product reads it (the dense 3-D landmarks'
    # best rotation against the first five face frames), less the median of the frames near 0
    ref = np.median(np.stack([an[k]["pts3"] for k in ok[:5]]), axis=0)[rigidity.INNER]
    yaw = {k: rigidity.yaw_deg(ref, an[k]["pts3"][rigidity.INNER]) for k in ok}
    v = np.array(list(yaw.values()))
    base = float(np.median(v[np.abs(v) < 5])) if (np.abs(v) < 5).sum() > 2 else 0.0
    yaw = {k: val - base for k, val in yaw.items()}
    facing = [k for k in ok if abs(yaw[k]) < 1.5]
    for k in facing[:: max(1, len(facing) // 3)][:3]:
        other = min((j for j in facing if abs(j - k) >= FPS), key=lambda j: abs(j - k), default=None)
        if other is None:
            continue
        for label, img in _variants(frames[k], frames[other], rng):
            g = analysed(img)
            if g is not None:
                rows[label].append((residual(an[k], g), residual(an[k], g, 64)))
    for a_, b_ in list(zip(facing, facing[1:]))[:6]:
        if b_ - a_ == 1:
            rows["two consecutive facing frames (holding still)"].append(
                (residual(an[a_], an[b_]), residual(an[a_], an[b_], 64)))
    for j in range(1, len(ok)):
        k, turn = ok[j], abs(yaw[ok[j]])
        if 3 <= turn <= 12:
            before = [f for f in ok[max(0, j - int(FPS)):j] if abs(yaw[f]) < 2]
            if before:
                band = "3-6" if turn < 6 else "6-9" if turn < 9 else "9-12"
                rows[f"the clip's real frames turned {band} degrees"].append(
                    (residual(an[before[-1]], an[k]), residual(an[before[-1]], an[k], 64)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("clips", nargs="*", default=list(CLIPS))
    p.add_argument("--seconds", type=float, default=40.0)
    args = p.parse_args(argv)
    rows: dict[str, list] = defaultdict(list)
    for clip in args.clips:
        measure(clip, args.seconds, rows)
    print("| pair (facing frame -> frame) | n | 1 - NCC: min / 10th pct / median / max "
          "| face box 64 px: min / 10th pct / "
          "median / max |")
    print("|---|---|---|---|")
    for label in sorted(rows, key=lambda s: (not s.startswith("the same"), not s.startswith("another"), s)):
        v = np.array(rows[label])
        cells = [" / ".join(f"{x:.4f}" for x in (c.min(), np.percentile(c, 10), np.median(c), c.max())) for c in v.T]
        print(f"| {label} | {len(v)} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
