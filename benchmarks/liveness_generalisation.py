"""Does the liveness decision's APCER hold beyond the attack parameters it was tuned on? Prints turned and
bent otherwise than the evaluation's (``benchmarks/liveness_eval.py``), rendered, analysed and judged exactly
as its attacks are (``liveness_bench``: :func:`.render.render_sheet`, :func:`.media.analyse`, the product's
decision through :func:`.report.judge`), with fresh seeds (40_000 / 50_000 + 100 x variant + j).

Variants (:data:`VARIANTS`), each the evaluation's job structure (12 LFW photos - ``bent_yaw35``'s people - and
a frame of each of the 12 shared clips, an attacker performing a random two-move challenge of turns with
hand tremor, filmed every 150 ms for 6 s): bent prints with other bends and turns; a bent print drifting
towards or away from the camera (distance +-15 %) as it turns; a flat print held closer (distance 0.5-0.6
instead of 0.75-1.0) turned 40 degrees; a flat print turned 35 degrees and tilted 15 about its horizontal
axis at once; and, as a control, the evaluation's own ``bent_yaw35`` with fresh seeds.

:data:`AXES_VARIANTS` (seeds 60_000 / 70_000 + 100 x variant + j): prints bent about their vertical,
horizontal or a diagonal axis (:func:`.render.render_bent`), the attacker performing the product's challenge
of one turn and one tilt. :data:`HEAD_SETS` (``heads``; needs the evaluation's ``clip__`` sequences): rendered
bona fide heads turning 15-25 and tilting 25-35 real degrees (what the page asks for) against that challenge
and against any two moves.

:data:`MORE_AXES` (seeds 100_000 / 110_000 + 100 x variant + j; a red team): a print RE-BENT between the two
moves of that challenge - about its vertical axis for the turn, its horizontal axis for the tilt, switched in
an instant in the pause between the moves (the attacker's best case) - and its two halves, a print bent about
the axis of its move against that one move. Measured (docs/liveness.md, "Re-bent between the moves"): re-bent,
0 of 24 at each of bends 0.35 and 0.25 and with tilts of 55 degrees; a turn alone, bent 0.35 / 0.25 about the
vertical axis, 10 / 7 of 24; a tilt alone, bent about the horizontal axis, 0 of 24 each (the model reads
little pitch from a tilted sheet).

Sequences are cached as ``gen__<variant>__<lfw|clip>__<who>``, ``genaxes__<variant>__<lfw|clip>__<who>``
(:data:`MORE_AXES`) and ``genhead__<set>__<clip>__<k>`` beside the evaluation's (``$LIVENESS_CACHE``; nothing
in the repository). About 3-10 s per sequence: the 216 of :data:`VARIANTS` take some 20 min on one core, the
rest about 15 (the 192 of :data:`MORE_AXES` about 10); ``evaluate`` takes 5-8 minutes.

    .venv/bin/python benchmarks/liveness_generalisation.py data [VARIANT ...] [--per-source N]
    .venv/bin/python benchmarks/liveness_generalisation.py heads
    .venv/bin/python benchmarks/liveness_generalisation.py evaluate     # prints Markdown
"""
from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from liveness_bench import data, media, protocol, render, report  # noqa: E402
from liveness_bench.sets import Presentation  # noqa: E402

from idp.liveness import sequences  # noqa: E402

PREFIX = "gen"
#: :data:`MORE_AXES`' sequences, apart so that an older copy of this module (which draws a cue moment per cached
#: ``gen__`` sequence in name order) judges its own sets as before
MORE_PREFIX = "genaxes"
#: name -> (turn degrees, bend in sheet widths, distance range, distance drift per move, tilt degrees)
VARIANTS = {
    "bent10_yaw35": (35.0, 0.10, (0.75, 1.0), 0.0, 0.0),
    "bent25_yaw35": (35.0, 0.25, (0.75, 1.0), 0.0, 0.0),
    "bent35_yaw35": (35.0, 0.35, (0.75, 1.0), 0.0, 0.0),
    "bent18_yaw25": (25.0, 0.18, (0.75, 1.0), 0.0, 0.0),
    "bent18_yaw50": (50.0, 0.18, (0.75, 1.0), 0.0, 0.0),
    "bent18_yaw35_drift15": (35.0, 0.18, (0.75, 1.0), 0.15, 0.0),
    "close_print_yaw40": (40.0, 0.0, (0.5, 0.6), 0.0, 0.0),
    "print_yaw35_pitch15": (35.0, 0.0, (0.75, 1.0), 0.0, 15.0),
    # control: the evaluation's own bent_yaw35 (bend 0.18, turned 35) with fresh seeds
    "bent18_yaw35": (35.0, 0.18, (0.75, 1.0), 0.0, 0.0),
}

