"""Is a move frame's face only the facing frame's face, warped? A measurement of an **appearance-consistency**
statistic against the open attack "One photograph, rendered as a head, passes every move" (docs/liveness.md,
"Limits"; section "Appearance of the moved face: a measurement"). A measurement, not a test of the product.

The attack (``liveness_bench.render.turned_head``) makes every move frame a piecewise-affine warp of ONE facing
picture: no occlusion, no change of shading, no eye or mouth movement of its own, the picture's own camera noise
carried along. A real head turning shows all of these. Per pair - a facing frame ``F`` and a move frame ``M``
(turned or tilted) - the dense landmarks of both (the product's own: the face engine's box and five points, then
``idp.liveness.landmarks.shared_landmarker``) give the Delaunay triangulation of ``F``'s 432 inner landmarks
(``rigidity.INNER``); each triangle that is not back-facing or squashed below 0.2 of its area in ``M`` maps
affinely to ``M``. The grey face of ``F`` is resampled on a canonical grid (the inner landmarks' RMS radius =
40 px, 160x160) and ``M`` at the mapped places, so both images are in ``F``'s geometry. Statistics (larger: less
like a warp; every one is blind to a global gain and offset per frame):

* ``ncc``   - 1 - normalised cross-correlation of the grey values over the face;
* ``nmad``  - mean |difference| of the two faces, each standardised (mean 0, sd 1) over the face;
* ``gncc``  - 1 - cosine of the two gradient fields (np.gradient, face mask eroded by 1 px);
* ``local`` - median over the 8x8 blocks wholly inside the face of 1 - NCC per block;
* ``hf``    - 1 - correlation of the high-pass images (grey minus its Gaussian blur, sigma 1.5 px): the fine
  texture and the camera noise (copied along by a warp, independent in two real frames);
* aligned blocks (:func:`aligned_blocks`): the landmarks' mapping is off by a pixel or more (the model's own
  error), which the five above read as appearance in a render too; per 16x16 block (every 8 px) wholly inside
  the face, ``M``'s block is searched at shifts of up to 4 canonical px (1 px, then 0.25 px steps) for the best
  NCC with ``F``'s: ``amed`` / ``ap90`` - median / 90th percentile over the blocks of 1 - that NCC; ``ahf`` -
  median of 1 - the high-pass correlation at that shift (noise and fine texture); ``asm`` / ``asm90`` - median /
  90th percentile of 1 - NCC of the blocks smoothed (Gaussian 1.5 canonical px) at that shift (structure, blind
  to pixel noise);

each over the whole inner face (``face``) and over the triangles of the upper face only (``upper``:
``rigidity.UPPER``, brows, eyes, nose, upper cheeks - no mouth, so no talking).

Sets (frames as the page sends them: JPEG q85, ``static/js/face-capture.js``):

* bona fide (also ``bona fide, noise 8``: the same frames with sensor noise sigma 8 before the JPEG, as
  ``liveness_bench.media.CONDITIONS["noise"]``): the shared clips' own turns and tilts of 10-25 degrees (``liveness_bench.truth.clip_turns`` on the
  cached analysis, ``benchmarks/liveness_eval.py data``), up to 4 frames per move that read at least 10 degrees,
  each against a facing frame (the move's axis within 4 degrees of neutral, the other within 8) 0.5-2.5 s before
  the move's peak (the one nearest 1.2 s; if there is none, 0.5-2.5 s after it);
* attack: ``turned_head`` of one facing picture - the most facing of the first 60 frames of each of the 12 clips,
  and the first photo of 12 colour-LFW people scaled to 480x480 - turned to +/-15..25 degrees of yaw and tilted
  to +/-25..35 degrees of pitch (4 move frames per picture), ``F`` the picture itself; both passed through what a
  capture does: JPEG q85 (``q85``), q60, q95; sensor-like noise sigma 2.5 added after the warp, then q85
  (``noise2.5``); a random gain (0.8-1.2) and offset (+/-20) per frame, then q85 (``gain``); independent noise of
  sigma 4-6 per frame, then q85 (``noise5``: the attacker hiding the copied noise), and of sigma 8 (``noise8``,
  the level of the evaluation's bona fide "noise" condition); independent low-frequency noise per frame (white
  noise blurred by 6 px, SD 6 grey levels: ``blotch``), and both (``noise8+blotch``); and a shading change (the
  move frame multiplied by a horizontal or vertical ramp of +/-10-20 % over the face's radius along the move,
  then q85: ``shade``, a cheap imitation of a turn's change of light).

Per set and statistic: n, median, 5th / 95th percentile, min / max; per statistic the threshold that minimises
the larger of BPCER (bona fide below it) and APCER (attack at or above it) over the attacks of the capture
(q85, q60, q95, noise2.5, gain), and the error rate of every set at that threshold; the cost per pair.

    .venv/bin/python benchmarks/liveness_appearance.py

Reads ``../shared/data/faces`` and the analysed clips (``$LIVENESS_CACHE``, default /tmp/liveness_cache) at run
time; keeps the renders and landmarks it computes under ``$LIVENESS_CACHE/appearance``. About 6 minutes on 2
cores (the block search, ~0.25 s a pair, on ~1050 pairs; the face detector on the frames once). Markdown on stdout.
The thresholds are chosen on the same pairs they are reported on (optimistic).
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MIN_DEG, MAX_DEG = 10.0, 25.0  # the bona fide moves used (degrees as the product reads them)
FACING_DEG = 4.0  # a facing frame: the move's own angle within this of the clip's neutral pose ...
OTHER_AXIS_DEG = 8.0  # ... and the other axis within this (the clips nod as they talk)
M_PER_MOVE = 4  # move frames per bona fide move (nearest the peak, each at least MIN_DEG)
N_LFW = 12  # colour-LFW people rendered
GRID, RADIUS = 160, 40.0  # canonical face image: side, and the inner landmarks' RMS radius in it (px)
BLOCK = 8  # the local statistic's block side (canonical px)
PAGE_Q = 85
BLOCK_ALIGNED = 16  # the aligned blocks' side (canonical px), every 8
STATS = ("ncc", "nmad", "gncc", "local", "hf", "amed", "ap90", "ahf", "asm", "asm90")
REGIONS = ("face", "upper")
CAPTURE_SETS = ("q85", "q60", "q95", "noise2.5", "gain")  # the attack as a capture passes it: threshold chosen here
ATTACK_SETS = CAPTURE_SETS + ("noise5", "noise8", "blotch", "noise8+blotch", "shade")


def _cache_dir() -> Path:
    from liveness_bench import data
    d = data.CACHE.parent / "appearance"
    d.mkdir(parents=True, exist_ok=True)
    return d


def landmarks(rgb: np.ndarray):
    """(468, 3) float64 dense landmarks of the frame's face as the product computes them, None without a face;
    kept on disk by the frame's digest."""
    key = hashlib.blake2b(np.ascontiguousarray(rgb).tobytes() + str(rgb.shape).encode(), digest_size=12).hexdigest()
    path = _cache_dir() / f"lm_{key}.npy"
    if path.exists():
        v = np.load(path)
        return v if v.size else None
    from idp.liveness.landmarks import shared_landmarker
    from liveness_bench import media
    a = media.engine().analyze(rgb, embed="never")
    pts = (np.zeros(0) if a.box is None else
           np.asarray(shared_landmarker()(rgb, a.box, a.landmarks).points, np.float64))
    np.save(path, pts)
    return pts if pts.size else None


