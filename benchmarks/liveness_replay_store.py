"""Perceptual replay store: false refusals of genuine later captures vs replays caught, per threshold.

Each shared clip (``../shared/data/faces/video/liveportrait_driving``) is cut into 3 s bursts at 6.7 fps,
640 px wide, run through the product's detector, dense landmark model and face hash. Every later burst is
a genuine next sign-in checked against the (at most 150 newest) hashes of the earlier ones; the first 10
frames of each clip's first burst, transformed (JPEG q60, q90, rescale 90 % / 110 %, shift 12,8 px), are
replays checked against that burst. A burst is refused with >= M frames within T bits of a stored hash
(idp.faceweb.liveness.FACE_HASH_MAX_BITS / FACE_HASH_MIN_FRAMES). Each burst is one stored capture; rule
"all" compares with every stored frame, rule "passing" (the product's) only with stored frames of a passing
pose (at most HELD_POSE_NEIGHBOURS other frames of their capture within the distance, as
idp.faceweb.liveness.remember_face_hashes records them), rule "turned" (the sign-in's, decided per frame
as it arrives) only with stored frames turned at least TURNED_DEG from their burst's first face frame.
Prints the table of docs/liveness.md.

    .venv/bin/python benchmarks/liveness_replay_store.py
"""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLIPS = ROOT.parent / "shared" / "data" / "faces" / "video" / "liveportrait_driving"


def frames(path: Path, start: float, secs: float) -> list[np.ndarray]:
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ss", str(start), "-i", str(path), "-t", str(secs),
                          "-an", "-vf", "fps=6.67,scale=640:-2", "-q:v", "3", "-f", "image2pipe", "-vcodec", "mjpeg",
                          "-"], capture_output=True, check=True).stdout
    parts, i = [], 0
    while (s := out.find(b"\xff\xd8", i)) >= 0:
        e = out.find(b"\xff\xd9", s)
        parts.append(out[s:e + 2])
        i = e + 2
    return [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in parts]


def transform(rgb: np.ndarray, how: str) -> np.ndarray:
    img = Image.fromarray(rgb)
    if how in ("s90", "s110"):
        f = 0.9 if how == "s90" else 1.1
        img = img.resize((round(img.width * f), round(img.height * f)))
    elif how == "shift":
        c = Image.new("RGB", img.size)
        c.paste(img, (12, 8))
        img = c
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60 if how == "q60" else 90)
    return np.asarray(Image.open(buf).convert("RGB"))


def main() -> None:
    from idp.config import Config
    from idp.face import get_engine
    from idp.liveness.fingerprint import HELD_POSE_NEIGHBOURS, face_hash, hamming, neighbour_counts
    from idp.liveness.landmarks import shared_landmarker

    from idp.faceweb.liveness import TURNED_DEG
    from idp.liveness import rigidity

    engine, landmarker = get_engine(Config().data_dir), shared_landmarker()
    first: list = []  # the burst's first face frame's dense landmarks (the "turned" rule's reference)

    def fh(rgb):
        a = engine.analyze(rgb)
        if not a.box:
            return None
        pts = landmarker(rgb, a.box, a.landmarks).points
        if not first:
            first.append(pts)
        turned = abs(float(rigidity.compare(first[0], pts)["yaw"])) >= TURNED_DEG
        return Hash(face_hash(rgb, pts), turned)

    class Hash(int):
        """A face hash with the product's per-frame "turned" flag (idp.faceweb.liveness.turned_pose)."""
        def __new__(cls, value, turned):
            obj = super().__new__(cls, value)
            obj.turned = turned
            return obj

    genuine, copies = [], []
    for clip in sorted(CLIPS.glob("*.mp4")):
        dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                    str(clip)], capture_output=True, text=True, check=True).stdout)
        bursts = []
        for k, start in enumerate(np.arange(0, min(dur, 15) - 2.9, 3.0)):
            fr = frames(clip, float(start), 3.0)
            first.clear()
            bursts.append([h for h in map(fh, fr) if h is not None])
            if k == 0:
                for how in ("q60", "q90", "s90", "s110", "shift"):
                    first.clear()
                    copies.append(([bursts[0]], [h for h in (fh(transform(x, how)) for x in fr[:10]) if h is not None]))
        for k in range(1, len(bursts)):
            genuine.append((bursts[:k], bursts[k]))

    def near(captures, new, bits, rule):
        stored = []
        for cap in captures:
            counts = neighbour_counts(cap, bits)
            stored += [h for h, n in zip(cap, counts) if rule == "all" or (rule == "passing" and n <= HELD_POSE_NEIGHBOURS)
                       or (rule == "turned" and h.turned)]
        stored = stored[-150:]
        return sum(1 for h in new if any(hamming(h, g) <= bits for g in stored))

    print("| rule | bits / frames | genuine bursts refused | 10-frame replays caught |\n|---|---|---|---|")
    for rule in ("all", "passing", "turned"):
        for bits, m in ((12, 4), (16, 4), (20, 4), (24, 4)):
            g = sum(near(s, n, bits, rule) >= m for s, n in genuine)
            c = sum(near(s, n, bits, rule) >= m for s, n in copies)
            print(f"| {rule} | <= {bits} / {m} | {g} / {len(genuine)} | {c} / {len(copies)} |")


if __name__ == "__main__":
    main()
