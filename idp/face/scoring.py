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


def load_cohort(version: str = settings.MODEL_VERSION) -> np.ndarray:
    """The impostor cohort of a template version (settings.TEMPLATE_VERSIONS), (n, 512) float32,
    L2-normalised; refuses a file whose sha256 is not the expected one."""
    spec = settings.TEMPLATE_VERSIONS[version]
    data = resources.files("idp.face").joinpath("data", spec.cohort_file).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.cohort_sha256:
        raise ValueError(f"{spec.cohort_file} has sha256 {digest}, expected {spec.cohort_sha256}")
    import io

    cohort = np.load(io.BytesIO(data), allow_pickle=False)
    if cohort.ndim != 2 or cohort.shape[1] != settings.EMBEDDING_SIZE:
        raise ValueError(f"{spec.cohort_file} has shape {cohort.shape}")
    return _unit(cohort.astype(np.float32))


class Scorer:
    """Scores (template mean, probe) pairs with one method, for the embeddings of one template version
    (whose cohort it uses). Stateless after construction, thread-safe."""

    def __init__(self, method: str = settings.SCORING_METHOD, cohort: np.ndarray | None = None,
                 top_k: int = settings.COHORT_TOP_K, version: str = settings.MODEL_VERSION):
        if method not in METHODS:
            raise ValueError(f"unknown face scoring method {method!r}")
        self.method = method
        self.version = version
        self.top_k = int(top_k)
        self.cohort = None
        if method == ASNORM:
            self.cohort = load_cohort(version) if cohort is None else _unit(cohort)
            self.top_k = max(1, min(self.top_k, len(self.cohort)))

    def cohort_stats(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each vector's top_k cosine similarities against the cohort
        (0 and 1 for plain cosine, which makes the normalisation the identity)."""
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if self.cohort is None:
            return np.zeros(len(vectors), np.float32), np.ones(len(vectors), np.float32)
        sims = vectors @ self.cohort.T
        top = np.partition(sims, sims.shape[1] - self.top_k, axis=1)[:, -self.top_k:]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-4)

    @staticmethod
    def probe_vector(embeddings) -> np.ndarray:
        """One probe from 1..M frame embeddings: their normalised mean."""
        embs = np.asarray(embeddings, np.float32).reshape(-1, settings.EMBEDDING_SIZE)
        return _unit(embs.mean(axis=0))

    def score_matrix(self, templates, probes) -> np.ndarray:
        """(T, P) scores of T template means against P probe vectors (all L2-normalised)."""
        t = _unit(np.atleast_2d(templates))
        p = _unit(np.atleast_2d(probes))
        raw = t @ p.T
        if self.cohort is None:
            return raw
        (mt, st), (mp, sp) = self.cohort_stats(t), self.cohort_stats(p)
        return 0.5 * ((raw - mt[:, None]) / st[:, None] + (raw - mp[None, :]) / sp[None, :])

    def score_pairs(self, a, b) -> np.ndarray:
        """Score of a[i] against b[i] for every i (single-image pairs; the method is symmetric)."""
        a, b = _unit(np.atleast_2d(a)), _unit(np.atleast_2d(b))
        raw = (a * b).sum(axis=1)
        if self.cohort is None:
            return raw
        (ma, sa), (mb, sb) = self.cohort_stats(a), self.cohort_stats(b)
        return 0.5 * ((raw - ma) / sa + (raw - mb) / sb)

    def score(self, template, embeddings) -> float:
        """The decision score of a stored template against 1..M probe frame embeddings."""
        return float(self.score_matrix(template.mean, self.probe_vector(embeddings))[0, 0])