# --- the statistic -----------------------------------------------------------------------------------------

def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, np.float32)[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(float(np.sqrt((a * a).sum() * (b * b).sum())), 1e-9))


def _area(p: np.ndarray) -> np.ndarray:
    """Signed areas of triangles (n, 3, 2)."""
    return 0.5 * ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                  - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))


def canonical_pair(f_rgb, m_rgb, pf, pm, region: str = "face"):
    """The face of ``F`` and the face of ``M`` mapped into ``F``'s geometry on the canonical grid: (F, M, mask),
    GRID x GRID float images and the mask of the grid points inside a kept triangle."""
    from scipy.ndimage import map_coordinates
    from scipy.spatial import Delaunay

    from idp.liveness.rigidity import INNER, UPPER
    f2, m2 = pf[INNER, :2], pm[INNER, :2]
    tri = Delaunay(f2)
    simp = tri.simplices
    af, am = _area(f2[simp]), _area(m2[simp])
    keep = (np.sign(af) == np.sign(am)) & (np.abs(am) >= 0.2 * np.abs(af))  # not back-facing, not grazing
    if region == "upper":
        keep &= np.isin(INNER[simp], UPPER).all(1)
    c = f2.mean(0)
    r = float(np.sqrt(((f2 - c) ** 2).sum(1).mean()))
    u = (np.arange(GRID) - GRID / 2 + 0.5) * r / RADIUS
    xx, yy = np.meshgrid(c[0] + u, c[1] + u)
    q = np.c_[xx.ravel(), yy.ravel()]
    s = tri.find_simplex(q)
    ok = s >= 0
    ok[ok] = keep[s[ok]]
    t = tri.transform[s[ok]]
    b = np.einsum("nij,nj->ni", t[:, :2], q[ok] - t[:, 2])
    bary = np.c_[b, 1 - b.sum(1)]
    qm = np.einsum("ni,nij->nj", bary, m2[simp[s[ok]]])
    fi, mi = np.zeros(GRID * GRID, np.float32), np.zeros(GRID * GRID, np.float32)
    gm = _grey(m_rgb)
    fi[ok] = map_coordinates(_grey(f_rgb), [q[ok, 1], q[ok, 0]], order=1, mode="nearest")
    mi[ok] = map_coordinates(gm, [qm[:, 1], qm[:, 0]], order=1, mode="nearest")
    qmap = np.full((GRID * GRID, 2), np.nan)
    qmap[ok] = qm
    unit = float(np.sqrt(((m2 - m2.mean(0)) ** 2).sum(1).mean())) / RADIUS  # one canonical px in M, frame px
    return (fi.reshape(GRID, GRID), mi.reshape(GRID, GRID), ok.reshape(GRID, GRID),
            dict(qmap=qmap.reshape(GRID, GRID, 2), grey=gm, unit=unit))


