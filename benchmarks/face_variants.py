#!/usr/bin/env python
"""Scoring-variant study for the face engine: embed once, score many ways.

    .venv/bin/python benchmarks/face_variants.py cache colour|cohortall|pairs|pairscalib  # -> var/facecache/*.npz
    .venv/bin/python benchmarks/face_variants.py cohort        # writes idp/face/data/cohort-*.npy (from cohortall)
    .venv/bin/python benchmarks/face_variants.py study         # table of every variant (rows A-S)
    .venv/bin/python benchmarks/face_variants.py methods       # second round on top of G (rows R1-R4, U1-U4, V1-V3)
    .venv/bin/python benchmarks/face_variants.py rollcost      # CPU cost of roll alignment per 640x480 frame
    .venv/bin/python benchmarks/face_variants.py dlib colour cohortall pairscalib  # -> var/facecache/*-dlib.npz
    .venv/bin/python benchmarks/face_variants.py cohort --version 3  # writes version 3's dlib cohort (from cohortall-dlib)
    .venv/bin/python benchmarks/face_variants.py fusion        # dlib's ResNet alone and fused with G (rows W*)
    .venv/bin/python benchmarks/face_variants.py dlibcost      # dlib's cost per face next to FaceNet's
    .venv/bin/python benchmarks/face_variants.py calibrate [--version 4]  # the threshold rule on the product's pipeline

``cache`` runs MTCNN on every image and embeds EVERY detected face (confidence
>= the engine's floor, at most 4 per image), its mirror image, its roll-aligned
crop and that crop's mirror, with the quality metrics of each face, so that
face-selection rules, flip augmentation, alignment and template/score variants
can all be compared on the same embeddings without running the networks again.
``dlib`` embeds, with dlib's ResNet, the face the product picks in each image of
a cached set, with the product's own functions (idp.face.dlibnet: template
version 3's second model). Nothing under var/ is committed (embeddings only).
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


def calib_paths():
    """The grayscale calibration protocol's images alone (LFW-pairs identities with >= 6 photos there that
    are not colour-LFW people; 838 images): enough for the threshold rule without the 7,701 pairs images."""
    paths = pairs_paths()
    colour_people = {d.name for d in (FACES / "lfw_color65_240px").iterdir() if d.is_dir()}
    names = [p.parent.name for p in paths]
    counts = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [p for p, n in zip(paths, names) if n not in colour_people and counts[n] >= 6]


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

    paths = {"colour": colour_paths, "colourgray": colour_paths, "pairs": pairs_paths, "pairscalib": calib_paths, "cohort": cohort_paths,
             "cohortall": lambda: cohort_paths(10 ** 6)}[name]()
    gray = name.endswith("gray")  # every image converted to grey (as the LFW-a cohort and pairs are)
    engine = FaceEngine(ROOT / "var")
    rows = []  # per face: image index, face rank (by area), box(4), conf, landmarks(10), metrics
    crops, rolled, metrics_rows, embs, flips, rolls, roll_flips = [], [], [], [], [], [], []

    def flush():
        # The model alone (engine.embedder): the crop's own embedding and its mirror's, unaveraged, whatever
        # template version is current (embed_faces would return the current version's flip average).
        if crops:
            n = len(crops)
            batch, rbatch = np.stack(crops), np.stack(rolled)
            out = engine.embedder(np.concatenate([batch, batch[:, :, ::-1], rbatch, rbatch[:, :, ::-1]]))
            embs.append(out[:n])
            flips.append(out[n:2 * n])
            rolls.append(out[2 * n:3 * n])
            roll_flips.append(out[3 * n:])
            crops.clear()
            rolled.clear()
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
            rolled.append(crop)
        for rank, d in enumerate(faces):
            lm = [d.landmarks.get(k, (np.nan, np.nan)) for k in
                  ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")]
            rows.append([i, rank, *d.box, d.confidence] + [c for xy in lm for c in xy] + [w, h])
            metrics_rows.append(quality.measure(rgb, d.box, d.landmarks))
            crops.append(quality.crop_face(rgb, d.box))
            rolled.append(crop_face_rolled(rgb, d.box, d.landmarks))
        if len(crops) >= 64:
            flush()
        if i % 200 == 0:
            print(f"{name}: {i}/{len(paths)} images, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    flush()
    emb, emb_flip = np.concatenate(embs), np.concatenate(flips)
    emb_roll, emb_roll_flip = np.concatenate(rolls), np.concatenate(roll_flips)
    keys = sorted({k for m in metrics_rows for k in m})
    metrics = np.array([[float(m.get(k, np.nan)) for k in keys] for m in metrics_rows], np.float64)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(CACHE / f"{name}.npz", paths=np.array([str(p) for p in paths]), faces=np.array(rows),
                        emb=emb, emb_flip=emb_flip, emb_roll=emb_roll, emb_roll_flip=emb_roll_flip, metrics=metrics, metric_keys=np.array(keys))
    print(f"{name}: {len(paths)} images, {len(rows)} faces, {time.time() - t0:.0f} s", file=sys.stderr)


def crop_face_rolled(rgb: np.ndarray, box, landmarks) -> np.ndarray:
    """Roll alignment (variants R, T): the image rotated about the box centre by the eye line's angle (so
    MTCNN's eyes are level), then the product's crop (box grown by CROP_MARGIN, clipped to the picture as
    crop_face clips it, resized to 160x160 with the same filter). Without landmarks: the plain crop."""
    import math

    from PIL import Image

    from idp.face import quality, settings

    lm = landmarks or {}
    if "left_eye" not in lm or "right_eye" not in lm:
        return quality.crop_face(rgb, box)
    (lx, ly), (rx, ry) = lm["left_eye"], lm["right_eye"]
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    h, w = rgb.shape[:2]
    x, y, bw, bh = box
    m = settings.CROP_MARGIN
    gx0, gy0 = max(0.0, x - m * bw), max(0.0, y - m * bh)
    gx1, gy1 = min(float(w), x + bw * (1 + m)), min(float(h), y + bh * (1 + m))
    cx, cy = x + bw / 2, y + bh / 2
    r = int(math.ceil(math.hypot(max(cx - gx0, gx1 - cx), max(cy - gy0, gy1 - cy)))) + 2
    ox, oy = int(round(cx)) - r, int(round(cy)) - r  # region origin (PIL pads outside the picture)
    region = Image.fromarray(rgb).crop((ox, oy, ox + 2 * r, oy + 2 * r))
    # PIL turns counter-clockwise on screen for a positive angle; an eye line going down to the right
    # (positive angle, y down) is levelled by turning it counter-clockwise by that angle.
    region = region.rotate(angle, resample=Image.BILINEAR, center=(cx - ox, cy - oy))
    x0, y0 = int(math.floor(gx0)) - ox, int(math.floor(gy0)) - oy
    x1, y1 = int(math.ceil(gx1)) - ox, int(math.ceil(gy1)) - oy
    face = region.crop((x0, y0, x1, y1))
    return np.asarray(face.resize((settings.INPUT_SIZE, settings.INPUT_SIZE), Image.BILINEAR), dtype=np.uint8)


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
        self.name = name
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

    def kind(self, kind, rule="subject"):
        """The subject's embedding of one kind: "crop", "flip" (crop + mirror, version 2), "roll" (the
        roll-aligned crop), "rollflip" (roll-aligned crop + its mirror), "all4" (all four summed)."""
        sel = self.select(rule)
        d = self._roll_data()
        parts = {"crop": (self.emb,), "flip": (self.emb, self.emb_flip), "roll": (d[0],),
                 "rollflip": d, "all4": (self.emb, self.emb_flip) + d}[kind]
        return _unit(sum(x[sel] for x in parts)), sel

    def _roll_data(self):
        if not hasattr(self, "_rolls"):
            d = np.load(CACHE / f"{self.name}.npz")
            self._rolls = (d["emb_roll"], d["emb_roll_flip"]) if "emb_roll" in d else None
        if self._rolls is None:
            raise SystemExit(f"{self.name}.npz has no roll-aligned embeddings: rebuild it with `cache`")
        return self._rolls

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


def lfw_pair_indices(pairs_set):
    """The LFW 6,000 pairs as indices into ``pairs_set`` (A, B) and whether each is the same person."""
    from idp.face.evaluation import read_pairs
    pairs, _ = read_pairs(FACES / "lfw" / "pairs.txt", FACES / "lfw")
    index = {str(Path(p).relative_to(FACES / "lfw")): i for i, p in enumerate(pairs_set.paths)}
    A = np.array([index[str(a.relative_to(FACES / "lfw"))] for _, a, _, _ in pairs])
    B = np.array([index[str(b.relative_to(FACES / "lfw"))] for _, _, b, _ in pairs])
    return A, B, np.array([s for *_, s in pairs])


def grey_calibration_people(colour, pairs_set):
    """The grayscale calibration protocol's images (indices into ``pairs_set``) and identity labels:
    LFW-pairs identities with >= 6 images, minus the colour-LFW people."""
    colour_people = {Path(p).parent.name for p in colour.paths}
    gnames = np.array([Path(p).parent.name for p in pairs_set.paths])
    keep = np.array([n not in colour_people for n in gnames])
    counts = {n: c for n, c in zip(*np.unique(gnames[keep], return_counts=True))}
    gkeep = np.flatnonzero(keep & np.array([counts.get(n, 0) >= 6 for n in gnames]))
    return gkeep, np.unique(gnames[gkeep], return_inverse=True)[1]


def main_study():
    from idp.face import scoring

    colour, pairs_set = Cached("colour"), Cached("pairs")
    cohort_set = Cached("cohortall")
    labels = np.unique([Path(p).parent.name for p in colour.paths], return_inverse=True)[1]
    A, B, same = lfw_pair_indices(pairs_set)
    gkeep, glabels = grey_calibration_people(colour, pairs_set)

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


def main_methods():
    """Method-level candidates against the shipped version 2 (G), every row scored by the product's Scorer
    (AS-norm top 50) against a cohort built from the same cohort images the same way as the probes, cast
    to float16 as shipped, each with its own threshold from calibrated_threshold:

    * roll alignment (R1, R2, R4): the crop rotated so MTCNN's eyes are level (crop_face_rolled), on probes,
      templates and cohort;
    * enrollment-side only (R3, U*): probes and cohort as G, only the template changes: R3 adds the
      roll-aligned crop and its mirror to each enrollment photo's embedding; U* choose or weight which
      enrollment photos enter the template (the product's enrollment rules, FaceEngine.enroll, or
      leave-one-out agreement);
    * normalisation (V*): only the template's (Z-norm) or the probe's (T-norm) cohort statistics; or every
      embedding (and the cohort) centred on the cohort's mean before AS-norm.

    Also prints, against G at each row's own threshold, how many genuine probes change decision."""
    import json

    from idp.face import scoring
    from idp.face.engine import FaceEngine, FrameAnalysis
    from idp.face.evaluation import rates, threshold_at_fmr

    colour, cohort_set = Cached("colour"), Cached("cohortall")
    # The LFW pairs columns need `cache pairs` (7,701 images); the threshold rule only `cache pairscalib`.
    full_pairs = (CACHE / "pairs.npz").exists()
    pairs_set = Cached("pairs" if full_pairs else "pairscalib")
    labels = np.unique([Path(p).parent.name for p in colour.paths], return_inverse=True)[1]
    if full_pairs:
        A, B, same = lfw_pair_indices(pairs_set)
    gkeep, glabels = grey_calibration_people(colour, pairs_set)
    engine = FaceEngine(ROOT / "var", warm_up=False)  # only for FaceEngine.enroll (no network is run)

    def cohort(kind):
        e, sel = cohort_set.kind(kind)
        return _unit(e[cohort_set.faces[sel, 1] >= 0].astype(np.float16).astype(np.float32))

    cohorts = {}

    def scorer(kind, centre=False):
        if (kind, centre) not in cohorts:
            c = cohort(kind)
            cohorts[kind, centre] = scoring.Scorer(scoring.ASNORM, cohort=_unit(c - c.mean(0)) if centre else c,
                                                   top_k=COHORT_TOP_K)
        return cohorts[kind, centre]

    def centred(kind, e):
        """V3: an embedding minus the cohort's mean embedding, re-normalised."""
        return _unit(e - cohort(kind).mean(0))

    # Template builders: rows (enrollment embeddings, L2-normalised), with the cache rows of their photos.
    def t_mean(embs, cset, rows):
        return _unit(embs.mean(0))

    def t_product(embs, cset, rows, gate=True):
        """FaceEngine.enroll (min_frames=1) on the photos as frames: refused by the quality gate (gate) and
        outliers dropped; if nothing is left, the plain mean (the protocol keeps every person)."""
        refusals = cset.refusals(rows) if gate else [""] * len(rows)
        frames = []
        for e, r, why in zip(embs, rows, refusals):
            m = {k: cset.metrics[r, j] for j, k in enumerate(cset.keys)}
            m.setdefault("brightness", 0.0)
            m.setdefault("sharpness", 0.0)
            m.setdefault("face_px", 0.0)
            m.setdefault("yaw", 0.0)
            frames.append(FrameAnalysis(ok=not why, reasons=[why] if why else [], embedding=e, quality=m))
        res = engine.enroll(frames, min_frames=1)
        stats["changed"] += int(not res.ok or res.used_frames != len(rows))
        return res.template.mean if res.ok else _unit(embs.mean(0))

    def t_drop_worst(embs, cset, rows):
        loo = [float(_unit(embs.sum(0) - e) @ e) for e in embs]
        return _unit(np.delete(embs, int(np.argmin(loo)), axis=0).mean(0))

    def t_loo_weighted(embs, cset, rows):
        w = np.array([max(float(_unit(embs.sum(0) - e) @ e), 0.0) for e in embs])
        return _unit((w[:, None] * embs).sum(0))

    variants = [  # name, probe kind (= cohort kind), template kind, template builder
        ("G. shipped, version 2 (flip)", "flip", "flip", t_mean),
        ("N. version 1 (crop)", "crop", "crop", t_mean),
        ("R1. N + roll alignment (roll-aligned cohort)", "roll", "roll", t_mean),
        ("R2. G + roll alignment (roll-aligned crop + mirror, roll-aligned flip cohort)", "rollflip", "rollflip",
         t_mean),
        ("R3. G, template from crop + mirror + roll-aligned crop + mirror (enrollment side only)", "flip", "all4",
         t_mean),
        ("R4. R2 with R3's template", "rollflip", "all4", t_mean),
        ("U1. G, template by FaceEngine.enroll (quality gate + outlier rule)", "flip", "flip", t_product),
        ("U2. G, template by the outlier rule only", "flip", "flip",
         lambda e, c, r: t_product(e, c, r, gate=False)),
        ("U3. G, template without its least typical photo (lowest leave-one-out cosine)", "flip", "flip",
         t_drop_worst),
        ("U4. G, template weighted by leave-one-out cosine", "flip", "flip", t_loo_weighted),
        ("V1. G scored with the template side's normalisation only (Z-norm)", "flip", "flip", t_mean, "znorm"),
        ("V2. G scored with the probe side's normalisation only (T-norm)", "flip", "flip", t_mean, "tnorm"),
        ("V3. G with every embedding centred on the cohort mean (and re-normalised) before AS-norm", "flip",
         "flip", t_mean, "centre"),
    ]

    def one_sided(sc, side, t, p):
        """AS-norm with one side's cohort statistics only: "znorm" the template's, "tnorm" the probe's."""
        raw = t @ p.T
        if side == "znorm":
            m, sd = sc.cohort_stats(t)
            return (raw - m[:, None]) / sd[:, None]
        m, sd = sc.cohort_stats(p)
        return (raw - m[None, :]) / sd[None, :]

    def protocol(cset, sel_labels, subset, pkind, tkind, build, sc, norm=None):
        pe, psel = cset.kind(pkind)
        te, _ = cset.kind(tkind)
        if norm == "centre":
            pe, te, norm = centred(pkind, pe), centred(pkind, te), None
        if subset is not None:
            pe, te, psel = pe[subset], te[subset], psel[subset]
        templates, owners, probes, probe_labels = _enrollment_split(sel_labels)
        tm = np.stack([build(te[t], cset, psel[t]) for t in templates])
        s = (sc.score_matrix(tm, pe[probes]) if norm is None else one_sided(sc, norm, tm, pe[probes]))
        return s.astype(np.float64), owners[:, None] == probe_labels[None, :], probes

    rows, base, genuine = [], None, {}
    refusals = colour.refusals(colour.kind("flip")[1])
    for name, pkind, tkind, build, *norm in variants:
        norm = norm[0] if norm else None
        stats = {"changed": 0}
        sc = scorer(pkind, norm == "centre")
        s, mask, probes = protocol(colour, labels, None, pkind, tkind, build, sc, norm)
        changed = stats["changed"]
        gs, gm, _ = protocol(pairs_set, glabels, gkeep, pkind, tkind, build, sc, norm)
        t = calibrated_threshold(np.concatenate([gs[~gm], s[~mask]]))
        nan = {"fnmr_t": np.nan, "fmr_t": np.nan, "fnmr_1e-3": np.nan, "eer": np.nan}
        if full_pairs:
            pe, _ = pairs_set.kind(pkind)
            if norm == "centre":
                pe, norm = centred(pkind, pe), None
            ps = sc.score_pairs(pe[A], pe[B]) if norm is None else \
                np.array([one_sided(sc, norm, pe[a][None], pe[b][None])[0, 0] for a, b in zip(A, B)])
        passed = np.array([not refusals[p] for p in probes])
        row = {"variant": name, "threshold": t, "colour": _figures(s[mask], s[~mask], t),
               "colour_gated": _figures(s[mask & passed[None, :]], s[~mask & passed[None, :]], t),
               "pairs": _figures(ps[same], ps[~same], t) if full_pairs else nan,
               "gray_fmr_at_t": float(np.mean(gs[~gm] >= t)),
               "gray": _figures(gs[gm], gs[~gm], t), "colour_fnmr_at_fmr": {
                   f"{f:.0e}": rates(s[mask], s[~mask], threshold_at_fmr(s[~mask], f))[1]
                   for f in (1e-4, 2e-4, 5e-4, 1e-3)},
               "templates_changed": changed, "impostor_max": float(s[~mask].max()),
               "impostor_top": sorted(s[~mask].tolist())[-8:]}
        g = s.T[mask.T]  # each probe's genuine score, in probe order (one owner per probe)
        if base is None:
            base = (g, t)
        else:  # genuine probes whose decision differs from G's, each at its own threshold
            row["gained"] = int(np.sum((g >= t) & (base[0] < base[1])))
            row["lost"] = int(np.sum((g < t) & (base[0] >= base[1])))
        rows.append(row)
        genuine[name.split(".")[0]] = (g, t)
        c, gt, p = row["colour"], row["colour_gated"], row["pairs"]
        print(f"{name}\n   t={t:.2f} colour FNMR@t {c['fnmr_t']*100:.2f}% ({round(c['fnmr_t']*c['genuine'])}) "
              f"FMR@t {c['fmr_t']:.1e} @1e-3 {c['fnmr_1e-3']*100:.2f}% @1e-4 {c['fnmr_1e-4']*100:.2f}% "
              f"EER {c['eer']*100:.2f}% | gated FNMR@t {gt['fnmr_t']*100:.2f}% | pairs FNMR@t "
              f"{p['fnmr_t']*100:.1f}% FMR@t {p['fmr_t']:.1e} @1e-3 {p['fnmr_1e-3']*100:.2f}% EER "
              f"{p['eer']*100:.2f}% | gray FMR@t {row['gray_fmr_at_t']:.1e} | imp max {row['impostor_max']:.2f}"
              f" | vs G +{row.get('gained', 0)} -{row.get('lost', 0)} | templates changed {changed}\n   colour FNMR at"
              f" FMR {', '.join(f'{k}: {v * 100:.2f}%' for k, v in row['colour_fnmr_at_fmr'].items())} | gray "
              f"(112 people) FNMR@t {row['gray']['fnmr_t'] * 100:.2f}% @1e-3 {row['gray']['fnmr_1e-3'] * 100:.2f}%"
              f" @1e-4 {row['gray']['fnmr_1e-4'] * 100:.2f}% EER {row['gray']['eer'] * 100:.2f}%", flush=True)
    (CACHE / "methods.json").write_text(json.dumps(rows, indent=1))
    # Where roll alignment should help: genuine probes by how far the head is tilted (|roll|, degrees).
    roll = np.abs(colour.metrics[colour.kind("flip")[1][probes], colour.keys.index("roll")])
    (gG, tG), (gR, tR) = genuine["G"], genuine["R2"]
    for lo, hi in ((0, 5), (5, 10), (10, 90)):
        m = (roll >= lo) & (roll < hi)
        print(f"|roll| {lo}-{hi} deg: {m.sum()} probes, refused by G {np.sum(gG[m] < tG)}, by R2 "
              f"{np.sum(gR[m] < tR)}; genuine score R2 - G {np.mean(gR[m] - gG[m]):+.3f}")
    gained = (gR >= tR) & (gG < tG)
    print("R2's gained probes |roll|:", np.round(roll[gained], 1).tolist(), "; lost:",
          np.round(roll[(gR < tR) & (gG >= tG)], 1).tolist(), f"; R2 FNMR at G's threshold {np.mean(gR < tG):.2%}")


