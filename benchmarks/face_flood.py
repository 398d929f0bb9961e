#!/usr/bin/env python3
"""Face-frame flood: does another user's ``GET /login`` stay fast while accounts flood webcam frames?

    .venv/bin/python benchmarks/face_flood.py [--ref e785bec] [--flooders 8] [--duration 30]
                                              [--workers 2] [--threads 4] [--env NAME=VALUE ...]

What it does (loopback only, bounded in time and in requests):

1. ``idp serve`` (gunicorn gthread, the production server, face models loaded) on a fresh temporary
   data directory, as ``benchmarks/oidc_bench.py`` starts it (its ``Provider``); ``--ref`` serves an
   exported commit instead of the working tree (the "before" figure).
2. ``--flooders`` accounts are created with the CLI; each signs in with its password over HTTP, gives
   the biometric consent and then, from its own thread, floods the capture API as fast as the server
   answers: start an enrollment capture, send a real 640x480 face JPEG (full detection + embedding work)
   again and again, start a new capture when one is full; any refusal (429, 409) is answered by trying
   again at once, as an attacker would.
3. Meanwhile another client (its own session) requests ``GET /login`` every 100 ms; its latency is the
   figure. The same probe runs for 10 s before the flood (idle baseline).

Prints one JSON record (latency percentiles, flood answers by status) and appends it to
``benchmarks/results/face-flood.jsonl``.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import re
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oidc_bench import PASSWORD, ROOT, Provider, export_ref, pct, source_label

FACE = ROOT.parent / "shared" / "data" / "faces" / "lfw_color65_240px" / "Tony_Blair"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def face_jpegs(count: int, seed: int) -> list[bytes]:
    """``count`` distinct 640x480 face JPEGs (a few random pixels differ), so that the server's
    duplicate/replay checks never short-cut the analysis: every frame is decoded, detected, embedded."""
    import numpy as np
    from PIL import Image
    paths = sorted(FACE.glob("*.jpg"))
    rng = np.random.RandomState(seed)
    out = []
    for i in range(count):
        img = Image.open(paths[i % len(paths)]).convert("RGB").resize((480, 480))
        canvas = np.full((480, 640, 3), 120, np.uint8)
        canvas[:, 80:560] = np.asarray(img)
        canvas[:8, :8] = rng.randint(0, 255, (8, 8, 3))
        buf = io.BytesIO()
        Image.fromarray(canvas).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def signed_in_with_consent(base: str, username: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    page = s.get(base + "/login", timeout=30)
    token = CSRF_INPUT.search(page.text).group(1)
    r = s.post(base + "/login", data={"csrf_token": token, "username": username, "password": PASSWORD},
               allow_redirects=False, timeout=60)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    page = s.get(base + "/face/enroll", timeout=30)
    token = CSRF_INPUT.search(page.text).group(1)
    from idp.faceweb.notice import NOTICE_VERSION
    r = s.post(base + "/face/consent", data={"csrf_token": token, "consent": "yes",
                                             "notice_version": NOTICE_VERSION}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    page = s.get(base + "/face/enroll", timeout=30)
    return s, CSRF_META.search(page.text).group(1)


def flood(base: str, s: requests.Session, csrf: str, images: list[bytes], stop: threading.Event, answers: collections.Counter,
          lock: threading.Lock, max_requests: int) -> None:
    headers = {"X-CSRFToken": csrf, "Accept": "application/json"}
    cap = None
    for n in range(max_requests):
        if stop.is_set():
            return
        try:
            if cap is None:
                r = s.post(base + "/api/face/enroll/captures", json={}, headers=headers, timeout=120)
                key = f"start {r.status_code}"
                if r.status_code == 201:
                    cap = r.json()
            else:
                r = s.post(base + cap["frames_url"], data=images[n % len(images)], timeout=120,
                           headers={**headers, "Content-Type": "image/jpeg", "X-Capture-Nonce": cap["nonce"],
                                    "X-Frame-Time": str(int(time.time() * 1000))})
                body = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
                key = f"frame {r.status_code} {body.get('error', '')}".strip()
                if r.status_code == 409 or (r.status_code == 200 and body.get("done")) or r.status_code == 403:
                    cap = None  # full, finished or expired: a new capture
                if r.status_code == 429 and body.get("error") == "face_rate_limited":
                    cap = None if "captures" in body.get("message", "") else cap
        except requests.RequestException as e:
            key = f"error {type(e).__name__}"
        with lock:
            answers[key] += 1


def probe(base: str, stop: threading.Event, out: list[float], interval: float = 0.1) -> None:
    s = requests.Session()
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            r = s.get(base + "/login", timeout=120)
            ok = r.status_code == 200
        except requests.RequestException:
            ok = False
        dt = time.perf_counter() - t0
        out.append(dt * 1000.0 if ok else float("inf"))
        time.sleep(max(0.0, interval - dt))


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 1), "p90_ms": round(pct(ms, 90), 1),
            "p99_ms": round(pct(ms, 99), 1), "max_ms": round(max(ms), 1) if ms else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", help="git ref to serve instead of the working tree (the 'before' figure)")
    ap.add_argument("--flooders", type=int, default=8)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of flood")
    ap.add_argument("--max-requests", type=int, default=2000, help="per flooder, a bound on top of --duration")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--images", type=int, default=300, help="distinct frames per flooder")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server (e.g. limits)")
    ap.add_argument("--results", help="JSONL file to append to")
    args = ap.parse_args()

    source, code = None, source_label()
    if args.ref:
        source, commit = export_ref(args.ref)
        code = commit[:10]
    # The working tree is served through PYTHONPATH too: the ``idp`` script alone would import whatever
    # checkout the virtualenv's editable install points at.
    p = Provider(args.workers, args.threads, face=True, source=source or ROOT)
    for item in args.env:
        name, _, value = item.partition("=")
        p.env[name] = value
    images = [face_jpegs(args.images, seed) for seed in range(args.flooders)]
    print(f"code under test: {code}; preparing {p.dir}", flush=True)
    try:
        p.prepare()
        names = [f"flooder{i}" for i in range(args.flooders)]
        for name in names:
            p.cli("users", "create", "--username", name, "--email", f"{name}@example.test", "--password-stdin",
                  stdin=PASSWORD + "\n")
        p.start()
        print(f"server up at {p.base}", flush=True)
        sessions = [signed_in_with_consent(p.base, name) for name in names]

        idle: list[float] = []
        stop = threading.Event()
        t = threading.Thread(target=probe, args=(p.base, stop, idle))
        t.start()
        time.sleep(10)
        stop.set()
        t.join()

        answers: collections.Counter = collections.Counter()
        lock = threading.Lock()
        loaded: list[float] = []
        stop = threading.Event()
        threads = [threading.Thread(target=flood, args=(p.base, s, csrf, imgs, stop, answers, lock,
                                                        args.max_requests))
                   for (s, csrf), imgs in zip(sessions, images)]
        prober = threading.Thread(target=probe, args=(p.base, stop, loaded))
        t0 = time.monotonic()
        for th in threads:
            th.start()
        time.sleep(1.0)  # the flood is under way
        prober.start()
        time.sleep(max(0.0, args.duration - 1.0))
        stop.set()
        prober.join()
        for th in threads:
            th.join(timeout=180)
        elapsed = time.monotonic() - t0
        rec = {"code": code, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "workers": args.workers,
               "threads": args.threads, "flooders": args.flooders, "duration_s": round(elapsed, 1),
               "env": args.env, "login_idle": summary(idle), "login_under_flood": summary(loaded),
               "flood_answers": dict(sorted(answers.items())),
               "frames_analysed_per_s": round(sum(v for k, v in answers.items() if k.startswith("frame 200"))
                                              / elapsed, 1)}
        print(json.dumps(rec, indent=1), flush=True)
        results = Path(args.results or ROOT / "benchmarks" / "results" / "face-flood.jsonl")
        results.parent.mkdir(parents=True, exist_ok=True)
        with results.open("a") as f:
            f.write(json.dumps(rec) + "\n")
    finally:
        p.stop()
        if source is not None:
            import shutil
            shutil.rmtree(source, ignore_errors=True)


if __name__ == "__main__":
    main()
