"""The face engine's one decision score: how sure we are that a probe and a template are the same person.

Everything that decides a face match goes through :class:`Scorer`: sign-in
(``FaceEngine.verify``), ``idp faces verify`` and ``idp faces eval`` (which
therefore measures exactly what the product decides).

Method ``asnorm-v2`` (the default) is adaptive symmetric score normalisation
of the cosine similarity ``s`` of the template's mean embedding and the probe's
mean embedding: ``0.5 * ((s - mu_t) / sd_t + (s - mu_p) / sd_p)``, where
``mu``/``sd`` are the mean and standard deviation of that side's
``COHORT_TOP_K`` highest cosine similarities against a fixed impostor cohort.
The score says how far the pair stands above each side's most similar
strangers, in their own spread: a face that resembles many strangers (a face
type the model separates poorly, a look-alike) needs a higher raw similarity
to match; a distinctive face needs less. Scores are in standard deviations,
not cosines. The cohort is shipped as embeddings only
(``data/cohort-<model>[-flip].npy``): one photo each of LFW identities that are in
neither evaluation set (not in LFW pairs.txt, not among the colour-LFW people),
embedded the way the template version embeds faces: there is one cohort per
template version (settings.TEMPLATE_VERSIONS), and a template is always scored
against probe embeddings and a cohort of its own version.

A template version that fuses a second model (versions 3 and 4: dlib's ResNet,
``settings.TemplateVersion.dlib``) scores each model this way against its own
cohort (the same identities, embedded by that model) and takes the mean of the
two normalised scores: both are "standard deviations above the side's nearest
strangers", so they are on one scale and need no weight. Such a version is
never scored with FaceNet alone: without the second model's embeddings on both
sides there is no score (ValueError; the engine answers no decision).

Method ``cosine-v1`` is the plain cosine similarity that templates enrolled
before normalisation were scored with. Both methods need only the template's
mean embedding, so every stored template can be scored by either; the template
records the method it was enrolled under (informational).
"""
from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np

from . import settings

COSINE = "cosine-v1"
ASNORM = "asnorm-v2"
METHODS = (COSINE, ASNORM)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-10)).astype(np.float32)


def _load(name: str, sha256: str, dim: int) -> np.ndarray:
    import io

    data = resources.files("idp.face").joinpath("data", name).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(f"{name} has sha256 {digest}, expected {sha256}")
    cohort = np.load(io.BytesIO(data), allow_pickle=False)
    if cohort.ndim != 2 or cohort.shape[1] != dim:
        raise ValueError(f"{name} has shape {cohort.shape}")
    return _unit(cohort.astype(np.float32))


def load_cohort(version: str = settings.MODEL_VERSION) -> np.ndarray:
    """The FaceNet impostor cohort of a template version (settings.TEMPLATE_VERSIONS), (n, 512) float32,
    L2-normalised; refuses a file whose sha256 is not the expected one."""
    spec = settings.TEMPLATE_VERSIONS[version]
    return _load(spec.cohort_file, spec.cohort_sha256, settings.EMBEDDING_SIZE)


def load_dlib_cohort(version: str = settings.MODEL_VERSION) -> np.ndarray:
    """The dlib impostor cohort of a template version that fuses dlib's ResNet, (n, 128) float32,
    L2-normalised; refuses a file whose sha256 is not the expected one."""
    spec = settings.TEMPLATE_VERSIONS[version]
    if not spec.dlib:
        raise ValueError(f"template version {version} has no dlib cohort")
    return _load(spec.dlib_cohort_file, spec.dlib_cohort_sha256, settings.DLIB_EMBEDDING_SIZE)


def _asnorm(raw, stats_a, stats_b, outer: bool):
    (ma, sa), (mb, sb) = stats_a, stats_b
    if outer:
        return 0.5 * ((raw - ma[:, None]) / sa[:, None] + (raw - mb[None, :]) / sb[None, :])
    return 0.5 * ((raw - ma) / sa + (raw - mb) / sb)