def roll_cost(rounds: int) -> None:
    """CPU time (p50, ms) of what roll alignment adds to a 640x480 frame, measured interleaved on the
    benchmark frames: the roll-aligned crop against the product's crop, and FaceNet on 2 crops (crop +
    mirror: version 2) against 4 (also the roll-aligned crop + mirror: what a frame costs if versions 1 and
    2 must still be embedded next to a roll-aligned version)."""
    import json
    import statistics

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from face_bench import make_frames

    from idp.face import quality
    from idp.face.engine import FaceEngine, select_subject

    engine = FaceEngine(ROOT / "var")
    rgbs = [engine.decode(f) for f in make_frames(engine, (640, 480))]
    dets = [select_subject(engine.detector.detect(r, engine.detect_max_side, engine.detect_min_face), 640, 480)
            for r in rgbs]
    steps = {
        "crop (product)": lambda r, d: quality.crop_face(r, d.box),
        "roll-aligned crop": lambda r, d: crop_face_rolled(r, d.box, d.landmarks),
        "FaceNet, 2 crops": lambda r, d: engine.embedder(np.stack([quality.crop_face(r, d.box)] * 2)),
        "FaceNet, 4 crops": lambda r, d: engine.embedder(np.stack([quality.crop_face(r, d.box)] * 4)),
    }
    cpu = {k: [] for k in steps}
    for _ in range(rounds):
        for r, d in zip(rgbs, dets):
            for k, fn in steps.items():
                c = time.process_time()
                fn(r, d)
                cpu[k].append((time.process_time() - c) * 1000)
    print(json.dumps({"frames": len(rgbs), "rounds": rounds, "load_average": [round(x, 1) for x in os.getloadavg()],
                      "cpu_ms_p50": {k: round(statistics.median(v), 2) for k, v in cpu.items()}}, indent=1))


