"""The face step as a person meets it, timed in Chromium with a fake webcam: click -> done.

Usage::

    .venv/bin/python benchmarks/face_step_browser.py --label after [--repeats 2] [--js-from REV] \
        [--moves 2,3] [--reactive 300,600] [--out benchmarks/results/face-step-browser.jsonl]

    # a person who reacts to the instructions (reaction 0.3 s and 0.6 s) and, interleaved, the clip as
    # filmed: 24 attempts (d12), ~15 min:
    .venv/bin/python benchmarks/face_step_browser.py --label reactive --repeats 2 --reactive clip,300,600 \
        --out benchmarks/results/face-step-browser-reactive.jsonl

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
together, measured with the dense landmarks: ``liveness_bench.truth.clip_turns``): ``d12``
from 0.4 s (left 13 degrees at 1.2 s into the feed, right 16 at 2.9 s) and ``d3`` from 4.0 s (left 15 at
1.0 s, right 13 at 3.0 s), each at normal speed and 1.25x slower, each also mirrored (then it performs
right-then-left). The feed starts when the camera opens, so the clip's first turn comes ~1.0-1.2 s after
the camera starts whatever the cue (a person who reacts at once to a cue shown within 0.5 s) and its
second 2.9-3.7 s after.

``--reactive R1,R2`` (ms): a person who reacts to the page instead of a clip that plays on whatever
the page shows. The page's camera is a canvas stream (an init script answers getUserMedia; the page
script is unchanged) showing the clip's person holding still facing the camera (a neutral stretch of the
same clip, ping-ponged) until the visible instruction names a move; R ms later (or once back from the
previous turn, if later) it plays that move's real turn from the clip (its frames from leaving the facing
pose to coming back, :data:`REACTIVE`; mirrored attempts flip every frame, so the clip's left turn is the
right one), then holds still until the next instruction. Fresh sensor noise on every frame (seeded per
attempt). Each attempt runs once per R, interleaved; the challenge is pinned as above; only ``d12`` (see
:data:`REACTIVE` for ``d3``). What this models: a fixed reaction time (plus up to one 67 ms camera frame)
and the filmed person's own turn speed and style (real people vary in both); the turn itself is real.

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
  / ``last_frame_ms`` (click -> first / last frame filmed);
* ``frames`` sent, their mean JPEG size, the server's time per frame request (median) and for the
  decision (``finish``);
* ``analysis_ms``: the server's time in ``CaptureService.add_frame`` per frame (median);
* ``moves_done_ms``: click -> the frame that completed the requested moves was filmed (the person's
  part), and ``after_moves_ms``: that moment -> done (backlog, decision, navigation);
* ``decision_to_shown_ms``: the decision's answer reaching the page -> the page showing it;
* ``move1_ms``: click -> the frame whose answer first counted a move was filmed; ``cue2_ms``: click -> the
  second instruction visible; ``cue2_lag_ms``: that frame filmed -> the second instruction visible
  (upload, analysis, any backlog, page);
* reactive person: ``turn1_start_ms`` / ``turn2_start_ms`` (click -> the turn's first frame shown),
  ``turn2_to_moves_ms`` (second turn started -> the frame completing the moves filmed), ``feed_draw_ms``
  (the canvas feed's own time per frame in the browser); every record: ``load_avg`` (1-min, after it);
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

from browser.harness import (CHROMIUM, CHROMIUM_ARGS, FACES_DIR, Feeds, chromium_args,  # noqa: E402
                             create_account, free_port, serve, wait_http)

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
  let cued = false, failed = false, named = 0;
  const watch = () => {
    const c = document.getElementById("challenge");
    if (!cued && c && !c.hidden && c.textContent.trim()) { cued = true; send("cue"); }
    // each new move named by the visible instruction ("to your left, then to your right")
    const n = c && !c.hidden ? (c.textContent.match(/to your (left|right)/g) || []).length : 0;
    if (n > named) { named = n; send("instruction", { n }); }
    const r = document.getElementById("result");
    if (!failed && r && r.classList.contains("is-error") && r.textContent.trim()) { failed = true; send("failed", { text: r.textContent.trim() }); }
  };
  new MutationObserver(watch).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""


#: ``--reactive``: the clip's stretches (start s, seconds) of its person holding still facing the camera
#: and of each turn, from the last frame facing the camera before it to the first one back, measured with
#: the dense landmarks (``liveness_bench.truth.clip_yaw``: yaw and pitch from the clip's neutral pose).
#: d12: holding still 0-1.2 s (yaw and pitch within 3 degrees), left 13 degrees at 1.5 s, right 16 at 3.4 s,
#: pitch within 3 throughout. d3 has no such stretches: its person nods as he turns (pitch -9 -> +8 over
#: the left turn, +8 -> -10 over the right one, -4 to -8 where he faces the camera), so a stretch of him
#: holding still spliced between the turns reads as a chin-up move of 12-16 degrees (ten such attempts
#: were all refused, six as "You turned the other way", the others under a backlog).
REACTIVE = {"d12": {"hold": (0.0, 1.2), "turn_left": (1.2, 1.2), "turn_right": (2.87, 1.33)}}

#: The reactive person (``--reactive``), in place of the camera: getUserMedia answers a canvas stream at
#: the feed's 15 fps. The canvas shows the clip's person holding still (the neutral stretch, ping-ponged)
#: until the visible instruction (#challenge) names a new move; ``reaction_ms`` later (or once back from
#: the previous turn, if later) it plays that move's turn from the clip, then holds still again. Every
#: frame gets fresh sensor noise (seeded per attempt: the replay stores see no frame twice). The frames
#: (PNG, no noise) come from ``/__reactive/<part>/<k>`` (routed by the benchmark) and are decoded before
#: the click (``window.__reactiveReady``).
REACTIVE_SCRIPT = r"""
(() => {
  const CFG = __CONFIG__;
  if (!/\/face\/verify/.test(location.pathname)) { return; }
  const now = () => performance.timeOrigin + performance.now();
  const send = (ev, data) => { try { window.__bench(ev, now(), data || {}); } catch (e) { /* no binding */ } };
  const W = 640, H = 480, period = 1000 / CFG.fps;
  const frames = {};
  Promise.all(Object.entries(CFG.parts).map(([part, n]) => Promise.all(Array.from({ length: n }, (_, k) =>
      fetch("/__reactive/" + part + "/" + k).then((r) => r.blob()).then((b) => createImageBitmap(b))))
      .then((bitmaps) => { frames[part] = bitmaps; })))
    .then(() => { window.__reactiveReady = true; }, (e) => { window.__reactiveError = String(e); });

  let seed = CFG.seed >>> 0 || 1;  // xorshift32: the attempt's sensor noise
  const rand = () => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed / 4294967296; };
  const SLACK = 4096;
  const noise = new Int8Array(W * H * 4 + SLACK);
  for (let i = 0; i < noise.length; i++) { noise[i] = Math.floor(rand() * 7) - 3; }  // uniform -3..3

  const canvas = document.createElement("canvas");
  canvas.width = W; canvas.height = H;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  let state = null, pending = [], seen = 0, timer = null, drawn = 0, drawMs = 0;

  function frameOf(now) {
    if (state.kind === "turn") {
      const seq = frames[state.move];
      const k = Math.floor((now - state.t0) / period);
      if (k < seq.length) { return seq[k]; }
      send("turn_end", { move: state.move, draw_ms: drawMs / drawn });
      state = { kind: "hold", t0: now };
    }
    if (pending.length && now >= pending[0].at) {
      const m = pending.shift();
      state = { kind: "turn", move: m.move, t0: now };
      send("turn_start", { move: m.move });
      return frames[m.move][0];
    }
    const hold = frames.hold, n = hold.length, k = Math.floor((now - state.t0) / period) % (2 * n - 2);
    return hold[k < n ? k : 2 * n - 2 - k];  // ping-pong: a seamless stretch of holding still
  }

  function draw() {
    const t = performance.now();
    g.drawImage(frameOf(t), 0, 0, W, H);
    const img = g.getImageData(0, 0, W, H), d = img.data, off = Math.floor(rand() * (SLACK / 4)) * 4;
    for (let i = 0; i < d.length; i += 4) {
      d[i] += noise[off + i]; d[i + 1] += noise[off + i + 1]; d[i + 2] += noise[off + i + 2];
    }
    g.putImageData(img, 0, 0);
    drawn += 1; drawMs += performance.now() - t;  // the feed's own cost in the browser (reported)
  }

  // the person reads the instruction: each new "to your left/right" is a move to make
  new MutationObserver(() => {
    const c = document.getElementById("challenge");
    if (!state || !c || c.hidden) { return; }
    const sides = c.textContent.match(/to your (left|right)/g) || [];
    const t = performance.now();
    for (; seen < sides.length; seen++) {
      pending.push({ move: sides[seen].endsWith("left") ? "turn_left" : "turn_right", at: t + CFG.reaction_ms });
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });

  navigator.mediaDevices.getUserMedia = () => {
    if (!window.__reactiveReady) { return Promise.reject(new DOMException("frames not loaded", "NotReadableError")); }
    if (!timer) {
      state = { kind: "hold", t0: performance.now() };
      draw();
      timer = setInterval(draw, period);
    }
    return Promise.resolve(canvas.captureStream(CFG.fps));
  };
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


def attempts(repeats: int, moves: tuple[int, ...] = (2,), reactions: tuple = (None,)) -> list[dict]:
    """Every attempt, in order. With more than one number of ``moves``: only the people who have a
    segment for each, and each attempt once per number of moves, one after the other (interleaved);
    likewise once per reaction time of the reactive person (``reaction_ms``, None: the clip as filmed)."""
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
                        for r in reactions:
                            out.append(dict(person=person, start=start, seconds=seconds, slow=slow,
                                            mirrored=mirrored, challenge=ch, rep=rep, moves=m,
                                            **({} if r is None else {"reaction_ms": r})))
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
        "after_moves_ms": med("after_moves_ms", ok), "move1_ms": med("move1_ms", ok), "cue2_ms": med("cue2_ms", ok),
        "cue2_lag_ms": med("cue2_lag_ms", ok), "turn1_start_ms": med("turn1_start_ms", ok),
        "turn2_start_ms": med("turn2_start_ms", ok), "turn2_to_moves_ms": med("turn2_to_moves_ms", ok),
        "server_finish_ms": med("server_finish_ms"), "decision_to_shown_ms": med("decision_to_shown_ms"),
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
            reactions = (tuple(None if r == "clip" else int(r) for r in args.reactive.split(","))
                         if args.reactive else (None,))
            chosen = [a for a in attempts(args.repeats, moves, reactions) if a["person"] in (args.people or a["person"])
                      and (reactions == (None,) or a["person"] in REACTIVE)]
            runs = [(a, v) for a in chosen[:args.limit or None] for v in variants]
            for i, (a, (label, js)) in enumerate(runs):
                if a["person"] not in templates:
                    with app.app_context():
                        res = engine().enroll(feeds.frames(a["person"], count=10))
                    assert res.ok, res.reasons
                    templates[a["person"]] = res.template
                if "reaction_ms" in a:
                    feed = reactive_person(feeds, a, noise_seed=7000 + 37 * i + args.seed)
                else:
                    feed = feeds.sequence(a["person"], [(a["start"], a["seconds"], a["mirrored"])],
                                          noise_seed=7000 + 37 * i + args.seed, slow=a["slow"])
                config.liveness_enabled = True
                config.liveness_challenges = a["challenge"]
                user = create_account(db, config, f"bench{i}{os.urandom(3).hex()}", PASSWORD, "Bench User",
                                      templates[a["person"]])
                baseline(js is not None)
                rec = one(p, url, feed, user["username"], a, js)
                rec["load_avg"] = round(os.getloadavg()[0], 1)  # the machine's 1-min load after the attempt
                rec.update(label=label + (f"-{a['moves']}moves" if len(moves) > 1 else "")
                           + (f"-R{a['reaction_ms']}" if "reaction_ms" in a else ""), **a)
                records.append(rec)
                with open(args.out, "a") as f:  # as it goes: a cut-off run keeps what it measured
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps({k: rec[k] for k in ("label", "person", "slow", "mirrored", "accepted", "total_ms",
                                                       "cue_ms", "cue2_ms", "frames", "load_avg", "server_frame_ms", "analysis_ms",
                                                       "moves_done_ms", "outcome")}),
                      file=sys.stderr)
    finally:
        server.shutdown()
        thread.join(10)
        mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the feeds take ~60 MB an attempt
    return records


def reactive_person(feeds: Feeds, a: dict, noise_seed: int) -> dict:
    """The reactive person's feed for attempt ``a``: the frames of its clip's neutral stretch and turns
    (:data:`REACTIVE`; mirrored, the clip's left turn is shown flipped as the right one and vice versa)
    and the player's settings (:data:`REACTIVE_SCRIPT`)."""
    parts = {}
    for part in ("hold", "turn_left", "turn_right"):
        source = OPPOSITE[part] if a["mirrored"] and part != "hold" else part
        start, seconds = REACTIVE[a["person"]][source]
        parts[part] = feeds.segment_frames(a["person"], start, seconds, a["mirrored"], a["slow"])
    config = {"fps": Feeds.FPS, "reaction_ms": a["reaction_ms"], "seed": noise_seed,
              "parts": {k: len(v) for k, v in parts.items()}}
    return {"frames": parts, "script": REACTIVE_SCRIPT.replace("__CONFIG__", json.dumps(config))}


def one(p, url: str, feed, username: str, a: dict, js: str | None = None) -> dict:
    """One attempt; ``feed``: a Y4M file for Chromium's fake webcam, or the reactive person
    (:func:`reactive_person`) in place of the camera."""
    reactive = feed if isinstance(feed, dict) else None
    args = CHROMIUM_ARGS if reactive else chromium_args(feed)
    browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=60_000)
    events: list[tuple[str, float, dict]] = []
    clicked = []
    try:
        ctx = browser.new_context(viewport={"width": 1000, "height": 800})
        ctx.set_default_timeout(60_000)
        ctx.expose_binding("__bench", lambda source, ev, t, data: events.append((ev, t, data)))
        if reactive:  # before INIT_SCRIPT, which wraps its getUserMedia to time the camera
            ctx.add_init_script(reactive["script"])
            ctx.route("**/__reactive/**", lambda route: route.fulfill(
                status=200, content_type="image/png",
                body=reactive["frames"][route.request.url.split("/")[-2]][int(route.request.url.split("/")[-1])]))
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
        if reactive:
            # polled from here: the page's CSP forbids the string evaluation wait_for_function polls with
            for _ in range(600):
                if page.evaluate("window.__reactiveReady === true || !!window.__reactiveError"):
                    break
                page.wait_for_timeout(50)
            assert page.evaluate("window.__reactiveReady") is True, page.evaluate("window.__reactiveError")
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
    # the first move counted (the frame whose answer first said so: when it was filmed), the second
    # instruction shown, and (reactive person) when each turn started
    first_move = next((d for d in frames_resp if (d.get("moves_done") or 0) >= 1), None)
    move1_at = filmed.get(first_move["t0"]) if first_move else None
    cue2 = next((t for ev, t, d in events if ev == "instruction" and d.get("n", 0) >= 2), None)
    turns = [t for ev, t, _ in events if ev == "turn_start"]
    draw_ms = [d["draw_ms"] for ev, _, d in events if ev == "turn_end" and d.get("draw_ms") is not None]
    return {
        "outcome": outcome, "accepted": outcome == "accepted",
        "total_ms": rel(end), "camera_ms": rel(first("camera")), "cue_ms": rel(first("cue")),
        "first_frame_ms": rel(min(ft)) if ft else None, "last_frame_ms": rel(max(ft)) if ft else None,
        "frames": len(frames_req),
        # the widest spacing (capture time) of two frames sent one after the other
        "max_sent_gap_ms": round(max(b - a for a, b in zip(ft, ft[1:]))) if len(ft) > 1 else None,
        "frame_kb": round(statistics.mean(d["bytes"] for d in frames_req) / 1024, 1) if frames_req else None,
        "server_frame_ms": round(statistics.median(srv)) if srv else None,
        "server_frame_max_ms": round(srv[-1]) if srv else None,
        "analysis_ms": round(statistics.median(inner)) if inner else None,
        "moves_done_ms": rel(moves_at),
        "after_moves_ms": round(end - moves_at) if end is not None and moves_at is not None else None,
        "move1_ms": rel(move1_at), "cue2_ms": rel(cue2),
        # the first move's frame filmed -> the second instruction visible (upload, analysis, backlog, page)
        "cue2_lag_ms": round(cue2 - move1_at) if cue2 is not None and move1_at is not None else None,
        "turn1_start_ms": rel(turns[0]) if turns else None,
        "turn2_start_ms": rel(turns[1]) if len(turns) > 1 else None,
        "feed_draw_ms": round(draw_ms[-1], 1) if draw_ms else None,  # the reactive feed's time per frame
        # the second turn started -> the frame that completed the moves was filmed
        "turn2_to_moves_ms": round(moves_at - turns[1]) if len(turns) > 1 and moves_at is not None else None,
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
    ap.add_argument("--reactive", default="", help="reaction times in ms (e.g. 300,600): a person who reacts "
                    "to the page's instructions instead of the clip as filmed, each attempt once per reaction "
                    "time, interleaved (labels get -R<ms>); 'clip' among them: also the clip as filmed (d12's "
                    "feed as above), an A/B under the same load")
    ap.add_argument("--people", default="", help="only these clips' people, comma-separated (e.g. d3)")
    ap.add_argument("--limit", type=int, default=0, help="run only the first N attempts (0: all)")
    ap.add_argument("--seed", type=int, default=0, help="offset of the feeds' noise seeds")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "face-step-browser.jsonl"))
    args = ap.parse_args()
    args.people = [x for x in args.people.split(",") if x]
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
