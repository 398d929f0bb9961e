"""Is the frame in between foreshortened more than its angle explains? A measurement of a candidate rule
(docs/liveness.md, "Moves between two pictures"), not a test of the product.

A head turning by ``a`` degrees narrows its face in the image by about ``cos a`` across the turn's axis (0.99
at 7 degrees) and not along it; a flat picture warped to read a small turn was thought to need a strong
narrowing. The candidate rule: fit a 2-D linear map from the landmarks of the starting pose to a frame's,
with the starting pose levelled by its eye corners (landmarks 33, 263); ``sx``, ``sy`` = how much it
stretches the face's horizontal and vertical axes; the frame is refused as a frame in between when its
``ratio`` (``sx / sy`` for a turn, ``sy / sx`` for a tilt) is below ``cos(angle) - margin``. Here
``d = ratio - cos(angle)`` (>= about 0: no more narrowing than the angle explains; < 0: narrowed beyond it),
per frame, on the product's own face engine and dense landmarks (``idp.liveness.landmarks``) and its own
angles (``rigidity.compare``, the decision's median filter, facing-pose correction, ``head_moves`` and
``_passes_between``):

* **bona fide, the shared clips** (``../shared/data/faces/video/liveportrait_driving``, 15 fps, each clip a
  burst from its first frames): every frame the decision finds inside a move's ``transit_band`` (turns and
  the clips' nods), and every face frame by the angle it reads;
* **bona fide, rendered heads** (:func:`liveness_bench.render.turned_head`, the evaluation's rendered bona fide
  moves: each clip's most frontal frame as a 2.5-D head turned or tilted by a known angle, camera noise);
* **attacks**: per clip, its most frontal frame (``A``: the facing picture; the burst's starting pose) and
  another facing frame at least a second away (``B``: a second facing photograph), each warped and filmed
  (sensor noise, JPEG q85) and measured against ``A``:

  - ``render.held_at_an_angle`` (the test's warp: far edge 0.5-0.98 as tall), either side;
  - a trapezoid keeping the picture's width (far edge 0.5-0.98 as tall), either side;
  - ``held_at_an_angle`` about the horizontal axis (top or bottom edge 0.5-0.98 as wide: for tilts);
  - the picture as a plane through the face's centre turned by 5-60 degrees about an in-plane axis at
    0-315 degrees (45 apart: vertical, horizontal, slanted), seen by a pinhole camera 1.5, 3 or 8 face widths
    away (strong perspective to nearly none: a print really turned in front of the camera);
  - a plain squeeze across or along the face (0.7-0.95).

The attacker picks the warp that reads an angle in the band with the least narrowing: the largest ``d``
among the attack frames of a range of read angles is the frontier a rule must get under.

    .venv/bin/python benchmarks/liveness_foreshortening.py [--clips d3 d12 ...] [--rows /tmp/fs.json]
    .venv/bin/python benchmarks/liveness_foreshortening.py --report /tmp/fs.json   # tables only

About 15 minutes on 2 cores. Markdown on stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from liveness_bench.media import VIDEO_DIR, camera, decode_video, engine  # noqa: E402
from liveness_bench.render import held_at_an_angle, turned_head  # noqa: E402

from idp.liveness import core, rigidity  # noqa: E402

CLIPS = ("d0", "d3", "d6", "d9", "d10", "d11", "d12", "d13", "d14", "d18", "d19", "d20")
EYES = (33, 263)  # outer eye corners (image left, image right on a facing face)
#: read-angle ranges of the tables (degrees); the band of a move of peak p is 0.2 p .. 0.8 p, so for the
#: smallest moves (10 / 12 degrees) it starts at 2, for a 20-degree move at 4
BINS = ((2, 4), (4, 6), (6, 8), (8, 12), (12, 16), (16, 25))


def dense(rgb: np.ndarray) -> np.ndarray | None:
    """The frame's (468, 3) dense landmarks as the capture API computes them (None: no face)."""
    from idp.liveness.landmarks import shared_landmarker
    a = engine().analyze(rgb, embed="never")
    if a.box is None:
        return None
    return shared_landmarker()(rgb, a.box, a.landmarks).points.astype(np.float64)