#: Bent prints against the product's challenges of one turn and one tilt (:func:`idp.liveness.sequences`):
#: paper bends one way at a time, so one of the two moves is made by a sheet that is flat along it - unless
#: the bend is diagonal. name -> (turn / tilt degrees, bend in sheet widths, bend axis degrees from the
#: sheet's vertical).
AXES_VARIANTS = {
    "tt_bent35_diagonal": (35.0, 0.35, 45.0),
    "tt_bent35_vertical": (35.0, 0.35, 0.0),
    "tt_bent25_diagonal": (35.0, 0.25, 45.0),
    "tt_bent25_horizontal": (35.0, 0.25, 90.0),
    "tt_bent25_vertical": (35.0, 0.25, 0.0),
    "tt_print35": (35.0, 0.0, 0.0),
    "tt_bent18_vertical": (35.0, 0.18, 0.0),
    "tt_bent35_horizontal": (35.0, 0.35, 90.0),
}
#: The product's two-move challenges in the order this study's seeds draw them from.
TURN_AND_TILT = tuple(f"{a}+{b}" for t in ("turn_left", "turn_right") for u in ("look_up", "look_down")
                      for a, b in ((t, u), (u, t)))
assert set(TURN_AND_TILT) == set(sequences(2)), "the product's draw changed: this study's challenges no longer are it"

#: More bent prints (seeds 100_000 / 110_000 + 100 x variant + j), rendered and judged as :data:`AXES_VARIANTS`.
#: ``tt_rebent``: an attacker who RE-BENDS the print between the two moves of the product's challenge (or
#: swaps between two prints of the photo, one bent each way): bent about its vertical axis (0 degrees) before
#: and while performing and returning from a turn, about its horizontal axis (90) for a tilt, switched in an
#: instant at the middle of the pause between the moves, the sheet facing the camera (the attacker's best case:
#: a real re-bend takes time and moves the sheet). ``turn_`` / ``tilt_``: the two halves of that attack, a print
#: bent about the axis of the move against a challenge of that one move (drawn from its two directions).
#: ``..._tilt55``: the same with the tilts taken to 55 degrees (a tilted sheet reads little pitch: "Pitch:
#: measured bias"). name -> (turn / tilt degrees, or a (turn, tilt) pair, bend in sheet widths, bend axis
#: degrees from the sheet's vertical or None: following the move, the challenges drawn from).
MORE_AXES = {
    "tt_rebent35": (35.0, 0.35, None, TURN_AND_TILT),
    "tt_rebent25": (35.0, 0.25, None, TURN_AND_TILT),
    "turn_bent35_vertical": (35.0, 0.35, 0.0, ("turn_left", "turn_right")),
    "tilt_bent35_horizontal": (35.0, 0.35, 90.0, ("look_up", "look_down")),
    "turn_bent25_vertical": (35.0, 0.25, 0.0, ("turn_left", "turn_right")),
    "tilt_bent25_horizontal": (35.0, 0.25, 90.0, ("look_up", "look_down")),
    "tilt55_bent35_horizontal": (55.0, 0.35, 90.0, ("look_up", "look_down")),
    "tt_rebent35_tilt55": ((35.0, 55.0), 0.35, None, TURN_AND_TILT),
}


def follow(moves, rng, amp: float, drift: float = 0.0, tilt: float = 0.0):
    """t (ms) -> (yaw, pitch, distance factor), timed by :func:`.render.keyframes`: per move a turn to
    ``amp``, the picture tilted by ``tilt`` (sign per move: top away or towards the camera) and its
    distance changed by ``drift`` (towards or away, per move) in proportion to the turn."""
    def target(m):
        p = tilt * float(rng.choice([-1.0, 1.0])) if tilt else 0.0
        d = 1.0 + drift * float(rng.choice([-1.0, 1.0])) if drift else 1.0
        return amp * render.sign(m), p, d
    return render.keyframes(moves, rng, target, rest=(0.0, 0.0, 1.0))


