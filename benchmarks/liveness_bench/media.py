"""Inputs of the evaluation and the product's per-frame analysis.

Every frame goes through the product's own code: the face engine (``idp.face.get_engine``: MTCNN box and
five landmarks, and the quality gate that decides which frames are "good"), the dense landmark model
(``idp.liveness.landmarks``) and the perceptual face hash (``idp.liveness.fingerprint.face_hash``), as
``idp.faceweb.capture`` runs them on an uploaded frame.
"""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FACES_DIR = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))
VIDEO_DIR = FACES_DIR / "video" / "liveportrait_driving"
PHOTO_DIR = FACES_DIR / "lfw_color65_240px"
EXTRACT_FPS = 15  # frames decoded per second of video; bursts take the nearest frame to each tick
MAX_SIDE = 640  # the page sends at most 640x480

_engine = None


def engine():
    """The product's face engine (process-wide, as the web layer's ``engine_for``)."""
    global _engine
    if _engine is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from idp.config import Config
        from idp.face import get_engine
        _engine = get_engine(Config().data_dir)
    return _engine


def analyse(rgb: np.ndarray) -> dict:
    """One frame as the capture API analyses and stores it: the box, the five landmarks, ``ok`` (passed
    the quality gate: a "good" frame, the ones that are embedded and counted toward ``frames_needed``),
    the quality reasons, and :func:`idp.faceweb.liveness.dense_fields` (the stored 468 dense landmarks
    ``dense``/``dense_c`` and the face hash ``fh``) and the passive score ``ps``."""
    from idp.faceweb.liveness import dense_fields

    a = engine().analyze(rgb, embed="never")  # the quality gate; the embedding itself is not needed
    rec = {"ok": bool(a.ok), "reasons": [str(r) for r in a.reasons], "w": int(rgb.shape[1]), "h": int(rgb.shape[0])}
    if a.box is not None:
        rec["box"] = [round(float(v), 1) for v in a.box]
        rec["landmarks"] = {k: [round(float(v[0]), 1), round(float(v[1]), 1)] for k, v in a.landmarks.items()}
        rec.update(dense_fields(rgb, a))
        # MiniFASNet's score, as idp.faceweb.liveness.passive_fields stores it for every face frame
        from idp.liveness.antispoof import shared_antispoof
        rec["ps"] = round(shared_antispoof().score(rgb, a.box), 4)
    return rec


def video_size(path: Path) -> tuple[int, int]:
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                           check=True)
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    return w, h


def decode_video(path: Path, fps: float = EXTRACT_FPS):
    """Yield ``(t_ms, rgb)`` frames of ``path`` resampled to ``fps``, at most MAX_SIDE px wide (ffmpeg)."""
    w, h = video_size(path)
    s = min(1.0, MAX_SIDE / max(w, h))
    ow, oh = int(round(w * s / 2) * 2), int(round(h * s / 2) * 2)
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"fps={fps},scale={ow}:{oh}",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    n, i = ow * oh * 3, 0
    try:
        while len(buf := proc.stdout.read(n)) == n:
            yield i * 1000.0 / fps, np.frombuffer(buf, np.uint8).reshape(oh, ow, 3)
            i += 1
    finally:
        proc.kill()
        proc.wait()


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip (what a browser upload or a re-encoding attacker produces)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def camera(rgb: np.ndarray, rng, quality: int = 85) -> np.ndarray:
    """What a webcam makes of a rendered scene: sensor noise (sigma 2) and the page's JPEG encoding."""
    noisy = np.clip(rgb.astype(np.float32) + rng.normal(0, 2.0, rgb.shape), 0, 255).astype(np.uint8)
    return jpeg(noisy, quality)


def with_border(im, rng, fill=(245, 245, 240), size=None):
    """A picture scaled to 280-360 px (a webcam close-up: face ~120-150 px) with a print border."""
    from PIL import Image, ImageOps
    size = size or int(rng.uniform(280, 360))
    im = im.resize((size, size), Image.BICUBIC)
    return ImageOps.expand(im, border=int(size * 0.06), fill=fill)


def lfw_photo(person: str, rng):
    """The first colour-LFW photo of ``person`` as a print (white border)."""
    from PIL import Image
    return with_border(Image.open(sorted((PHOTO_DIR / person).glob("*.jpg"))[0]).convert("RGB"), rng)


