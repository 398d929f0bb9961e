"""Accuracy evaluation: genuine/impostor scores, EER, FNMR at fixed FMR, LFW 10-fold accuracy, plots."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .quality import crop_face

IMAGE_EXT = {".jpg", ".jpeg", ".png"}
FMR_TARGETS = (1e-2, 1e-3, 1e-4)


# --- scoring --------------------------------------------------------------------------
def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Smallest threshold t (accept if score >= t) whose measured FMR is <= fmr."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    k = int(np.floor(fmr * len(imp)))  # number of impostor scores allowed at or above t
    if k >= len(imp):
        return float(imp[-1])
    return float(np.nextafter(imp[k], np.inf))


def rates(genuine, impostor, t) -> tuple[float, float]:
    genuine, impostor = np.asarray(genuine), np.asarray(impostor)
    return float(np.mean(impostor >= t)), float(np.mean(genuine < t))


def eer(genuine, impostor) -> tuple[float, float]:
    """Equal error rate and its threshold."""
    scores = np.unique(np.concatenate([genuine, impostor]))
    g = np.sort(genuine)
    i = np.sort(impostor)
    fnmr = np.searchsorted(g, scores, side="left") / len(g)
    fmr = 1 - np.searchsorted(i, scores, side="left") / len(i)
    j = int(np.argmin(np.abs(fnmr - fmr)))
    return float((fnmr[j] + fmr[j]) / 2), float(scores[j])


def summarise(genuine, impostor) -> dict:
    genuine = np.asarray(genuine, np.float64)
    impostor = np.asarray(impostor, np.float64)
    e, t = eer(genuine, impostor)
    out = {"genuine": int(len(genuine)), "impostor": int(len(impostor)), "eer": e, "eer_threshold": t,
           "genuine_mean": float(genuine.mean()), "impostor_mean": float(impostor.mean()),
           "impostor_max": float(impostor.max()), "at_fmr": []}
    for target in FMR_TARGETS:
        thr = threshold_at_fmr(impostor, target)
        fmr, fnmr = rates(genuine, impostor, thr)
        out["at_fmr"].append({"target_fmr": target, "threshold": thr, "fmr": fmr, "fnmr": fnmr,
                              "measurable": target * len(impostor) >= 1})
    return out


def det_curve(genuine, impostor, points=400):
    lo, hi = min(np.min(genuine), np.min(impostor)), max(np.max(genuine), np.max(impostor))
    ts = np.linspace(lo, hi, points)
    g, i = np.sort(genuine), np.sort(impostor)
    fnmr = np.searchsorted(g, ts, side="left") / len(g)
    fmr = 1 - np.searchsorted(i, ts, side="left") / len(i)
    return fmr, fnmr


# --- data ------------------------------------------------------------------------------
def identities(dataset: Path, max_identities: int | None = None) -> dict[str, list[Path]]:
    out = {}
    for d in sorted(p for p in dataset.iterdir() if p.is_dir()):
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXT)
        if files:
            out[d.name] = files
    if max_identities:
        out = dict(list(out.items())[:max_identities])
    return out


def read_pairs(pairs_txt: Path, dataset: Path):
    """LFW pairs.txt -> list of (fold, path_a, path_b, same)."""
    lines = pairs_txt.read_text().split("\n")
    folds, per = (int(x) for x in lines[0].split())
    pairs = []
    rows = [ln.split() for ln in lines[1:] if ln.strip()]

    def path(name, n):
        return dataset / name / f"{name}_{int(n):04d}.jpg"

    for idx, row in enumerate(rows):
        fold = idx // (2 * per)
        if len(row) == 3:
            pairs.append((fold, path(row[0], row[1]), path(row[0], row[2]), True))
        else:
            pairs.append((fold, path(row[0], row[1]), path(row[2], row[3]), False))
    return pairs, folds


def embed_paths(engine, paths: list[Path], progress: bool = True, batch: int = 16):
    """Embedding per path, as the product computes it for the engine's current template version
    (engine.analyze_batch: subject selection, crop, the mirror when that version flips; and dlib's
    embedding when it fuses dlib). The face is
    used whatever its quality (this measures the model); if MTCNN finds no face, the central 60% of the
    image is used (LFW is roughly centred). Returns (embeddings (n,512), dlib embeddings (n,128) or None,
    stats); stats["refusals"][i] is the quality gate's first reason code for image i ("" if it passes)."""
    from tqdm import tqdm

    from .imageio import decode_image

    fused = bool(engine.scorer.fused)
    out = np.zeros((len(paths), 512), np.float32)
    dl = np.zeros((len(paths), 128), np.float32) if fused else None
    stats = {"images": len(paths), "no_face_fallback": 0, "quality_fail": 0, "refusals": [""] * len(paths)}
    bar = tqdm(total=len(paths), desc="embedding", unit="img", file=sys.stderr, disable=not progress)
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        rgbs = [decode_image(p.read_bytes(), 1 << 26, 1 << 26) for p in chunk]
        analyses = engine.analyze_batch(rgbs, embed="always", dlib="always" if fused else "never")
        missing = []
        for j, (rgb, a) in enumerate(zip(rgbs, analyses)):
            stats["refusals"][start + j] = a.reasons[0] if a.reasons else ""
            if a.embedding is not None:
                out[start + j] = a.embedding
                if fused:
                    dl[start + j] = a.dlib_embedding
                stats["quality_fail"] += int(not a.ok)
            else:
                h, w = rgb.shape[:2]
                box = (0.2 * w, 0.2 * h, 0.6 * w, 0.6 * h)
                missing.append((j, crop_face(rgb, box, margin=0.0), rgb, box))
        if missing:
            stats["no_face_fallback"] += len(missing)
            embs = engine.embed_faces(np.stack([c for _, c, _, _ in missing]))
            for (j, *_), e in zip(missing, embs):
                out[start + j] = e
            if fused:
                for (j, *_), e in zip(missing, engine.embed_dlib([(rgb, box) for _, _, rgb, box in missing])):
                    dl[start + j] = e
        bar.update(len(chunk))
    bar.close()
    return out, dl, stats