def axes_poses(variant: str, rng, times_ms, moves) -> list[dict]:
    """:func:`poses` for :data:`AXES_VARIANTS` and :data:`MORE_AXES`: each move a turn (yaw) or a tilt (pitch)
    of the bent sheet; a bend axis of None follows the move (0 degrees for a turn, 90 for a tilt), switched at
    the middle of the pause between two moves."""
    amp, bend, bend_deg = AXES_VARIANTS[variant] if variant in AXES_VARIANTS else MORE_AXES[variant][:3]
    turn, tilt = amp if isinstance(amp, tuple) else (amp, amp)
    base = dict(dist=rng.uniform(0.75, 1.0), shift=(rng.uniform(-40, 40), rng.uniform(-30, 30)))
    motion = render.keyframes(
        moves, rng, lambda m: (turn * render.sign(m), 0.0) if m.startswith("turn") else (0.0, tilt * render.sign(m)),
        rest=(0.0, 0.0))
    # keys: rest, rest, then per move: reached, held, back at rest, end of the pause before the next
    switch = [(motion.keys[4 + 4 * i, 0] + motion.keys[5 + 4 * i, 0]) / 2 for i in range(len(moves) - 1)]
    axis = (lambda t: bend_deg) if bend_deg is not None else \
        (lambda t: 0.0 if moves[int(np.searchsorted(switch, t))].startswith("turn") else 90.0)
    out = []
    for t, tr in zip(times_ms, render.tremor(rng, len(times_ms))):
        yaw, pitch = motion(t)
        out.append(dict(dist=base["dist"], bend=bend, bend_deg=axis(t), yaw=yaw + tr["yaw_j"],
                        pitch=pitch + tr["pitch_j"], roll=tr["roll"],
                        shift=(base["shift"][0] + tr["dxy"][0], base["shift"][1] + tr["dxy"][1])))
    return out


def poses(variant: str, rng, times_ms, moves) -> list[dict]:
    """Per-frame keyword arguments of :func:`.render.render_sheet`, as :func:`.render.poses` builds them
    (base distance and shift, the motion, :func:`.render.tremor` on top)."""
    amp, bend, dist, drift, tilt = VARIANTS[variant]
    base = dict(dist=rng.uniform(*dist), shift=(rng.uniform(-40, 40), rng.uniform(-30, 30)))
    motion = follow(moves, rng, amp, drift, tilt)
    out = []
    for t, tr in zip(times_ms, render.tremor(rng, len(times_ms))):
        yaw, pitch, d = motion(t)
        out.append(dict(dist=base["dist"] * d, bend=bend, yaw=yaw + tr["yaw_j"], pitch=pitch + tr["pitch_j"],
                        roll=tr["roll"], shift=(base["shift"][0] + tr["dxy"][0], base["shift"][1] + tr["dxy"][1])))
    return out


def jobs(per_source: int = 12) -> list[tuple[str, str, str, int]]:
    """(variant, source, who, seed), :func:`.data.attack_jobs`' structure: ``bent_yaw35``'s LFW people and
    the 12 clips (the first ``per_source`` of each)."""
    people = sorted(p.name for p in media.PHOTO_DIR.iterdir() if p.is_dir())
    ki = render.ATTACK_KINDS.index("bent_yaw35")
    out = []
    for vi, variant in enumerate(VARIANTS):
        for j in range(min(per_source, data.N_LFW_PRINT)):
            out.append((variant, "lfw", people[(ki * 7 + j) % len(people)], 40_000 + 100 * vi + j))
        for j, clip in enumerate(data.CLIPS[:per_source]):
            out.append((variant, "clip", clip, 50_000 + 100 * vi + j))
    for vi, variant in enumerate(AXES_VARIANTS):
        for j in range(min(per_source, data.N_LFW_PRINT)):
            out.append((variant, "lfw", people[(ki * 7 + j) % len(people)], 60_000 + 100 * vi + j))
        for j, clip in enumerate(data.CLIPS[:per_source]):
            out.append((variant, "clip", clip, 70_000 + 100 * vi + j))
    for vi, variant in enumerate(MORE_AXES):  # not 80_000-81_111: build_heads' seeds
        for j in range(min(per_source, data.N_LFW_PRINT)):
            out.append((variant, "lfw", people[(ki * 7 + j) % len(people)], 100_000 + 100 * vi + j))
        for j, clip in enumerate(data.CLIPS[:per_source]):
            out.append((variant, "clip", clip, 110_000 + 100 * vi + j))
    return out


