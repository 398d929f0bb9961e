#!/usr/bin/env python
"""Scoring-variant study for the face engine: embed once, score many ways.

    .venv/bin/python benchmarks/face_variants.py cache colour|cohortall|pairs   # embeddings -> var/facecache/*.npz
    .venv/bin/python benchmarks/face_variants.py cohort        # writes idp/face/data/cohort-*.npy (from cohortall)
    .venv/bin/python benchmarks/face_variants.py study                       # table of every variant

``cache`` runs MTCNN on every image and embeds EVERY detected face (confidence
>= the engine's floor, at most 4 per image) plus its mirror image, with the
quality metrics of each face, so that face-selection rules, flip augmentation
and template/score variants can all be compared on the same embeddings without
running the networks again. Nothing under var/ is committed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FACES = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))
CACHE = ROOT / "var" / "facecache"
MAX_FACES = 4
COHORT_IDENTITIES = 400


def colour_paths():
    from idp.face.evaluation import identities

    ids = identities(FACES / "lfw_color65_240px")
    return [p for files in ids.values() for p in files]


def pairs_paths():
    from idp.face.evaluation import read_pairs

    pairs, _ = read_pairs(FACES / "lfw" / "pairs.txt", FACES / "lfw")
    return sorted({p for _, a, b, _ in pairs for p in (a, b)})


def cohort_paths(limit=COHORT_IDENTITIES):
    """First image of the first COHORT_IDENTITIES LFW identities (sorted) that are neither in pairs.txt nor
    among the colour-LFW people: disjoint from both evaluation sets."""
    from idp.face.evaluation import read_pairs

    lfw = FACES / "lfw"
    pairs, _ = read_pairs(lfw / "pairs.txt", lfw)
    used = {p.parent.name for _, a, b, _ in pairs for p in (a, b)}
    used |= {d.name for d in (FACES / "lfw_color65_240px").iterdir() if d.is_dir()}
    out = []
    for d in sorted(p for p in lfw.iterdir() if p.is_dir() and p.name not in used):
        files = sorted(d.glob("*.jpg"))
        if files:
            out.append(files[0])
        if len(out) >= limit:
            break
    return out


def cache(name: str) -> None:
    from idp.face import quality, settings
    from idp.face.engine import FaceEngine
    from idp.face.imageio import decode_image

    paths = {"colour": colour_paths, "colourgray": colour_paths, "pairs": pairs_paths, "cohort": cohort_paths,
             "cohortall": lambda: cohort_paths(10 ** 6)}[name]()
    gray = name.endswith("gray")  # every image converted to grey (as the LFW-a cohort and pairs are)
    engine = FaceEngine(ROOT / "var")
    rows = []  # per face: image index, face rank (by area), box(4), conf, landmarks(10), metrics
    crops, metrics_rows, embs, flips = [], [], [], []

    def flush():
        if crops:
            batch = np.stack(crops)
            embs.append(engine.embed_faces(batch))
            flips.append(engine.embed_faces(batch[:, :, ::-1].copy()))
            crops.clear()
    t0 = time.time()
    for i, p in enumerate(paths):
        rgb = decode_image(p.read_bytes(), 1 << 26, 1 << 26)
        if gray:
            rgb = to_grey(rgb)
        h, w = rgb.shape[:2]
        faces = [d for d in engine.detector.detect(rgb, engine.detect_max_side, engine.detect_min_face)
                 if d.confidence >= settings.MIN_DETECTION_CONFIDENCE][:MAX_FACES]
        if not faces:  # evaluation fallback: the central 60% of the image
            crop = quality.crop_face(rgb, (0.2 * w, 0.2 * h, 0.6 * w, 0.6 * h), margin=0.0)
            rows.append([i, -1, 0.2 * w, 0.2 * h, 0.6 * w, 0.6 * h, 0.0] + [np.nan] * 10 + [w, h])
            metrics_rows.append({})
            crops.append(crop)
        for rank, d in enumerate(faces):
            lm = [d.landmarks.get(k, (np.nan, np.nan)) for k in
                  ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")]
            rows.append([i, rank, *d.box, d.confidence] + [c for xy in lm for c in xy] + [w, h])
            metrics_rows.append(quality.measure(rgb, d.box, d.landmarks))
            crops.append(quality.crop_face(rgb, d.box))
        if len(crops) >= 64:
            flush()
        if i % 200 == 0:
            print(f"{name}: {i}/{len(paths)} images, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    flush()
    emb, emb_flip = np.concatenate(embs), np.concatenate(flips)
    keys = sorted({k for m in metrics_rows for k in m})
    metrics = np.array([[float(m.get(k, np.nan)) for k in keys] for m in metrics_rows], np.float64)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(CACHE / f"{name}.npz", paths=np.array([str(p) for p in paths]), faces=np.array(rows),
                        emb=emb, emb_flip=emb_flip, metrics=metrics, metric_keys=np.array(keys))
    print(f"{name}: {len(paths)} images, {len(rows)} faces, {time.time() - t0:.0f} s", file=sys.stderr)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma replicated to three channels (uint8)."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.repeat(np.clip(np.rint(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


# --- study ---------------------------------------------------------------------------------
def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-10)


class Cached:
    """One cached set: per image, the face a selection rule picks, with or without flip augmentation."""

    def __init__(self, name):
        d = np.load(CACHE / f"{name}.npz")
        self.paths = [str(p) for p in d["paths"]]
        self.faces, self.emb, self.emb_flip = d["faces"], d["emb"], d["emb_flip"]
        self.metrics, self.keys = d["metrics"], [str(k) for k in d["metric_keys"]]
        self.rows = {}
        for r, i in enumerate(self.faces[:, 0].astype(int)):
            self.rows.setdefault(i, []).append(r)

    def _det(self, r):
        from idp.face.detector import Detection

        f = self.faces[r]
        names = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
        lm = {} if np.isnan(f[7]) else {k: (f[7 + 2 * j], f[8 + 2 * j]) for j, k in enumerate(names)}
        return Detection(box=tuple(f[2:6]), confidence=f[6], landmarks=lm)

    def select(self, rule):
        from idp.face.engine import select_subject

        out = []
        for i in range(len(self.paths)):
            rows = self.rows[i]
            if rule == "largest" or self.faces[rows[0], 1] < 0:
                out.append(rows[0])
                continue
            dets = [self._det(r) for r in rows]
            w, h = self.faces[rows[0], 17:19]
            out.append(rows[dets.index(select_subject(dets, int(w), int(h)))])
        return np.array(out)

    def embeddings(self, rule="largest", flip=False):
        sel = self.select(rule)
        return (_unit(self.emb[sel] + self.emb_flip[sel]) if flip else self.emb[sel]), sel

    def refusals(self, sel):
        from idp.face import quality

        out = []
        for r in sel:
            if self.faces[r, 1] < 0:
                out.append("no_face")
                continue
            m = {k: self.metrics[r, j] for j, k in enumerate(self.keys)}
            m["landmarks_inside"] = bool(m["landmarks_inside"])
            rs = quality.check(m)
            # the engine's MULTIPLE_FACES rule, against the other faces of the image
            others = [q for q in self.rows[int(self.faces[r, 0])] if q != r]
            area = self.faces[r, 4] * self.faces[r, 5]
            if others and max(self.faces[q, 4] * self.faces[q, 5] for q in others) >= \
                    __import__("idp.face.settings", fromlist=["x"]).SECOND_FACE_AREA_RATIO * area:
                rs = ["multiple_faces"] + rs
            out.append(rs[0] if rs else "")
        return out


def _enrollment_split(labels, enroll=5):
    templates, owners, probes, probe_labels = [], [], [], []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        if len(idx) <= enroll:
            continue
        templates.append(idx[:enroll])
        owners.append(k)
        probes += list(idx[enroll:])
        probe_labels += [k] * (len(idx) - enroll)
    return templates, np.array(owners), np.array(probes), np.array(probe_labels)


def enrollment_scores(embs, labels, score_fn, enroll=5, template_embs=None):
    """(genuine, impostor, genuine mask, probe indices) of the enrollment protocol. ``template_embs``: the
    embeddings enrollment photos contribute (e.g. flip-augmented), if not the probes' own."""
    templates, owners, probes, probe_labels = _enrollment_split(labels, enroll)
    tsrc = embs if template_embs is None else template_embs
    s = score_fn([tsrc[t] for t in templates], embs[probes])
    mask = owners[:, None] == probe_labels[None, :]
    return s, mask, probes


