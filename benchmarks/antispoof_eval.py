"""Measure the passive MiniFASNet signal (idp.liveness.antispoof) on this project's data, alone and
fused with the product's liveness decision: the tables of docs/liveness.md, "Passive signal (MiniFASNet)".

Usage (after ``benchmarks/liveness_eval.py data`` has filled the cache, ``$LIVENESS_CACHE``)::

    .venv/bin/python benchmarks/antispoof_eval.py > /tmp/antispoof.md

The score is the models' averaged class-1 "real" probability (0..1, higher = more live):

* ``../shared/data/spoof/dtruong46me-fas``: labelled live / spoof face crops, scored here. They are tight
  MTCNN crops, so the whole picture is the face box and the 2.7x / 4x context the models were trained with
  is missing (the crop scale is clamped to the picture).
* Every other frame: the score the cache stores with it (``ps``: :func:`liveness_bench.media.analyse`,
  the product's detector box, as the capture API stores it). The shared clips are decoded and their face
  frames scored again here: the difference from the cached scores is printed (a check that the cache
  holds this model's scores), and the cost per face is measured on them.

Presentations (:mod:`liveness_bench`): the plain bona fide bursts (:func:`.sets.plain_bursts`, a burst
started every 0.5 s of every clip, drawn as ``liveness_eval.py conditions`` draws them) and the
evaluation's presentations (:func:`.report.build`: bona fide turn captures, rendered attacks, screen
replays). A capture's passive score is the product's (:func:`idp.liveness.core.passive_score`: the median
over ALL its face frames, an unscored one counting 0) over the frames filmed. Fused = the product's
decision (:func:`.report.judge`, that is :func:`idp.liveness.decide_capture`) with ``min_passive_score``
set to the threshold (its passive score is over the frames the capture used until it ended); "off" = 0,
the geometry alone. A capture refused at a threshold is refused at every
higher one (the passive check only adds a reason), so each threshold judges again only the captures the
one below it accepted.
"""
from __future__ import annotations

import collections
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from liveness_bench import data, media, protocol, report, sets  # noqa: E402
from liveness_bench.report import fraction  # noqa: E402

SPOOF_DIR = media.FACES_DIR.parent / "spoof" / "dtruong46me-fas"
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def spoof_crops(model) -> dict[str, np.ndarray]:
    """Scores of the labelled crops (``live``, ``other`` = spoof), the whole picture as the face box."""
    from PIL import Image
    out = {}
    for label in ("live", "other"):
        rgbs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((SPOOF_DIR / label).glob("*.jpg"))]
        out[label] = np.array([model.score(rgb, (0, 0, rgb.shape[1], rgb.shape[0])) for rgb in rgbs])
    return out


def rescore_clips(model):
    """Every face frame of the shared clips decoded and scored again with the cached box: (largest
    difference from the cached ``ps``, frames whose thumbnail differs from the cache's, [(wall s, CPU s)])."""
    from idp.liveness import thumbnail
    diff, mismatched, times = 0.0, 0, []
    for c in data.CLIPS:
        _, recs, thumbs = data.load(f"clip__{c}")
        for i, (_, rgb) in enumerate(media.decode_video(media.VIDEO_DIR / f"{c}.mp4")):
            if i >= len(recs) or np.abs(thumbnail(rgb).astype(int) - thumbs[i]).max() > 2:
                mismatched += 1
                continue
            if "box" in recs[i]:
                t, cpu = time.perf_counter(), time.process_time()
                s = model.score(rgb, recs[i]["box"])
                times.append((time.perf_counter() - t, time.process_time() - cpu))
                diff = max(diff, abs(round(s, 4) - recs[i]["ps"]))
    return diff, mismatched, times


