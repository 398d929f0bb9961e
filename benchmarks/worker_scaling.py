#!/usr/bin/env python3
"""Face work vs gunicorn workers: resident memory per worker and face frames analysed per second.

    .venv/bin/python benchmarks/worker_scaling.py [--workers 1 2 4] [--clients 4] [--duration 20]

For each worker count: ``idp serve --workers N`` (face models in every worker, as shipped) on a fresh
temporary data directory; ``--clients`` accounts sign in with their password, give the biometric
consent and send real 640x480 face JPEGs (``face_flood.face_jpegs``) to the enrollment capture API as
fast as the server answers, for ``--duration`` seconds (loopback only, bounded in time and requests).
Frames per second counts the frames answered 200 (decoded, detected, embedded). Memory is VmRSS and
VmHWM of each worker (the children of the gunicorn master that run Python) from ``/proc``, read
after the flood. Appends one JSON record per worker count to ``benchmarks/results/worker-scaling.jsonl``.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from face_flood import face_jpegs, flood, signed_in_with_consent
from oidc_bench import PASSWORD, ROOT, Provider


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker_pids(master: int) -> list[int]:
    """The master's children with the master's command line (forked workers; the embedded database
    is a separate program)."""
    cmdline = Path(f"/proc/{master}/cmdline").read_bytes()
    out = []
    for task in Path(f"/proc/{master}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if Path(f"/proc/{child}/cmdline").read_bytes() == cmdline:
                    out.append(int(child))
            except OSError:
                continue
    return sorted(out)


def run(workers: int, clients: int, duration: float, threads: int, env: list[str]) -> dict:
    p = Provider(workers, threads, face=True, source=ROOT)
    for item in env:
        name, _, value = item.partition("=")
        p.env[name] = value
    try:
        p.prepare()
        names = [f"scale{i}" for i in range(clients)]
        for name in names:
            p.cli("users", "create", "--username", name, "--email", f"{name}@example.test", "--password-stdin",
                  stdin=PASSWORD + "\n")
        p.start()
        sessions = [signed_in_with_consent(p.base, name) for name in names]
        images = [face_jpegs(60, seed) for seed in range(clients)]
        answers: collections.Counter = collections.Counter()
        lock = threading.Lock()
        stop = threading.Event()
        ths = [threading.Thread(target=flood, args=(p.base, s, csrf, imgs, stop, answers, lock, 2000))
               for (s, csrf), imgs in zip(sessions, images)]
        t0 = time.monotonic()
        for th in ths:
            th.start()
        time.sleep(duration)
        stop.set()
        for th in ths:
            th.join(timeout=120)
        elapsed = time.monotonic() - t0
        pids = worker_pids(p.proc.pid)
        rss = [round(_status_kib(pid, "VmRSS") / 1024) for pid in pids]
        hwm = [round(_status_kib(pid, "VmHWM") / 1024) for pid in pids]
        ok = sum(v for k, v in answers.items() if k.startswith("frame 200"))
        return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "workers": workers, "threads": threads,
                "clients": clients, "env": env, "duration_s": round(elapsed, 1), "worker_rss_mib": rss,
                "worker_peak_rss_mib": hwm, "frames_ok": ok, "frames_per_s": round(ok / elapsed, 2),
                "answers": dict(sorted(answers.items()))}
    finally:
        p.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server, e.g. "
                    "IDP_FACE_CONCURRENCY=2 (one worker's models shared by 2 analyses, as a shared pool would)")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "worker-scaling.jsonl"))
    args = ap.parse_args()
    for n in args.workers:
        rec = run(n, args.clients, min(args.duration, 30.0), args.threads, args.env)
        print(json.dumps(rec), flush=True)
        with open(args.results, "a") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
