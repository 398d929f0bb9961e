"""Measure the passive MiniFASNet signal (idp.liveness.antispoof) on this project's data, alone and
fused with the product's liveness decision.

Usage (after ``benchmarks/liveness_data.py`` has filled its cache)::

    .venv/bin/python benchmarks/antispoof_eval.py [--fresh] > /tmp/antispoof.md

The per-frame scores (and the per-frame cost measured while computing them) are kept in
``$LIVENESS_CACHE/antispoof_scores_<weights sha>.npz``; ``--fresh`` recomputes them (about 20 min here).

Sets (the score is the models' averaged class-1 "real" probability; higher = more live):

* ``../shared/data/spoof/dtruong46me-fas``: labelled live / spoof face crops. They are tight MTCNN
  crops, so the whole picture is the face box and the 2.7x / 4x context the models were trained with
  is missing (the crop scale is clamped to the picture).
* Bona fide: every frame of the 12 shared talking-head clips (15 fps, the product's detector boxes
  from the liveness cache; each decoded frame is checked against the cached thumbnail).
* Attacks: the rendered presentations of ``liveness_data.build_attacks`` (re-rendered here with its
  own seeds and code, the detector boxes taken from the cache when the frame matches its cached
  thumbnail, else detected again), and the replays of the clips.

Per presentation the product would score the frames it accepts: here the **median over the first 5
face frames** (``face_verify_frames``) of each burst. Bona fide bursts: the 15 turn bursts of
``liveness_rigidity_eval.build`` and, for the passive signal alone, a burst started every 0.5 s of
every clip. Fused = the product's decision (``liveness_rigidity_eval.decide``) passes AND the
passive score >= threshold.
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import liveness_data as ld  # noqa: E402
import liveness_eval as old  # noqa: E402

SPOOF_DIR = old.FACES_DIR.parent / "spoof" / "dtruong46me-fas"
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
SCORES = Path(os.environ.get("LIVENESS_CACHE", "/tmp/liveness_cache")) / "antispoof_scores.npz"
PER_BURST = 5  # face frames scored per capture (the sign-in's face_verify_frames)
TIMES: list[tuple[float, float]] = []  # (wall s, cpu s) per scored frame


def scorer():
    from idp.liveness.antispoof import AntiSpoof

    model = AntiSpoof()

    def score(rgb, box):
        t, c = time.perf_counter(), time.process_time()
        s = model.score(rgb, box)
        TIMES.append((time.perf_counter() - t, time.process_time() - c))
        return s
    return model, score


def spoof_set(score):
    out = {}
    for label in ("live", "other"):
        from PIL import Image

        vals = []
        for p in sorted((SPOOF_DIR / label).glob("*.jpg")):
            rgb = np.asarray(Image.open(p).convert("RGB"))
            vals.append(score(rgb, (0, 0, rgb.shape[1], rgb.shape[0])))
        out[label] = np.array(vals)
    return out


def _same(th, cached) -> bool:
    return th.shape == cached.shape and int(np.abs(th.astype(np.int16) - cached.astype(np.int16)).max()) <= 2


def clip_scores(score):
    """{clip: per-frame scores (NaN without a face)} at the cache's 15 fps."""
    from idp.liveness import thumbnail

    out, mismatched = {}, 0
    for path in sorted(old.VIDEO_DIR.glob("*.mp4")):
        meta = json.loads((ld.CACHE / f"clip__{path.stem}.json").read_text())
        thumbs = np.load(ld.CACHE / f"clip__{path.stem}_thumbs.npy")
        vals = []
        for i, (_, rgb) in enumerate(old.decode_video(path)):
            f = meta["frames"][i] if i < len(meta["frames"]) else {}
            box = f.get("box")
            if i >= len(thumbs) or not _same(thumbnail(rgb), thumbs[i]):
                mismatched += 1
                box = (old.detect(rgb) or {}).get("box")
            vals.append(score(rgb, box) if box else np.nan)
        out[path.stem] = np.array(vals)
        print(f"clip {path.stem}: {len(vals)} frames", file=sys.stderr, flush=True)
    return out, mismatched


def attack_scores(score):
    """{sequence name: per-frame scores} of the rendered attacks, re-rendered by liveness_data's own code."""
    cache = ld.CACHE
    out, pending, mismatched = {}, [], [0]

    def analyse(rgb):
        pending.append(rgb)
        return {}, np.full((468, 3), np.nan, np.float32)

    def save(name, meta, frames, dense, thumbs):
        cached = json.loads((cache / f"{name}.json").read_text())["frames"]
        cthumbs = np.load(cache / f"{name}_thumbs.npy")
        vals = []
        for i, rgb in enumerate(pending):
            box = cached[i].get("box") if i < len(cached) else None
            if i >= len(cthumbs) or not _same(thumbs[i], cthumbs[i]):
                mismatched[0] += 1
                box = (old.detect(rgb) or {}).get("box")
            vals.append(score(rgb, box) if box else np.nan)
        out[name] = np.array(vals)
        pending.clear()

    saved = ld.analyse, ld._save, ld.CACHE
    with tempfile.TemporaryDirectory() as tmp:
        ld.analyse, ld._save, ld.CACHE = analyse, save, Path(tmp)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                ld.build_attacks()
        finally:
            ld.analyse, ld._save, ld.CACHE = saved
    return out, mismatched[0]