def main_study():
    from idp.face import scoring
    from idp.face.evaluation import read_pairs

    colour, pairs_set = Cached("colour"), Cached("pairs")
    cohort_set = Cached("cohortall")
    labels = np.unique([Path(p).parent.name for p in colour.paths], return_inverse=True)[1]
    pairs, _ = read_pairs(FACES / "lfw" / "pairs.txt", FACES / "lfw")
    index = {str(Path(p).relative_to(FACES / "lfw")): i for i, p in enumerate(pairs_set.paths)}
    A = np.array([index[str(a.relative_to(FACES / "lfw"))] for _, a, _, _ in pairs])
    B = np.array([index[str(b.relative_to(FACES / "lfw"))] for _, _, b, _ in pairs])
    same = np.array([s for *_, s in pairs])
    # Grayscale calibration protocol: LFW-pairs identities with >= 6 images, minus the colour-LFW people.
    colour_people = {Path(p).parent.name for p in colour.paths}
    gnames = np.array([Path(p).parent.name for p in pairs_set.paths])
    keep = np.array([n not in colour_people for n in gnames])
    counts = {n: c for n, c in zip(*np.unique(gnames[keep], return_counts=True))}
    gkeep = np.flatnonzero(keep & np.array([counts.get(n, 0) >= 6 for n in gnames]))
    glabels = np.unique(gnames[gkeep], return_inverse=True)[1]

    def mean_template(method, cohort):
        scorer = scoring.Scorer(method, cohort=cohort, top_k=COHORT_TOP_K) if cohort is not None else \
            scoring.Scorer(scoring.COSINE)
        return (lambda ts, probes: scorer.score_matrix(np.stack([_unit(t.mean(0)) for t in ts]), probes),
                lambda a, b: scorer.score_pairs(a, b))

    def per_photo(agg):
        return (lambda ts, probes: np.stack([agg(t @ probes.T, axis=0) for t in ts]),
                lambda a, b: (a * b).sum(1))

    def asnorm_full(cohort, k=COHORT_TOP_K):
        def stats(v):
            top = np.sort(v @ cohort.T, axis=1)[:, -k:]
            return top.mean(1), top.std(1)

        def mat(ts, probes):
            t = _unit(np.stack([_unit(x.mean(0)) for x in ts]))
            (mt, st), (mp, sp) = stats(t), stats(probes)
            s = t @ probes.T
            return 0.5 * ((s - mt[:, None]) / st[:, None] + (s - mp[None, :]) / sp[None, :])

        def pair(a, b):
            (ma, sa), (mb, sb) = stats(a), stats(b)
            s = (a * b).sum(1)
            return 0.5 * ((s - ma) / sa + (s - mb) / sb)
        return mat, pair

    def cohort_mean_sub(cohort, k=COHORT_TOP_K):
        def m(v):
            return np.sort(v @ cohort.T, axis=1)[:, -k:].mean(1)

        def mat(ts, probes):
            t = _unit(np.stack([_unit(x.mean(0)) for x in ts]))
            return t @ probes.T - 0.5 * (m(t)[:, None] + m(probes)[None, :])
        return mat, lambda a, b: (a * b).sum(1) - 0.5 * (m(a) + m(b))

    def centred(cohort):
        mu = cohort.mean(0)
        return (lambda ts, probes: _unit(np.stack([_unit(t.mean(0)) for t in ts]) - mu) @ _unit(probes - mu).T,
                lambda a, b: (_unit(a - mu) * _unit(b - mu)).sum(1))

    coh_plain = scoring.load_cohort("1")  # the shipped version-1 cohort (subject choice, no flip, float16)
    coh_shipped_flip = scoring.load_cohort("2")  # the shipped version-2 cohort (the same, flip-averaged, float16)
    coh_flip = _unit(cohort_set.embeddings("subject", flip=True)[0][cohort_set.faces[
        cohort_set.embeddings("subject", flip=True)[1], 1] >= 0])
    variants = [
        ("A. today: largest face, cosine of mean template", "largest", False, mean_template(scoring.COSINE, None)),
        ("B. A + flip augmentation", "largest", True, mean_template(scoring.COSINE, None)),
        ("C. B + subject choice (whole, plausible face)", "subject", True, mean_template(scoring.COSINE, None)),
        ("D. C, mean of per-photo cosines (no mean template)", "subject", True, per_photo(np.mean)),
        ("E. C, max of per-photo cosines", "subject", True, per_photo(np.max)),
        ("F. C + cohort-mean centring", "subject", True, centred(coh_flip)),
        ("G. C + AS-norm top-50 (product scorer, version-2 cohort) = shipped", "subject", True,
         mean_template(scoring.ASNORM, coh_shipped_flip)),
        ("H. A + cohort-mean subtraction (no flip)", "largest", False, cohort_mean_sub(coh_plain)),
        ("I. C + cohort-mean subtraction (top-50)", "subject", True, cohort_mean_sub(coh_flip)),
        ("J. A + AS-norm (no flip, largest face)", "largest", False, asnorm_full(coh_plain)),
        ("K. C + AS-norm top-25", "subject", True, asnorm_full(coh_flip, 25)),
        ("L. C + AS-norm top-100", "subject", True, asnorm_full(coh_flip, 100)),
        ("M. C + AS-norm top-200", "subject", True, asnorm_full(coh_flip, 200)),
        ("N. subject choice + AS-norm top-50, no flip (product scorer) = version-1 templates", "subject", False,
         mean_template(scoring.ASNORM, coh_plain)),
        ("P. N + flip on the template side only (plain cohort)", "subject", "template",
         mean_template(scoring.ASNORM, coh_plain)),
        ("Q. N + flip on the template side only (flipped cohort)", "subject", "template",
         mean_template(scoring.ASNORM, coh_flip)),
    ]
    if (CACHE / "colourgray.npz").exists():  # `cache colourgray`: the colour photos converted to grey
        variants.append(("S. N on grey pictures (colour photos converted to grey, like the LFW-a cohort)", "subject",
                         False, mean_template(scoring.ASNORM, coh_plain), Cached("colourgray")))
    rows = []
    for name, rule, flip, (mat, pair), *cset in variants:
        cset = cset[0] if cset else colour
        # flip == "template": enrollment photos are flip-augmented, probes (sign-in frames) are not.
        tflip = flip == "template"
        flip = flip is True
        ce, csel = cset.embeddings(rule, flip)
        cte = cset.embeddings(rule, True)[0] if tflip else None
        s, mask, probes = enrollment_scores(ce, labels, mat, template_embs=cte)
        g, i = s[mask], s[~mask]
        pe, psel = pairs_set.embeddings(rule, flip)
        pte = pairs_set.embeddings(rule, True)[0][gkeep] if tflip else None
        gs, gm, _ = enrollment_scores(pe[gkeep], glabels, mat, template_embs=pte)
        calib_imp = np.concatenate([gs[~gm], i])
        t = calibrated_threshold(calib_imp)
        ps = pair(pe[A], pe[B])
        pg, pi = ps[same], ps[~same]
        refusals = cset.refusals(csel)
        passed = np.array([not refusals[p] for p in probes])
        row = {"variant": name, "threshold": float(t), "calib_impostors": int(len(calib_imp)),
               "gray_fmr_at_t": float(np.mean(gs[~gm] >= t)), "gray_impostors": int((~gm).sum())}
        row["colour"] = _figures(g, i, t)
        row["colour_gated"] = _figures(s[mask & passed[None, :]], s[~mask & passed[None, :]], t)
        row["colour_fta"] = float(np.mean(~passed))
        row["pairs"] = _figures(pg, pi, t)
        rows.append(row)
        c, p = row["colour"], row["pairs"]
        print(f"{name:55s} t={t:.2f} | colour FNMR@t {c['fnmr_t']*100:.2f}% FMR@t {c['fmr_t']:.1e} "
              f"@1e-3 {c['fnmr_1e-3']*100:.2f}% @1e-4 {c['fnmr_1e-4']*100:.2f}% EER {c['eer']*100:.2f}% | "
              f"gated FNMR@t {row['colour_gated']['fnmr_t']*100:.2f}% | pairs FNMR@t {p['fnmr_t']*100:.2f}% "
              f"FMR@t {p['fmr_t']:.1e} @1e-3 {p['fnmr_1e-3']*100:.2f}% EER {p['eer']*100:.2f}% | "
              f"gray FMR@t {row['gray_fmr_at_t']:.1e} of {row['gray_impostors']}", flush=True)
    import json

    (CACHE / "study.json").write_text(json.dumps(rows, indent=1))
    fta = colour.refusals(colour.embeddings("subject", True)[1])
    _, _, probes = enrollment_scores(colour.embeddings("subject", True)[0], labels,
                                     lambda ts, p: np.zeros((len(ts), len(p))))
    reasons = {}
    for p in probes:
        if fta[p]:
            reasons[fta[p]] = reasons.get(fta[p], 0) + 1
    print("colour probes refused by the quality gate (subject choice):", sum(reasons.values()), "of", len(probes),
          reasons)


