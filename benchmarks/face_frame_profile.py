"""Where a face-step frame's server time goes, and what the decision (/finish) costs.

Usage::

    .venv/bin/python benchmarks/face_frame_profile.py [--captures 3] [--template-version 1|2|3|4 ...]
        [--out benchmarks/results/face-frame-profile.json]

The real app (``create_app``, face models warmed up, embedded SecantusDB, liveness on with the default
passive check) is driven through Flask's test client as face-capture.js drives it: a password sign-in,
then face-step captures with the challenge pinned to the clip's two moves (``d3`` from 4.0 s: left, then
right), frames of the clip filmed every 150 ms (640x480 JPEG q85 with fresh sensor noise per capture, so
the replay stores never refuse them) sent one at a time with their capture times until a frame answer says
``done``, then /finish. Every named step of the server is wrapped with a timer (wall time of the thread
that runs it), so a frame request splits into: access checks (template, lock, cooling-off), opening the
capture document, the rate limits, JPEG decode, the exact replay digest and its insert, MTCNN detection,
the quality gate, the FaceNet embedding, the 3-D landmarks, the face hash, MiniFASNet, the perceptual
replay lookup, the capture document's update, and the liveness progress (reading every stored frame back,
then the decision); the rest of the request is Flask, the session and JSON. The medians are printed per
frame position too (early frames vs late ones), which shows any cost that grows with the frames received.
The load average is printed with the results: on a shared machine, compare runs made in one sitting.
``--template-version`` names the template version(s) signed in with (one account per capture, its template
enrolled as that version): ``1`` (crop embedding, no mirror, no dlib: what the face step cost before flip
augmentation), ``2`` (crop + mirror, no dlib), ``3`` (crop + mirror, dlib on the capture's first good frames:
the "dlib" step), ``4`` (the default: crop alone, dlib on the first good frames). Several versions are run
interleaved (capture 1 of each, then capture 2 of each, ..., the order rotated each round), after one
capture that is not counted, so that load from other work hits them alike, and reported per version. Each
capture's server time (its frame requests and its /finish, summed) is printed too.
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser.harness import FACES_DIR, Feeds, create_account  # noqa: E402

#: the clip's stretch with two turns (person, start s, seconds): left 15 degrees, then right 13 (as in
#: benchmarks/face_step_browser.py)
CLIP = ("d3", 4.0, 4.0)
PASSWORD = "correct horse battery staple 42"
CSRF_INPUT = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')

_lock = threading.Lock()
_spans: dict[str, float] = defaultdict(float)  # name -> ms, for the request being timed


def _timed(name, fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            with _lock:
                _spans[name] += (time.perf_counter() - t0) * 1000.0
    return wrapper


def _wrap(owner, attr, name=None):
    setattr(owner, attr, _timed(name or attr, getattr(owner, attr)))


def instrument(engine) -> None:
    """Timers around the named steps (module attributes, so the callers' lookups find the wrappers)."""
    from idp.face import quality
    from idp.faceweb import capture, capture_sessions, lockout, reenrollment
    from idp.faceweb import liveness as web
    from idp.faceweb.limits import FaceRates
    from idp.liveness import core, landmarks
    from idp.liveness.antispoof import AntiSpoof

    C, det, E, Caps = capture.CaptureService, type(engine.detector), type(engine), capture_sessions.Captures
    steps = (  # (owner, attribute, the step it is counted under), in the order a frame, then /finish meets them
        (C, "check_access", "access checks"),
        (C, "_decode", "decode"),
        (Caps, "open_for", "open capture doc"),
        (FaceRates, "frame_sent", "rate limits"),
        (web, "exact_fingerprint", "replay digest"),
        (web, "remember_frame", "replay insert"),
        (det, "detect", "MTCNN"),
        (quality, "measure", "quality gate"),
        (quality, "check", "quality gate"),
        (quality, "crop_face", "quality gate"),
        (E, "embed_versions", "FaceNet"),
        (E, "embed_dlib", "dlib"),
        (landmarks.DenseLandmarker, "__call__", "3-D landmarks"),
        (web, "face_hash", "face hash"),
        (AntiSpoof, "score", "MiniFASNet"),
        (web, "near_copy", "near-copy lookup"),
        (web, "remember_frame_hash", "face hash insert"),
        (C, "_settle_abandoned", "settle abandoned captures"),
        (Caps, "set_once", "capture doc update"),
        (Caps, "add_frame", "capture doc update"),
        (web, "thumb_of", "thumbnail"),
        (web, "observations", "progress: read frames"),
        (web, "decide_capture", "progress: decision"),
        (core, "check_turns", "decision: turns (3-D)"),
        (web, "progress", "progress total"),
        (Caps, "begin_finish", "finish: open"),
        (Caps, "embeddings", "finish: decrypt embeddings"),
        (web, "evaluate", "finish: liveness decision"),
        (C, "blocker", "finish: blocker"),
        (E, "verify", "finish: identity score"),
        (C, "_accepted", "finish: accept face hashes"),
        (Caps, "finish", "finish: close"),
        (lockout, "reserve_judging", "finish: reserve"),
        (lockout, "release_judging", "finish: reserve"),
        (lockout, "reset_failures", "finish: reset failures"),
        (reenrollment, "cooloff_until", "cooloff lookup"),
    )
    for owner, attr, name in steps:
        _wrap(owner, attr, name)


def film(feeds: Feeds, seed: int, tmp: Path, clip: tuple[str, float, float] = CLIP,
         mirrored: bool = False) -> list[bytes]:
    """A stretch of a clip (person, start s, seconds; default the CLIP two-move stretch), ``mirrored`` or
    not, as the page films it: a frame every 150 ms, 640x480, JPEG q85, sensor noise of ``seed``."""
    y4m = feeds.sequence(clip[0], [(clip[1], clip[2], mirrored)], noise_seed=9000 + seed, pingpong=False)
    w, h = Feeds.W, Feeds.H
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(y4m), "-vf", "fps=20/3", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True, timeout=120).stdout
    from PIL import Image
    frames = []
    for i in range(len(out) // (w * h * 3)):
        img = Image.frombytes("RGB", (w, h), out[i * w * h * 3:(i + 1) * w * h * 3])
        jpg = io.BytesIO()
        img.save(jpg, "JPEG", quality=85)
        frames.append(jpg.getvalue())
    return frames


def run(args) -> dict:
    from idp import create_app, get_config, get_db
    from idp.config import Config
    from idp.faceweb.views import engine as engine_of_app
    from idp.store import EmbeddedMongo

    tmp = Path(tempfile.mkdtemp(prefix="frame-profile-"))
    feeds = Feeds(FACES_DIR, tmp)
    mongo = EmbeddedMongo(tmp / "db").start()
    try:
        app = create_app(Config(issuer="http://127.0.0.1", data_dir=tmp / "data", mongodb_uri=mongo.uri,
                                db_name="frame_profile", face_enabled=True, log_format="text", log_level="WARNING",
                                liveness_challenges="turn_left+turn_right", extra={"auto_migrate": True}))
        for warm_up in app.extensions.get("idp_warmups", []):
            warm_up()
        from idp.face import settings
        templates = {}
        with app.app_context():
            eng = engine_of_app()
            for version in args.template_version:  # enrolled as that version (the engine stays current)
                eng.model_version = version
                try:
                    res = eng.enroll(feeds.frames(CLIP[0], count=10))
                finally:
                    eng.model_version = settings.MODEL_VERSION
                assert res.ok and res.template.model_version == version, res.reasons
                templates[version] = res.template
        instrument(eng)
        config, db = get_config(app), get_db(app)
        per_frame, finishes, records = [], [], []
        # capture c of each version, the versions' order rotated from one round to the next; first one capture
        # that is not counted (the app's first requests are slower)
        vs = list(args.template_version)
        runs = [(-1, vs[0])] + [(c, vs[(i + c) % len(vs)]) for c in range(args.captures) for i in range(len(vs))]
        for n, (c, version) in enumerate(runs):
            frames = film(feeds, n, tmp)  # fresh noise for every capture (the replay stores are global)
            user = create_account(db, config, f"prof{c}{os.urandom(3).hex()}", PASSWORD, "Prof", templates[version])
            client = app.test_client()
            page = client.get("/login")
            token = CSRF_INPUT.search(page.text).group(1)
            r = client.post("/login", data={"csrf_token": token, "username": user["username"], "password": PASSWORD})
            assert r.status_code == 302, r.status_code
            csrf = CSRF_META.search(client.get("/face/verify").text).group(1)
            h = {"X-CSRFToken": csrf, "Accept": "application/json"}
            cap = client.post("/api/face/verify/captures", json={}, headers=h).get_json()
            t0 = 1_750_000_000_000.0
            done = False
            for k, jpg in enumerate(frames):
                _spans.clear()
                w0 = time.perf_counter()
                r = client.post(cap["frames_url"], data=jpg, content_type="image/jpeg",
                                headers={**h, "X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(t0 + 150.0 * k)})
                total = (time.perf_counter() - w0) * 1000.0
                body = r.get_json()
                assert r.status_code == 200, body
                per_frame.append({"capture": c, "version": version, "k": k, "request": total, "bytes": len(jpg),
                                  **dict(_spans)})
                if body["done"]:
                    done = True
                    break
            _spans.clear()
            w0 = time.perf_counter()
            fin = client.post(cap["finish_url"], headers={**h, "X-Capture-Nonce": cap["nonce"]})
            total = (time.perf_counter() - w0) * 1000.0
            ok = bool(fin.get_json().get("ok"))
            finishes.append({"capture": c, "version": version, "request": total, "frames": k + 1, "done": done,
                             "ok": ok, **dict(_spans)})
            records.append({"capture": c, "version": version, "frames": k + 1, "ok": ok,
                            "message": fin.get_json().get("message")})
            print(json.dumps(records[-1]), file=sys.stderr)
            if c < 0:  # the warm-up capture
                per_frame = [r for r in per_frame if r["capture"] >= 0]
                finishes, records = finishes[:-1], records[:-1]
        return {"load_avg": os.getloadavg(), "template_versions": list(args.template_version), "frames": per_frame,
                "finishes": finishes, "captures": records}
    finally:
        mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def table(rows: list[dict]) -> list[tuple[str, float, float]]:
    skip = ("capture", "version", "k", "bytes", "frames", "done", "ok")
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in skip))
    out = []
    for key in keys:
        v = [r.get(key, 0.0) for r in rows]
        out.append((key, statistics.median(v), statistics.mean(v)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--captures", type=int, default=3)
    ap.add_argument("--out", default="")
    ap.add_argument("--template-version", choices=["1", "2", "3", "4"], nargs="+", default=["4"])
    args = ap.parse_args()
    if not FACES_DIR.is_dir() or shutil.which("ffmpeg") is None:
        print("needs the shared faces data and ffmpeg", file=sys.stderr)
        return 2
    result = run(args)
    print(f"load average at the end: {result['load_avg']}")
    result["per_version"] = {}
    for version in args.template_version:
        frames = [r for r in result["frames"] if r["version"] == version]
        fins = [r for r in result["finishes"] if r["version"] == version]
        print(f"\n=== template version {version} ===")
        print(f"frame request ({len(frames)} frames of {len(fins)} captures): step, median ms, mean ms")
        for key, med, mean in table(frames):
            print(f"  {key:32s} {med:7.1f} {mean:7.1f}")
        early = [r for r in frames if r["k"] < 8]
        late = [r for r in frames if r["k"] >= 16]
        for label, rows in (("frames 0-7", early), ("frames 16+", late)):
            if rows:
                print(f"{label}: request {statistics.median(r['request'] for r in rows):.1f} ms, progress "
                      f"{statistics.median(r.get('progress total', 0) for r in rows):.1f} ms, doc update "
                      f"{statistics.median(r.get('capture doc update', 0) for r in rows):.1f} ms, open doc "
                      f"{statistics.median(r.get('open capture doc', 0) for r in rows):.1f} ms")
        print("finish: step, median ms, mean ms")
        for key, med, mean in table(fins):
            print(f"  {key:32s} {med:7.1f} {mean:7.1f}")
        order = [f["capture"] for f in fins]
        totals = [sum(r["request"] for r in frames if r["capture"] == c) + f["request"] for c, f in zip(order, fins)]
        dlib = [sum(r.get("dlib", 0.0) for r in frames if r["capture"] == c) for c in order]
        facenet = [sum(r.get("FaceNet", 0.0) for r in frames if r["capture"] == c) for c in order]
        result["per_version"][version] = {
            "capture_server_ms": totals, "dlib_ms": dlib, "facenet_ms": facenet,
            "frame_request_p50_ms": statistics.median(r["request"] for r in frames),
            "facenet_p50_ms": statistics.median(r.get("FaceNet", 0.0) for r in frames),
            "frames_per_capture": [f["frames"] for f in fins], "ok": [f["ok"] for f in fins]}
        print(f"capture server time (frames + finish), per capture: {', '.join(f'{t:.0f}' for t in totals)} ms "
              f"(median {statistics.median(totals):.0f}); of which dlib: {', '.join(f'{t:.0f}' for t in dlib)} ms, "
              f"FaceNet: {', '.join(f'{t:.0f}' for t in facenet)} ms")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