def axis_scales(ref: np.ndarray, cur: np.ndarray, idx=rigidity.INNER) -> tuple[float, float]:
    """``(sx, sy)``: the best linear map (least squares, after centring) from ``ref``'s 2-D landmarks, levelled
    by its eye corners, to ``cur``'s; the lengths it gives the face's horizontal and vertical unit vectors
    (independent of ``cur``'s roll)."""
    r, c = np.asarray(ref, np.float64)[:, :2], np.asarray(cur, np.float64)[:, :2]
    e = r[EYES[1]] - r[EYES[0]]
    a = math.atan2(e[1], e[0])
    level = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    rr = (r[idx] - r[idx].mean(0)) @ level.T
    m, *_ = np.linalg.lstsq(rr, c[idx] - c[idx].mean(0), rcond=None)
    return float(np.linalg.norm(m[0])), float(np.linalg.norm(m[1]))


def half_heights(ref: np.ndarray, cur: np.ndarray, idx=rigidity.INNER) -> float:
    """The keystone: the vertical scale of the best linear map (as :func:`axis_scales`) fitted to the
    landmarks of the face's image-right part (levelled x beyond 15 % of the face's width right of its centre)
    over that of its image-left part. A picture warped to look turned is taller on its near side."""
    r, c = np.asarray(ref, np.float64)[:, :2], np.asarray(cur, np.float64)[:, :2]
    e = r[EYES[1]] - r[EYES[0]]
    a = math.atan2(e[1], e[0])
    level = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    rr = (r[idx] - r[idx].mean(0)) @ level.T
    cc = c[idx] - c[idx].mean(0)
    w = float(np.ptp(rr[:, 0]))
    sy = []
    for part in (rr[:, 0] > 0.15 * w, rr[:, 0] < -0.15 * w):
        m, *_ = np.linalg.lstsq(np.c_[rr[part], np.ones(part.sum())], cc[part], rcond=None)
        sy.append(float(np.linalg.norm(m[1])))
    return sy[0] / sy[1]


def measure(ref: np.ndarray, cur: np.ndarray) -> dict:
    """Angles (product's, no filter) and the axis scales of ``cur`` against ``ref``."""
    c = rigidity.compare(ref, cur)
    sx, sy = axis_scales(ref, cur)
    ux, uy = axis_scales(ref, cur, rigidity.UPPER)
    return {"yaw": float(c["yaw"]), "pitch": float(c["pitch"]), "sx": sx, "sy": sy, "ux": ux, "uy": uy,
            "shape": float(c["shape"]), "key": half_heights(ref, cur)}


# --- bona fide ------------------------------------------------------------------------------------------

def clip_rows(clip: str) -> tuple[list[dict], list[np.ndarray], list]:
    """Rows of one clip's face frames (the decision's filtered, facing-corrected angles; the moves'
    transit frames flagged) and its frames (for the attacks' pictures)."""
    s = core.LivenessSettings()
    frames, pts = [], []
    for _, rgb in decode_video(VIDEO_DIR / f"{clip}.mp4"):
        frames.append(rgb)
        pts.append(dense(rgb))
    k = [i for i, p in enumerate(pts) if p is not None]
    if len(k) < 10:
        return [], pts, frames
    ref = np.median(np.stack([pts[i] for i in k[:s.baseline_frames]]), axis=0)
    ms = [measure(ref, pts[i]) for i in k]
    angle, raw = {}, {}
    for axis in ("yaw", "pitch"):
        r = np.array([m[axis] for m in ms])
        a = core._median_filter(r, s.smooth)
        facing = np.abs(a) < s.return_deg
        base = float(np.median(a[facing])) if facing.sum() >= 2 else 0.0
        angle[axis], raw[axis] = a - base, r - base
    moves = core.head_moves(angle["yaw"], angle["pitch"], s.min_turn_deg, s.min_pitch_deg, s.return_deg)
    transit = {}  # row -> (axis, is the decision's frame in between)
    for got, hits in moves:
        axis = "yaw" if got in ("turn_left", "turn_right") else "pitch"
        v = angle[axis] if got in ("turn_left", "look_up") else -angle[axis]
        t = core._passes_between(angle[axis], got, np.array(hits), s)
        if t is None:
            continue
        start, between, end = t
        peak = float(v[hits].max())
        for j in range(start, end + 1):
            if s.transit_band[0] * peak <= v[j] < s.transit_band[1] * peak:
                transit[j] = (axis, j == between)
    rows = []
    for j, m in enumerate(ms):
        axis, first = transit.get(j, (None, False))
        rows.append({**m, "set": "clip", "who": clip, "yaw": float(raw["yaw"][j]), "pitch": float(raw["pitch"][j]),
                     "yaw_f": float(angle["yaw"][j]), "pitch_f": float(angle["pitch"][j]),
                     "transit": axis, "between": first})
    return rows, pts, frames