def _fta(refusals: list[str]) -> dict:
    """Failure to acquire: share of images the live quality gate refuses, with counts per reason code."""
    counts: dict[str, int] = {}
    for r in refusals:
        if r:
            counts[r] = counts.get(r, 0) + 1
    return {"images": len(refusals), "refused": sum(counts.values()),
            "rate": sum(counts.values()) / max(len(refusals), 1), "reasons": dict(sorted(counts.items()))}


def _summary_at(tsims, genuine_mask, passed) -> dict:
    s = summarise(tsims[genuine_mask & passed[None, :]], tsims[~genuine_mask & passed[None, :]])
    return {"genuine": s["genuine"], "impostor": s["impostor"], "eer": s["eer"],
            "fnmr_at_fmr": {f"{r['target_fmr']:.0e}": r["fnmr"] for r in s["at_fmr"]}}


# --- protocols ----------------------------------------------------------------------------
def pairs_protocol(engine, dataset: Path, pairs_txt: Path, progress=True) -> dict:
    pairs, folds = read_pairs(pairs_txt, dataset)
    uniq = sorted({p for _, a, b, _ in pairs for p in (a, b)})
    index = {p: i for i, p in enumerate(uniq)}
    embs, dl, stats = embed_paths(engine, uniq, progress)
    refusals = stats.pop("refusals")
    ia = np.array([index[a] for _, a, _, _ in pairs])
    ib = np.array([index[b] for _, _, b, _ in pairs])
    scores = engine.scorer.score_pairs(embs[ia], embs[ib], *((dl[ia], dl[ib]) if dl is not None else ())
                                       ).astype(np.float64)
    same = np.array([s for *_, s in pairs])
    fold = np.array([f for f, *_ in pairs])
    accs, thrs = [], []
    candidates = np.unique(scores)
    for k in range(folds):
        train, test = fold != k, fold == k
        acc_train = [np.mean((scores[train] >= t) == same[train]) for t in candidates]
        t = float(candidates[int(np.argmax(acc_train))])
        thrs.append(t)
        accs.append(float(np.mean((scores[test] >= t) == same[test])))
    summary = summarise(scores[same], scores[~same])
    fixed = float(np.mean((scores >= engine.threshold) == same))
    fmr, fnmr = rates(scores[same], scores[~same], engine.threshold)
    summary.update({"fmr_at_default": fmr, "fnmr_at_default": fnmr,
                    "fta": _fta([refusals[i] for i in sorted(set(ia) | set(ib))])})
    return {"protocol": "lfw_pairs", "scoring": engine.scorer.method, "pairs": len(pairs), "folds": folds,
            "accuracy_mean": float(np.mean(accs)),
            "accuracy_std": float(np.std(accs)), "fold_thresholds": thrs,
            "accuracy_at_default_threshold": fixed, "default_threshold": engine.threshold,
            "embedding_stats": stats, **summary,
            "_scores": (scores[same], scores[~same])}


