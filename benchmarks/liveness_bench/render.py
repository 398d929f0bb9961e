"""Synthetic presentation attacks: a picture (print or screen) held in front of a pinhole camera.

One pose builder (:func:`poses`) for every attack kind, one renderer (:func:`render_sheet`) for prints
and screens (:func:`render_bent` for a bend about any axis, the generalisation study's); and a real face
turned or tilted by a known angle as a 2.5-D head (:func:`turned_head`: the known-angle measurements of
``benchmarks/liveness_yaw_truth.py`` and the rendered bona fide moves). Digital renders: no print halftone,
no screen moire, no glare (docs/liveness.md, limits).
"""
from __future__ import annotations

import math

import numpy as np

FRAME = (640, 480)  # the page sends 640x480
FOCAL_PX = 700.0
INTERVAL_MS = 150  # the page films a frame every 150 ms (idp.faceweb.liveness.INTERVAL_MS)
ATTACK_MS = 6000  # an attack is filmed for the two- and three-move window (idp.liveness.capture_window_ms)

#: Rendered attack kinds (each from colour-LFW photos and from frames of the shared clips).
PRINT_KINDS = ("print_yaw25", "print_yaw40", "print_yaw55", "bent_yaw35")
OTHER_KINDS = ("still_tremor", "affine", "tilt_pitch", "mixed")
#: Prints tilted about their horizontal axis, the attacker performing a challenge of tilts (look_up /
#: look_down); after the others so that theirs keep their seeds.
PITCH_KINDS = ("print_pitch25", "print_pitch40", "print_pitch55", "bent_pitch35")
ATTACK_KINDS = PRINT_KINDS + OTHER_KINDS + PITCH_KINDS


