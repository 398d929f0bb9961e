#!/usr/bin/env python
"""Per-frame cost of candidate speed-ups of the face pipeline, A/B in one sitting, flip augmentation off and on.

    .venv/bin/python benchmarks/face_speedups.py [--rounds 8] [--block 6] [--json out.json]

One frame = ``FaceEngine.verify(template, [jpeg])`` on 640x480 JPEG frames (benchmarks/face_bench.py's):
decode, detect, quality, crop, embed (with the mirrored crop when flip is on), AS-norm score.

Settings that TensorFlow fixes once per process (its thread pools) are compared in separate worker
processes, started side by side; everything else is switched inside a worker. The driver runs blocks of
``--block`` back-to-back frames per variant, round-robin over every variant of every worker, so load from
other work on the machine hits all variants alike. Per block: wall time of each frame (the first frame of a
block is not counted) and the process CPU time per frame, counted from the block's start until 0.3 s after
its last frame (so CPU burnt by threads that keep spinning after a call is charged to the variant that left
them spinning, not to the next one). Before timing, each variant's embeddings and detections of every
frame are compared with the unchanged pipeline's.

Variants (inside a worker):
  blas2       numpy's BLAS (OpenBLAS) at its default, one thread per core (as before settings.BLAS_THREADS)
  blas1       numpy's BLAS limited to one thread (settings.BLAS_THREADS = 1, as shipped)
  batch8      one ``analyze_batch`` of 8 frames (an enrollment) instead of one verification (times are per call)
  xla         the FaceNet tf.function compiled with XLA (jit_compile=True), batch sizes 1 and 2 compiled first
Worker processes: ``tf-default`` (TensorFlow's default thread pools: one intra-op thread per core, as before
settings.TF_INTRA_OP_THREADS) and ``intra1`` (one intra-op thread, as shipped; the inter-op pool still runs
independent operations in parallel). ``intra1`` with ``blas1`` is the shipped pipeline.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

WORKERS = {"tf-default": 0, "intra1": 1}  # process -> settings.TF_INTRA_OP_THREADS (0 = TensorFlow's default)
VARIANTS = {  # process -> variant names; a trailing " F" = flip augmentation on
    "tf-default": ["blas2", "blas2 F", "blas1", "blas1 F", "blas1+xla", "blas1+xla F", "blas1 batch8"],
    "intra1": ["blas1", "blas1 F", "blas1+xla F", "blas1 batch8"],
}
BEFORE = ("tf-default", "blas2")  # the pipeline before the thread settings


# --- worker ---------------------------------------------------------------------------------------------
def worker(name: str, data_dir: str) -> None:
    from idp.native_notices import import_tensorflow_quietly

    import_tensorflow_quietly()
    import numpy as np
    import tensorflow as tf
    from threadpoolctl import ThreadpoolController

    from face_bench import make_frames, rss_mb

    from idp.face import settings
    from idp.face.engine import FaceEngine

    settings.TF_INTRA_OP_THREADS = WORKERS[name]

    blas = ThreadpoolController()  # before the engine limits BLAS: the library default is still in force
    blas_default = max(i["num_threads"] for i in blas.info() if i["user_api"] == "blas")
    t0 = time.perf_counter()
    engine = FaceEngine(data_dir)
    startup = time.perf_counter() - t0
    frames = make_frames(engine, (640, 480))
    # one template per template version: a variant without flip is version 1 (crop embedding)
    templates = {}
    for flip, version in ((False, "1"), (True, "2")):
        engine.model_version = version  # the engine mirrors as its current version needs
        templates[flip] = engine.enroll(frames[:3], min_frames=1).template
    model = engine.embedder.model
    plain_fn = engine.embedder._fn
    spec = [tf.TensorSpec([None, settings.INPUT_SIZE, settings.INPUT_SIZE, 3], tf.float32)]
    t0 = time.perf_counter()
    xla_fn = tf.function(lambda x: model(x, training=False), input_signature=spec, jit_compile=True)
    for b in (1, 2):
        xla_fn(tf.zeros((b, settings.INPUT_SIZE, settings.INPUT_SIZE, 3)))
    xla_compile = time.perf_counter() - t0

    def setup(variant: str) -> None:
        engine.model_version = "2" if variant.endswith((" F", " batch8F")) else "1"
        engine.embedder._fn = xla_fn if "xla" in variant else plain_fn
        blas.limit(limits=1 if "blas1" in variant else blas_default, user_api="blas")

    def outputs():
        found = [engine.analyze(f) for f in frames]
        return np.stack([a.embedding for a in found]), np.array([a.box for a in found])

    checks = {}
    setup("blas2")
    reference = {False: outputs()}
    setup("blas2 F")
    reference[True] = outputs()
    for variant in VARIANTS[name]:
        setup(variant)
        emb, boxes = outputs()
        ref_emb, ref_boxes = reference[variant.endswith(" F")]
        checks[variant] = {"min_cosine": float((emb * ref_emb).sum(axis=1).min()),
                           "max_box_diff_px": float(np.abs(boxes - ref_boxes).max())}
    hello = {"startup_s": round(startup, 2), "xla_compile_b1_b2_s": round(xla_compile, 2), "blas_threads": blas_default,
             "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
             "rss_mb": round(rss_mb()[0]), "checks": checks, "frames": len(frames),
             "reference": {str(flip): [emb.tolist(), boxes.tolist()] for flip, (emb, boxes) in reference.items()}}
    print(json.dumps(hello), flush=True)
    fi = 0
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        setup(cmd["variant"])
        time.sleep(0.3)
        walls = []
        c0 = time.process_time()
        for k in range(cmd["block"]):
            t = time.perf_counter()
            if "batch8" in cmd["variant"]:  # one enrollment-sized call: 8 frames, one model call for all
                engine.analyze_batch([frames[(fi + j) % len(frames)] for j in range(8)])
            else:
                engine.verify(templates[engine.mirrors()], [frames[fi % len(frames)]])
            fi += 1
            if k:
                walls.append((time.perf_counter() - t) * 1000)
        time.sleep(0.3)
        cpu = (time.process_time() - c0) * 1000 / cmd["block"]
        print(json.dumps({"wall": walls, "cpu": cpu}), flush=True)


# --- driver ---------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--block", type=int, default=6)
    ap.add_argument("--data-dir", default=str(ROOT / "var"))
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data_dir)
        return 0

    from face_bench import pct

    procs, info = {}, {}
    for name in WORKERS:  # started one after the other: start-up times are not disturbed by each other
        procs[name] = subprocess.Popen([sys.executable, __file__, "--worker", name, "--data-dir", args.data_dir],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        info[name] = json.loads(procs[name].stdout.readline())
        print(name, json.dumps({k: v for k, v in info[name].items() if k != "reference"}), file=sys.stderr)
    import numpy as np

    base = info[BEFORE[0]].pop("reference")
    # the same frames' outputs across processes (thread counts may reorder float sums)
    for name in [w for w in WORKERS if w != BEFORE[0]]:
        ref = info[name].pop("reference", base)
        for flip in ref:
            cos = (np.asarray(ref[flip][0]) * np.asarray(base[flip][0])).sum(axis=1).min()
            box = np.abs(np.asarray(ref[flip][1]) - np.asarray(base[flip][1])).max()
            info[name][f"vs_{BEFORE[0]}_flip_{flip}"] = {"min_cosine": float(cos), "max_box_diff_px": float(box)}
            print(f"{name} vs {BEFORE[0]}, flip {flip}: min cosine {cos:.8f}, max box difference {box:.4f} px",
                  file=sys.stderr)
    wall = {(w, v): [] for w in WORKERS for v in VARIANTS[w]}
    cpu = {key: [] for key in wall}
    load = [os.getloadavg()]
    for r in range(args.rounds):
        for w, v in wall:
            procs[w].stdin.write(json.dumps({"variant": v, "block": args.block}) + "\n")
            procs[w].stdin.flush()
            res = json.loads(procs[w].stdout.readline())
            wall[(w, v)] += res["wall"]
            cpu[(w, v)].append(res["cpu"])
        load.append(os.getloadavg())
    for p in procs.values():
        p.stdin.write(json.dumps({"quit": True}) + "\n")
        p.stdin.flush()
        p.wait(timeout=60)
    rows = []
    for (w, v), ws in wall.items():
        rows.append({"process": w, "variant": v, "flip": v.endswith(" F"), "p50_ms": round(statistics.median(ws), 1),
                     "p95_ms": round(pct(ws, 95), 1), "cpu_ms_per_frame": round(statistics.median(cpu[(w, v)]), 1),
                     "n": len(ws), **info[w]["checks"][v]})
    print(f"load average (1 min) during the run: {min(x[0] for x in load):.1f}-{max(x[0] for x in load):.1f}")
    print(f"{'process':8s} {'variant':14s} {'p50':>7s} {'p95':>7s} {'CPU/frame':>9s}  {'min cos':>10s} {'box diff':>8s}")
    for r in rows:
        print(f"{r['process']:8s} {r['variant']:14s} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} {r['cpu_ms_per_frame']:9.1f}  "
              f"{r['min_cosine']:10.7f} {r['max_box_diff_px']:8.3f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"workers": info, "rows": rows, "load_average": load,
                                                   "rounds": args.rounds, "block": args.block}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