def build(variants=None, per_source: int = 12) -> None:
    """Render and analyse the sequences of :func:`jobs` (cached; as :func:`.data.build_attacks`)."""
    data.CACHE.mkdir(parents=True, exist_ok=True)
    for variant, src, who, seed in jobs(per_source):
        if variants and variant not in variants:
            continue
        rng = np.random.default_rng(seed)
        photo = media.lfw_photo(who, rng) if src == "lfw" else media.clip_photo(who, rng)
        bg = render.background(rng)
        axes = variant in AXES_VARIANTS or variant in MORE_AXES
        pool = MORE_AXES[variant][3] if variant in MORE_AXES else TURN_AND_TILT
        moves = tuple(str(rng.choice(pool)).split("+")) if axes else \
            tuple(rng.choice(["turn_left", "turn_right"], 2))
        ticks = np.arange(0, render.ATTACK_MS + 1, render.INTERVAL_MS, dtype=float)
        times = ticks + rng.normal(0, 8, len(ticks))
        draw, posed = (render.render_bent, axes_poses) if axes else (render.render_sheet, poses)
        images = ((t, media.camera(draw(photo, bg, **pose), rng))
                  for t, pose in zip(times, posed(variant, rng, ticks, moves)))
        prefix = MORE_PREFIX if variant in MORE_AXES else PREFIX
        data._sequence(f"{prefix}__{variant}__{src}__{who}", {"kind": variant, "source": src, "who": who,
                                                               "challenge": "+".join(moves)}, images)


HEAD_PREFIX = "genhead"
#: Rendered bona fide heads (:func:`.render.turned_head`, as the evaluation's ``head__`` set) performing the
#: angles the page asks for - turns of 15-25 real degrees, tilts of 25-35 - against a challenge of one turn
#: and one tilt (``tt``, the product's draw) or of any two of the four moves (``any``, drawn independently:
#: the draw before).
HEAD_SETS = ("tt", "any")
HEADS_PER_CLIP = 2


def build_heads() -> None:
    """Render and analyse the :data:`HEAD_SETS` sequences (cached, ``genhead__<set>__<clip>__<k>``)."""
    from idp.liveness.landmarks import shared_landmarker

    from liveness_bench.truth import clip_yaw
    moves4 = ("turn_left", "turn_right", "look_up", "look_down")
    for si, hs in enumerate(HEAD_SETS):
        for ci, clip in enumerate(data.CLIPS):
            todo = [j for j in range(HEADS_PER_CLIP)
                    if not (data.CACHE / f"{HEAD_PREFIX}__{hs}__{clip}__{j}.json").exists()]
            if not todo:
                continue
            _, recs, _ = data.load(f"clip__{clip}")
            k = int(np.nanargmin(np.abs(clip_yaw(recs)[:60])))
            rgb = next(im for i, (_, im) in enumerate(media.decode_video(media.VIDEO_DIR / f"{clip}.mp4")) if i == k)
            a = media.engine().analyze(rgb, embed="never")
            p0 = shared_landmarker()(rgb, a.box, a.landmarks).points.astype(np.float64)
            for j in todo:
                rng = np.random.default_rng(80_000 + 1000 * si + 10 * ci + j)
                moves = tuple(str(rng.choice(TURN_AND_TILT)).split("+")) if hs == "tt" else \
                    tuple(rng.choice(list(moves4), 2))
                ticks = np.arange(0, render.ATTACK_MS + 1, render.INTERVAL_MS, dtype=float)
                times = ticks + rng.normal(0, 8, len(ticks))
                poses = render.head_poses(moves, rng, ticks, amp=(15.0, 25.0), tilt_amp=(25.0, 35.0))
                images = ((t, media.camera(render.turned_head(rgb, p0, yaw, pitch), rng))
                          for t, (yaw, pitch) in zip(times, poses))
                data._sequence(f"{HEAD_PREFIX}__{hs}__{clip}__{j}",
                               {"kind": f"head_{hs}", "source": "head", "who": f"{clip}_{j}",
                                "challenge": "+".join(moves)}, images)