def rotation(yaw, pitch, roll) -> np.ndarray:
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def perspective(dst, src) -> tuple:
    """PIL's ``PERSPECTIVE`` coefficients (it maps output -> input) taking the quad ``dst`` (output px, four
    corners) to ``src`` (input px)."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return tuple(np.linalg.solve(np.array(a, float), np.asarray(src, float).flatten()))


def background(rng):
    """A blurred random room behind the picture."""
    from PIL import Image, ImageFilter
    small = rng.uniform(50, 190, (6, 8, 3)).astype(np.uint8)
    return Image.fromarray(small).resize(FRAME, Image.BICUBIC).filter(ImageFilter.GaussianBlur(20))


def render_sheet(photo, bg, yaw=0.0, pitch=0.0, roll=0.0, dist=1.0, shift=(0.0, 0.0), bend=0.0, strips=None,
                 bend_axis="vertical"):
    """``photo`` (PIL RGB) as a sheet held in front of the camera: rotated (degrees; pitch > 0 = its top
    away from the camera, as a chin-up head), at relative distance ``dist``, shifted (px), bent about its
    vertical axis (``bend`` = depth of the sheet's edges behind its centre, in sheet widths) or, with
    ``bend_axis="horizontal"``, about its horizontal axis (top and bottom edges behind, in sheet heights).
    Returns RGB uint8 of FRAME size.

    Drawn as one homography when flat, else as ``strips`` (16) planar strips along the bend axis, each
    warped over the whole frame. Deliberately not :func:`render_bent` (which draws any bend axis as a mesh
    of cropped quads): the two do not give the same pixels for the same pose, not even flat, and this one
    draws the evaluation's rendered attacks and screen replays and the generalisation study's turned
    prints, all cached."""
    from PIL import Image, ImageDraw

    strips = strips or (16 if bend else 1)  # a flat sheet is one homography
    pw, ph = photo.size
    z0 = 700.0 * dist  # sheet width ~ pw px at dist=1
    r = rotation(yaw, pitch, roll)
    out = bg.copy()
    across = bend_axis == "horizontal"  # strips across the sheet (bent about its horizontal axis)
    xs = np.linspace(0, ph if across else pw, strips + 1)
    for i in range(strips):
        xa, xb = xs[i], xs[i + 1]
        if across:
            src = np.array([[0, xa], [pw, xa], [pw, xb], [0, xb]], float)
        else:
            src = np.array([[xa, 0], [xb, 0], [xb, ph], [xa, ph]], float)
        p3 = np.c_[src[:, 0] - pw / 2, src[:, 1] - ph / 2, np.zeros(4)]
        if across:
            p3[:, 2] = -bend * ph * (p3[:, 1] / (ph / 2)) ** 2
        else:
            p3[:, 2] = -bend * pw * (p3[:, 0] / (pw / 2)) ** 2
        q = p3 @ r.T
        z = z0 - q[:, 2]
        dst = np.c_[FOCAL_PX * q[:, 0] / z + FRAME[0] / 2 + shift[0], FOCAL_PX * q[:, 1] / z + FRAME[1] / 2 + shift[1]]
        warped = photo.transform(FRAME, Image.PERSPECTIVE, perspective(dst, src), Image.BILINEAR)
        mask = Image.new("L", FRAME, 0)
        ImageDraw.Draw(mask).polygon([tuple(p) for p in dst], fill=255)
        out.paste(warped, (0, 0), mask)
    return np.asarray(out)


def render_bent(photo, bg, yaw=0.0, pitch=0.0, roll=0.0, dist=1.0, shift=(0.0, 0.0), bend=0.0, bend_deg=0.0,
                grid=12):
    """``photo`` as a sheet bent about an axis ``bend_deg`` degrees from its vertical (0: vertical, 90:
    horizontal, 45: the diagonal from lower left to upper right), ``bend`` = depth of the sheet's edges
    behind its centre across the bend, in sheet widths at every axis; paper bends one way at a time (a
    cylinder). Posed as :func:`render_sheet`.

    Drawn as ``grid`` x ``grid`` quads (a bend about an oblique axis leaves no strip of the sheet flat),
    each a homography warped in its own bounding box, its mask outlined so that neighbours leave no seam.
    Deliberately not :func:`render_sheet`, and not its special case: at 0 degrees it draws the bend with
    ``grid`` (12) chords instead of 16, at 90 degrees its depth is in sheet widths where render_sheet's is
    in sheet heights, and even a flat sheet's pixels differ (inside by a grey level, at its border by much
    more: 144 warps with outlined masks instead of one). It draws the generalisation study's ``tt_``
    sequences (liveness_generalisation.py); merging the two would change one set of cached renders."""
    from PIL import Image, ImageDraw

    pw, ph = photo.size
    z0 = 700.0 * dist
    r = rotation(yaw, pitch, roll)
    a = math.radians(bend_deg)
    us, vs = np.linspace(0, pw, grid + 1), np.linspace(0, ph, grid + 1)
    uu, vv = np.meshgrid(us, vs)
    p3 = np.stack([uu - pw / 2, vv - ph / 2, np.zeros_like(uu)], -1)
    across = p3[..., 0] * math.cos(a) + p3[..., 1] * math.sin(a)  # distance from the bend's axis
    p3[..., 2] = -bend * pw * (across / (pw / 2)) ** 2
    q = p3 @ r.T
    z = z0 - q[..., 2]
    px = np.stack([FOCAL_PX * q[..., 0] / z + FRAME[0] / 2 + shift[0],
                   FOCAL_PX * q[..., 1] / z + FRAME[1] / 2 + shift[1]], -1)
    out = bg.copy()
    for i in range(grid):
        for j in range(grid):
            src = np.array([[us[j], vs[i]], [us[j + 1], vs[i]], [us[j + 1], vs[i + 1]], [us[j], vs[i + 1]]])
            dst = np.array([px[i, j], px[i, j + 1], px[i + 1, j + 1], px[i + 1, j]])
            x0, y0 = np.floor(dst.min(0)).astype(int) - 1
            x1, y1 = np.ceil(dst.max(0)).astype(int) + 1
            if x1 <= 0 or y1 <= 0 or x0 >= FRAME[0] or y0 >= FRAME[1]:
                continue
            loc = dst - [x0, y0]
            size = (int(x1 - x0), int(y1 - y0))
            warped = photo.transform(size, Image.PERSPECTIVE, perspective(loc, src), Image.BILINEAR)
            mask = Image.new("L", size, 0)
            ImageDraw.Draw(mask).polygon([tuple(v) for v in loc], fill=255, outline=255)
            out.paste(warped, (int(x0), int(y0)), mask)
    return np.asarray(out)


def tremor(rng, n: int, roll_deg=0.7, tilt_deg=1.0, shift_px=1.5) -> list[dict]:
    """Hand tremor per frame: in-plane jitter (roll, shift) and small tilts of the sheet."""
    drift = np.cumsum(rng.normal(0, shift_px * 0.5, (n, 2)), axis=0)
    return [dict(roll=rng.normal(0, roll_deg), yaw_j=rng.normal(0, tilt_deg), pitch_j=rng.normal(0, tilt_deg),
                 dxy=tuple(drift[i] + rng.normal(0, shift_px, 2))) for i in range(n)]


def _wander(rng, amp):
    """t (ms) -> a random smooth sine of amplitude ``amp``, period 2-6 s."""
    ph, period = rng.uniform(0, 2 * math.pi), rng.uniform(2000, 6000)
    return lambda t: amp * math.sin(2 * math.pi * t / period + ph)


def keyframes(moves, rng, target, rest=(0.0,)):
    """t (ms) -> pose (a tuple shaped as ``rest``) of someone performing ``moves`` at the pace of a person
    following the instruction: ``rest`` until 0.7-1.0 s (after the latest cue, 500 ms, plus a reaction),
    then per move to ``target(move)`` in 0.5-0.7 s, held 0.2-0.4 s, back to ``rest`` in 0.5-0.7 s, a pause
    of 0.1-0.3 s, the next. ``target`` is called before the move's timing is drawn, so a target drawn from
    ``rng`` keeps every seeded sequence as it was. The one timing of every rendered performance; its key
    rows are the returned function's ``keys``."""
    keys = [(0.0, *rest), (rng.uniform(700, 1000), *rest)]
    for m in moves:
        pose = tuple(target(m))
        t = keys[-1][0]
        up, hold, back, pause = rng.uniform(500, 700), rng.uniform(200, 400), rng.uniform(500, 700), rng.uniform(100, 300)
        keys += [(t + up, *pose), (t + up + hold, *pose), (t + up + hold + back, *rest),
                 (t + up + hold + back + pause, *rest)]
    k = np.array(keys)
    motion = lambda t: tuple(float(np.interp(t, k[:, 0], k[:, i])) for i in range(1, k.shape[1]))  # noqa: E731
    motion.keys = k  # (time, *pose) rows: rest, rest, then per move reached, held, back at rest, end of pause
    return motion


