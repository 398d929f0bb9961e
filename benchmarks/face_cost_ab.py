#!/usr/bin/env python
"""Cost per 640x480 frame of the template versions: version 1 (crop embedding, AS-norm against the
version-1 cohort), version 2 (crop + mirror embedding in one model call, AS-norm against the version-2
cohort), version 3 (version 2 plus dlib's ResNet on the face, the two AS-norm scores fused: what a frame
that dlib embeds costs) and version 4 (version 1 plus dlib, fused), on the same engine and the same frames,
measured interleaved (A, B, C, D, A, ...) so that load from other work hits all alike. A sign-in frame that
dlib does not embed costs what version 2's frame costs for a version-3 template and what version 1's costs
for a version-4 template (the same FaceNet pass; the score is taken at the finish).

    .venv/bin/python benchmarks/face_cost_ab.py [--frames 40] [--json out.json]

One frame = FaceEngine.verify(template, [jpeg bytes]): decode, detect, quality, crop, embed, score.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--data-dir", default=str(ROOT / "var"))
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    from face_bench import make_frames, pct, rss_mb

    from idp.face.engine import FaceEngine

    engine = FaceEngine(args.data_dir)
    frames = make_frames(engine, (640, 480))
    from idp.face import settings

    configs = {"version 1 (crop, asnorm-v2)": "1",
               "version 2 (crop + mirror, asnorm-v2)": "2",
               # a frame that dlib embeds too (a sign-in's first 3 good frames, every enrollment frame); the
               # other frames of a version-3 sign-in cost what version 2's do, of a version-4 one version 1's
               "version 3, frame with dlib (crop + mirror + dlib, fused)": "3",
               "version 4, frame with dlib (crop + dlib, fused)": "4"}
    templates = {}
    for name, version in configs.items():
        engine.model_version = version  # enrolled as that version; the engine judges it as its record says
        templates[name] = engine.enroll(frames[:3], min_frames=1).template
        engine.model_version = settings.MODEL_VERSION
        for f in frames[:3]:
            engine.verify(templates[name], [f])  # warm this path
    wall = {n: [] for n in configs}
    cpu = {n: [] for n in configs}
    load0 = os.getloadavg()
    for i in range(args.frames):
        for name in configs:
            t, c = time.perf_counter(), time.process_time()
            engine.verify(templates[name], [frames[i % len(frames)]])
            wall[name].append((time.perf_counter() - t) * 1000)
            cpu[name].append((time.process_time() - c) * 1000)
    out = {n: {"p50_ms": round(statistics.median(wall[n]), 1), "p95_ms": round(pct(wall[n], 95), 1),
               "cpu_ms_p50": round(statistics.median(cpu[n]), 1)} for n in configs}
    import numpy as np

    after = engine.scorers["2"]
    probe = templates["version 2 (crop + mirror, asnorm-v2)"].embeddings[:1]
    t = time.perf_counter()
    for _ in range(200):
        after.score(templates["version 2 (crop + mirror, asnorm-v2)"], probe)
    out["asnorm_score_only_ms"] = round((time.perf_counter() - t) / 200 * 1000, 3)
    out["cohort_bytes"] = int(np.asarray(after.cohort).nbytes)
    out["rss_mb"] = round(rss_mb()[0])
    out["load_average"] = [round(x, 1) for x in load0] + [round(x, 1) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