def clip_photo(clip: str, rng):
    """A frame of a shared clip as a print (the victim's own video frame, square crop around the head)."""
    from PIL import Image
    frames = list(decode_video(VIDEO_DIR / f"{clip}.mp4", fps=2))
    _, rgb = frames[int(rng.integers(0, max(1, len(frames) // 3)))]
    h, w = rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return with_border(Image.fromarray(rgb[y0:y0 + side, x0:x0 + side]), rng)


PAGE_QUALITY = 85  # the page's JPEG quality (static/js/face-capture.js grabFrame: toBlob(..., 0.85))


def _dim(rgb: np.ndarray, rng, light: float, gain: float) -> np.ndarray:
    """A room ``light`` times as bright, the camera's auto-gain ``gain`` (it cannot make up all of it at the
    frame rate): in linear light, shot noise (1000 electrons at full scale) and read noise (0.3 % of full
    scale) on the weaker signal, both amplified by the gain, then the sRGB curve (gamma 2.2) again."""
    x = (rgb.astype(np.float32) / 255.0) ** 2.2 * light
    sigma = np.sqrt(x / 1000.0 + 0.003 ** 2)
    y = np.clip((x + rng.normal(0, 1, x.shape).astype(np.float32) * sigma) * gain, 0, 1)
    return np.round(255 * y ** (1 / 2.2)).astype(np.uint8)


def _noise(rgb: np.ndarray, rng, sigma: float) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def _low_res(rgb: np.ndarray, rng, upscale: bool, height: int = 240) -> np.ndarray:
    """A 320x240 camera: the (square) frame area-averaged to ``height`` px high (240: the clip's framing;
    less: the person farther away) and widened to 320x240 with its edge pixels repeated (the clips have no
    more scene around them); ``upscale``: that frame scaled to 640x480 (bilinear), as a browser or driver
    delivering the 640x480 the page asks for from a 320x240 sensor."""
    from PIL import Image
    h, w = rgb.shape[:2]
    small = np.asarray(Image.fromarray(rgb).resize((round(w * height / h), height), Image.BOX))
    px, py = max(0, 320 - small.shape[1]), max(0, 240 - small.shape[0])
    small = np.pad(small, ((py // 2, py - py // 2), (px // 2, px - px // 2), (0, 0)), mode="edge")[:240, :320]
    if upscale:
        small = np.asarray(Image.fromarray(small).resize((640, 480), Image.BILINEAR))
    return small


def _blur(rgb: np.ndarray, rng, sigma: float) -> np.ndarray:
    from PIL import Image, ImageFilter
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def _motion(rgb: np.ndarray, rng, px: int) -> np.ndarray:
    """A horizontal motion streak of ``px`` pixels (the head moving during the exposure)."""
    from scipy.ndimage import uniform_filter1d
    return uniform_filter1d(rgb, px, axis=1, mode="nearest")


#: Worse capture conditions than the shared clips' (a camera's transform of each frame, then the page's own
#: JPEG q85): name -> (what it stands for, transform(rgb, rng)). The clip variants of :func:`.data.build_clips`
#: (``<name>__<clip>``), seeded per clip; the frames stay the clips' (same people, same moves).
CONDITIONS = {
    "dim": ("dim room: 1/4 of the light, camera gain x2, shot and read noise",
            lambda rgb, rng: _dim(rgb, rng, 0.25, 2.0)),
    "dark": ("dark room: 1/10 of the light, camera gain x3, shot and read noise",
             lambda rgb, rng: _dim(rgb, rng, 0.10, 3.0)),
    "noise": ("sensor noise sigma 8 (of 255) per channel, normal light",
              lambda rgb, rng: _noise(rgb, rng, 8.0)),
    "lowres": ("320x240 camera, sent at 320x240", lambda rgb, rng: _low_res(rgb, rng, False)),
    "lowres_up": ("320x240 camera, delivered upscaled to 640x480", lambda rgb, rng: _low_res(rgb, rng, True)),
    "lowres_far": ("320x240 camera, the person farther away (the frame 140 px high: a face of 60-80 px)",
                   lambda rgb, rng: _low_res(rgb, rng, False, 140)),
    "jpeg30": ("camera stream compressed as JPEG q30 before the page's q85",
               lambda rgb, rng: jpeg(rgb, 30)),
    "blur": ("out of focus: Gaussian blur sigma 1.5 px (of a 512 px frame)",
             lambda rgb, rng: _blur(rgb, rng, 1.5)),
    "motion": ("motion blur: a 7 px horizontal streak", lambda rgb, rng: _motion(rgb, rng, 7)),
}


def condition(name: str, rgb: np.ndarray, rng) -> np.ndarray:
    """A frame of a shared clip as a camera in condition ``name`` (:data:`CONDITIONS`) films it and the page
    sends it (JPEG q85)."""
    return jpeg(CONDITIONS[name][1](rgb, rng), PAGE_QUALITY)