def folder_protocols(engine, dataset: Path, enroll_count=5, max_identities=None, progress=True) -> dict:
    ids = identities(dataset, max_identities)
    paths, labels = [], []
    for k, (name, files) in enumerate(ids.items()):
        paths += files
        labels += [k] * len(files)
    labels = np.array(labels)
    embs, dl, stats = embed_paths(engine, paths, progress)
    refusals = stats.pop("refusals")
    # Single-image pairs: every pair of images.
    sims = engine.scorer.score_matrix(embs, embs, *((dl, dl) if dl is not None else ()))
    iu = np.triu_indices(len(paths), 1)
    same = labels[iu[0]] == labels[iu[1]]
    pair_scores = sims[iu]
    pairs = summarise(pair_scores[same], pair_scores[~same])
    pairs["_scores"] = (pair_scores[same], pair_scores[~same])
    # Enrollment protocol: template = normalised mean of the first `enroll_count` images of a person;
    # probes = each remaining image; impostors = every probe of every other person.
    # Templates are built exactly as enrollment builds them (Template.from_embeddings) and scored with the
    # product's scorer (engine.scorer), so these figures are the product's decisions.
    from .template import Template

    templates, dlib_templates, owners, probe_idx, probe_labels = [], [], [], [], []
    for k in range(len(ids)):
        idx = np.flatnonzero(labels == k)
        if len(idx) <= enroll_count:
            continue
        t = Template.from_embeddings(embs[idx[:enroll_count]],
                                     dlib_embeddings=dl[idx[:enroll_count]] if dl is not None else None)
        templates.append(t.mean)
        dlib_templates.append(t.dlib_mean)
        owners.append(k)
        probe_idx += list(idx[enroll_count:])
        probe_labels += [k] * (len(idx) - enroll_count)
    templates = np.stack(templates)
    probe_idx = np.array(probe_idx)
    probe_labels = np.array(probe_labels)
    tsims = engine.scorer.score_matrix(templates, embs[probe_idx], *(
        (np.stack(dlib_templates), dl[probe_idx]) if dl is not None else ())).astype(np.float64)
    genuine_mask = np.array(owners)[:, None] == probe_labels[None, :]
    enroll = summarise(tsims[genuine_mask], tsims[~genuine_mask])
    enroll["_scores"] = (tsims[genuine_mask], tsims[~genuine_mask])
    fmr, fnmr = rates(tsims[genuine_mask], tsims[~genuine_mask], engine.threshold)
    # The live quality gate would refuse some probes before any score (failure to acquire); the figures
    # above score every probe; "gated" is the same protocol with the refused probes left out.
    probe_refusals = [refusals[i] for i in probe_idx]
    passed = np.array([not r for r in probe_refusals])
    gfmr, gfnmr = rates(tsims[genuine_mask & passed[None, :]], tsims[~genuine_mask & passed[None, :]],
                        engine.threshold)
    enroll.update({"templates": len(templates), "enroll_count": enroll_count,
                   "default_threshold": engine.threshold, "fmr_at_default": fmr, "fnmr_at_default": fnmr,
                   "fta": _fta(probe_refusals), "gated": {"fmr_at_default": gfmr, "fnmr_at_default": gfnmr,
                                                          **_summary_at(tsims, genuine_mask, passed)}})
    return {"protocol": "folder", "scoring": engine.scorer.method, "identities": len(ids), "images": len(paths),
            "embedding_stats": stats,
            "single_pairs": pairs, "enrollment": enroll}


def run(engine, dataset: Path, pairs_txt: Path | None = None, enroll_count=5, max_identities=None,
        plot_path=None, progress=True) -> dict:
    if pairs_txt:
        report = {"dataset": str(dataset), "model": engine.model_id, "template_version": engine.model_version,
                  "scoring": engine.scorer.method,
                  "lfw_pairs": pairs_protocol(engine, dataset, pairs_txt, progress)}
        curves = {"LFW 6,000 pairs": report["lfw_pairs"]["_scores"]}
    else:
        report = {"dataset": str(dataset), "model": engine.model_id, "template_version": engine.model_version,
                  "scoring": engine.scorer.method,
                  **folder_protocols(engine, dataset, enroll_count, max_identities, progress)}
        curves = {"single-image pairs": report["single_pairs"]["_scores"],
                  f"enrollment ({enroll_count} images) vs probe": report["enrollment"]["_scores"]}
    if plot_path:
        plot(curves, Path(plot_path), engine.threshold)
        report["plot"] = str(plot_path)
    for section in report.values():
        if isinstance(section, dict):
            section.pop("_scores", None)
            for sub in section.values():
                if isinstance(sub, dict):
                    sub.pop("_scores", None)
    return report