def sign(move: str) -> float:
    """+1 for turn_left and look_up, -1 for turn_right and look_down (:func:`turned_head`'s signs)."""
    return 1.0 if move in ("turn_left", "look_up") else -1.0


def follow(moves, rng, amp: float):
    """t (ms) -> angle: the attacker follows the instruction with the picture (:func:`keyframes`), each move
    a turn (or tilt) to ``amp`` degrees (+ for turn_left / look_up, - for turn_right / look_down)."""
    motion = keyframes(moves, rng, lambda m: (amp * sign(m),))
    return lambda t: motion(t)[0]


def poses(kind: str, rng, times_ms, moves=("turn_left", "turn_right")) -> list[dict]:
    """Per-frame poses of the sheet (keyword arguments of :func:`render_sheet`) at ``times_ms`` for one
    attack of ``kind`` performing ``moves`` (the requested challenge). Every kind is held by hand:
    hand tremor on top of the motion.

    * ``print_yawNN``: turned about its vertical axis to NN degrees and back, once per move, the way
      the instruction says;
    * ``bent_yaw35``: the same, bent into a cylinder (edges 18 % of the sheet width behind its centre:
      ~18 mm for a 10 cm face print), turned 35 degrees;
    * ``still_tremor``: held still (tremor only);
    * ``affine``: moved, rotated in-plane, scaled; ``tilt_pitch``: turned 25-50 degrees about its
      horizontal axis, once per move; ``mixed``: yaw, pitch, roll and translation wandering at once;
    * ``print_pitchNN``: tilted about its horizontal axis to NN degrees and back, once per move (top
      away for look_up, towards the camera for look_down), the way the instruction says;
    * ``bent_pitch35``: the same, bent about its horizontal axis (top and bottom edges 18 % of the sheet
      height behind its centre), tilted 35 degrees.
    """
    sgn = lambda: float(rng.choice([-1.0, 1.0]))  # noqa: E731
    base = dict(dist=rng.uniform(0.75, 1.0), shift=(rng.uniform(-40, 40), rng.uniform(-30, 30)))
    if kind.startswith("print_yaw") or kind == "bent_yaw35":
        yaw = follow(moves, rng, float(kind.rsplit("yaw", 1)[1]))
        motion = [dict(yaw=yaw(t), bend=0.18 if kind == "bent_yaw35" else 0.0) for t in times_ms]
    elif kind.startswith(("print_pitch", "bent_pitch")):
        pitch = follow(moves, rng, float(kind.rsplit("pitch", 1)[1]))
        motion = [dict(pitch=pitch(t), bend=0.18 if kind.startswith("bent") else 0.0, bend_axis="horizontal")
                  for t in times_ms]
    elif kind == "still_tremor":
        motion = [{} for _ in times_ms]
    elif kind == "affine":
        tx, ty = _wander(rng, sgn() * rng.uniform(40, 100)), _wander(rng, rng.uniform(20, 50))
        rr, sc = _wander(rng, rng.uniform(10, 30)), _wander(rng, rng.uniform(0.1, 0.25))
        motion = [dict(roll=rr(t), dist=base["dist"] * (1 + sc(t)), dxy=(tx(t), ty(t))) for t in times_ms]
    elif kind == "tilt_pitch":
        p = follow(moves, rng, rng.uniform(25, 50))
        motion = [dict(pitch=p(t)) for t in times_ms]
    elif kind == "mixed":
        y, p, r = (_wander(rng, sgn() * rng.uniform(10, 35)) for _ in range(3))
        tx = _wander(rng, rng.uniform(20, 80))
        motion = [dict(yaw=y(t), pitch=p(t), roll=0.5 * r(t), dxy=(tx(t), 0.0)) for t in times_ms]
    else:
        raise ValueError(kind)
    out = []
    for m, tr in zip(motion, tremor(rng, len(times_ms))):
        dx = m.get("dxy", (0.0, 0.0))
        out.append(dict(dist=m.get("dist", base["dist"]), bend=m.get("bend", 0.0),
                        bend_axis=m.get("bend_axis", "vertical"),
                        yaw=m.get("yaw", 0.0) + tr["yaw_j"], pitch=m.get("pitch", 0.0) + tr["pitch_j"],
                        roll=m.get("roll", 0.0) + tr["roll"],
                        shift=(base["shift"][0] + dx[0] + tr["dxy"][0], base["shift"][1] + dx[1] + tr["dxy"][1])))
    return out


