"""Face detection throughput of one FaceDetector from 1, 2 and 4 threads, with and without a
process-wide lock around ``detect`` (the lock the PNet fix used to need), and the process's memory
with the detector loaded. Usage: python -m benchmarks.detect_threads [FACES_DIR] [--seconds S]

Prints one JSON object. Figures in docs/benchmarks.md ("Face detection from several threads")."""
from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def frames(root: Path, n: int = 24) -> list[np.ndarray]:
    paths = sorted(root.glob("*/*.jpg"))[:n]
    return [np.asarray(Image.open(p).convert("RGB").resize((640, 480))) for p in paths]


def run(detector, images, threads: int, seconds: float, lock: threading.Lock | None) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def work(k):
        i = k
        while time.monotonic() < stop:
            if lock is None:
                detector.detect(images[i % len(images)])
            else:
                with lock:
                    detector.detect(images[i % len(images)])
            counts[k] += 1
            i += threads

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    start = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("faces", nargs="?", default="../shared/data/faces/lfw_color65_240px")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from idp.face.detector import FaceDetector

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    detector = FaceDetector()
    images = frames(Path(args.faces))
    for rgb in images[:4]:
        detector.detect(rgb)  # trace the tf.functions
    out = {"cpus": os.cpu_count(), "frame": "640x480", "seconds": args.seconds,
           "rss_mb_detector": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_mb_before": round(rss0 / 1024, 1), "frames_per_s": {}}
    lock = threading.Lock()
    for threads in (1, 2, 4):
        for name, lk in (("no_lock", None), ("lock", lock)):
            out["frames_per_s"][f"{threads}_threads_{name}"] = round(run(detector, images, threads, args.seconds, lk), 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
