"""Seconds until ``idp serve`` answers ``/readyz`` 200: first start (fresh data dir: the face model is
converted) and second start (cached weights), a few repetitions.

    python benchmarks/start_time.py [--reps 3] [--workers 1] [--out benchmarks/results/start_time.json]

Each repetition uses a new temporary data directory with the embedded database and face sign-in on;
loopback only. Besides the total, the log's own timestamps are not used: the script records when the
process was started, when the port first accepted a connection and when /readyz first said 200.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_once(data_dir: Path, workers: int, timeout: float = 240) -> dict:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "MONGODB_", "PROMETHEUS_"))}
    env.update(IDP_DATA_DIR=str(data_dir), IDP_LOG_FORMAT="text", PYTHONPATH=str(ROOT))
    log_path = data_dir / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "idp.cli", "serve", "--port", str(port),
                                 "--workers", str(workers), "--threads", "4"],
                                env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        accepts = ready = None
        try:
            while time.monotonic() - t0 < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"idp serve exited {proc.returncode}: {log_path.read_text()[-2000:]}")
                if accepts is None:
                    with socket.socket() as s:
                        s.settimeout(0.5)
                        if s.connect_ex(("127.0.0.1", port)) == 0:
                            accepts = time.monotonic() - t0
                if accepts is not None:
                    try:
                        if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                            ready = time.monotonic() - t0
                            break
                    except requests.RequestException:
                        pass
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if ready is None:
        raise RuntimeError(f"/readyz not 200 within {timeout} s")
    return {"port_accepts_s": round(accepts, 2), "ready_s": round(ready, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runs = []
    for rep in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="idp-start-") as tmp:
            first = start_once(Path(tmp), args.workers)
            second = start_once(Path(tmp), args.workers)
        runs.append({"first": first, "second": second})
        print(f"rep {rep + 1}: first {first}  second {second}", flush=True)
    summary = {which: {key: statistics.median(r[which][key] for r in runs) for key in ("port_accepts_s", "ready_s")}
               for which in ("first", "second")}
    print("median:", json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"workers": args.workers, "runs": runs, "median": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