def head_poses(moves, rng, times_ms, amp=(15.0, 25.0), tilt_amp=None) -> list[tuple[float, float]]:
    """(yaw, pitch) per time of a person performing ``moves`` with their head (:func:`turned_head`'s signs:
    yaw > 0 = turn_left in an unmirrored frame, pitch > 0 = look_up), timed by :func:`keyframes`: per move
    a turn or tilt to a real angle drawn in ``amp`` (``tilt_amp`` for a tilt, if given)."""
    def target(m):
        a = rng.uniform(*(tilt_amp if tilt_amp and m in ("look_up", "look_down") else amp)) * sign(m)
        return (a, 0.0) if m in ("turn_left", "turn_right") else (0.0, a)
    motion = keyframes(moves, rng, target, rest=(0.0, 0.0))
    return [motion(t) for t in times_ms]


def screen(frame_rgb: np.ndarray, brightness: float = 0.85):
    """A video frame as shown on a phone or monitor: dimmed, slightly soft, in a black bezel (PIL)."""
    from PIL import Image, ImageFilter, ImageOps
    im = Image.fromarray((frame_rgb.astype(np.float32) * brightness + 12).clip(0, 255).astype(np.uint8))
    w = 420
    im = im.resize((w, round(im.height * w / im.width)), Image.BICUBIC).filter(ImageFilter.GaussianBlur(0.6))
    return ImageOps.expand(im, border=int(w * 0.04), fill=(12, 12, 14))


