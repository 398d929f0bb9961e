"""The cache of analysed sequences: every frame as the capture API stores it (:func:`.media.analyse`)
plus its 32x32 thumbnail (the static-feed statistic), under ``$LIVENESS_CACHE`` (default
/tmp/liveness_cache; nothing is written into the repository).

Sequences (``<name>.json``: meta and frame records with ``t_ms``; ``<name>_thumbs.npy``):

* ``clip__<c>``: the shared talking-head clip ``c`` decoded at 15 fps (bona fide; replays of it);
* ``q80__<c>``: the same frames re-encoded as JPEG q80 (an intercepted capture re-sent);
* ``screen__<c>``: the same frames shown on a screen held by hand in front of the camera (a replay);
* ``<condition>__<c>`` (``dim``, ``dark``, ``noise``, ``lowres``, ``lowres_up``, ``lowres_far``,
  ``jpeg30``, ``blur``, ``motion``): the same frames as a camera in a worse condition films them and the
  page sends them (:data:`.media.CONDITIONS`, seeded per clip): bona fide, for :func:`.sets.in_condition`;
* ``attack__<kind>__<lfw|clip>__<who>``: a rendered print (:data:`.render.ATTACK_KINDS`) of a colour-LFW
  photo or of a frame of a shared clip (the victim's own video), filmed every 150 ms for 6 s while the
  attacker performs a random two-move challenge with it (``challenge`` in the meta: turns, or tilts for
  :data:`.render.PITCH_KINDS`);
* ``head__<clip>__<k>``: bona fide, rendered: the clip's most frontal frame (of its first 60) as a 2.5-D
  head (:func:`.render.turned_head`: the shape is the model's own landmarks of that frame) performing a
  random two-move challenge of turns and tilts (15-25 real degrees each), filmed every
  150 ms for 6 s with sensor noise: the only bona fide tilts of 12 degrees and more here (the clips' own
  nods are smaller);
* ``attack3__...``: the same prints (same photo, seed and background) performing a random three-move
  challenge (a measurement of ``IDP_LIVENESS_MOVES=3``; the window is 6 s as well).
"""
from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import numpy as np

from . import media, render

CACHE = Path(os.environ.get("LIVENESS_CACHE", "/tmp/liveness_cache")) / "v5"
CLIPS = ("d0", "d3", "d6", "d9", "d10", "d11", "d12", "d13", "d14", "d18", "d19", "d20")
N_LFW_PRINT = 12  # LFW people per print / bent-paper kind (plus one print from each of the 12 clips)
N_LFW_OTHER = 6  # ... per other kind (plus 3 clips): a time budget on 2 cores


def _save(name: str, meta: dict, frames: list[dict], thumbs: list) -> None:
    np.save(CACHE / f"{name}_thumbs.npy", np.stack(thumbs))
    (CACHE / f"{name}.json").write_text(json.dumps({**meta, "frames": frames}))


def _sequence(name: str, meta: dict, images) -> None:
    """Analyse ``(t_ms, rgb)`` pairs and save them as sequence ``name`` (skipped if cached)."""
    from idp.liveness import thumbnail
    if (CACHE / f"{name}.json").exists():
        return
    t0 = time.time()
    frames, thumbs = [], []
    for t_ms, rgb in images:
        frames.append({**media.analyse(rgb), "t_ms": round(float(t_ms), 1)})
        thumbs.append(thumbnail(rgb))
    _save(name, meta, frames, thumbs)
    print(f"{name}: {sum('box' in f for f in frames)}/{len(frames)} faces, "
          f"{sum(f['ok'] for f in frames)} good, {time.time() - t0:.0f}s", flush=True)


def build_clips(variants=("clip", "q80", "screen")) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        for c in CLIPS:
            path = media.VIDEO_DIR / f"{c}.mp4"
            if variant == "clip":
                images = media.decode_video(path)
            elif variant == "q80":
                images = ((t, media.jpeg(rgb, 80)) for t, rgb in media.decode_video(path))
            elif variant in media.CONDITIONS:
                rng = np.random.default_rng(zlib.crc32(f"{variant}__{c}".encode()))
                images = ((t, media.condition(variant, rgb, rng)) for t, rgb in media.decode_video(path))
            else:
                rng = np.random.default_rng(sum(map(ord, c)))
                frames = list(media.decode_video(path))
                bg = render.background(rng)
                images = ((t, media.camera(render.render_sheet(render.screen(rgb), bg, **pose), rng))
                          for (t, rgb), pose in zip(frames, render.screen_poses(rng, len(frames))))
            _sequence(f"{variant}__{c}", {"kind": variant, "clip": c}, images)