def auc(pos, neg) -> float:
    """P(score of a live sample > score of an attack sample), ties count half."""
    pos, neg = np.asarray(pos), np.asarray(neg)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if not len(pos) or not len(neg):
        return float("nan")
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)


def pct(k, n) -> str:
    return f"{100.0 * k / max(n, 1):.1f}% ({k}/{n})"


def summary(v) -> str:
    v = np.asarray(v)
    v = v[np.isfinite(v)]
    return (f"{len(v)} | {np.min(v):.3f} | {np.percentile(v, 5):.3f} | {np.median(v):.3f} | "
            f"{np.percentile(v, 95):.3f} | {np.max(v):.3f}")


def burst_score(frame_scores) -> float:
    v = [s for s in frame_scores if np.isfinite(s)][:PER_BURST]
    return float(np.median(v)) if v else float("nan")


def main() -> int:
    import liveness_rigidity_eval as lre

    from idp.liveness import LivenessSettings

    t0 = time.time()
    model, score = scorer()
    print(f"# MiniFASNet evaluation (backend {model.backend})\n")
    from idp.liveness.antispoof import MODEL_SHA256

    saved = SCORES.with_name(f"{SCORES.stem}_{MODEL_SHA256[:12]}.npz")
    if saved.exists() and "--fresh" not in sys.argv:  # the scores (and their timing) of an earlier run
        with np.load(saved) as z:
            spoof = {k[6:]: z[k] for k in z.files if k.startswith("spoof/")}
            clips = {k[5:]: z[k] for k in z.files if k.startswith("clip/")}
            attacks_f = {k[7:]: z[k] for k in z.files if k.startswith("attack/")}
            frame_times = [tuple(r) for r in z["times"]]
        print(f"(scores and timings loaded from {saved}, measured in the run that wrote it)\n")
    else:
        spoof = spoof_set(score)
        clips, clip_mis = clip_scores(score)
        n_clip_frames = sum(len(v) for v in clips.values())
        frame_times = TIMES[-n_clip_frames:]
        attacks_f, att_mis = attack_scores(score)
        print(f"frames re-detected because they differed from the cache: clips {clip_mis}, attacks {att_mis}\n",
              file=sys.stderr)
        np.savez(saved, times=np.array(frame_times), **{f"spoof/{k}": v for k, v in spoof.items()},
                 **{f"clip/{k}": v for k, v in clips.items()}, **{f"attack/{k}": v for k, v in attacks_f.items()})

    # ---- per-frame distributions
    kinds = collections.defaultdict(list)
    for name, v in attacks_f.items():
        kinds[name.split("__")[1]].extend(v.tolist())
    bona_frames = np.concatenate(list(clips.values()))
    print("## Per frame / per picture: score distribution\n")
    print("| set | n | min | 5th pct | median | 95th pct | max |\n|---|---|---|---|---|---|---|")
    print(f"| spoof crops: live | {summary(spoof['live'])} |")
    print(f"| spoof crops: other (spoof) | {summary(spoof['other'])} |")
    print(f"| bona fide clip frames | {summary(bona_frames)} |")
    for c, v in clips.items():
        print(f"| &nbsp; clip {c} | {summary(v)} |")
    for k in ld.ATTACK_KINDS:
        print(f"| attack frames: {k} | {summary(kinds[k])} |")
    print()
    print(f"AUC live vs spoof crops: {auc(spoof['live'], spoof['other']):.3f}; "
          f"clip frames vs all rendered attack frames: {auc(bona_frames, sum(kinds.values(), [])):.3f}\n")

    print("## Per frame / per picture: error rates by threshold (refused if score < threshold)\n")
    print("| threshold | crops: BPCER live | crops: APCER spoof | clip frames: BPCER | "
          + " | ".join(f"APCER {k}" for k in ld.ATTACK_KINDS) + " |")
    print("|---|---|---|---|" + "---|" * len(ld.ATTACK_KINDS))
    for t in THRESHOLDS:
        live, oth = spoof["live"], spoof["other"]
        cells = [pct(int((live < t).sum()), len(live)), pct(int((oth >= t).sum()), len(oth))]
        b = bona_frames[np.isfinite(bona_frames)]
        cells.append(pct(int((b < t).sum()), len(b)))
        for k in ld.ATTACK_KINDS:
            a = np.array(kinds[k])
            a = a[np.isfinite(a)]
            cells.append(pct(int((a >= t).sum()), len(a)))
        print(f"| {t} | " + " | ".join(cells) + " |")
    print(f"\nUpstream's own label (class 1 = argmax): crops live called real "
          f"{pct(int((spoof['live'] > 0.5).sum()), len(spoof['live']))} (>0.5 is sufficient, not necessary)\n")

    # ---- per presentation, with the product's decision
    s = LivenessSettings()
    bona, attacks, _ = lre.build(s.min_turn_deg)
    clip_obs = {p.stem.split("__")[1]: ld.load(p)[1] for p in sorted(ld.CACHE.glob("clip__*.json"))}

    def key(o):  # a clip frame, whichever load() it came from (product_burst copies it with a new time)
        return o.box, None if o.dense is None else o.dense.tobytes()

    index = {c: {key(o): i for i, o in enumerate(obs) if o.box is not None} for c, obs in clip_obs.items()}

    def burst_frames(clip, obs):
        return [clips[clip][index[clip][key(o)]] for o in obs if o.box is not None]

    # every 0.5 s of every clip: the passive signal alone (it does not depend on the challenge)
    rng = np.random.default_rng(11)
    all_bursts = []
    for c, obs in clip_obs.items():
        for start in np.arange(0, obs[-1].t_ms, 500.0):
            b = lre.product_burst(obs, start, rng)
            if b is not None:
                all_bursts.append(burst_score(burst_frames(c, b)))
    all_bursts = np.array(all_bursts)
    turn_res = [(burst_score(burst_frames(lab, obs)), lre.decide(obs, ch).passed) for lab, ch, obs, m in bona]
    att_res = {}
    for kind, items in sorted(attacks.items()):
        rows = []
        for lab, ch, obs, m in items:
            if kind.startswith("replay"):
                ps = burst_score(burst_frames(lab, obs))
            else:
                src, who = lab.split(":", 1)
                ps = burst_score(attacks_f[f"attack__{kind}__{src}__{who}"])
            rows.append((ps, lre.decide(obs, ch).passed))
        att_res[kind] = rows
    print(f"## Per presentation: median score of the first {PER_BURST} face frames\n")
    print("| threshold | BPCER passive, all clip bursts | BPCER fused, turn bursts | "
          + " | ".join(f"APCER {k}: passive / fused" for k in att_res) + " |")
    print("|---|---|---|" + "---|" * len(att_res))
    for t in (0.0,) + THRESHOLDS:
        cells = [pct(int((all_bursts < t).sum()), len(all_bursts)),
                 pct(sum(not (ok and ps >= t) for ps, ok in turn_res), len(turn_res))]
        for kind, rows in att_res.items():
            cells.append(f"{pct(sum(ps >= t for ps, _ in rows), len(rows))} / "
                         f"{pct(sum(ok and ps >= t for ps, ok in rows), len(rows))}")
        print(f"| {t if t else 'off (product today)'} | " + " | ".join(cells) + " |")
    print("\nPassive signal alone by the source of the printed picture (LFW photo / frame of a shared clip):\n")
    print("| threshold | " + " | ".join(f"APCER {k}: LFW / clip" for k in att_res if not k.startswith("replay"))
          + " |\n|---|" + "---|" * sum(not k.startswith("replay") for k in att_res))
    for t in (0.1, 0.2, 0.3, 0.5):
        cells = []
        for kind, items in att_res.items():
            if kind.startswith("replay"):
                continue
            by = collections.defaultdict(list)
            for (lab, _, _, _), (ps, _) in zip(attacks[kind], items):
                by[lab.split(":")[0]].append(ps >= t)
            cells.append(" / ".join(pct(sum(by[src]), len(by[src])) for src in ("lfw", "clip")))
        print(f"| {t} | " + " | ".join(cells) + " |")
    print("\nScores of the attack presentations the product accepts today:")
    for kind, rows in att_res.items():
        acc = [(lab, round(ps, 3)) for (lab, *_), (ps, ok) in zip(attacks[kind], rows) if ok]
        if acc:
            print(f"* {kind}: {acc}")
    print(f"\nPassive score of all clip bursts: {summary(all_bursts)} (n | min | 5th | median | 95th | max)")
    print(f"Turn bursts: {sorted(round(ps, 3) for ps, _ in turn_res)}")

    wall = np.array([w for w, _ in frame_times]) * 1000
    cpu = np.array([c for _, c in frame_times]) * 1000
    print(f"\n## Cost\n\nPer face (crop + both models, backend {model.backend}), over the {len(wall)} clip frames "
          f"of the scoring run: wall median {np.median(wall):.1f} ms (95th pct {np.percentile(wall, 95):.1f}), "
          f"CPU time median {np.median(cpu):.1f} ms. Run took {time.time() - t0:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