class Scorer:
    """Scores (template, probe) pairs with one method, for the embeddings of one template version (whose
    cohort(s) it uses). Stateless after construction, thread-safe.

    ``cohort`` (and ``dlib_cohort``) replace the version's shipped files (benchmarks). An AS-norm scorer
    fuses dlib's ResNet (``fused``) when the version does and no FaceNet cohort is given, or when a
    ``dlib_cohort`` is given; every scoring call then needs the dlib embeddings of both sides."""

    def __init__(self, method: str = settings.SCORING_METHOD, cohort: np.ndarray | None = None,
                 top_k: int = settings.COHORT_TOP_K, version: str = settings.MODEL_VERSION,
                 dlib_cohort: np.ndarray | None = None):
        if method not in METHODS:
            raise ValueError(f"unknown face scoring method {method!r}")
        self.method = method
        self.version = version
        self.top_k = int(top_k)
        self.cohort = None
        self.dlib_cohort = None
        spec = settings.TEMPLATE_VERSIONS.get(version)
        # (plain cosine, the method before normalisation, is FaceNet's alone)
        self.fused = method == ASNORM and (dlib_cohort is not None or (cohort is None and spec is not None
                                                                       and spec.dlib))
        if method == ASNORM:
            self.cohort = load_cohort(version) if cohort is None else _unit(cohort)
            self.top_k = max(1, min(self.top_k, len(self.cohort)))
            if self.fused:
                self.dlib_cohort = load_dlib_cohort(version) if dlib_cohort is None else _unit(dlib_cohort)

    def _stats(self, vectors: np.ndarray, cohort) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if cohort is None:
            return np.zeros(len(vectors), np.float32), np.ones(len(vectors), np.float32)
        k = max(1, min(self.top_k, len(cohort)))
        sims = vectors @ cohort.T
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-4)

    def cohort_stats(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each FaceNet vector's top_k cosine similarities against the
        cohort (0 and 1 for plain cosine, which makes the normalisation the identity)."""
        return self._stats(vectors, self.cohort)

    @staticmethod
    def probe_vector(embeddings, dim: int = settings.EMBEDDING_SIZE) -> np.ndarray:
        """One probe from 1..M frame embeddings: their normalised mean."""
        embs = np.asarray(embeddings, np.float32).reshape(-1, dim)
        if not len(embs):
            raise ValueError("no probe embedding")
        return _unit(embs.mean(axis=0))

    def _need_dlib(self, *parts) -> None:
        if any(p is None or not np.size(p) for p in parts):
            raise ValueError(f"template version {self.version} is scored with dlib's embeddings on both sides")

    def score_matrix(self, templates, probes, dlib_templates=None, dlib_probes=None) -> np.ndarray:
        """(T, P) scores of T template means against P probe vectors (all L2-normalised); a fused scorer
        also needs the dlib template means and probe vectors (in the same order)."""
        t = _unit(np.atleast_2d(templates))
        p = _unit(np.atleast_2d(probes))
        raw = t @ p.T
        if self.cohort is None:
            return raw
        out = _asnorm(raw, self._stats(t, self.cohort), self._stats(p, self.cohort), True)
        if not self.fused:
            return out
        self._need_dlib(dlib_templates, dlib_probes)
        dt, dp = _unit(np.atleast_2d(dlib_templates)), _unit(np.atleast_2d(dlib_probes))
        second = _asnorm(dt @ dp.T, self._stats(dt, self.dlib_cohort), self._stats(dp, self.dlib_cohort), True)
        return 0.5 * (out + second)

    def score_pairs(self, a, b, dlib_a=None, dlib_b=None) -> np.ndarray:
        """Score of a[i] against b[i] for every i (single-image pairs; the method is symmetric)."""
        a, b = _unit(np.atleast_2d(a)), _unit(np.atleast_2d(b))
        raw = (a * b).sum(axis=1)
        if self.cohort is None:
            return raw
        out = _asnorm(raw, self._stats(a, self.cohort), self._stats(b, self.cohort), False)
        if not self.fused:
            return out
        self._need_dlib(dlib_a, dlib_b)
        da, db = _unit(np.atleast_2d(dlib_a)), _unit(np.atleast_2d(dlib_b))
        second = _asnorm((da * db).sum(axis=1), self._stats(da, self.dlib_cohort), self._stats(db, self.dlib_cohort),
                         False)
        return 0.5 * (out + second)

    def score(self, template, embeddings, dlib_embeddings=None) -> float:
        """The decision score of a stored template against 1..M probe frame embeddings (a fused version:
        and against the 1..N dlib embeddings of those of its frames that carry one)."""
        probe = self.probe_vector(embeddings)
        if not self.fused:
            return float(self.score_matrix(template.mean, probe)[0, 0])
        self._need_dlib(getattr(template, "dlib_mean", None), dlib_embeddings)
        dlib_probe = self.probe_vector(dlib_embeddings, settings.DLIB_EMBEDDING_SIZE)
        return float(self.score_matrix(template.mean, probe, template.dlib_mean, dlib_probe)[0, 0])