def write_cohort(version=None):
    """The cohort file of a template version (settings.TEMPLATE_VERSIONS, default the current one): the
    product's embedding (subject choice, flip-averaged if the version flips) of each cohort image with a
    detected face, float16. Prints the sha256 for that version's cohort_sha256."""
    import hashlib
    import io

    from idp.face import settings

    version = version or settings.MODEL_VERSION
    spec = settings.TEMPLATE_VERSIONS[version]
    cached = Cached("cohortall")
    embs, sel = cached.embeddings("subject", flip=spec.flip)
    if spec.facenet_version in ("", version):  # (version 3's FaceNet cohort is version 2's file: `--version 2`)
        embs = embs[cached.faces[sel, 1] >= 0].astype(np.float16)
        buf = io.BytesIO()
        np.save(buf, embs, allow_pickle=False)
        out = ROOT / "idp" / "face" / "data" / spec.cohort_file
        out.write_bytes(buf.getvalue())
        print(out, embs.shape, hashlib.sha256(buf.getvalue()).hexdigest())
    if spec.dlib:  # its dlib cohort: the same images' dlib embeddings (`dlib cohortall`), same faces
        d = np.load(CACHE / "cohortall-dlib.npz")
        if not np.array_equal(d["rows"], sel):
            raise SystemExit("cohortall-dlib.npz was made from another cohortall.npz: run `dlib cohortall`")
        dembs = d["emb"][cached.faces[sel, 1] >= 0].astype(np.float16)
        buf = io.BytesIO()
        np.save(buf, dembs, allow_pickle=False)
        out = ROOT / "idp" / "face" / "data" / spec.dlib_cohort_file
        out.write_bytes(buf.getvalue())
        print(out, dembs.shape, hashlib.sha256(buf.getvalue()).hexdigest())


