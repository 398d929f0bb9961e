#!/usr/bin/env python
"""The LFW 6,000 pairs columns of the variant table for rows O, R and W1-W6 (docs/evaluation.md).

    .venv/bin/python benchmarks/face_variants_pairs.py embed pairs|cohortall [--shard K --of N]
    .venv/bin/python benchmarks/face_variants_pairs.py score            # prints the rows, writes JSON

``embed`` is face_variants.py's ``cache`` + ``dlib`` restricted to what these rows use, in one pass per
image: MTCNN, the engine's confidence floor, at most 4 faces, the product's subject choice (the evaluation
fallback box, the central 60%, where no face is found), then for that face only FaceNet's crop, its mirror
and its roll-aligned crop (``crop_face_rolled``) through the model alone, and dlib's chip and its mirror.
Every face of an image is no longer embedded (the selection rules other than subject choice are not
needed here). A shard saves its progress every CHECKPOINT images and a new run of the same command resumes
from it. Embeddings only, var/facecache/.

``score`` scores the pairs as ``study`` / ``fusion`` do: the product's Scorer (AS-norm, top 50) per model
against its cohort, fused as w * FaceNet + (1 - w) * dlib; each row at the threshold already in the table
(not re-fitted). The cohorts are the shipped files where the row's kind is shipped (version 1: FaceNet
crop; version 2: crop + mirror; versions 3/4: dlib chip); dlib's flip-averaged cohort (W4-W6) and the
roll-aligned one are not shipped and come from ``embed cohortall``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import face_variants as fv  # noqa: E402

CACHE = fv.CACHE
CHECKPOINT = 256  # images between two saves of a shard's progress (a multiple of the 32-image batch)


def embed(name: str, shard: int, of: int, dlib_only: bool = False) -> None:
    from idp.face import quality, settings
    from idp.face.engine import FaceEngine, select_subject
    from idp.face.imageio import decode_image

    paths = {"pairs": fv.pairs_paths, "cohortall": lambda: fv.cohort_paths(10 ** 6)}[name]()
    idx = list(range(shard, len(paths), of))
    engine = FaceEngine(fv.ROOT / "var")
    predictor, rec = fv.dlib_models()
    found, boxes, crops, rolled, chips = [], [], [], [], []
    E = {k: [] for k in ("emb", "emb_flip", "emb_roll", "demb", "demb_flip")}
    # Resumable: every CHECKPOINT images the shard's progress is saved, and a new run continues from it.
    part = CACHE / f"{name}-part-{shard}of{of}.npz"
    start = 0
    if part.exists():
        d = np.load(part)
        start = int(d["done"])
        found, boxes = list(d["found"]), [tuple(b) for b in d["boxes"]]
        for k in E:
            if k in d.files:
                E[k].append(d[k])
        print(f"{name} shard {shard}/{of}: resuming at {start}/{len(idx)}", file=sys.stderr, flush=True)

    def checkpoint(done):
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(CACHE / f"{name}-part-{shard}of{of}.tmp.npz", done=done, found=np.array(found), boxes=np.array(boxes),
                 **{k: np.concatenate(v) for k, v in E.items() if v})
        (CACHE / f"{name}-part-{shard}of{of}.tmp.npz").replace(part)

    def flush():
        if crops:
            n = len(crops)
            b, rb = np.stack(crops), np.stack(rolled)
            if not dlib_only:
                out = engine.embedder(np.concatenate([b, b[:, :, ::-1], rb]))
                E["emb"].append(out[:n]); E["emb_flip"].append(out[n:2 * n]); E["emb_roll"].append(out[2 * n:])
            d = np.array(rec.compute_face_descriptor(chips + [np.ascontiguousarray(c[:, ::-1]) for c in chips]))
            E["demb"].append(d[:n]); E["demb_flip"].append(d[n:])
            crops.clear(); rolled.clear(); chips.clear()
    t0 = time.time()
    for j, i in enumerate(idx):
        if j < start:
            continue
        rgb = np.ascontiguousarray(decode_image(paths[i].read_bytes(), 1 << 26, 1 << 26))
        h, w = rgb.shape[:2]
        faces = [d for d in engine.detector.detect(rgb, engine.detect_max_side, engine.detect_min_face)
                 if d.confidence >= settings.MIN_DETECTION_CONFIDENCE][:fv.MAX_FACES]
        if not faces:
            box = (0.2 * w, 0.2 * h, 0.6 * w, 0.6 * h)
            crop = quality.crop_face(rgb, box, margin=0.0)
            crops.append(crop); rolled.append(crop)
        else:
            d = select_subject(faces, int(w), int(h))
            box = tuple(d.box)
            crops.append(quality.crop_face(rgb, d.box))
            rolled.append(fv.crop_face_rolled(rgb, d.box, d.landmarks))
        found.append(bool(faces)); boxes.append(box)
        chips.append(fv.dlib_chip(predictor, rgb, box)[0])
        if len(crops) >= 32:
            flush()
            if (j + 1) % CHECKPOINT == 0:
                checkpoint(j + 1)
        if j % 200 == 0:
            print(f"{name} shard {shard}/{of}: {j}/{len(idx)} images, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    flush()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(CACHE / f"{name}-sel-{shard}of{of}.npz", paths=np.array([str(paths[i]) for i in idx]),
                        index=np.array(idx), found=np.array(found), boxes=np.array(boxes),
                        **{k: fv._unit(np.concatenate(v)).astype(np.float32) for k, v in E.items() if v})
    part.unlink(missing_ok=True)
    print(f"{name} shard {shard}/{of}: {len(idx)} images, {time.time() - t0:.0f} s", file=sys.stderr)


def load(name: str) -> dict:
    parts = [np.load(p) for p in sorted(CACHE.glob(f"{name}-sel-*of*.npz"))]
    if not parts:
        raise SystemExit(f"no {name}-sel-*.npz: run `embed {name}`")
    order = np.argsort(np.concatenate([p["index"] for p in parts]))
    out = {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0].files}
    if not np.array_equal(out["index"], np.arange(len(out["index"]))):
        raise SystemExit(f"{name}: shards incomplete")
    return out


# (row, threshold from the table, FaceNet kind, dlib kind, weight on FaceNet, scoring: "asnorm" against the
# kind's own cohort (R: the roll-aligned crop against version 1's plain cohort), "asnorm-rollcohort" (R1: against
# a roll-aligned cohort), "cosine" (O: raw cosines, no threshold in the table))
ROWS = [
    ("W1", 5.40, None, "dlib", 0.0, "asnorm"),
    ("W3", 5.05, "flip", "dlib", 0.73, "asnorm"),
    ("W5", 4.85, "flip", "dlibflip", 0.5, "asnorm"),
    ("W4", 5.65, None, "dlibflip", 0.0, "asnorm"),
    ("W6", 5.05, "flip", "dlibflip", 0.73, "asnorm"),
    ("R", 5.65, "roll", None, 1.0, "asnorm"),  # N's (version-1) cohort, as the row says
    ("R1", 5.60, "roll", None, 1.0, "asnorm-rollcohort"),  # check: R1's pairs columns are in the table
    ("O", None, "flip", "dlib", 0.3, "cosine"),
    # rows whose pairs columns are already in the table, as a check of this path
    ("G", 5.55, "flip", None, 1.0, "asnorm"),
    ("N", 5.65, "crop", None, 1.0, "asnorm"),
    ("W2", 5.00, "flip", "dlib", 0.5, "asnorm"),
    ("W7", 4.95, "crop", "dlib", 0.5, "asnorm"),
]


def score(weights_json: str | None) -> None:
    from idp.face import scoring
    from idp.face.evaluation import eer, rates, threshold_at_fmr

    p = load("pairs")
    coh = None
    if list(CACHE.glob("cohortall-sel-*of*.npz")):
        c = load("cohortall")
        kinds = {"dlibflip": fv._unit(c["demb"] + c["demb_flip"]), "dlib_rebuilt": c["demb"]}
        if "emb_roll" in c:  # (not with --dlib-only)
            kinds["roll"] = c["emb_roll"]
        coh = {k: fv._unit(v[c["found"]].astype(np.float16).astype(np.float32)) for k, v in kinds.items()}
        shipped = scoring.load_dlib_cohort("4")
        same_shape = shipped.shape == coh["dlib_rebuilt"].shape
        print("cohortall:", int(c["found"].sum()), "of", len(c["found"]), "images with a face; dlib cohort rebuilt vs "
              "shipped:", shipped.shape, "max |diff|", float(np.abs(coh["dlib_rebuilt"] - shipped).max()) if same_shape
              else "shapes differ")
    emb = {"crop": p["emb"], "flip": fv._unit(p["emb"] + p["emb_flip"]), "roll": p["emb_roll"],
           "dlib": p["demb"], "dlibflip": fv._unit(p["demb"] + p["demb_flip"])}
    cohorts = {"crop": scoring.load_cohort("1"), "flip": scoring.load_cohort("2"), "dlib": scoring.load_dlib_cohort("4")}
    if coh:
        cohorts.update({k: v for k, v in coh.items() if k in ("dlibflip", "roll")})
    pset = type("P", (), {})()
    pset.paths = [str(x) for x in p["paths"]]
    A, B, same = fv.lfw_pair_indices(pset)

    def s(kind, method):
        if method == "cosine":
            return (emb[kind][A] * emb[kind][B]).sum(1)
        ckind = "crop" if (kind == "roll" and method == "asnorm") else kind
        sc = scoring.Scorer(scoring.ASNORM, cohort=np.asarray(cohorts[ckind], np.float32), top_k=fv.COHORT_TOP_K)
        return sc.score_pairs(emb[kind][A], emb[kind][B]).astype(np.float64)
    out = []
    for name, t, fk, dk, w, method in ROWS:
        need = [k for k in (fk, dk) if k is not None and not (k == "roll" and method == "asnorm")]
        if any(k not in cohorts for k in need) and method != "cosine":
            print(f"{name}: skipped (no cohort for it: run `embed cohortall`)")
            continue
        x = (w * s(fk, method) if fk else 0) + ((1 - w) * s(dk, method) if dk else 0)
        g, i = x[same], x[~same]
        row = {"variant": name, "threshold": t, "facenet": fk, "dlib": dk, "weight_facenet": w, "scoring": method,
               "genuine": int(len(g)), "impostor": int(len(i)), "eer": eer(g, i)[0],
               "fnmr_1e-3": rates(g, i, threshold_at_fmr(i, 1e-3))[1],
               "impostor_max": float(i.max()), "genuine_mean": float(g.mean()), "impostor_mean": float(i.mean())}
        if t is not None:
            row["fmr_t"], row["fnmr_t"] = rates(g, i, t)
        out.append(row)
        print(f"{name:3s} t={t} | pairs FNMR@t {row.get('fnmr_t', float('nan'))*100:.2f}% FMR@t "
              f"{row.get('fmr_t', float('nan')):.1e} @1e-3 {row['fnmr_1e-3']*100:.2f}% EER {row['eer']*100:.2f}% "
              f"| imp max {row['impostor_max']:.2f}", flush=True)
    info = {"images": int(len(p["found"])), "no_face_fallback": int((~p["found"]).sum()),
            "cohort_images_with_face": int(coh["dlibflip"].shape[0]) if coh else None}
    print(info)
    if weights_json:
        Path(weights_json).write_text(json.dumps({"pairs_images": info, "rows": out}, indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("embed")
    c.add_argument("set", choices=["pairs", "cohortall"])
    c.add_argument("--shard", type=int, default=0)
    c.add_argument("--of", type=int, default=1)
    c.add_argument("--dlib-only", action="store_true", help="dlib's chip and mirror only (no FaceNet crops)")
    c = sub.add_parser("score")
    c.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.cmd == "embed":
        embed(a.set, a.shard, a.of, a.dlib_only)
    else:
        score(a.json)
