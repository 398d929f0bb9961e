#!/usr/bin/env python
"""Face engine benchmark: per-frame latency, batch throughput, cold start, memory, vs a naive pipeline.

    .venv/bin/python benchmarks/face_bench.py [--frames 30] [--data-dir var] [--json out.json]

Frames are real photos (../shared/data/faces/face_recognition_examples),
cropped to 4:3 around the face, resized to 640x480 / 320x240 and JPEG-encoded
like a browser upload. One measured frame = decode -> detect -> quality ->
crop -> embed -> match against a template.

The naive reference is what a first implementation does: MTCNN at its defaults
on the full frame (eager Keras calls, min_face_size 20) and one eager model
call per frame.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FACES = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MB, from /proc."""
    vals = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, v = line.split(":")
            vals[key] = int(v.split()[0]) / 1024.0
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def make_frames(engine, size):
    import numpy as np
    from PIL import Image

    photos = sorted((FACES / "face_recognition_examples").glob("*/knn_examples_*.jpg"))
    frames = []
    for path in photos:
        img = Image.open(path).convert("RGB")
        a = engine.analyze(np.asarray(img), embed="never")
        if a.box is None:
            continue
        x, y, w, h = a.box
        cx, cy = x + w / 2, y + h / 2
        cw = min(img.width, img.height * 4 / 3, w * 2.6)  # face about 40% of the frame width, like a webcam
        ch = cw * 3 / 4
        left = min(max(0, cx - cw / 2), img.width - cw)
        top = min(max(0, cy - ch / 2), img.height - ch)
        frame = img.crop((int(left), int(top), int(left + cw), int(top + ch))).resize(size, Image.BILINEAR)
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=85)
        frames.append(buf.getvalue())
    return frames


def time_frames(fn, frames, n):
    """Wall-clock latency percentiles, plus CPU time per frame (all threads of this process), which is
    far less disturbed than wall time when other work shares the machine."""
    times, cpu = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn(frames[i % len(frames)])
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {"p50_ms": round(pct(times, 50), 1), "p95_ms": round(pct(times, 95), 1),
            "mean_ms": round(statistics.mean(times), 1), "cpu_ms_p50": round(pct(cpu, 50), 1), "n": n}


def cold_start(data_dir) -> float:
    code = ("import time; t=time.perf_counter(); from idp.face import FaceEngine; "
            f"FaceEngine({str(data_dir)!r}); print(time.perf_counter()-t)")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    return round(float(out.stdout.strip().splitlines()[-1]), 2), round(wall, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30, help="measured frames per configuration")
    ap.add_argument("--data-dir", default=str(ROOT / "var"))
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    import numpy as np

    from idp.face import FaceEngine
    load_avg_start = os.getloadavg()
    first_start = cold_start(args.data_dir)  # converts the weights into the cache if they are not there yet
    cold_in_process, cold_wall = cold_start(args.data_dir)  # a normal start: cached weights

    t = time.perf_counter()
    engine = FaceEngine(args.data_dir)
    startup = time.perf_counter() - t
    rss_loaded = rss_mb()[0]

    enroll_frames = make_frames(engine, (640, 480))
    template = engine.enroll(enroll_frames[:3], min_frames=1).template
    results = {"cold_start_s": cold_in_process, "cold_start_wall_s": cold_wall, "first_start_s": first_start[0],
               "engine_startup_in_process_s": round(startup, 2), "frames": {}}

    from idp.face.quality import crop_face
    from mtcnn import MTCNN

    naive_detector = MTCNN()
    model = engine.embedder.model

    def naive(data):
        rgb = engine.decode(data)
        faces = naive_detector.detect_faces(rgb)
        best = max(faces, key=lambda f: f["box"][2] * f["box"][3])
        crop = crop_face(rgb, best["box"])
        x = engine.embedder.standardise(crop[None])
        emb = np.asarray(model(x, training=False))[0]
        return float(emb @ template.mean)

    def ours(data):
        return engine.verify(template, [data])

    for size in ((640, 480), (320, 240)):
        frames = make_frames(engine, size)
        for f in frames[:3]:
            ours(f), naive(f)  # warm both paths at this size
        key = f"{size[0]}x{size[1]}"
        fast = time_frames(ours, frames, args.frames)
        slow = time_frames(naive, frames, max(10, args.frames // 2))
        ok = sum(engine.verify(template, [f]).frames_used for f in frames)
        results["frames"][key] = {"engine": fast, "naive": slow,
                                  "speedup_p50": round(slow["p50_ms"] / fast["p50_ms"], 2),
                                  "frames_with_usable_face": f"{ok}/{len(frames)}"}

    frames = make_frames(engine, (640, 480))
    batch = (frames * 8)[:8]
    engine.analyze_batch(batch)
    reps = max(3, args.frames // 8)
    t = time.perf_counter()
    for _ in range(reps):
        engine.analyze_batch(batch)
    per = (time.perf_counter() - t) / (reps * len(batch))
    results["batch8_640x480"] = {"ms_per_frame": round(per * 1000, 1), "frames_per_s": round(1 / per, 2)}
    rss_now, rss_peak = rss_mb()
    results["rss_mb"] = {"after_load": round(rss_loaded), "after_run": round(rss_now), "peak": round(rss_peak),
                         "note": "peak includes the naive reference detector/model calls"}
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                          "load_average_start": [round(x, 1) for x in load_avg_start],
                          "load_average_end": [round(x, 1) for x in os.getloadavg()]}

    print(json.dumps(results, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