def frontal(pts: list, first: int = 60, away: int | None = None) -> int | None:
    """The most frontal face frame (least yaw and pitch against the clip's first face frame) among the first
    ``first``, or with ``away``: the most frontal one at least that many frames from it, anywhere."""
    k = [i for i, p in enumerate(pts) if p is not None]
    if not k:
        return None
    ref = pts[k[0]]
    cost = {i: abs(rigidity.compare(ref, pts[i])["yaw"]) + abs(rigidity.compare(ref, pts[i])["pitch"]) for i in k}
    if away is None:
        cand = [i for i in k if i < first] or k
    else:
        a = frontal(pts, first)
        cand = [i for i in k if abs(i - a) >= away]
    return min(cand, key=cost.get) if cand else None


HEAD_DEG = (4.0, 8.0, 12.0, 16.0, 20.0)


def head_rows(clip: str, rgb: np.ndarray, p0: np.ndarray, rng) -> list[dict]:
    """The frontal frame as a rendered head turned and tilted by known angles (both ways), against the
    same frame rendered unturned (camera noise on both)."""
    ref = dense(camera(turned_head(rgb, p0, 0.0, 0.0), rng))
    if ref is None:
        return []
    rows = []
    for deg in HEAD_DEG:
        for sign in (1.0, -1.0):
            for axis in ("yaw", "pitch"):
                yaw, pitch = (sign * deg, 0.0) if axis == "yaw" else (0.0, sign * deg)
                p = dense(camera(turned_head(rgb, p0, yaw, pitch), rng))
                if p is not None:
                    rows.append({**measure(ref, p), "set": "head", "who": clip, "true_axis": axis,
                                 "true_deg": sign * deg})
    return rows


# --- attacks --------------------------------------------------------------------------------------------

def _warp(rgb: np.ndarray, h: np.ndarray, fill: float = 120.0) -> np.ndarray:
    """``rgb`` warped by the homography ``h`` (source pixel -> output pixel), bilinear; output pixels whose
    source lies behind the camera (or outside the picture) are grey."""
    from scipy import ndimage
    hgt, wid = rgb.shape[:2]
    yy, xx = np.mgrid[0:hgt, 0:wid].astype(np.float64)
    q = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)])
    s = np.linalg.inv(h) @ q
    ok = s[2] > 1e-9
    sx, sy = s[0] / np.where(ok, s[2], 1.0), s[1] / np.where(ok, s[2], 1.0)
    out = np.empty_like(rgb, dtype=np.float64)
    for ch in range(3):
        out[..., ch] = ndimage.map_coordinates(rgb[..., ch].astype(np.float64), [sy, sx], order=1, mode="constant",
                                               cval=fill).reshape(hgt, wid)
    inside = ok & (sx >= 0) & (sx <= wid - 1) & (sy >= 0) & (sy <= hgt - 1)
    out.reshape(-1, 3)[~inside] = fill
    return np.clip(out, 0, 255).astype(np.uint8)


def plane_turned(centre, face_w: float, theta: float, phi: float, dist: float) -> np.ndarray:
    """The homography of a picture lying in the image plane, turned by ``theta`` degrees about the in-plane
    axis through ``centre`` at ``phi`` degrees from the image x axis (90: vertical, a turn), seen by a pinhole
    camera ``dist`` face widths away whose focal length keeps the unturned picture as it is."""
    d = dist * face_w
    ax = np.array([math.cos(math.radians(phi)), math.sin(math.radians(phi)), 0.0])
    t = math.radians(theta)
    k = np.array([[0, -ax[2], ax[1]], [ax[2], 0, -ax[0]], [-ax[1], ax[0], 0]])
    r = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k
    cx, cy = centre
    # picture point (x, y) -> P = (x - cx, y - cy, 0) -> R P + (0, 0, d) -> d * (X, Y) / Z + centre
    to_plane = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    m = np.array([[r[0, 0], r[0, 1], 0], [r[1, 0], r[1, 1], 0], [r[2, 0] / d, r[2, 1] / d, 1.0]])
    back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
    return back @ m @ to_plane