def auc(pos, neg) -> float:
    """P(score of a live sample > score of an attack sample), ties count half."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def summary(v) -> str:
    v = np.asarray(v, float)
    return (f"{len(v)} | {v.min():.3f} | {np.percentile(v, 5):.3f} | {np.median(v):.3f} | "
            f"{np.percentile(v, 95):.3f} | {v.max():.3f}")


def face_scores(prefix: str) -> dict[str, np.ndarray]:
    """{sequence: the cached scores of its face frames} of the cached sequences ``prefix__*``."""
    return {name: np.array([r["ps"] for r in data.load(name)[1] if "box" in r]) for name in data.names(prefix)}


def judged(presentations, settings) -> dict[float, list[bool]]:
    """{threshold: accepted per presentation} of the product's decision, 0 (off) and THRESHOLDS."""
    out, todo, acc = {}, list(range(len(presentations))), [False] * len(presentations)
    for t in (0.0,) + THRESHOLDS:
        s = dataclasses.replace(settings, min_passive_score=t)
        res = report.judge([presentations[i] for i in todo], s)
        acc = [False] * len(presentations)
        for i, (_, c) in zip(todo, res):
            acc[i] = c.accepted
        out[t] = acc
        todo = [i for i in todo if acc[i]]
    return out


def errors(name: str, accepted) -> int:
    """Errors of set ``name`` given which of its presentations are accepted (refused bona fide, accepted attacks)."""
    return int(sum((not x) if report.is_bona(name) else x for x in accepted))


