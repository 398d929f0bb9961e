"""What judging every move's face at enrollment costs: real enrollments through the product's capture API.

Usage::

    .venv/bin/python benchmarks/enrollment_cost.py [--repeats 3] [--out benchmarks/results/enrollment-cost.json]
    # about 5 min with 3 repeats (24 enrollments) on the shared 2-core machine

An enrollment with liveness embeds every face frame of its capture, good or not (``embed="always"`` in
``CaptureService._observe_frame``), so that its finish can judge each move's frames against the template
it built from the good ones (``CaptureService._moves_made_by_owner``). Without that check only the good
frames would be embedded (FaceNet; dlib embeds the good ones either way) and the finish would build the
template and stop there. This measures what the check adds.

What runs: the real app (``create_app``, face models warmed up, embedded SecantusDB, liveness on, the current
template version) driven through Flask's test client as face-capture.js drives it, as
``face_frame_profile.py`` does: for each enrollment a fresh account with biometric consent, a password
sign-in, the enroll page, a capture with the challenge pinned to the moves the clip performs, its frames
filmed every 150 ms (640x480 JPEG q85, fresh sensor noise per capture: the replay stores would refuse the
same pixels twice) sent one at a time with their capture times until an answer says ``done``, then
/finish. The stretches (``face_step_browser.py``'s: the shared clips' only stretches with opposite head
turns of >= 12 degrees close together): ``d12`` from 0.4 s (left, right), ``d3`` from 4.0 s (left,
right) and ``d3`` from 4.0 s for 6 s (left, right, left: three moves). None of the shared clips has a face
frame that fails the quality gate (their turns stay well inside its yaw limit), so these embed no frame for
the move check alone; a fourth stretch, the three-move one with the gate's yaw limit lowered in this
process (:data:`PAST_GATE_YAW`), stands for a person who turns past the gate: every turned frame is then a
face frame that is not good, embedded only for the move check.

Each stretch is enrolled twice per repeat, in alternating order (an A/B under the same load): ``full``, the
product as it is, and ``bypass``, with the move-identity work switched off inside this process only (the
frames embedded as ``embed="ok"`` asks, ``_moves_made_by_owner`` answering yes without work). Measured per
enrollment (server side; wall time, and CPU time of this process: every thread of the models, not the
database server's own process):

* the finish (``CaptureService.finish``), and within it ``_moves_made_by_owner`` (decrypting every
  embedded face frame, then one FaceNet-only match per move frame);
* the whole capture (every frame request's ``CaptureService.add_frame`` plus the finish);
* frames sent, face frames, good frames, frames FaceNet embedded, and the FaceNet time spent on face
  frames that are not good (embedded only for the move check);
* ``move-identity share``: (that FaceNet time + ``_moves_made_by_owner``) / the whole capture, CPU.

The load average is printed with the results: on a shared machine, compare within one run.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from browser.harness import FACES_DIR, Feeds, create_account  # noqa: E402
from face_frame_profile import CSRF_INPUT, CSRF_META, PASSWORD, film  # noqa: E402

#: The quality gate's yaw limit of the "past the gate" stretch (settings.MAX_ABS_YAW is 0.30): the clips'
#: turns reach |yaw| 0.10-0.17 and pass the gate, so none of their frames is embedded for the move check
#: alone; at 0.06 every frame of a turn fails it, as the frames of a turn about twice as wide would.
PAST_GATE_YAW = 0.06
#: (label, (person, start s, seconds), mirrored, the challenge the stretch performs, the quality gate's
#: yaw limit for it: None, the product's)
STRETCHES = [
    ("d12 L+R", ("d12", 0.4, 4.0), False, "turn_left+turn_right", None),
    ("d3 L+R", ("d3", 4.0, 4.0), False, "turn_left+turn_right", None),
    ("d3 L+R+L", ("d3", 4.0, 6.0), False, "turn_left+turn_right+turn_left", None),
    ("d3 L+R+L, turns past the gate", ("d3", 4.0, 6.0), False, "turn_left+turn_right+turn_left", PAST_GATE_YAW),
]
MODES = ("full", "bypass")

_now: dict = {}  # the enrollment being measured: counters and timers
_bypass = {"on": False}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _add(key: str, since: tuple[float, float]) -> None:
    wall, cpu = _clock()
    _now[key + "_wall"] = _now.get(key + "_wall", 0.0) + (wall - since[0]) * 1000.0
    _now[key + "_cpu"] = _now.get(key + "_cpu", 0.0) + (cpu - since[1]) * 1000.0


def _count(key: str, n: int = 1) -> None:
    _now[key] = _now.get(key, 0) + n


def instrument(engine) -> None:
    """Timers and counters around the capture service and the engine (class attributes: every caller
    finds the wrappers), and the ``bypass`` switch (this process only)."""
    from idp.faceweb import capture

    C, E = capture.CaptureService, type(engine)
    add_frame, finish, moves = C.add_frame, C.finish, C._moves_made_by_owner
    analyze, embed_versions, embed_dlib = E.analyze, E.embed_versions, E.embed_dlib

    def timed(fn, name):
        @functools.wraps(fn)
        def wrapper(self, *a, **kw):
            t = _clock()
            try:
                return fn(self, *a, **kw)
            finally:
                _add(name, t)
        return wrapper
    timed_add_frame, timed_finish = timed(add_frame, "frames"), timed(finish, "finish")

    @functools.wraps(moves)
    def timed_moves(self, doc, windows, template=None):
        if _bypass["on"] and self.purpose == "enroll":
            return True
        t = _clock()
        try:
            return moves(self, doc, windows, template)
        finally:
            _add("moves_check", t)

    @functools.wraps(analyze)
    def counted_analyze(self, image, embed="ok", dlib="never", mirror=None):
        if _bypass["on"] and embed == "always":
            embed = "ok"
        _now["_embed_call"] = (0.0, 0.0)
        a = analyze(self, image, embed=embed, dlib=dlib, mirror=mirror)
        wall, cpu = _now.pop("_embed_call")
        _count("analysed")
        if a.box is not None:
            _count("face_frames")
        if a.ok:
            _count("good_frames")
        elif a.embedding is not None:  # embedded only because every face frame is (the move check)
            _count("embedded_not_good")
            _now["facenet_not_good_wall"] = _now.get("facenet_not_good_wall", 0.0) + wall
            _now["facenet_not_good_cpu"] = _now.get("facenet_not_good_cpu", 0.0) + cpu
        return a

    @functools.wraps(embed_versions)
    def timed_embed_versions(self, crops, mirror=None):
        t = _clock()
        try:
            return embed_versions(self, crops, mirror)
        finally:
            wall, cpu = _clock()
            dw, dc = (wall - t[0]) * 1000.0, (cpu - t[1]) * 1000.0
            _count("facenet_embedded", len(crops) if getattr(crops, "ndim", 4) == 4 else 1)
            _now["facenet_wall"] = _now.get("facenet_wall", 0.0) + dw
            _now["facenet_cpu"] = _now.get("facenet_cpu", 0.0) + dc
            if "_embed_call" in _now:
                w0, c0 = _now["_embed_call"]
                _now["_embed_call"] = (w0 + dw, c0 + dc)

    @functools.wraps(embed_dlib)
    def counted_embed_dlib(self, faces):
        faces = list(faces)
        _count("dlib_embedded", len(faces))
        return embed_dlib(self, faces)

    C.add_frame, C.finish, C._moves_made_by_owner = timed_add_frame, timed_finish, timed_moves
    E.analyze, E.embed_versions, E.embed_dlib = counted_analyze, timed_embed_versions, counted_embed_dlib


def enroll(app, feeds: Feeds, tmp: Path, stretch: tuple, seed: int) -> dict:
    """One enrollment of a fresh account with ``stretch``'s frames; the measurements of :data:`_now`."""
    from idp import get_config, get_db
    from idp.faceweb import notice

    from idp.face import settings

    label, clip, mirrored, challenge, gate_yaw = stretch
    frames = film(feeds, seed, tmp, clip, mirrored)  # fresh noise for every capture (the replay stores are global)
    config, db = get_config(app), get_db(app)
    config.liveness_challenges = challenge  # read at every capture start
    user = create_account(db, config, f"enr{seed}{os.urandom(3).hex()}", PASSWORD, "Enrol")
    notice.record_consent(db, user["_id"])
    client = app.test_client()
    token = CSRF_INPUT.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"csrf_token": token, "username": user["username"], "password": PASSWORD})
    assert r.status_code == 302, r.status_code
    csrf = CSRF_META.search(client.get("/face/enroll").text).group(1)
    h = {"X-CSRFToken": csrf, "Accept": "application/json"}
    r = client.post("/api/face/enroll/captures", json={}, headers=h)
    assert r.status_code == 201, r.get_json()
    cap = r.get_json()
    _now.clear()
    t0, sent = 1_750_000_000_000.0, 0
    yaw, settings.MAX_ABS_YAW = settings.MAX_ABS_YAW, gate_yaw or settings.MAX_ABS_YAW
    try:
        for k, jpg in enumerate(frames):
            r = client.post(cap["frames_url"], data=jpg, content_type="image/jpeg",
                            headers={**h, "X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(t0 + 150.0 * k)})
            assert r.status_code == 200, r.get_json()
            sent += 1
            if r.get_json()["done"]:
                break
        fin = client.post(cap["finish_url"], headers={**h, "X-Capture-Nonce": cap["nonce"]})
    finally:
        settings.MAX_ABS_YAW = yaw
    body = fin.get_json()
    rec = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in _now.items()}
    rec.update(stretch=label, challenge=challenge, frames_sent=sent, ok=bool(body.get("ok")),
               reasons=body.get("reasons"), load_1min=round(os.getloadavg()[0], 2))
    for kind in ("wall", "cpu"):
        rec[f"capture_{kind}"] = round(rec.get(f"frames_{kind}", 0.0) + rec.get(f"finish_{kind}", 0.0), 1)
    extra = rec.get("facenet_not_good_cpu", 0.0) + rec.get("moves_check_cpu", 0.0)
    rec["move_identity_cpu"] = round(extra, 1)
    rec["move_identity_share"] = round(extra / rec["capture_cpu"], 4) if rec["capture_cpu"] else None
    return rec


def run(args) -> dict:
    from idp import create_app
    from idp.config import Config
    from idp.faceweb.views import engine as engine_of_app
    from idp.store import EmbeddedMongo

    tmp = Path(tempfile.mkdtemp(prefix="enrollment-cost-"))
    feeds = Feeds(FACES_DIR, tmp)
    mongo = EmbeddedMongo(tmp / "db").start()
    records = []
    try:
        app = create_app(Config(issuer="http://127.0.0.1", data_dir=tmp / "data", mongodb_uri=mongo.uri,
                                db_name="enrollment_cost", face_enabled=True, log_format="text", log_level="WARNING",
                                face_ip_captures=0, face_ip_frames=0, extra={"auto_migrate": True}))
        for warm_up in app.extensions.get("idp_warmups", []):
            warm_up()
        with app.app_context():
            instrument(engine_of_app())
        stretches = [s for s in STRETCHES if not args.only or s[0] in args.only]
        seed = 0
        plan = [(-1, stretches[0], "full")]  # one enrollment not counted (the app's first requests are slower)
        for rep in range(args.repeats):
            for i, stretch in enumerate(stretches):
                order = MODES if (rep + i) % 2 == 0 else MODES[::-1]
                plan += [(rep, stretch, mode) for mode in order]
        for rep, stretch, mode in plan:
            seed += 1
            _bypass["on"] = mode == "bypass"
            try:
                rec = enroll(app, feeds, tmp, stretch, seed)
            finally:
                _bypass["on"] = False
            rec.update(rep=rep, mode=mode)
            print(json.dumps(rec), file=sys.stderr, flush=True)
            if rep >= 0:
                records.append(rec)
        return {"load_avg_end": os.getloadavg(), "records": records}
    finally:
        mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _spread(values: list[float], fmt: str = "{:.0f}") -> str:
    if not values:
        return "-"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def report(result: dict) -> None:
    recs = result["records"]
    print(f"load average at the end: {', '.join(f'{v:.2f}' for v in result['load_avg_end'])}; "
          f"1-min load per enrollment: {_spread([r['load_1min'] for r in recs], '{:.1f}')}")
    print("\nPer enrollment, the product as it is (`full`): median (range) over the repeats; times in ms")
    print("| stretch | enrolled | frames sent / face / good | FaceNet-embedded (of which not good) | finish wall | "
          "finish CPU | move check in the finish: wall, CPU | FaceNet on not-good frames, CPU | capture CPU "
          "(frames + finish) | move-identity share of capture CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label in dict.fromkeys(r["stretch"] for r in recs):
        rs = [r for r in recs if r["stretch"] == label and r["mode"] == "full"]
        ok = sum(r["ok"] for r in rs)
        g = lambda key, rs=rs: [r.get(key, 0) for r in rs]  # noqa: E731
        print(f"| {label} | {ok}/{len(rs)} | {_spread(g('frames_sent'))} / {_spread(g('face_frames'))} / "
              f"{_spread(g('good_frames'))} | {_spread(g('facenet_embedded'))} ({_spread(g('embedded_not_good'))}) | "
              f"{_spread(g('finish_wall'))} | {_spread(g('finish_cpu'))} | {_spread(g('moves_check_wall'))}, "
              f"{_spread(g('moves_check_cpu'))} | {_spread(g('facenet_not_good_cpu'))} | {_spread(g('capture_cpu'))} | "
              f"{_spread([100 * (r['move_identity_share'] or 0) for r in rs], '{:.1f}')} % |")
    print("\nA/B in the same run: the same stretches with the move-identity work bypassed (`bypass`)")
    print("| stretch | full: capture CPU, finish CPU | bypass: capture CPU, finish CPU | full - bypass, capture CPU "
          "(per repeat) | bypass enrolled |")
    print("|---|---|---|---|---|")
    for label in dict.fromkeys(r["stretch"] for r in recs):
        full = {r["rep"]: r for r in recs if r["stretch"] == label and r["mode"] == "full"}
        by = {r["rep"]: r for r in recs if r["stretch"] == label and r["mode"] == "bypass"}
        diff = [full[k]["capture_cpu"] - by[k]["capture_cpu"] for k in sorted(full) if k in by]
        print(f"| {label} | {_spread([r['capture_cpu'] for r in full.values()])}, "
              f"{_spread([r['finish_cpu'] for r in full.values()])} | {_spread([r['capture_cpu'] for r in by.values()])}, "
              f"{_spread([r['finish_cpu'] for r in by.values()])} | {', '.join(f'{d:+.0f}' for d in diff)} | "
              f"{sum(r['ok'] for r in by.values())}/{len(by)} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=[], help="stretch labels to run (default: all)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if not FACES_DIR.is_dir() or shutil.which("ffmpeg") is None:
        print("needs the shared faces data and ffmpeg", file=sys.stderr)
        return 2
    result = run(args)
    report(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