def presentations(rng) -> dict[str, list[Presentation]]:
    """The cached sequences as :func:`.sets.rendered` presents them (the challenge the attacker performed).
    :data:`MORE_AXES`' sequences draw their cue moments last, so the others' stay as they were."""
    from idp.faceweb import liveness as web
    out: dict[str, list[Presentation]] = {}
    for name in data.names(PREFIX) + data.names(HEAD_PREFIX) + data.names(MORE_PREFIX):
        meta, recs, thumbs = data.load(name)
        ch = meta["challenge"]
        frames = [(r, th) for r, th in zip(recs, thumbs) if r["t_ms"] <= web.window_ms(ch) + 50]
        out.setdefault(meta["kind"], []).append(
            Presentation(meta["kind"], f"{meta['source']}:{meta['who']}", ch, frames,
                         float(rng.uniform(*protocol.CUE_MS))))
    return {k: out[k] for k in (*VARIANTS, *AXES_VARIANTS, *MORE_AXES, *(f"head_{h}" for h in HEAD_SETS)) if k in out}


def evaluate() -> int:
    """Judge every cached sequence with the product's settings (and with the passive check off: the
    geometry alone) and print the tables."""
    import dataclasses
    protocol.memoise_rigidity()
    pres = presentations(np.random.default_rng(17))
    results = {k: report.judge(v) for k, v in pres.items()}
    geometry = dataclasses.replace(protocol.product_settings(), min_passive_score=0.0)
    alone = {k: sum(c.accepted for _, c in report.judge(v, geometry)) for k, v in pres.items()}
    rows = ["| variant | accepted / presented | APCER | 95 % upper bound | first reason (count) | LFW / clip "
            "accepted | geometry alone (passive off) |", "|---|---|---|---|---|---|---|"]
    acc = ["| variant | presentation | challenge | turn L / R deg | up / down deg | parallax_ratio | shape_residual | "
           "passive score |", "|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        n, e = len(res), sum(c.accepted for _, c in res)
        reasons = collections.Counter("accepted" if c.accepted else c.reason for _, c in res)
        src = [sum(c.accepted for p, c in res if p.label.startswith(s)) for s in ("lfw:", "clip:")]
        rows.append(f"| {name} | {e} / {n} | {e / n:.1%} | {report.upper95(e, n):.0%} | "
                    + ", ".join(f"{k}: {v}" for k, v in reasons.most_common())
                    + f" | {src[0]} / {src[1]} | {alone[name]} / {n} ({alone[name] / n:.0%}) |")
        for p, c in res:
            if c.accepted:
                sc = c.decision.result.scores
                acc.append(f"| {name} | {p.label} | {p.challenge} | {sc['turn_left_deg']:.1f} / "
                           f"{sc['turn_right_deg']:.1f} | {sc.get('look_up_deg', float('nan')):.1f} / "
                           f"{sc.get('look_down_deg', float('nan')):.1f} | {sc['parallax_ratio']:.2f} | "
                           f"{sc['shape_residual']:.3f} | "
                           f"{sc.get('passive_score', float('nan')):.3f} |")
    print("\n".join(rows) + "\n\nAccepted attacks:\n\n" + "\n".join(acc))
    # the same presentations with one setting changed (their bona fide cost: docs/liveness.md, "Results" and
    # "Passive signal"); a threshold tuned on these would be tuned on them
    s = protocol.product_settings()
    print("\n| settings | " + " | ".join(results) + " |\n|---|" + "---|" * len(results))
    for label, kw in SETTINGS:
        print(f"| {label} | " + " | ".join(
            f"{sum(c.accepted for _, c in report.judge(pres[k], dataclasses.replace(s, **kw)))}" for k in results) + " |")
    return 0


#: Settings judged besides the product's (accepted attacks per variant).
SETTINGS = [("product (default)", {}), ("min_turn_deg 11", dict(min_turn_deg=11.0)),
            ("min_turn_deg 12", dict(min_turn_deg=12.0)), ("min_passive_score 0.05", dict(min_passive_score=0.05)),
            ("min_passive_score 0.3", dict(min_passive_score=0.3)), ("min_passive_score 0.5", dict(min_passive_score=0.5))]


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "evaluate"
    if cmd == "data":
        per = int(argv[argv.index("--per-source") + 1]) if "--per-source" in argv else 12
        args = [a for a in argv[2:] if a in VARIANTS or a in AXES_VARIANTS or a in MORE_AXES]
        build(args or None, per)
        return 0
    if cmd == "heads":
        build_heads()
        return 0
    if cmd == "evaluate":
        return evaluate()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