def main() -> int:
    from idp.liveness.antispoof import AntiSpoof

    t0 = time.time()
    model = AntiSpoof()
    print(f"# MiniFASNet evaluation (backend {model.backend})\n")
    crops = spoof_crops(model)
    diff, mismatched, times = rescore_clips(model)
    clips_f = {name.split("__")[1]: v for name, v in face_scores("clip").items()}
    kinds = collections.defaultdict(list)
    for name, v in face_scores("attack").items():
        kinds[name.split("__")[1]].extend(v)
    screen = np.concatenate(list(face_scores("screen").values()))
    bona = np.concatenate(list(clips_f.values()))
    rendered = np.concatenate([np.array(v) for v in kinds.values()])
    print(f"Clip face frames scored again: {len(times)}, largest difference from the cached score {diff:.4f}; "
          f"frames whose thumbnail differs from the cache's (not compared): {mismatched}\n")

    print("## Per frame / per picture: score distribution\n")
    print("| set | n | min | 5th pct | median | 95th pct | max |\n|---|---|---|---|---|---|---|")
    frame_sets = {"spoof crops: live": crops["live"], "spoof crops: other (spoof)": crops["other"],
                  "bona fide clip frames": bona}
    rows = dict(frame_sets)
    rows.update({f"&nbsp; clip {c}": v for c, v in clips_f.items()})
    attack_frames = {f"attack frames: {k}": np.array(v) for k, v in sorted(kinds.items())}
    attack_frames["screen replay frames"] = screen
    rows.update(attack_frames)
    for name, v in rows.items():
        print(f"| {name} | {summary(v)} |")
    print(f"\nAUC live vs spoof crops: {auc(crops['live'], crops['other']):.3f}; clip frames vs all rendered "
          f"attack frames: {auc(bona, rendered):.3f}; clip frames vs screen replay frames: {auc(bona, screen):.3f}\n")

    print("## Per frame / per picture: error rates (refused if score < threshold)\n")
    print("| set | " + " | ".join(map(str, THRESHOLDS)) + " |\n|---|" + "---|" * len(THRESHOLDS))
    for name, v in {**frame_sets, **attack_frames}.items():
        live = name in ("spoof crops: live", "bona fide clip frames")
        cells = [fraction(int((v < t).sum() if live else (v >= t).sum()), len(v)) for t in THRESHOLDS]
        print(f"| {'BPCER' if live else 'APCER'} {name} | " + " | ".join(cells) + " |")
    print(f"\nUpstream's own label (class 1 = argmax): crops live called real "
          f"{fraction(int((crops['live'] > 0.5).sum()), len(crops['live']))} (>0.5 is sufficient, not necessary)\n")

    # ---- per presentation
    settings = protocol.product_settings()
    protocol.memoise_rigidity()
    pres, clips, _ = report.build(settings)
    bursts = sets.plain_bursts(clips, np.random.default_rng(11))
    plain = np.array([report.passive(p.frames) for p in bursts])
    ps = {name: np.array([report.passive(p.frames) for p in items]) for name, items in pres.items()}
    acc = {name: judged(items, settings) for name, items in pres.items()}
    print("## Per capture: the product's passive score (median over all face frames)\n")
    print("Cells: passive alone / fused (the product's decision with that threshold); bona fide: BPCER, "
          "attacks: APCER.\n")
    d = protocol.PASSIVE_MIN
    print("| set | n | off (geometry alone) | " + " | ".join(f"{t}" + (" (default)" if t == d else "") for t in THRESHOLDS)
          + " | fused at the default, 95 % upper bound |\n|---|---|---|" + "---|" * (len(THRESHOLDS) + 1))
    print(f"| plain bursts (bona fide, no move asked) | {len(plain)} | - | "
          + " | ".join(f"{fraction(int((plain < t).sum()), len(plain))} / -" for t in THRESHOLDS) + " | - |")
    for name, items in pres.items():
        if not items:
            print(f"| {name} | 0 | none presented |" + " |" * (len(THRESHOLDS) + 1))
            continue
        n, v, a = len(items), ps[name], acc[name]
        cells = [f"{fraction(errors(name, v >= t), n)} / {fraction(errors(name, a[t]), n)}" for t in THRESHOLDS]
        print(f"| {name} | {n} | {fraction(errors(name, a[0.0]), n)} | " + " | ".join(cells)
              + f" | {report.upper95(errors(name, a[d]), n):.0%} |")

    print("\nThe passive signal alone by the source of the printed picture (LFW photo / a frame of the victim's "
          "own clip), APCER:\n")
    rendered_sets = [k for k in pres if not report.is_bona(k) and not k.startswith("replay")]
    print("| threshold | " + " | ".join(rendered_sets) + " |\n|---|" + "---|" * len(rendered_sets))
    for t in (0.1, 0.2, 0.3, 0.5):
        cells = []
        for k in rendered_sets:
            src = np.array([p.label.split(":")[0] for p in pres[k]])
            cells.append(" / ".join(fraction(int((ps[k][src == s] >= t).sum()), int((src == s).sum()))
                                    for s in ("lfw", "clip")))
        print(f"| {t} | " + " | ".join(cells) + " |")

    print("\nAttack presentations the product's geometry accepts (off), with their passive score:\n")
    for name in pres:
        if report.is_bona(name):
            continue
        got = [(p.label, round(float(s), 3)) for p, s, ok in zip(pres[name], ps[name], acc[name][0.0]) if ok]
        if len(got) > 8:
            print(f"* {name}: {len(got)}, passive score {summary([s for _, s in got])} (n | min | 5th | median | "
                  "95th | max)")
        elif got:
            print(f"* {name}: {got}")
    att = np.concatenate([ps[k] for k in rendered_sets])
    replay = np.concatenate([ps[k] for k in pres if k.startswith("replay")])
    print(f"\nAUC per capture, passive alone: plain bursts vs rendered attacks {auc(plain, att):.3f}, "
          f"vs screen replays {auc(plain, replay):.3f}")
    print(f"\nPlain bursts' passive score: {summary(plain)} (n | min | 5th | median | 95th | max); "
          f"lowest: {bursts[int(plain.argmin())].label}")
    for name in pres:
        if report.is_bona(name):
            print(f"{name}: lowest passive score {ps[name].min():.3f}")

    wall = np.array([w for w, _ in times]) * 1000
    cpu = np.array([c for _, c in times]) * 1000
    print(f"\n## Cost\n\nPer face (crop + both models, backend {model.backend}), over the {len(wall)} clip face "
          f"frames scored again: wall median {np.median(wall):.1f} ms (95th pct {np.percentile(wall, 95):.1f}), "
          f"CPU time median {np.median(cpu):.1f} ms. Run took {time.time() - t0:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