# --- a second, independent embedding model: dlib's ResNet (rows W*; template version 3) ---------------
def dlib_models():
    """(5-point shape predictor, ResNet descriptor): the product's (idp.face.dlibnet, sha256-checked)."""
    from idp.face import dlibnet

    return dlibnet.load_models()


def dlib_chip(predictor, rgb: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """dlib's aligned chip of the face in ``box`` and its 5 points: the product's (idp.face.dlibnet.chip)."""
    from idp.face import dlibnet

    return dlibnet.chip(predictor, rgb, box)


def cache_dlib(name: str) -> None:
    """dlib embeddings of the face the product picks (subject choice on the cached MTCNN detections of
    ``cache NAME``; the evaluation fallback box where no face was found) in every image of that set: the
    chip's descriptor and its mirror's, L2-normalised. Embeddings only, under var/facecache/NAME-dlib.npz."""
    from idp.face.imageio import decode_image

    cached = Cached(name)
    sel = cached.select("subject")
    predictor, rec = dlib_models()
    embs, flips, points, chips = [], [], [], []

    def flush():
        if chips:
            out = np.array(rec.compute_face_descriptor(chips + [np.ascontiguousarray(c[:, ::-1]) for c in chips]))
            embs.append(out[:len(chips)])
            flips.append(out[len(chips):])
            chips.clear()
    t0 = time.time()
    for i, (p, r) in enumerate(zip(cached.paths, sel)):
        rgb = np.ascontiguousarray(decode_image(Path(p).read_bytes(), 1 << 26, 1 << 26))
        chip, pts = dlib_chip(predictor, rgb, cached.faces[r, 2:6])
        chips.append(chip)
        points.append(pts)
        if len(chips) >= 32:
            flush()
        if i % 200 == 0:
            print(f"{name} (dlib): {i}/{len(cached.paths)} images, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    flush()
    np.savez_compressed(CACHE / f"{name}-dlib.npz", paths=np.array(cached.paths), rows=sel,
                        emb=_unit(np.concatenate(embs)).astype(np.float32),
                        emb_flip=_unit(np.concatenate(flips)).astype(np.float32), points=np.array(points))
    print(f"{name} (dlib): {len(sel)} faces, {time.time() - t0:.0f} s", file=sys.stderr)


def main_fusion():
    """Rows W*: dlib's ResNet as a second, independent model, alone and fused with the shipped G, each
    model AS-norm scored (the product's Scorer, top 50) against its own cohort: the same 1,460 cohort images
    (the face the product picks), embedded by that model, float16 as a shipped cohort would be. Fusion is
    of the two normalised scores (both in standard deviations above the side's nearest strangers), with at
    most one weight, never fitted to colour LFW:

    * W2: the mean of the two (equal weights);
    * W3: the weight of Fisher's linear discriminant of the two scores on the grayscale calibration
      protocol (112 LFW-pairs people, disjoint from colour LFW and from the cohort), normalised to sum 1;
    * W4/W5: W1/W2 with dlib's chip and its mirror (flip-averaged, as G does for FaceNet).

    Every row gets its own threshold from calibrated_threshold (pooled impostor scores of both enrollment
    protocols), as every other row of the table."""
    import json

    from idp.face import scoring
    from idp.face.evaluation import rates, threshold_at_fmr

    colour, cohort_set, pairs_set = Cached("colour"), Cached("cohortall"), Cached("pairscalib")
    labels = np.unique([Path(p).parent.name for p in colour.paths], return_inverse=True)[1]
    gkeep, glabels = grey_calibration_people(colour, pairs_set)

    def dlib_kind(cset, kind):
        d = np.load(CACHE / f"{cset.name}-dlib.npz")
        if not np.array_equal(d["rows"], cset.select("subject")):
            raise SystemExit(f"{cset.name}-dlib.npz was made from another {cset.name}.npz: run `dlib {cset.name}`")
        return _unit(d["emb"] + d["emb_flip"]) if kind == "dlibflip" else d["emb"].astype(np.float32)

    def embeddings(cset, kind):
        return cset.kind(kind)[0] if kind in ("crop", "flip") else dlib_kind(cset, kind)

    scorers = {}

    def scorer(kind):
        if kind not in scorers:
            sel = cohort_set.select("subject")
            c = embeddings(cohort_set, kind)[cohort_set.faces[sel, 1] >= 0]  # cohort images with a face found
            scorers[kind] = scoring.Scorer(scoring.ASNORM, cohort=_unit(c.astype(np.float16).astype(np.float32)),
                                           top_k=COHORT_TOP_K)
        return scorers[kind]

    def protocol(cset, sel_labels, subset, kind):
        e = embeddings(cset, kind)
        if subset is not None:
            e = e[subset]
        templates, owners, probes, probe_labels = _enrollment_split(sel_labels)
        tm = np.stack([_unit(e[t].mean(0)) for t in templates])
        s = scorer(kind).score_matrix(tm, e[probes]).astype(np.float64)
        return s, owners[:, None] == probe_labels[None, :], probes

    single = {k: (protocol(colour, labels, None, k), protocol(pairs_set, glabels, gkeep, k))
              for k in ("flip", "crop", "dlib", "dlibflip")}

    def fisher_weight(a, b):
        """Weight of model a in w*a + (1-w)*b from Fisher's discriminant on the grayscale calibration scores."""
        (_, (ga, gm, _)), (_, (gb, _, _)) = single[a], single[b]
        x = np.stack([ga.ravel(), gb.ravel()], 1)
        y = gm.ravel()
        sw = np.cov(x[y].T) + np.cov(x[~y].T)
        w = np.linalg.solve(sw, x[y].mean(0) - x[~y].mean(0))
        return float(w[0] / w.sum())

    w_flip = fisher_weight("flip", "dlib")
    w_flip2 = fisher_weight("flip", "dlibflip")

    def fused(a, b, w):
        (ca, ga), (cb, gb) = single[a], single[b]
        return ((w * ca[0] + (1 - w) * cb[0], ca[1], ca[2]), (w * ga[0] + (1 - w) * gb[0], ga[1], ga[2]))

    variants = [
        ("G. shipped, version 2 (FaceNet crop + mirror, AS-norm)", single["flip"]),
        ("N. version 1 (FaceNet crop, AS-norm)", single["crop"]),
        ("W1. dlib ResNet alone (MTCNN box, dlib 5-point chip), AS-norm against a dlib cohort", single["dlib"]),
        ("W2. G + W1, mean of the two AS-norm scores (equal weights)", fused("flip", "dlib", 0.5)),
        (f"W3. G + W1, weight {w_flip:.2f} on G (Fisher discriminant on the grayscale calibration protocol)",
         fused("flip", "dlib", w_flip)),
        ("W4. W1 with dlib's chip + mirror (flip-averaged)", single["dlibflip"]),
        ("W5. G + W4, equal weights", fused("flip", "dlibflip", 0.5)),
        (f"W6. G + W4, weight {w_flip2:.2f} on G (Fisher, grayscale calibration)", fused("flip", "dlibflip", w_flip2)),
        ("W7. N + W1, equal weights (no mirror through either model)", fused("crop", "dlib", 0.5)),
    ]
    refusals = colour.refusals(colour.select("subject"))
    rows, base = [], None
    for name, ((s, mask, probes), (gs, gm, _)) in variants:
        t = calibrated_threshold(np.concatenate([gs[~gm], s[~mask]]))
        passed = np.array([not refusals[p] for p in probes])
        g = s.T[mask.T]  # each probe's genuine score, in probe order
        row = {"variant": name, "threshold": t, "colour": _figures(s[mask], s[~mask], t),
               "colour_gated": _figures(s[mask & passed[None, :]], s[~mask & passed[None, :]], t),
               "gray": _figures(gs[gm], gs[~gm], t), "gray_fmr_at_t": float(np.mean(gs[~gm] >= t)),
               "colour_fnmr_at_fmr": {f"{f:.0e}": rates(s[mask], s[~mask], threshold_at_fmr(s[~mask], f))[1]
                                      for f in (1e-4, 2e-4, 5e-4, 1e-3)},
               "impostor_max": float(s[~mask].max()), "genuine_mean": float(g.mean()),
               "impostor_mean": float(s[~mask].mean())}
        if base is None:
            base = (g, t)
            owner = labels[probes]
        else:
            row["gained"] = int(np.sum((g >= t) & (base[0] < base[1])))
            row["lost"] = int(np.sum((g < t) & (base[0] >= base[1])))
            row["fnmr_gain_vs_G_ci95"] = person_bootstrap((base[0] < base[1]).astype(float) - (g < t), owner)
        rows.append(row)
        c, gt, gr = row["colour"], row["colour_gated"], row["gray"]
        print(f"{name}\n   t={t:.2f} colour FNMR@t {c['fnmr_t']*100:.2f}% ({round(c['fnmr_t']*c['genuine'])}) "
              f"FMR@t {c['fmr_t']:.1e} ({round(c['fmr_t']*c['impostor'])}) @1e-3 {c['fnmr_1e-3']*100:.2f}% "
              f"@1e-4 {c['fnmr_1e-4']*100:.2f}% EER {c['eer']*100:.2f}% | gated FNMR@t {gt['fnmr_t']*100:.2f}% | "
              f"gray FMR@t {row['gray_fmr_at_t']:.1e} FNMR@t {gr['fnmr_t']*100:.2f}% @1e-3 {gr['fnmr_1e-3']*100:.2f}%"
              f" EER {gr['eer']*100:.2f}% | imp max {row['impostor_max']:.2f} | genuine/impostor mean "
              f"{row['genuine_mean']:.2f}/{row['impostor_mean']:.2f} | vs G +{row.get('gained', 0)} "
              f"-{row.get('lost', 0)} (FNMR gain, 95% person bootstrap: "
              f"{' to '.join(f'{x * 100:.2f}' for x in row.get('fnmr_gain_vs_G_ci95', (0, 0)))} points)\n   colour FNMR at FMR "
              f"{', '.join(f'{k}: {v * 100:.2f}%' for k, v in row['colour_fnmr_at_fmr'].items())}", flush=True)
    (gf, _, _), _ = single["flip"]
    (gd, m, _), _ = single["dlib"]
    print(f"correlation of G and W1 scores: genuine {np.corrcoef(gf[m], gd[m])[0, 1]:.2f}, "
          f"impostor {np.corrcoef(gf[~m], gd[~m])[0, 1]:.2f}")
    (CACHE / "fusion.json").write_text(json.dumps(rows, indent=1))


def person_bootstrap(per_probe, people, rounds=2000, seed=0) -> tuple[float, float]:
    """95% interval of the mean of ``per_probe`` when the people (not the probes: a person's probes are not
    independent) are resampled with replacement; thresholds are held fixed."""
    rng = np.random.default_rng(seed)
    ids = np.unique(people)
    groups = [np.flatnonzero(people == p) for p in ids]
    means = [per_probe[np.concatenate([groups[k] for k in rng.integers(0, len(ids), len(ids))])].mean()
             for _ in range(rounds)]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def dlib_cost(rounds: int) -> None:
    """Cost of dlib's ResNet next to the product's pass, per face, interleaved on the 640x480 benchmark
    frames in one process: FaceEngine.verify (version 2, a whole frame), FaceNet on the subject's crop +
    mirror (what a frame's embedding costs today), dlib's 5-point shape predictor + chip, and dlib's ResNet
    on that chip (and on chip + mirror). CPU time (all threads) and wall time, p50; and the resident memory
    the dlib models add once loaded and run."""
    import json
    import statistics

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from face_bench import make_frames, rss_mb

    from idp.face import quality
    from idp.face.engine import FaceEngine, select_subject

    engine = FaceEngine(ROOT / "var")
    frames = make_frames(engine, (640, 480))
    template = engine.enroll(frames[:3], min_frames=1).template
    rgbs = [np.ascontiguousarray(engine.decode(f)) for f in frames]
    dets = [select_subject(engine.detector.detect(r, engine.detect_max_side, engine.detect_min_face), 640, 480)
            for r in rgbs]
    rss0 = rss_mb()[0]
    predictor, rec = dlib_models()
    rss_loaded = rss_mb()[0]
    chip0 = dlib_chip(predictor, rgbs[0], dets[0].box)[0]
    rec.compute_face_descriptor(chip0)
    rss_run = rss_mb()[0]
    steps = {
        "FaceEngine.verify, 640x480 frame (version 2)": lambda r, d, f: engine.verify(template, [f]),
        "FaceNet, crop + mirror (one call)": lambda r, d, f: engine.embedder(np.stack([quality.crop_face(r, d.box)] * 2)),
        "dlib 5-point shape predictor + chip": lambda r, d, f: dlib_chip(predictor, r, d.box),
        "dlib ResNet, chip": lambda r, d, f: rec.compute_face_descriptor(chip0),
        "dlib shape + chip + ResNet (one face)": lambda r, d, f: rec.compute_face_descriptor(dlib_chip(predictor, r, d.box)[0]),
        "dlib ResNet, chip + mirror": lambda r, d, f: rec.compute_face_descriptor([chip0, np.ascontiguousarray(chip0[:, ::-1])]),
    }
    for r, d, f in zip(rgbs[:2], dets[:2], frames[:2]):
        for fn in steps.values():
            fn(r, d, f)
    cpu, wall = {k: [] for k in steps}, {k: [] for k in steps}
    load0 = os.getloadavg()
    for _ in range(rounds):
        for r, d, f in zip(rgbs, dets, frames):
            for k, fn in steps.items():
                t, c = time.perf_counter(), time.process_time()
                fn(r, d, f)
                wall[k].append((time.perf_counter() - t) * 1000)
                cpu[k].append((time.process_time() - c) * 1000)
    print(json.dumps({"frames": len(frames), "rounds": rounds, "load_average_before_after": [
        [round(x, 1) for x in load0], [round(x, 1) for x in os.getloadavg()]],
        "cpu_ms_p50": {k: round(statistics.median(v), 1) for k, v in cpu.items()},
        "wall_ms_p50": {k: round(statistics.median(v), 1) for k, v in wall.items()},
        "rss_mb": {"before dlib": round(rss0, 1), "dlib models loaded": round(rss_loaded, 1),
                   "after a first descriptor": round(rss_run, 1)}}, indent=1))


def calibrate(version=None, data_dir=None) -> None:
    """The threshold rule (calibrated_threshold) applied to a template version through the product's own
    pipeline, without any cache: FaceEngine.analyze_batch as ``idp faces eval`` runs it (idp.face.evaluation.
    embed_paths: subject choice, crop, the version's mirror or not, dlib when it fuses dlib), templates built
    by Template.from_embeddings from each person's first 5 photos, scored by the version's shipped Scorer
    (its cohorts as shipped). Pools the impostor scores of the colour-LFW and grayscale-LFW enrollment
    protocols, prints the threshold and the error rates measured at it. Genuine scores are not used."""
    import json

    from idp.face import settings
    from idp.face.engine import FaceEngine
    from idp.face.evaluation import embed_paths, rates
    from idp.face.template import Template

    version = version or settings.MODEL_VERSION
    engine = FaceEngine(data_dir or ROOT / "var")
    engine.model_version = version
    engine.scorer = engine.scorers[version]
    out = {"version": version}
    protocols = {}
    for name, paths in (("colour", colour_paths()), ("gray", calib_paths())):
        t0 = time.time()
        embs, dl, stats = embed_paths(engine, paths, progress=False)
        labels = np.unique([p.parent.name for p in paths], return_inverse=True)[1]
        templates, owners, probes, probe_labels = _enrollment_split(labels)
        tm = [Template.from_embeddings(embs[t], dlib_embeddings=dl[t] if dl is not None else None) for t in templates]
        s = engine.scorer.score_matrix(np.stack([t.mean for t in tm]), embs[probes], *(
            (np.stack([t.dlib_mean for t in tm]), dl[probes]) if dl is not None else ())).astype(np.float64)
        mask = owners[:, None] == probe_labels[None, :]
        protocols[name] = (s[mask], s[~mask])
        print(f"{name}: {len(paths)} images, {len(templates)} templates, {int(mask.sum())} genuine / "
              f"{int((~mask).sum())} impostor scores, {time.time() - t0:.0f} s; {stats['no_face_fallback']} "
              "fallback crops", file=sys.stderr, flush=True)
    pooled = np.concatenate([protocols["colour"][1], protocols["gray"][1]])
    t = calibrated_threshold(pooled)
    out.update({"pooled_impostors": int(len(pooled)), "fmr_5e-5_point": float(np.sort(pooled)[::-1][
        int(np.floor(CALIBRATION_FMR * len(pooled)))]), "threshold": t})
    for name, (g, i) in protocols.items():
        fmr, fnmr = rates(g, i, t)
        out[name] = {"genuine": int(len(g)), "impostor": int(len(i)), "fmr_at_t": fmr,
                     "false_matches": int(np.sum(i >= t)), "fnmr_at_t": fnmr, "false_non_matches": int(np.sum(g < t)),
                     "impostor_max": float(i.max())}
    print(json.dumps(out, indent=1))


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
    c.add_argument("sets", nargs="+", choices=["colour", "colourgray", "cohort", "cohortall", "pairs", "pairscalib"])
    sub.add_parser("study")
    sub.add_parser("methods")
    c = sub.add_parser("rollcost")
    c.add_argument("--rounds", type=int, default=10)
    c = sub.add_parser("dlib")
    c.add_argument("sets", nargs="+", choices=["colour", "cohortall", "pairscalib"])
    sub.add_parser("fusion")
    c = sub.add_parser("dlibcost")
    c.add_argument("--rounds", type=int, default=5)
    c = sub.add_parser("cohort")
    c.add_argument("--version", default=None, help="template version (default: settings.MODEL_VERSION)")
    c = sub.add_parser("calibrate")
    c.add_argument("--version", default=None, help="template version (default: settings.MODEL_VERSION)")
    c.add_argument("--data-dir", default=None, help="the engine's data directory (default: var/)")
    args = ap.parse_args()
    if args.cmd == "cache":
        for s in args.sets:
            cache(s)
    elif args.cmd == "cohort":
        write_cohort(args.version)
    elif args.cmd == "calibrate":
        calibrate(args.version, args.data_dir)
    elif args.cmd == "rollcost":
        roll_cost(args.rounds)
    elif args.cmd == "dlib":
        for s in args.sets:
            cache_dlib(s)
    elif args.cmd == "fusion":
        main_fusion()
    elif args.cmd == "dlibcost":
        dlib_cost(args.rounds)
    elif args.cmd == "methods":
        main_methods()
    else:
        main_study()