def attack_jobs() -> list[tuple[str, str, str, int]]:
    """(kind, source, who, seed) of every rendered attack sequence."""
    people = sorted(p.name for p in media.PHOTO_DIR.iterdir() if p.is_dir())
    jobs = []
    for ki, kind in enumerate(render.ATTACK_KINDS):
        printed = kind in render.PRINT_KINDS + render.PITCH_KINDS
        for j in range(N_LFW_PRINT if printed else N_LFW_OTHER):
            jobs.append((kind, "lfw", people[(ki * 7 + j) % len(people)], 10_000 + 100 * ki + j))
        for j, clip in enumerate(CLIPS if printed else CLIPS[:3]):
            jobs.append((kind, "clip", clip, 20_000 + 100 * ki + j))
    return jobs


def attack_prefix(moves: int = 2) -> str:
    """Name prefix of the rendered attacks performing ``moves`` turns (``attack`` for two)."""
    return "attack" if moves == 2 else f"attack{moves}"


def build_attacks(n_moves: int = 2, kinds=None) -> None:
    """Render and analyse every attack of :func:`attack_jobs` (of ``kinds``, default all), the attacker
    performing a random ``n_moves``-move challenge (2 or 3; the filming window, 6 s, is the same for both)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for kind, src, who, seed in attack_jobs():
        if kinds is not None and kind not in kinds:
            continue
        rng = np.random.default_rng(seed)
        photo = media.lfw_photo(who, rng) if src == "lfw" else media.clip_photo(who, rng)
        bg = render.background(rng)
        # the challenge the attacker was given: turns, or tilts for the prints tilted about their horizontal axis
        pool = ["look_up", "look_down"] if kind in render.PITCH_KINDS else ["turn_left", "turn_right"]
        moves = tuple(rng.choice(pool, n_moves))
        ticks = np.arange(0, render.ATTACK_MS + 1, render.INTERVAL_MS, dtype=float)
        times = ticks + rng.normal(0, 8, len(ticks))
        images = ((t, media.camera(render.render_sheet(photo, bg, **pose), rng))
                  for t, pose in zip(times, render.poses(kind, rng, ticks, moves)))
        _sequence(f"{attack_prefix(n_moves)}__{kind}__{src}__{who}", {"kind": kind, "source": src, "who": who,
                                                    "challenge": "+".join(moves)}, images)


N_HEADS = 1  # rendered bona fide heads per clip (a time budget: the render is slow)
HEAD_MOVES = ("turn_left", "turn_right", "look_up", "look_down")  # the pool they perform a challenge of


def build_heads() -> None:
    """Render and analyse the ``head__`` sequences (see the module docstring)."""
    from idp.liveness.landmarks import shared_landmarker

    from .truth import clip_yaw
    CACHE.mkdir(parents=True, exist_ok=True)
    for ci, clip in enumerate(CLIPS):
        todo = [j for j in range(N_HEADS) if not (CACHE / f"head__{clip}__{j}.json").exists()]
        if not todo:
            continue
        _, recs, _ = load(f"clip__{clip}")
        k = int(np.nanargmin(np.abs(clip_yaw(recs)[:60])))
        rgb = next(im for i, (_, im) in enumerate(media.decode_video(media.VIDEO_DIR / f"{clip}.mp4")) if i == k)
        a = media.engine().analyze(rgb, embed="never")
        p0 = shared_landmarker()(rgb, a.box, a.landmarks).points.astype(np.float64)
        for j in todo:
            rng = np.random.default_rng(30_000 + 10 * ci + j)
            moves = tuple(rng.choice(list(HEAD_MOVES), 2))
            ticks = np.arange(0, render.ATTACK_MS + 1, render.INTERVAL_MS, dtype=float)
            times = ticks + rng.normal(0, 8, len(ticks))
            images = ((t, media.camera(render.turned_head(rgb, p0, yaw, pitch), rng))
                      for t, (yaw, pitch) in zip(times, render.head_poses(moves, rng, ticks)))
            _sequence(f"head__{clip}__{j}", {"kind": "head", "clip": clip, "challenge": "+".join(moves)}, images)


def load(name: str) -> tuple[dict, list[dict], np.ndarray]:
    """(meta, frame records, thumbnails) of a cached sequence."""
    meta = json.loads((CACHE / f"{name}.json").read_text())
    return meta, meta.pop("frames"), np.load(CACHE / f"{name}_thumbs.npy")


def names(prefix: str) -> list[str]:
    return sorted(p.stem for p in CACHE.glob(f"{prefix}__*.json"))
