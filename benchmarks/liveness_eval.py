"""Evaluate the liveness checks (idp.liveness) on real videos and synthesised attacks.

Usage::

    .venv/bin/python benchmarks/liveness_eval.py            # extract (cached) + evaluate + write docs
    .venv/bin/python benchmarks/liveness_eval.py extract    # only landmark extraction
    .venv/bin/python benchmarks/liveness_eval.py evaluate   # only evaluation from the cache

Landmarks are extracted once with MTCNN (mtcnn 1.0.0, the same detector the face engine uses)
and cached as JSON + .npy under /tmp/liveness_cache (override with LIVENESS_CACHE). Nothing
here writes frames or data into the repository; only docs/liveness.md and docs/img/liveness-*.png.

Sets (ISO/IEC 30107-3 terms):

* bona fide: bursts cut from the 12 real talking-head clips, subsampled to ~7 fps, each
  evaluated against the challenge the person performs in that stretch of video.
* attack "static": one colour LFW photo pasted into a 640x480 frame, held still (camera noise
  and JPEG re-encoding only).
* attack "moving photo": the same kind of frame animated over ~2.5 s with translation, in-plane
  rotation, scale and perspective tilts (yaw or pitch of the paper), and a bent-paper variant.
* attack "replay": the real clips evaluated against challenges the clip never performs.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FACES_DIR = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))
CACHE = Path(os.environ.get("LIVENESS_CACHE", "/tmp/liveness_cache"))
VIDEO_DIR = FACES_DIR / "video" / "liveportrait_driving"
EXTRACT_FPS = 15  # frames decoded per second of video; bursts are subsampled from these
MAX_SIDE = 640

_detector = None


def detector():
    global _detector
    if _detector is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from mtcnn import MTCNN

        _detector = MTCNN()  # default min_face_size=20 (other values are buggy in 1.0.0)
    return _detector


def detect(rgb: np.ndarray) -> dict | None:
    """Largest face in ``rgb`` as a JSON-able dict, or None."""
    faces = detector().detect_faces(rgb)
    if not faces:
        return None
    f = max(faces, key=lambda r: r["box"][2] * r["box"][3])
    return {
        "box": [int(v) for v in f["box"]],
        "landmarks": {k: [float(v[0]), float(v[1])] for k, v in f["keypoints"].items()},
        "confidence": float(f["confidence"]),
        "n_faces": len(faces),
    }


def decode_video(path: Path, fps: int = EXTRACT_FPS):
    """Yield (t_ms, rgb) frames of ``path`` resampled to ``fps`` with ffmpeg."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    s = min(1.0, MAX_SIDE / max(w, h))
    ow, oh = int(round(w * s / 2) * 2), int(round(h * s / 2) * 2)
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"fps={fps},scale={ow}:{oh}",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    n = ow * oh * 3
    i = 0
    while True:
        buf = proc.stdout.read(n)
        if len(buf) < n:
            break
        yield i * 1000.0 / fps, np.frombuffer(buf, np.uint8).reshape(oh, ow, 3)
        i += 1
    proc.wait()


def extract_videos() -> None:
    from idp.liveness import thumbnail

    out = CACHE / "videos"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(VIDEO_DIR.glob("*.mp4")):
        meta_path = out / f"{path.stem}.json"
        if meta_path.exists():
            continue
        t0 = time.time()
        frames, thumbs = [], []
        for t_ms, rgb in decode_video(path):
            rec = detect(rgb) or {}
            rec.update(t_ms=t_ms, frame_w=rgb.shape[1], frame_h=rgb.shape[0])
            frames.append(rec)
            thumbs.append(thumbnail(rgb))
        np.save(out / f"{path.stem}_thumbs.npy", np.stack(thumbs))
        meta_path.write_text(json.dumps({"video": path.name, "fps": EXTRACT_FPS, "frames": frames}))
        print(f"{path.name}: {len(frames)} frames in {time.time() - t0:.0f}s", flush=True)


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "all"
    if cmd in ("extract", "all"):
        extract_videos()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