COARSE = np.arange(-4.0, 4.01, 1.0)  # block search: shifts in canonical px (10 % of the face radius each way) ...
FINE = np.arange(-0.75, 0.76, 0.25)  # ... then around the best one


def _z(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(-1, keepdims=True)
    return v / np.maximum(np.sqrt((v * v).mean(-1, keepdims=True)), 1e-6)


def aligned_blocks(fi, mask, m: dict, side: int = BLOCK_ALIGNED, step: int = BLOCK_ALIGNED // 2):
    """Per block of ``side`` canonical px (every ``step``) wholly inside the face: 1 - the largest NCC of the
    block of ``F`` with ``M`` sampled at the landmarks' mapping shifted by up to 4 canonical px (a search at 1 px,
    then at 0.25 px around the best): what the landmarks' misregistration leaves out. Also 1 - the correlation
    of the two blocks' high-pass (grey minus its Gaussian blur of 1.5 canonical px) at that shift. (n,) each."""
    from scipy.ndimage import gaussian_filter, map_coordinates
    idx = [(y, x) for y in range(0, GRID - side + 1, step) for x in range(0, GRID - side + 1, step)
           if mask[y:y + side, x:x + side].all()]
    if not idx:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    yy, xx = np.mgrid[0:side, 0:side]
    rows = np.array([y + yy.ravel() for y, _ in idx])
    cols = np.array([x + xx.ravel() for _, x in idx])
    zf = _z(fi[rows, cols])
    hpf_img = fi - gaussian_filter(fi, 1.5)
    hpf = _z(hpf_img[rows, cols])
    qm = m["qmap"][rows, cols]  # (nb, n, 2) x, y in M
    grey, unit = m["grey"], m["unit"]
    hpm_img = grey - gaussian_filter(grey, 1.5 * unit)

    def ncc_at(shift):  # shift (nb, 2) canonical px
        p = qm + shift[:, None, :] * unit
        v = map_coordinates(grey, [p[..., 1].ravel(), p[..., 0].ravel()], order=1, mode="nearest")
        return (zf * _z(v.reshape(zf.shape))).mean(-1)
    nb = len(idx)
    best, at = np.full(nb, -np.inf), np.zeros((nb, 2))
    for grid, centre in ((COARSE, None), (FINE, "best")):
        base = at.copy() if centre else np.zeros((nb, 2))
        for dy in grid:
            for dx in grid:
                sh = base + [dx, dy]
                c = ncc_at(sh)
                better = c > best
                best[better], at[better] = c[better], sh[better]
    p = qm + at[:, None, :] * unit
    hv = map_coordinates(hpm_img, [p[..., 1].ravel(), p[..., 0].ravel()], order=1, mode="nearest")
    hf = 1 - (hpf * _z(hv.reshape(hpf.shape))).mean(-1)
    # the same blocks smoothed (Gaussian 1.5 canonical px) at that shift: blind to pixel noise, not to structure
    w = gaussian_filter(mask.astype(np.float32), 1.5)
    fs = (gaussian_filter(fi * mask, 1.5) / np.maximum(w, 1e-6))[rows, cols]
    sv = map_coordinates(gaussian_filter(grey, 1.5 * unit), [p[..., 1].ravel(), p[..., 0].ravel()], order=1,
                         mode="nearest")
    smooth = 1 - (_z(fs) * _z(sv.reshape(fs.shape))).mean(-1)
    return 1 - best, hf, smooth


def statistics(f_rgb, m_rgb, pf, pm) -> dict:
    """``{f"{stat}_{region}": value}`` for every statistic and region (see the module docstring)."""
    from scipy.ndimage import binary_erosion, gaussian_filter
    out = {}
    for region in REGIONS:
        fi, mi, mask, m = canonical_pair(f_rgb, m_rgb, pf, pm, region)
        if mask.sum() < 200:
            out.update({f"{s}_{region}": np.nan for s in STATS})
            continue
        a, b = fi[mask], mi[mask]
        out[f"ncc_{region}"] = 1 - _corr(a, b)
        za, zb = (a - a.mean()) / max(float(a.std()), 1e-6), (b - b.mean()) / max(float(b.std()), 1e-6)
        out[f"nmad_{region}"] = float(np.abs(za - zb).mean())
        inner = binary_erosion(mask, iterations=1)
        gf, gm = np.gradient(fi), np.gradient(mi)
        va = np.r_[gf[0][inner], gf[1][inner]]
        vb = np.r_[gm[0][inner], gm[1][inner]]
        out[f"gncc_{region}"] = 1 - float((va * vb).sum() / max(float(np.sqrt((va * va).sum() * (vb * vb).sum())),
                                                                   1e-9))
        blocks = []
        for y in range(0, GRID, BLOCK):
            for x in range(0, GRID, BLOCK):
                if mask[y:y + BLOCK, x:x + BLOCK].all():
                    blocks.append(1 - _corr(fi[y:y + BLOCK, x:x + BLOCK], mi[y:y + BLOCK, x:x + BLOCK]))
        out[f"local_{region}"] = float(np.median(blocks)) if blocks else np.nan
        # high-pass: grey minus its blur, the blur normalised by the mask's own blur (no edge from the mask)
        w = gaussian_filter(mask.astype(np.float32), 1.5)
        hfa = fi - gaussian_filter(fi * mask, 1.5) / np.maximum(w, 1e-6)
        hfb = mi - gaussian_filter(mi * mask, 1.5) / np.maximum(w, 1e-6)
        out[f"hf_{region}"] = 1 - _corr(hfa[inner], hfb[inner])
        blk, blk_hf, blk_sm = aligned_blocks(fi, mask, m)
        ok = len(blk) > 0
        out[f"amed_{region}"] = float(np.median(blk)) if ok else np.nan
        out[f"ap90_{region}"] = float(np.percentile(blk, 90)) if ok else np.nan
        out[f"ahf_{region}"] = float(np.median(blk_hf)) if ok else np.nan
        out[f"asm_{region}"] = float(np.median(blk_sm)) if ok else np.nan
        out[f"asm90_{region}"] = float(np.percentile(blk_sm, 90)) if ok else np.nan
    return out


# --- the sets ----------------------------------------------------------------------------------------------

def _frames_at(clip: str, wanted: set) -> dict:
    """{index: rgb} of the clip's frames decoded at 15 fps (the analysed clips' frames), only ``wanted``."""
    from liveness_bench import media
    out = {}
    for i, (_, rgb) in enumerate(media.decode_video(media.VIDEO_DIR / f"{clip}.mp4")):
        if i in wanted:
            out[i] = rgb.copy()
        if len(out) == len(wanted):
            break
    return out


def bona_fide_pairs():
    """[(label, F rgb, M rgb, degrees)] of the clips' own moves (see the module docstring), as decoded."""
    from liveness_bench import data
    from liveness_bench.truth import clip_pitch, clip_turns
    pairs = []
    for clip in data.CLIPS:
        _, recs, _ = data.load(f"clip__{clip}")
        moves, y = clip_turns(recs, MIN_DEG)
        p = clip_pitch(recs)
        t = np.array([r["t_ms"] for r in recs])
        ay, ap = np.abs(np.nan_to_num(y, nan=99)), np.abs(np.nan_to_num(p, nan=99))
        chosen = []
        for move, tk, deg in moves:
            if deg > MAX_DEG:
                continue
            ang = (y if move.startswith("turn") else p) * (1.0 if move in ("turn_left", "look_up") else -1.0)
            k = int(np.argmin(np.abs(t - tk)))
            near = [i for i in np.argsort(np.abs(np.arange(len(t)) - k), kind="stable")
                    if abs(i - k) <= 6 and np.nan_to_num(ang[i], nan=-99) >= MIN_DEG][:M_PER_MOVE]
            on, off = (ay, ap) if move.startswith("turn") else (ap, ay)
            facing = (on < FACING_DEG) & (off < OTHER_AXIS_DEG)
            fs = np.flatnonzero(facing & (t >= tk - 2500) & (t <= tk - 500))  # before the move, else after it
            fs = fs if len(fs) else np.flatnonzero(facing & (t >= tk + 500) & (t <= tk + 2500))
            if not len(fs) or not near:
                continue
            f = int(fs[np.argmin(np.abs(np.abs(t[fs] - tk) - 1200))])
            chosen += [(f"{clip} {move} {deg:.0f}@{tk / 1000:.1f}s", f, int(m), float(ang[m])) for m in near]
        if not chosen:
            continue
        rgbs = _frames_at(clip, {c[1] for c in chosen} | {c[2] for c in chosen})
        pairs += [(lab, rgbs[f], rgbs[m], d) for lab, f, m, d in chosen]
    return pairs


def bona_fide_sets(pairs) -> dict:
    """The clips' pairs as the page sends them (JPEG q85), and as a noisy camera films them and the page sends
    them (sensor noise sigma 8, ``liveness_bench.media.CONDITIONS["noise"]``, then q85)."""
    from liveness_bench.media import jpeg
    rng = np.random.default_rng(60_000)
    return {"bona fide": [(lab, jpeg(f, PAGE_Q), jpeg(m, PAGE_Q), d) for lab, f, m, d in pairs],
            "bona fide, noise 8": [(lab, jpeg(_noise(f, rng, 8.0), PAGE_Q), jpeg(_noise(m, rng, 8.0), PAGE_Q), d)
                                   for lab, f, m, d in pairs]}


def attack_pictures():
    """[(label, rgb)]: the most facing of the first 60 frames of each clip, and N_LFW colour-LFW photos."""
    from PIL import Image

    from liveness_bench import data, media
    from liveness_bench.truth import clip_pitch, clip_yaw
    out = []
    for clip in data.CLIPS:
        _, recs, _ = data.load(f"clip__{clip}")
        k = int(np.nanargmin((np.abs(clip_yaw(recs)) + np.abs(clip_pitch(recs)))[:60]))
        out.append((f"clip {clip}", _frames_at(clip, {k})[k]))
    people = sorted(p.name for p in media.PHOTO_DIR.iterdir() if p.is_dir())
    for who in people[::max(1, len(people) // N_LFW)][:N_LFW]:
        im = Image.open(sorted((media.PHOTO_DIR / who).glob("*.jpg"))[0]).convert("RGB")
        out.append((f"lfw {who}", np.asarray(im.resize((480, 480), Image.BICUBIC))))
    return out


def _render(label: str, rgb, pts, yaw: float, pitch: float) -> np.ndarray:
    from liveness_bench.render import turned_head
    key = hashlib.blake2b(f"{label}|{yaw:.4f}|{pitch:.4f}".encode() + rgb.tobytes(), digest_size=12).hexdigest()
    path = _cache_dir() / f"render_{key}.npy"
    if path.exists():
        return np.load(path)
    out = turned_head(rgb, pts, yaw, pitch)
    np.save(path, out)
    return out


def _noise(rgb, rng, sigma):
    return np.clip(rgb.astype(np.float32) + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def _blotch(rgb, rng, sigma_px: float = 6.0, amp: float = 6.0):
    """Independent low-frequency noise: white noise blurred by ``sigma_px`` (a tenth of a webcam face's radius),
    scaled to an SD of ``amp`` grey levels, the same on the three channels (blotches of light, not colour)."""
    from scipy.ndimage import gaussian_filter
    n = gaussian_filter(rng.normal(0, 1, rgb.shape[:2]), sigma_px)
    n *= amp / max(float(n.std()), 1e-9)
    return np.clip(rgb.astype(np.float32) + n[..., None], 0, 255).astype(np.uint8)


def _gain(rgb, rng):
    g, o = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    return np.clip((rgb.astype(np.float32) - 128) * g + 128 + o, 0, 255).astype(np.uint8)


def _shade(rgb, pts, yaw, pitch, rng):
    """The move frame lit differently: multiplied by a ramp of +/-10-20 % per face radius along the move."""
    h, w = rgb.shape[:2]
    c = pts[:, :2].mean(0)
    r = float(np.sqrt(((pts[:, :2] - c) ** 2).sum(1).mean()))
    yy, xx = np.mgrid[0:h, 0:w]
    along = (xx - c[0]) * np.sign(yaw) if yaw else (yy - c[1]) * -np.sign(pitch)
    ramp = 1 + rng.uniform(0.1, 0.2) * np.clip(along / r, -2, 2)
    return np.clip(rgb.astype(np.float32) * ramp[..., None], 0, 255).astype(np.uint8)


def capture(name: str, rgb, rng, move=None):
    """A frame as the attacker's capture sends it under condition ``name`` (``move``: (pts, yaw, pitch) of a
    move frame, for ``shade``)."""
    from liveness_bench.media import jpeg
    if name in ("q60", "q95"):
        return jpeg(rgb, int(name[1:]))
    if name == "noise2.5":
        return jpeg(_noise(rgb, rng, 2.5), PAGE_Q)
    if name == "noise5":
        return jpeg(_noise(rgb, rng, rng.uniform(4, 6)), PAGE_Q)
    if name == "noise8":
        return jpeg(_noise(rgb, rng, 8.0), PAGE_Q)
    if name == "noise8+blotch":
        return jpeg(_noise(_blotch(rgb, rng), rng, 8.0), PAGE_Q)
    if name == "blotch":
        return jpeg(_blotch(rgb, rng), PAGE_Q)
    if name == "gain":
        return jpeg(_gain(rgb, rng), PAGE_Q)
    if name == "shade" and move is not None:
        return jpeg(_shade(rgb, *move, rng), PAGE_Q)
    return jpeg(rgb, PAGE_Q)


def attack_pairs(pictures):
    """{condition: [(label, F, M, degrees)]}: each picture and its 4 renders through every condition."""
    out = {c: [] for c in ATTACK_SETS}
    for pi, (label, rgb) in enumerate(pictures):
        pts = landmarks(rgb)
        if pts is None:
            print(f"(no face in {label}: skipped)", file=sys.stderr)
            continue
        rng = np.random.default_rng(40_000 + pi)
        poses = [(rng.uniform(15, 25), 0.0), (-rng.uniform(15, 25), 0.0), (0.0, rng.uniform(25, 35)),
                 (0.0, -rng.uniform(25, 35))]
        renders = [(yaw, pitch, _render(label, rgb, pts, yaw, pitch)) for yaw, pitch in poses]
        for ci, cond in enumerate(ATTACK_SETS):
            crng = np.random.default_rng(50_000 + 100 * pi + ci)
            f = capture(cond, rgb, crng)
            for yaw, pitch, m in renders:
                mv = capture(cond, m, crng, move=(pts, yaw, pitch))
                out[cond].append((f"{label} yaw {yaw:+.0f} pitch {pitch:+.0f}", f, mv, yaw or pitch))
    return out


def measure(pairs):
    """[statistics dict] per pair whose both frames have a face; the statistic's time per pair (ms) too."""
    rows, times = [], []
    for label, f, m, deg in pairs:
        pf, pm = landmarks(f), landmarks(m)
        if pf is None or pm is None:
            continue
        t0 = time.perf_counter()
        s = statistics(f, m, pf, pm)
        times.append(1000 * (time.perf_counter() - t0))
        rows.append({"label": label, "deg": deg, **s})
    return rows, times


# --- report ------------------------------------------------------------------------------------------------

def _threshold(bona: np.ndarray, attack: np.ndarray) -> tuple[float, float, float]:
    """(t, BPCER, APCER) minimising max(BPCER, APCER): bona fide accepted at >= t, attacks refused below t."""
    cands = np.unique(np.r_[bona, attack, np.inf])
    best = None
    for t in cands:
        bp, ap = float((bona < t).mean()), float((attack >= t).mean())
        if best is None or max(bp, ap) < max(best[1], best[2]):
            best = (float(t), bp, ap)
    return best


def main() -> int:
    t0 = time.time()
    bona = bona_fide_sets(bona_fide_pairs())
    pictures = attack_pictures()
    attacks = attack_pairs(pictures)
    sets = {**bona, **{f"attack {k}": v for k, v in attacks.items()}}
    res, cost = {}, []
    for name, pairs in sets.items():
        res[name], times = measure(pairs)
        cost += times
        print(f"({name}: {len(res[name])} pairs of {len(pairs)} with a face in both, {time.time() - t0:.0f}s)",
              file=sys.stderr, flush=True)
    moves = sorted({r["label"] for r in res["bona fide"]})
    print(f"Bona fide: {len(res['bona fide'])} pairs from {len(moves)} moves of "
          f"{len({m.split()[0] for m in moves})} clips; attack pictures: {len(pictures)} "
          f"(12 clips, {N_LFW} colour LFW), 4 renders each.\n")
    variants = [f"{s}_{r}" for r in REGIONS for s in STATS]
    print("| statistic | set | n | median | p5 | p95 | min | max |")
    print("|---|---|---|---|---|---|---|---|")
    for v in variants:
        for name in sets:
            x = np.array([r[v] for r in res[name]], float)
            x = x[np.isfinite(x)]
            if not len(x):
                continue
            p5, med, p95 = np.percentile(x, [5, 50, 95])
            print(f"| {v} | {name} | {len(x)} | {med:.3f} | {p5:.3f} | {p95:.3f} | {x.min():.3f} | {x.max():.3f} |")
    print("\nThreshold minimising max(BPCER, APCER) over the capture's attacks (" + ", ".join(CAPTURE_SETS)
          + "); error rates at it (bona fide: refused; attack: accepted):\n")
    print("| statistic | threshold | BPCER | BPCER, noise 8 | " + " | ".join(ATTACK_SETS) + " |")
    print("|---|---|---|---|" + "---|" * len(ATTACK_SETS))
    for v in variants:
        b = np.array([r[v] for r in res["bona fide"]], float)
        pool = np.array([r[v] for k in CAPTURE_SETS for r in res[f"attack {k}"]], float)
        t, bp, _ = _threshold(b[np.isfinite(b)], pool[np.isfinite(pool)])
        cells = []
        for k in ATTACK_SETS:
            a = np.array([r[v] for r in res[f"attack {k}"]], float)
            cells.append(f"{int((a >= t).sum())}/{len(a)}")
        bn = np.array([r[v] for r in res["bona fide, noise 8"]], float)
        print(f"| {v} | {t:.3f} | {int((b < t).sum())}/{len(b)} ({bp:.1%}) | {int((bn < t).sum())}/{len(bn)} | "
              + " | ".join(cells) + " |")
    c = np.array(cost)
    one = []
    for _, f, m, _ in sets["bona fide"]:  # one aligned statistic alone: one region's mapping and block search
        pf, pm = landmarks(f), landmarks(m)
        t1 = time.perf_counter()
        fi, _, mask, mm = canonical_pair(f, m, pf, pm, "face")
        aligned_blocks(fi, mask, mm)
        one.append(1000 * (time.perf_counter() - t1))
    print(f"\nCost per frame pair (landmarks not counted: the capture computes them for every frame already): every "
          f"statistic of both regions median {np.median(c):.0f} ms (p95 {np.percentile(c, 95):.0f}) over {len(c)} "
          f"pairs; one region's aligned blocks alone (amed, ap90, ahf, asm, asm90 together) median "
          f"{np.median(one):.0f} ms (p95 {np.percentile(one, 95):.0f}) over {len(one)} pairs. 2 cores, shared.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