def plot(curves: dict, out: Path, threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(curves), figsize=(5.5 * (1 + len(curves)), 4.5))
    det = axes[0]
    for name, (g, i) in curves.items():
        fmr, fnmr = det_curve(g, i)
        keep = (fmr > 0) & (fnmr > 0)
        det.loglog(fmr[keep], fnmr[keep], label=name)
    for target in FMR_TARGETS:
        det.axvline(target, color="grey", lw=0.5, ls=":")
    det.set_xlabel("false match rate (FMR)")
    det.set_ylabel("false non-match rate (FNMR)")
    det.set_title("DET curve")
    det.grid(True, which="both", lw=0.3)
    det.legend(fontsize=8)
    for ax, (name, (g, i)) in zip(axes[1:], curves.items()):
        bins = np.linspace(min(-0.4, float(np.min(i)), float(np.min(g))), max(1.0, float(np.max(g))), 71)
        ax.hist(i, bins=bins, density=True, alpha=0.6, label=f"impostor (n={len(i)})")
        ax.hist(g, bins=bins, density=True, alpha=0.6, label=f"genuine (n={len(g)})")
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
        ax.set_yscale("log")
        ax.set_xlabel("score")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def format_report(report: dict) -> str:
    lines = [f"dataset: {report['dataset']}  model: {report['model']}  scoring: {report.get('scoring', '')}"]

    def block(title, s):
        lines.append(f"\n{title}: {s['genuine']} genuine, {s['impostor']} impostor scores")
        lines.append(f"  genuine mean {s['genuine_mean']:.3f}, impostor mean {s['impostor_mean']:.3f}, "
                     f"impostor max {s['impostor_max']:.3f}")
        lines.append(f"  EER {s['eer'] * 100:.2f}% at threshold {s['eer_threshold']:.4f}")
        for r in s["at_fmr"]:
            note = "" if r["measurable"] else "  (fewer impostor scores than 1/FMR: not measurable)"
            lines.append(f"  FMR <= {r['target_fmr']:.0e}: threshold {r['threshold']:.4f}, "
                         f"FMR {r['fmr'] * 100:.4f}%, FNMR {r['fnmr'] * 100:.2f}%{note}")

    if "lfw_pairs" in report:
        p = report["lfw_pairs"]
        lines.append(f"\nLFW {p['pairs']} pairs, {p['folds']}-fold accuracy: {p['accuracy_mean'] * 100:.2f}% "
                     f"+- {p['accuracy_std'] * 100:.2f}% (thresholds {min(p['fold_thresholds']):.3f}.."
                     f"{max(p['fold_thresholds']):.3f}); at the default threshold {p['default_threshold']:.3f}: "
                     f"{p['accuracy_at_default_threshold'] * 100:.2f}%")
        lines.append(f"  embedding: {p['embedding_stats']}")
        block("LFW pairs", p)
        lines.append(f"  at the default threshold: FMR {p['fmr_at_default'] * 100:.4f}%, FNMR "
                     f"{p['fnmr_at_default'] * 100:.2f}%; quality gate refuses {p['fta']['refused']} of "
                     f"{p['fta']['images']} images: {p['fta']['reasons']}")
    else:
        lines.append(f"identities {report['identities']}, images {report['images']}, "
                     f"embedding: {report['embedding_stats']}")
        block("single-image pairs", report["single_pairs"])
        e = report["enrollment"]
        block(f"enrollment protocol ({e['templates']} templates of {e['enroll_count']} images, each other image "
              "as probe)", e)
        lines.append(f"  at the default threshold {e['default_threshold']:.4f}: FMR {e['fmr_at_default'] * 100:.4f}%, "
                     f"FNMR {e['fnmr_at_default'] * 100:.2f}%")
        f, g = e["fta"], e["gated"]
        lines.append(f"  quality gate: refuses {f['refused']} of {f['images']} probes (FTA {f['rate'] * 100:.1f}%): "
                     f"{f['reasons']}; without them: FMR {g['fmr_at_default'] * 100:.4f}%, "
                     f"FNMR {g['fnmr_at_default'] * 100:.2f}% at the default threshold")
    if report.get("plot"):
        lines.append(f"\nplot: {report['plot']}")
    return "\n".join(lines)