def _keystone(rgb: np.ndarray, narrowing: float) -> np.ndarray:
    """A trapezoid keeping the picture's width: its right edge ``narrowing`` as tall, centred."""
    hgt, wid = rgb.shape[:2]
    k = 1.0 - narrowing
    src = np.array([[0, 0], [wid, 0], [wid, hgt], [0, hgt]], float)
    dst = np.array([[0, 0], [wid, hgt * k / 2], [wid, hgt * (1 - k / 2)], [0, hgt]], float)
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return _warp(rgb, np.r_[np.linalg.solve(np.array(rows), np.array(rhs)), 1.0].reshape(3, 3))


def _squeeze(rgb: np.ndarray, centre, sx: float, sy: float) -> np.ndarray:
    cx, cy = centre
    return _warp(rgb, np.array([[sx, 0, cx * (1 - sx)], [0, sy, cy * (1 - sy)], [0, 0, 1.0]]))


NARROWINGS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
THETAS = (5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0)
PHIS = tuple(range(0, 360, 45))
DISTS = (1.5, 3.0, 8.0)


def attack_images(rgb: np.ndarray, p: np.ndarray):
    """``(family, parameters, image)`` of every warp of one picture whose landmarks are ``p``."""
    flip = lambda f: np.ascontiguousarray(f[:, ::-1])  # noqa: E731
    tr = lambda f: np.ascontiguousarray(f.transpose(1, 0, 2))  # noqa: E731
    centre = p[rigidity.INNER, :2].mean(0)
    face_w = float(np.ptp(p[rigidity.INNER, 0]))
    for n in NARROWINGS:
        yield "held_at_an_angle", f"far edge {n} (right)", held_at_an_angle(rgb, n)
        yield "held_at_an_angle", f"far edge {n} (left)", flip(held_at_an_angle(flip(rgb), n))
        yield "trapezoid, width kept", f"far edge {n} (right)", _keystone(rgb, n)
        yield "trapezoid, width kept", f"far edge {n} (left)", flip(_keystone(flip(rgb), n))
        yield "held about the horizontal axis", f"far edge {n} (bottom)", tr(held_at_an_angle(tr(rgb), n))
        yield "held about the horizontal axis", f"far edge {n} (top)", tr(flip(held_at_an_angle(flip(tr(rgb)), n)))
    for dist in DISTS:
        for theta in THETAS:
            for phi in PHIS:
                yield (f"plane turned, camera {dist} face widths away", f"{theta:g} deg about {phi} deg",
                       _warp(rgb, plane_turned(centre, face_w, theta, phi, dist)))
    for f in (0.7, 0.8, 0.9, 0.95):
        yield "squeeze across", f"{f}", _squeeze(rgb, centre, f, 1.0)
        yield "squeeze along", f"{f}", _squeeze(rgb, centre, 1.0, f)


def attack_rows(clip: str, frames: list, pts: list, rng) -> list[dict]:
    a = frontal(pts)
    b = frontal(pts, away=15)  # a second at 15 fps
    if a is None:
        return []
    ref = dense(camera(frames[a], rng))  # the facing picture as filmed: the burst's starting pose
    if ref is None:
        return []
    rows = []
    for photo, k in (("same picture", a), ("second picture", b)):
        if k is None:
            continue
        for family, params, img in attack_images(frames[k], pts[k]):
            p = dense(camera(img, rng))
            if p is not None:
                rows.append({**measure(ref, p), "set": "attack", "who": clip, "photo": photo, "family": family,
                             "params": params})
    return rows


# --- report ---------------------------------------------------------------------------------------------

