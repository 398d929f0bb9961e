"""The face step as a person meets it, timed in Chromium with a fake webcam: click -> done.

Usage::

    .venv/bin/python benchmarks/face_step_browser.py --label after [--repeats 2] [--js-from REV] \
        [--moves 2,3] [--out benchmarks/results/face-step-browser.jsonl]

``--js-from REV`` runs every attempt twice, interleaved (an A/B under the same machine load): once as
before, with the page script of that commit (and its 640x480 upload), the liveness decision's 3-D
comparisons computed afresh after every frame (no memo) and the frame thumbnail through the integral
image, and once with the current code. ``BENCH_DEBUG=1`` prints every
attempt's event timeline; ``BENCH_PROFILE=1`` prints a profile of the frame analysis.

What runs: the real app (``create_app``, face models warmed up, one werkzeug server as in the browser
tests, ``IDP_FACE_CONCURRENCY`` 1) on an embedded SecantusDB, and Debian's Chromium (never
``playwright install``) whose webcam plays a Y4M feed made from the shared talking-head clips
(``tests/browser/harness.py``, the browser tests' own feed builder). Each attempt is a fresh account
enrolled with that clip's person (the engine's template of ten clip frames), a fresh browser whose feed
has its own sensor noise (the replay stores would otherwise refuse the second attempt), a password
sign-in, then the face step with the challenge pinned to the two moves the clip performs.

Attempts (the only stretches of the shared clips with two opposite head turns of >= 12 degrees close
together, measured with the dense landmarks; benchmarks/liveness_rigidity_eval.py prints them): ``d12``
from 0.4 s (left 13 degrees at 1.2 s into the feed, right 16 at 2.9 s) and ``d3`` from 4.0 s (left 15 at
1.0 s, right 13 at 3.0 s), each at normal speed and 1.25x slower, each also mirrored (then it performs
right-then-left). The feed starts when the camera opens, so the clip's first turn comes ~1.0-1.2 s after
the camera starts whatever the cue (a person who reacts at once to a cue shown within 0.5 s) and its
second 2.9-3.7 s after.

``--moves 2,3`` compares two- and three-move challenges in one run, interleaved (a measurement of
``IDP_LIVENESS_MOVES=3``, whose filming window is 6 s): only ``d3`` performs three turns close together,
so both run on it, each attempt as above twice in a row - ``d3`` from 4.0 s for 4 s pinned to its two
moves, then ``d3`` from 4.0 s for 6 s pinned to its three (peaks: left 14 at ~1.6 s into the feed, right 13
at ~3.0 s, left 21 at ~5.0 s, 12 degrees reached at ~4.3 s; mirrored: right, left, right). Labels get ``-2moves`` / ``-3moves``.

Measured per attempt (page timestamps through an init script, server time through a
``Server-Timing`` header added by a WSGI wrapper here; the product sends none):

* ``total_ms``: click on "Start camera" -> the page leaves for the next step (accepted) or shows the
  failure;
* ``camera_ms`` (click -> camera open), ``cue_ms`` (click -> instruction visible), ``first_frame_ms``
  (click -> first frame filmed);
* ``frames`` sent, their mean JPEG size, the server's time per frame request (median) and for the
  decision (``finish``);
* ``analysis_ms``: the server's time in ``CaptureService.add_frame`` per frame (median);
* ``moves_done_ms``: click -> the frame that completed the requested moves was filmed (the person's
  part), and ``after_moves_ms``: that moment -> done (backlog, decision, navigation);
* ``decision_to_shown_ms``: the decision's answer reaching the page -> the page showing it;
* ``last_frame_to_finish_ms``: the last frame answer -> the finish request.

Records go to ``--out`` (JSON lines) and a summary is printed (median, range, accepted count).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser.harness import (CHROMIUM, FACES_DIR, Feeds, chromium_args, create_account, free_port,  # noqa: E402
                             serve, wait_http)

PASSWORD = "correct horse battery staple 42"
#: (person, feed segment start s, seconds, challenge performed, unmirrored)
SEGMENTS = [("d12", 0.4, 4.0, "turn_left+turn_right"), ("d3", 4.0, 4.0, "turn_left+turn_right")]
#: Three-move segments (``--moves``): the only stretch of the shared clips with three turns of >= 12
#: degrees within 6 s (d3: left 14 at 5.6 s, right 13 at 7.0 s, left 21 at 9.0 s of the clip).
SEGMENTS3 = [("d3", 4.0, 6.0, "turn_left+turn_right+turn_left")]
SLOWS = (1.0, 1.25)
OPPOSITE = {"turn_left": "turn_right", "turn_right": "turn_left"}

INIT_SCRIPT = r"""
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const send = (ev, data) => { try { window.__bench(ev, now(), data || {}); } catch (e) { /* no binding */ } };
  const kindOf = (u) => /\/frames$/.test(u) ? "frame" : /\/finish$/.test(u) ? "finish" : /\/captures$/.test(u) ? "start" : "other";
  const origFetch = window.fetch;
  window.fetch = function (url, opts) {
    const kind = kindOf(String(url));
    const t0 = now();
    const hdrs = (opts && opts.headers) || {};
    const bytes = opts && opts.body && opts.body.size ? opts.body.size : 0;
    if (kind !== "other") { send("request", { kind, t0, bytes, frame_time: hdrs["X-Frame-Time"] ? +hdrs["X-Frame-Time"] : null }); }
    return origFetch.apply(this, arguments).then((resp) => {
      if (kind === "other") { return resp; }
      const st = resp.headers.get("server-timing") || "";
      const m = /app;dur=([\d.]+)/.exec(st), mf = /frame;dur=([\d.]+)/.exec(st);
      const t1 = now();
      resp.clone().json().then((b) => send("response", { kind, t0, t1, status: resp.status, bytes,
          server_ms: m ? +m[1] : null, frame_ms: mf ? +mf[1] : null, ok: !!b.ok, done: !!b.done, message: b.message || "",
          moves_done: b.liveness ? b.liveness.moves_done : null,
          moves_needed: b.liveness ? b.liveness.moves_needed : null })).catch(() => {});
      return resp;
    });
  };
  document.addEventListener("click", (e) => { if (e.target && e.target.id === "start-camera") { send("click"); } }, true);
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const g = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => g(c).then((s) => { send("camera"); return s; });
  }
  let cued = false, failed = false;
  const watch = () => {
    const c = document.getElementById("challenge");
    if (!cued && c && !c.hidden && c.textContent.trim()) { cued = true; send("cue"); }
    const r = document.getElementById("result");
    if (!failed && r && r.classList.contains("is-error") && r.textContent.trim()) { failed = true; send("failed", { text: r.textContent.trim() }); }
  };
  new MutationObserver(watch).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""