def screen_poses(rng, n: int) -> list[dict]:
    """A screen held by hand for ``n`` consecutive frames of a replayed clip: a slow sway (a few degrees)
    and tremor."""
    sway = [_wander(rng, rng.uniform(2, 5)) for _ in range(2)]
    base = dict(dist=rng.uniform(0.8, 0.95), shift=(rng.uniform(-20, 20), rng.uniform(-15, 15)))
    out = []
    for i, t in enumerate(tremor(rng, n, roll_deg=0.5, tilt_deg=0.7, shift_px=1.0)):
        ms = i * 1000.0 / 15  # frames of the 15 fps clip
        out.append(dict(dist=base["dist"], yaw=sway[0](ms) + t["yaw_j"], pitch=sway[1](ms) + t["pitch_j"], roll=t["roll"],
                        shift=(base["shift"][0] + t["dxy"][0], base["shift"][1] + t["dxy"][1])))
    return out


#: A face's width in mm (bizygomatic, adult average): the scale of :func:`turned_head`'s ``closer``.
FACE_WIDTH_MM = 140.0


def face_centre(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The centre (the inner landmarks' mean, 3-D) of a face's 468 ``points`` and its outline's RMS radius (px)."""
    from idp.liveness.rigidity import FACE_OVAL, INNER
    c = points[INNER].mean(0)
    return c, float(np.sqrt(((points[list(FACE_OVAL), :2] - c[:2]) ** 2).sum(1).mean()))


def brought_closer(points: np.ndarray, c: np.ndarray, rad: float, closer: float, distance_mm: float) -> np.ndarray:
    """``points`` (N x 3, frame px, smaller z = nearer) of a face centred on ``c`` whose outline's RMS radius is
    ``rad`` px, as seen once the face is brought from ``distance_mm`` to ``closer`` times that from a pinhole
    camera and scaled back to its size at ``c``: each point's offset from ``c`` grows by its own magnification
    over the centre's (the face FACE_WIDTH_MM wide, about twice ``rad``)."""
    z_mm = (points[:, 2] - c[2]) * FACE_WIDTH_MM / (2 * rad)
    grow = (distance_mm + z_mm) / (closer * distance_mm + z_mm) * closer
    out = points.copy()
    out[:, :2] = c[:2] + (points[:, :2] - c[:2]) * grow[:, None]
    return out


def turned_head(rgb: np.ndarray, points: np.ndarray, yaw: float, pitch: float = 0.0, closer: float = 1.0,
                distance_mm: float = 550.0) -> np.ndarray:
    """``rgb`` with its face turned by ``yaw`` degrees about the vertical axis (> 0: the nose moves to the
    image right), or tilted by ``pitch`` degrees about the horizontal axis (> 0: chin up, the nose moves
    to the image top), as a 2.5-D head: the face's (468, 3) landmarks ``points`` (frame px; their depth is the
    head's shape), plus two rings beyond the face outline (1.25 / 1.6 x its radius, 0.35 / 0.8 radius further
    back: hair, ears), rotate about the axis through the landmarks' centroid (orthographic); a ring
    at 2.6 x and the frame border stay put; each Delaunay triangle is warped affinely, far ones first.
    ``closer`` < 1: the head brought from ``distance_mm`` to ``closer`` times that from a pinhole camera (the
    photo's own view taken as the far one, its face FACE_WIDTH_MM wide), seen at the same size: only the change
    of perspective (the nearer parts of the face grow against the further ones), which is what is left of a
    move closer once the face is cropped to its box."""
    from scipy.spatial import Delaunay

    from idp.liveness.rigidity import FACE_OVAL

    img = np.asarray(rgb, np.float32)
    h, w = img.shape[:2]
    p = np.asarray(points, np.float64)
    c, rad = face_centre(p)
    oval = p[list(FACE_OVAL)]
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
    if closer != 1.0:
        turned = brought_closer(turned, c, rad, closer, distance_mm)
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


def held_at_an_angle(rgb: np.ndarray, narrowing: float = 0.7) -> np.ndarray:
    """The whole picture as a print held turned about its vertical axis (or a frame made up for an injected
    camera): a perspective warp whose right edge is ``narrowing`` as tall as the left one, centred
    vertically (bilinear). The frame between two photographs of the red team's warped-photo attack
    (docs/liveness.md, "Moves between two pictures")."""
    from PIL import Image
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    w, h = img.size
    k = 1.0 - narrowing
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(0, 0), (w * (1 - k / 2), h * k / 2), (w * (1 - k / 2), h * (1 - k / 2)), (0, h)]
    return np.asarray(img.transform(img.size, Image.PERSPECTIVE, perspective(dst, src), Image.BILINEAR))