def d_of(r: dict, axis: str, upper: bool = False) -> float:
    """``ratio - cos(angle)`` on ``axis`` (yaw: ``sx / sy``; pitch: ``sy / sx``)."""
    sx, sy = (r["ux"], r["uy"]) if upper else (r["sx"], r["sy"])
    ratio = sx / sy if axis == "yaw" else sy / sx
    return ratio - math.cos(math.radians(r[axis]))


def _pct(v, q) -> str:
    return f"{np.percentile(v, q):+.3f}" if len(v) else "-"


def _stats(v) -> str:
    v = np.asarray(v)
    if not len(v):
        return "0 | - | - | - | -"
    return f"{len(v)} | {v.min():+.3f} | {_pct(v, 1)} | {_pct(v, 5)} | {np.median(v):+.3f}"


def report(rows: list[dict]) -> str:
    out = []
    clip = [r for r in rows if r["set"] == "clip"]
    head = [r for r in rows if r["set"] == "head"]
    att = [r for r in rows if r["set"] == "attack"]
    out.append("**Bona fide** (`d = ratio - cos(angle)`, the frame's own angle; min / 1st / 5th percentile / "
               "median; inner landmarks, and the upper face's in the last column's min):\n")
    out.append("| frames | axis | n | min | 1st | 5th | median | upper face: min |")
    out.append("|---|---|---|---|---|---|---|---|")
    for axis, name in (("yaw", "turns"), ("pitch", "tilts")):
        sel = [r for r in clip if r["transit"] == axis]
        out.append(f"| clips: in a move's transit band ({name}) | {axis} | {_stats([d_of(r, axis) for r in sel])} | "
                   f"{min((d_of(r, axis, True) for r in sel), default=math.nan):+.3f} |")
        sel = [r for r in clip if r["transit"] == axis and r["between"]]
        out.append(f"| clips: the decision's frame in between ({name}) | {axis} | "
                   f"{_stats([d_of(r, axis) for r in sel])} | "
                   f"{min((d_of(r, axis, True) for r in sel), default=math.nan):+.3f} |")
        for lo, hi in BINS:
            sel = [r for r in clip if lo <= abs(r[axis]) < hi]
            out.append(f"| clips: every face frame reading {lo}-{hi} | {axis} | {_stats([d_of(r, axis) for r in sel])} "
                       f"| {min((d_of(r, axis, True) for r in sel), default=math.nan):+.3f} |")
        for lo, hi in BINS:
            sel = [r for r in head if r["true_axis"] == axis and lo <= abs(r[axis]) < hi]
            out.append(f"| rendered heads reading {lo}-{hi} | {axis} | {_stats([d_of(r, axis) for r in sel])} | "
                       f"{min((d_of(r, axis, True) for r in sel), default=math.nan):+.3f} |")
    out.append("\n**Attacks against the rule** (per read angle on the axis: the rule refuses a frame whose `d` is "
               "below the smallest `d` of the bona fide frames (clips and rendered heads) reading that angle; the "
               "attacker's best warp is the one with the largest `d`):\n")
    out.append("| axis | read angle | bona fide n | bona fide smallest d | attack n | refused | "
               "the test's warp (held_at_an_angle): n, refused, d min / max | largest attack d (warp) |")
    out.append("|---|---|---|---|---|---|---|---|")
    for axis in ("yaw", "pitch"):
        for lo, hi in BINS:
            bona = [d_of(r, axis) for r in clip if lo <= abs(r[axis]) < hi]
            bona += [d_of(r, axis) for r in head if r["true_axis"] == axis and lo <= abs(r[axis]) < hi]
            sel = [r for r in att if lo <= abs(r[axis]) < hi]
            if not bona or not sel:
                continue
            floor = min(bona)
            held = [d_of(r, axis) for r in sel if r["family"] == "held_at_an_angle"]
            best = max(sel, key=lambda r: d_of(r, axis))
            held_cell = (f"{len(held)}, {sum(v < floor for v in held)}, {min(held):+.3f} / {max(held):+.3f}"
                         if held else "0")
            out.append(f"| {axis} | {lo}-{hi} | {len(bona)} | {floor:+.3f} | {len(sel)} | "
                       f"{sum(d_of(r, axis) < floor for r in sel)} | {held_cell} | {d_of(best, axis):+.3f} "
                       f"({best['family']}, {best['params']}, {best['photo']}) |")
    out.append("\n**Attacks by family** (frames reading 2-16 degrees on the axis: n, `d` min / median / max, "
               "and the ratio `sx/sy` or `sy/sx` min / max):\n")
    out.append("| family | picture | axis | n | d min / median / max | ratio min / max |")
    out.append("|---|---|---|---|---|---|")
    fam = defaultdict(list)
    for r in att:
        fam[(r["family"], r["photo"])].append(r)
    for (family, photo), rs in sorted(fam.items()):
        for axis in ("yaw", "pitch"):
            sel = [r for r in rs if 2 <= abs(r[axis]) < 16]
            if not sel:
                continue
            d = np.array([d_of(r, axis) for r in sel])
            ratio = np.array([(r["sx"] / r["sy"]) if axis == "yaw" else (r["sy"] / r["sx"]) for r in sel])
            out.append(f"| {family} | {photo} | {axis} | {len(sel)} | {d.min():+.3f} / {np.median(d):+.3f} / "
                       f"{d.max():+.3f} | {ratio.min():.3f} / {ratio.max():.3f} |")
    out.append("\n**The keystone, not the narrowing** (how much taller the face's near side is than its far side, "
               "`g = key^-1 - 1` for a yaw to the image right, `key - 1` to the left, `key` = :func:`half_heights`; "
               "per read yaw: min / median / max):\n")
    out.append("| read yaw | clips | rendered heads | the test's warp (held_at_an_angle) | every warp |")
    out.append("|---|---|---|---|---|")

    def g(r):
        return (1.0 / r["key"] if r["yaw"] > 0 else r["key"]) - 1.0

    def cell(sel):
        v = np.array([g(r) for r in sel])
        return f"{len(v)}: {v.min():+.3f} / {np.median(v):+.3f} / {v.max():+.3f}" if len(v) else "-"
    for lo, hi in BINS:
        inbin = [r for r in rows if lo <= abs(r["yaw"]) < hi and "key" in r]
        out.append(f"| {lo}-{hi} | {cell([r for r in inbin if r['set'] == 'clip'])} | "
                   f"{cell([r for r in inbin if r['set'] == 'head' and r['true_axis'] == 'yaw'])} | "
                   f"{cell([r for r in inbin if r.get('family') == 'held_at_an_angle'])} | "
                   f"{cell([r for r in inbin if r['set'] == 'attack'])} |")
    out.append("\n**The test's warp** (`held_at_an_angle` of the same picture, both sides, all clips): "
               "read yaw and ratio `sx/sy` per narrowing (median over clips):\n")
    out.append("| far edge | n | yaw read (abs) median / max | ratio sx/sy median / min | sx median | sy median |")
    out.append("|---|---|---|---|---|---|")
    for n in NARROWINGS:
        sel = [r for r in att if r["family"] == "held_at_an_angle" and r["photo"] == "same picture"
               and r["params"].startswith(f"far edge {n} ")]
        if sel:
            y = np.abs([r["yaw"] for r in sel])
            ratio = np.array([r["sx"] / r["sy"] for r in sel])
            out.append(f"| {n} | {len(sel)} | {np.median(y):.1f} / {y.max():.1f} | {np.median(ratio):.3f} / "
                       f"{ratio.min():.3f} | {np.median([r['sx'] for r in sel]):.3f} | "
                       f"{np.median([r['sy'] for r in sel]):.3f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", nargs="*", default=list(CLIPS))
    p.add_argument("--rows", default="/tmp/liveness_foreshortening.json", help="where the measured rows are kept")
    p.add_argument("--report", metavar="ROWS", help="print the tables of rows measured before")
    args = p.parse_args(argv)
    if args.report:
        print(report(json.loads(Path(args.report).read_text())))
        return 0
    rows = []
    for ci, clip in enumerate(args.clips):
        rng = np.random.default_rng(1000 + ci)
        crow, pts, frames = clip_rows(clip)
        rows += crow
        k = frontal(pts)
        if k is not None:
            rows += head_rows(clip, frames[k], pts[k], rng)
        rows += attack_rows(clip, frames, pts, rng)
        print(f"{clip}: {len(crow)} face frames, {len(rows)} rows so far", file=sys.stderr, flush=True)
        Path(args.rows).write_text(json.dumps(rows))
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