_parts = threading.local()


def timed(wsgi):
    """WSGI wrapper: each response carries ``Server-Timing: app;dur=<ms>`` (the app's whole time) and, for
    a frame, ``frame;dur=<ms>`` (CaptureService.add_frame: decoding, analysis, liveness, its database
    writes; the rest of ``app`` is the request's access checks, rate limits and session)."""
    def app(environ, start_response):
        t0 = time.perf_counter()
        _parts.frame = None

        def sr(status, headers, exc_info=None):
            dur = (time.perf_counter() - t0) * 1000.0
            timing = f"app;dur={dur:.1f}" + (f", frame;dur={_parts.frame:.1f}" if _parts.frame is not None else "")
            return start_response(status, list(headers) + [("Server-Timing", timing)], exc_info)
        return wsgi(environ, sr)
    return app


def time_add_frame():
    from idp.faceweb.capture import CaptureService

    inner = CaptureService.add_frame
    if getattr(inner, "_timed", False):
        return

    profile = None
    if os.environ.get("BENCH_PROFILE"):  # cumulative profile of the frame analysis, printed at the end
        import cProfile
        profile = cProfile.Profile()
        import atexit
        import pstats
        atexit.register(lambda: pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(45))

    if profile is not None:  # the analysis runs on a face-slot thread: profile it there
        live = CaptureService._liveness_frame
        CaptureService._liveness_frame = lambda self, *a, **kw: profile.runcall(live, self, *a, **kw)

    def add_frame(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return inner(self, *a, **kw)
        finally:
            _parts.frame = (time.perf_counter() - t0) * 1000.0
    add_frame._timed = True
    CaptureService.add_frame = add_frame


def baseline(on: bool) -> None:
    """The server side of the "before" variant: the liveness decision's 3-D comparisons computed afresh
    for every frame after every frame (idp.liveness.rigidity without its memo), as before they were kept,
    and the frame thumbnail through the integral image for every frame size."""
    from idp.liveness import fingerprint, rigidity

    for name in ("compare", "predicted_planar_residual"):
        memo = getattr(rigidity, f"_bench_{name}", None) or getattr(rigidity, name)
        setattr(rigidity, f"_bench_{name}", memo)
        setattr(rigidity, name, memo.__wrapped__ if on else memo)
    fast = getattr(fingerprint, "_bench_area_resize", None) or fingerprint._area_resize
    fingerprint._bench_area_resize = fast
    fingerprint._area_resize = fingerprint._integral_resize if on else fast


def attempts(repeats: int, moves: tuple[int, ...] = (2,)) -> list[dict]:
    """Every attempt, in order. With more than one number of ``moves``: only the people who have a
    segment for each, and each attempt once per number of moves, one after the other (interleaved)."""
    segs = {2: SEGMENTS, 3: SEGMENTS3}
    people = [s[0] for s in segs[moves[0]] if all(any(t[0] == s[0] for t in segs[m]) for m in moves)]
    out = []
    for rep in range(repeats):
        for person in people:
            for slow in SLOWS:
                for mirrored in (False, True):
                    for m in moves:
                        _, start, seconds, challenge = next(s for s in segs[m] if s[0] == person)
                        ch = "+".join(OPPOSITE[v] for v in challenge.split("+")) if mirrored else challenge
                        out.append(dict(person=person, start=start, seconds=seconds, slow=slow, mirrored=mirrored,
                                        challenge=ch, rep=rep, moves=m))
    return out


def summarise(recs: list[dict]) -> dict:
    def med(key, rs=recs):
        v = [r[key] for r in rs if r.get(key) is not None]
        return round(statistics.median(v)) if v else None

    ok = [r for r in recs if r["accepted"]]
    tot = [r["total_ms"] for r in ok]
    return {
        "attempts": len(recs), "accepted": len(ok),
        "median_ms": round(statistics.median(tot)) if tot else None,
        "min_ms": round(min(tot)) if tot else None, "max_ms": round(max(tot)) if tot else None,
        "camera_ms": med("camera_ms"), "cue_ms": med("cue_ms"), "first_frame_ms": med("first_frame_ms"),
        "frames": med("frames"), "max_sent_gap_ms": max((r["max_sent_gap_ms"] for r in recs
                                                         if r.get("max_sent_gap_ms") is not None), default=None),
        "frame_kb": med("frame_kb"), "server_frame_ms": med("server_frame_ms"),
        "analysis_ms": med("analysis_ms"), "moves_done_ms": med("moves_done_ms", ok),
        "after_moves_ms": med("after_moves_ms", ok), "server_finish_ms": med("server_finish_ms"), "decision_to_shown_ms": med("decision_to_shown_ms"),
        "last_frame_to_finish_ms": med("last_frame_to_finish_ms"),
        "failed_decision_to_shown_ms": med("decision_to_shown_ms", [r for r in recs if not r["accepted"]]),
    }


def run(args) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from idp import create_app, get_config, get_db
    from idp.config import Config
    from idp.faceweb.views import engine
    from idp.store import EmbeddedMongo

    tmp = Path(tempfile.mkdtemp(prefix="facestep-bench-"))
    feeds = Feeds(FACES_DIR, tmp)
    mongo = EmbeddedMongo(tmp / "db").start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(Config(issuer=url, data_dir=tmp / "data", mongodb_uri=mongo.uri, db_name="facestep_bench",
                            face_enabled=True, log_format="text", log_level="WARNING",
                            extra={"auto_migrate": True}))
    t0 = time.time()
    for warm_up in app.extensions.get("idp_warmups", []):
        warm_up()
    print(f"models warmed up in {time.time() - t0:.0f} s", file=sys.stderr)
    app.wsgi_app = timed(app.wsgi_app)
    time_add_frame()
    server, thread = serve(app, port)
    wait_http(url + "/.well-known/openid-configuration")
    config, db = get_config(app), get_db(app)
    templates = {}
    records = []
    variants = [(args.label, None)]
    if args.js_from:
        import subprocess
        old = subprocess.run(["git", "show", f"{args.js_from}:static/js/face-capture.js"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        # that revision's upload size (the page's data-max-width/-height now say 480x360)
        for attr, px in (("data-max-width", 640), ("data-max-height", 480)):
            old = old.replace(f'parseInt(root.getAttribute("{attr}"), 10) || {px}', str(px))
        variants = [(f"before@{args.js_from}", old), (args.label, None)]
    try:
        with sync_playwright() as p:
            moves = tuple(int(m) for m in args.moves.split(","))
            runs = [(a, v) for a in attempts(args.repeats, moves)[:args.limit or None] for v in variants]
            for i, (a, (label, js)) in enumerate(runs):
                if a["person"] not in templates:
                    with app.app_context():
                        res = engine().enroll(feeds.frames(a["person"], count=10))
                    assert res.ok, res.reasons
                    templates[a["person"]] = res.template
                feed = feeds.sequence(a["person"], [(a["start"], a["seconds"], a["mirrored"])],
                                      noise_seed=7000 + 37 * i + args.seed, slow=a["slow"])
                config.liveness_enabled = True
                config.liveness_challenges = a["challenge"]
                user = create_account(db, config, f"bench{i}{os.urandom(3).hex()}", PASSWORD, "Bench User",
                                      templates[a["person"]])
                baseline(js is not None)
                rec = one(p, url, feed, user["username"], a, js)
                rec.update(label=label + (f"-{a['moves']}moves" if len(moves) > 1 else ""), **a)
                records.append(rec)
                with open(args.out, "a") as f:  # as it goes: a cut-off run keeps what it measured
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps({k: rec[k] for k in ("label", "person", "slow", "mirrored", "accepted", "total_ms",
                                                       "cue_ms", "frames", "server_frame_ms", "analysis_ms", "moves_done_ms", "outcome")}),
                      file=sys.stderr)
    finally:
        server.shutdown()
        thread.join(10)
        mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the feeds take ~60 MB an attempt
    return records


def one(p, url: str, feed: Path, username: str, a: dict, js: str | None = None) -> dict:
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(feed), timeout=60_000)
    events: list[tuple[str, float, dict]] = []
    clicked = []
    try:
        ctx = browser.new_context(viewport={"width": 1000, "height": 800})
        ctx.set_default_timeout(60_000)
        ctx.expose_binding("__bench", lambda source, ev, t, data: events.append((ev, t, data)))
        ctx.add_init_script(INIT_SCRIPT)
        if js is not None:  # the page script of another commit (A/B in the same run)
            ctx.route("**/static/js/face-capture.js*", lambda route: route.fulfill(
                status=200, content_type="application/javascript; charset=utf-8", body=js))
        page = ctx.new_page()
        # the page leaving for the next step, on the same clock as the page's timestamps (epoch ms)
        page.on("request", lambda r: events.append(("leave", time.time() * 1000.0, {})) if r.is_navigation_request()
                and "/face/verify" not in r.url and clicked else None)
        page.goto(url + "/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("#submit")
        page.wait_for_url("**/face/verify")
        page.wait_for_selector("#start-camera")
        clicked.append(True)
        page.click("#start-camera")
        deadline = time.monotonic() + 90
        outcome = None
        while time.monotonic() < deadline and outcome is None:
            page.wait_for_timeout(100)
            names = {e[0] for e in events}
            if "leave" in names:
                outcome = "accepted"
            elif "failed" in names:
                outcome = "failed: " + next(e[2]["text"] for e in events if e[0] == "failed")
        if os.environ.get("BENCH_DEBUG"):
            t0 = next((t for ev, t, _ in events if ev == "click"), 0)
            for ev, t, d in events:
                print(f"  {t - t0:7.0f} {ev} {json.dumps({k: v for k, v in d.items() if k not in ('t0', 't1')})[:160]}",
                      file=sys.stderr)
        # let the next page load and leave it before closing (closing mid-navigation can hang Playwright)
        with contextlib.suppress(Exception):
            page.wait_for_load_state("load", timeout=10_000)
            page.goto("about:blank", timeout=10_000)
        ctx.close()
    finally:
        browser.close()
    return measure(events, outcome or "timeout")


def measure(events, outcome: str) -> dict:
    def first(name):
        return next((t for ev, t, _ in events if ev == name), None)

    click = first("click")
    frames_req = [d for ev, _, d in events if ev == "request" and d["kind"] == "frame"]
    frames_resp = [d for ev, _, d in events if ev == "response" and d["kind"] == "frame"]
    finish = next((d for ev, _, d in events if ev == "response" and d["kind"] == "finish"), None)
    finish_req = next((d for ev, _, d in events if ev == "request" and d["kind"] == "finish"), None)
    end = first("leave") if outcome == "accepted" else first("failed")
    def rel(t):
        return (round(t - click) if t is not None and click is not None else None)
    # a failure can come from a frame answer (e.g. a replay) rather than the finish
    decision = finish["t1"] if finish else (frames_resp[-1]["t1"] if frames_resp else None)
    ft = [d["frame_time"] for d in frames_req if d.get("frame_time")]
    srv = sorted(d["server_ms"] for d in frames_resp if d.get("server_ms") is not None)
    inner = sorted(d["frame_ms"] for d in frames_resp if d.get("frame_ms") is not None)
    # the frame that completed the requested moves: when it was filmed (the person's part ends there)
    filmed = {d["t0"]: d.get("frame_time") for d in frames_req}
    complete = next((d for d in frames_resp if d.get("moves_needed") and d.get("moves_done") == d["moves_needed"]), None)
    moves_at = filmed.get(complete["t0"]) if complete else None
    return {
        "outcome": outcome, "accepted": outcome == "accepted",
        "total_ms": rel(end), "camera_ms": rel(first("camera")), "cue_ms": rel(first("cue")),
        "first_frame_ms": rel(min(ft)) if ft else None,
        "frames": len(frames_req),
        # the widest spacing (capture time) of two frames sent one after the other
        "max_sent_gap_ms": round(max(b - a for a, b in zip(ft, ft[1:]))) if len(ft) > 1 else None,
        "frame_kb": round(statistics.mean(d["bytes"] for d in frames_req) / 1024, 1) if frames_req else None,
        "server_frame_ms": round(statistics.median(srv)) if srv else None,
        "server_frame_max_ms": round(srv[-1]) if srv else None,
        "analysis_ms": round(statistics.median(inner)) if inner else None,
        "moves_done_ms": rel(moves_at),
        "after_moves_ms": round(end - moves_at) if end is not None and moves_at is not None else None,
        "server_finish_ms": round(finish["server_ms"]) if finish and finish.get("server_ms") else None,
        "decision_ms": rel(decision),
        "decision_to_shown_ms": round(end - decision) if end is not None and decision is not None else None,
        "last_frame_to_finish_ms": (round(finish_req["t0"] - frames_resp[-1]["t1"])
                                    if finish_req and frames_resp else None),
        "moves_done": max((d.get("moves_done") or 0 for d in frames_resp), default=0),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--js-from", default="", help="also run every attempt as before: the page script of this git "
                    "revision (served in place of static/js/face-capture.js) with its 640x480 upload, and the 3-D "
                    "comparisons without their memo; interleaved, an A/B in the same conditions")
    ap.add_argument("--moves", default="2", help="moves per challenge: 2 (the attempts above) or 2,3 (d3 with its "
                    "two and its three moves, interleaved: the cost of IDP_LIVENESS_MOVES=3)")
    ap.add_argument("--limit", type=int, default=0, help="run only the first N attempts (0: all)")
    ap.add_argument("--seed", type=int, default=0, help="offset of the feeds' noise seeds")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "face-step-browser.jsonl"))
    args = ap.parse_args()
    for need, what in ((Path(CHROMIUM).is_file(), f"Chromium at {CHROMIUM}"), (FACES_DIR.is_dir(), f"{FACES_DIR}")):
        if not need:
            print(f"missing: {what}", file=sys.stderr)
            return 2
    records = run(args)
    for label in dict.fromkeys(r["label"] for r in records):
        print(json.dumps({"label": label, **summarise([r for r in records if r["label"] == label])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