def write_cohort(version=None):
    """The cohort file of a template version (settings.TEMPLATE_VERSIONS, default the current one): the
    product's embedding (subject choice, flip-averaged if the version flips) of each cohort image with a
    detected face, float16. Prints the sha256 for that version's cohort_sha256."""
    import hashlib
    import io

    from idp.face import settings

    spec = settings.TEMPLATE_VERSIONS[version or settings.MODEL_VERSION]
    cached = Cached("cohortall")
    embs, sel = cached.embeddings("subject", flip=spec.flip)
    embs = embs[cached.faces[sel, 1] >= 0].astype(np.float16)
    buf = io.BytesIO()
    np.save(buf, embs, allow_pickle=False)
    out = ROOT / "idp" / "face" / "data" / spec.cohort_file
    out.write_bytes(buf.getvalue())
    print(out, embs.shape, hashlib.sha256(buf.getvalue()).hexdigest())


CALIBRATION_FMR = 5e-5  # the target FMR 1e-4 with a factor-2 margin
THRESHOLD_STEP = 0.01


def calibrated_threshold(impostor) -> float:
    """The threshold rule: the FMR-5e-5 point (FMR 1e-4 with a factor-2 margin) of the pooled impostor
    scores, rounded up to THRESHOLD_STEP (0.05 for z-score scales > 2). Genuine scores are not used."""
    from idp.face.evaluation import threshold_at_fmr

    t = threshold_at_fmr(impostor, CALIBRATION_FMR)
    step = THRESHOLD_STEP if float(np.max(impostor)) < 2 else 0.05
    return float(np.ceil(t / step) * step)


def _figures(g, i, t):
    from idp.face.evaluation import eer, rates, threshold_at_fmr

    fmr, fnmr = rates(g, i, t)
    out = {"genuine": int(len(g)), "impostor": int(len(i)), "fmr_t": fmr, "fnmr_t": fnmr, "eer": eer(g, i)[0]}
    for target in (1e-3, 1e-4):
        out[f"fnmr_{target:.0e}".replace("e-03", "e-3").replace("e-04", "e-4")] = rates(g, i, threshold_at_fmr(i, target))[1]
    return out


COHORT_TOP_K = 50


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("sets", nargs="+", choices=["colour", "colourgray", "cohort", "cohortall", "pairs"])
    sub.add_parser("study")
    c = sub.add_parser("cohort")
    c.add_argument("--version", default=None, help="template version (default: settings.MODEL_VERSION)")
    args = ap.parse_args()
    if args.cmd == "cache":
        for s in args.sets:
            cache(s)
    elif args.cmd == "cohort":
        write_cohort(args.version)
    else:
        main_study()
