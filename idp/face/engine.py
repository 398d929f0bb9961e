"""The face engine: detect -> quality -> embed -> enroll / verify. No web framework here."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import quality, settings
from .scoring import Scorer
from .imageio import decode_image, ensure_rgb
from .reasons import (INCONSISTENT_FRAMES, MULTIPLE_FACES, NO_FACE, NO_USABLE_FRAMES, NOT_ENOUGH_GOOD_FRAMES,
                      BELOW_THRESHOLD, REENROLL_REQUIRED, SECOND_MODEL_MISSING, FaceInputError)
from .template import Template

log = logging.getLogger(__name__)


@dataclass
class FrameAnalysis:
    ok: bool
    reasons: list[str]
    box: tuple[float, float, float, float] | None = None  # x, y, w, h in frame pixels
    landmarks: dict[str, tuple[float, float]] | None = None
    confidence: float = 0.0
    quality: dict = field(default_factory=dict)
    embedding: np.ndarray | None = None  # (512,) float32, L2-normalised, as new templates embed faces
    # The face's embedding under every template version the engine computed ({"1": crop, "2": crop +
    # mirror, ...}, settings.TEMPLATE_VERSIONS; the mirror's versions only when the mirror was run);
    # None = only ``embedding``, of the current version.
    embeddings: dict | None = None
    # dlib's ResNet embedding of the face (128-d, L2-normalised; the second model of template versions 3, 4),
    # when it was asked for (analyze's ``dlib``): None = not computed.
    dlib_embedding: np.ndarray | None = None
    faces: int = 0  # faces found above the confidence floor
    size: tuple[int, int] = (0, 0)  # frame width, height

    def embedding_for(self, version: str) -> np.ndarray | None:
        """The face's FaceNet embedding as templates of ``version`` embed faces (None if not computed): its
        own, or that of its ``facenet_version``, which is the same vector (a frame kept before a version
        existed still serves it)."""
        if self.embeddings is not None:
            spec = settings.TEMPLATE_VERSIONS.get(version)
            found = self.embeddings.get(version)
            return found if found is not None or spec is None else self.embeddings.get(spec.facenet_version)
        return self.embedding if version == settings.MODEL_VERSION else None

    def to_dict(self, with_embedding: bool = False) -> dict:
        out = {
            "ok": self.ok, "reasons": list(self.reasons),
            "box": [round(v, 1) for v in self.box] if self.box else None,
            "landmarks": {k: [round(v[0], 1), round(v[1], 1)] for k, v in self.landmarks.items()}
            if self.landmarks else None,
            "confidence": round(self.confidence, 4), "quality": self.quality, "faces": self.faces,
            "size": list(self.size),
        }
        if with_embedding:
            out["embedding"] = None if self.embedding is None else [float(x) for x in self.embedding]
        return out


@dataclass
class EnrollmentResult:
    ok: bool
    template: Template | None
    reasons: list[str]
    used_frames: int
    stats: dict


@dataclass
class VerificationResult:
    match: bool
    score: float
    threshold: float
    reasons: list[str]
    frames_used: int


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-10)).astype(np.float32)


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-10)).astype(np.float32)


def landmarks_plausible(det) -> bool:
    """Do the five landmarks look like a face: eyes left-to-right above the nose, the nose above the mouth
    corners, every point within the box (10% slack)? Rejects detections of things that are not faces."""
    lm = det.landmarks or {}
    names = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    if not all(k in lm for k in names):
        return False
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = (lm[k] for k in names)
    x, y, w, h = det.box
    inside = all(x - 0.1 * w <= px <= x + 1.1 * w and y - 0.1 * h <= py <= y + 1.1 * h for px, py in lm.values())
    return (inside and lex < rex and mlx < mrx and (ley + rey) / 2 < ny < (mly + mry) / 2
            and min(lex, mlx) - 0.1 * w <= nx <= max(rex, mrx) + 0.1 * w)


def select_subject(faces: Sequence, width: int, height: int):
    """The face to judge among detections (largest first): the largest one with plausible landmarks that is
    wholly in the frame; failing that the largest plausible one; failing that the largest. A large face cut
    off at the edge (a bystander leaving the picture) or a face-like texture no longer hides the subject;
    the MULTIPLE_FACES check then still applies to every other face."""
    plausible = [f for f in faces if landmarks_plausible(f)]
    whole = [f for f in plausible if quality.fully_in_frame(f.box, f.landmarks, width, height)]
    return (whole or plausible or list(faces))[0]


class FaceEngine:
    """Holds the detector and the embedding model. Thread-safe; create once per process (get_engine)."""

    def __init__(self, data_dir, threshold: float | None = None, max_image_bytes: int = settings.MAX_IMAGE_BYTES,
                 max_image_pixels: int = settings.MAX_IMAGE_PIXELS, min_enroll_frames: int = settings.MIN_ENROLL_FRAMES,
                 detect_max_side: int = settings.DETECT_MAX_SIDE, detect_min_face: int = settings.DETECT_MIN_FACE,
                 warm_up: bool = True):
        t0 = time.perf_counter()
        self.data_dir = Path(data_dir)
        # The threshold of templates of the current version (settings.DEFAULT_THRESHOLD unless overridden);
        # other versions: see threshold_for.
        self.threshold = float(settings.DEFAULT_THRESHOLD if threshold is None else threshold)
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self.min_enroll_frames = max(1, int(min_enroll_frames))
        self.detect_max_side = detect_max_side
        self.detect_min_face = detect_min_face
        self.model_id = settings.MODEL_ID
        self.model_version = settings.MODEL_VERSION
        # The one decision function (sign-in, `idp faces verify`, `idp faces eval`), with the cohort of each
        # template version; ``scorer`` is the current version's (what `idp faces eval` measures).
        self.scorers = {v: Scorer(settings.SCORING_METHOD, version=v) for v in settings.TEMPLATE_VERSIONS}
        self.scorer = self.scorers[self.model_version]
        # The networks are shared by every engine of this data directory in the process (dlib's: the
        # second model of template versions 3 and 4, sha256-checked like FaceNet's).
        self.detector, self.embedder, self.dlib = _shared_models(self.data_dir, warm_up)
        self.startup_seconds = time.perf_counter() - t0
        log.info("face engine ready", extra={"seconds": round(self.startup_seconds, 2), "model": self.model_id})

    # --- set-up -----------------------------------------------------------------------
    def warm_up(self) -> None:
        """Trace the tf.functions (model and detector) so the first real request is not slow."""
        _warm_up(self.detector, self.embedder, self.dlib)

    # --- single frames -------------------------------------------------------------------
    def decode(self, data: bytes) -> np.ndarray:
        return decode_image(data, self.max_image_bytes, self.max_image_pixels)

    def _to_rgb(self, image) -> np.ndarray:
        if isinstance(image, (bytes, bytearray, memoryview)):
            return self.decode(bytes(image))
        return ensure_rgb(image)

    def _detect_and_check(self, rgb: np.ndarray) -> tuple[FrameAnalysis, np.ndarray | None]:
        h, w = rgb.shape[:2]
        faces = [d for d in self.detector.detect(rgb, self.detect_max_side, self.detect_min_face) if d.confidence >= settings.MIN_DETECTION_CONFIDENCE]
        if not faces:
            return FrameAnalysis(ok=False, reasons=[NO_FACE], size=(w, h)), None
        main = select_subject(faces, w, h)
        others = [f for f in faces if f is not main]
        metrics = quality.measure(rgb, main.box, main.landmarks)
        reasons = []
        if others and others[0].area >= settings.SECOND_FACE_AREA_RATIO * main.area:
            reasons.append(MULTIPLE_FACES)
        reasons += quality.check(metrics)
        analysis = FrameAnalysis(ok=not reasons, reasons=reasons, box=main.box, landmarks=main.landmarks,
                                 confidence=main.confidence, quality=metrics, faces=len(faces), size=(w, h))
        return analysis, quality.crop_face(rgb, main.box)

    def analyze(self, image, embed: str = "ok", dlib: str = "never", mirror: bool | None = None) -> FrameAnalysis:
        """Analyse one frame (RGB array, or JPEG/PNG bytes). ``embed``: 'ok' (only frames that pass
        quality), 'always' (any frame with a face) or 'never'. ``dlib``: which of the embedded frames
        also get dlib's embedding (``dlib_embedding``; about as costly as the rest of the frame), with the
        same values. ``mirror``: also run the mirrored crop through FaceNet, for the versions that flip
        (embed_versions; default: when the current version flips). Raises FaceInputError for bad input."""
        return self.analyze_batch([image], embed=embed, dlib=dlib, mirror=mirror)[0]

    def analyze_batch(self, images: Sequence, embed: str = "ok", dlib: str = "never",
                      mirror: bool | None = None) -> list[FrameAnalysis]:
        """Analyse several frames; each embedding model is called once for all of them."""
        analyses, crops, owners, second = [], [], [], []
        for image in images:
            rgb = self._to_rgb(image)
            analysis, crop = self._detect_and_check(rgb)
            analyses.append(analysis)
            if crop is not None and (embed == "always" or (embed == "ok" and analysis.ok)):
                crops.append(crop)
                owners.append(analysis)
                if dlib == "always" or (dlib == "ok" and analysis.ok):
                    second.append((analysis, rgb))
        if crops:
            versions = self.embed_versions(np.stack(crops), mirror)
            for i, analysis in enumerate(owners):
                analysis.embeddings = {v: embs[i] for v, embs in versions.items()}
                analysis.embedding = analysis.embeddings.get(self.model_version)
        if second:
            for (analysis, _), emb in zip(second, self.embed_dlib([(rgb, a.box) for a, rgb in second])):
                analysis.dlib_embedding = emb
        return analyses

    def mirrors(self, version: str | None = None) -> bool:
        """Whether faces are embedded for templates of ``version`` (default: the current one) with the
        mirrored crop too (settings.TemplateVersion.flip): what ``mirror=None`` means."""
        return settings.TEMPLATE_VERSIONS[version or self.model_version].flip

    def embed_versions(self, crops: np.ndarray, mirror: bool | None = None) -> dict[str, np.ndarray]:
        """Embeddings of already-cropped 160x160 RGB faces, L2-normalised, under the template versions
        (settings.TEMPLATE_VERSIONS) that one model call yields: a version without flip takes the crop's
        embedding; with ``mirror`` (default: when the current version flips) the mirrored crops go into
        the same call, and a version with flip takes the normalised sum of the two embeddings. So a frame
        embedded for a version-2 template also yields the version-1 (and 4) FaceNet embedding at no extra
        cost; without ``mirror`` the versions that flip are absent (the mirror costs about a third of a
        frame)."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        n = len(crops)
        if (self.mirrors() if mirror is None else mirror) and n:
            both = self.embedder(np.concatenate([crops, crops[:, :, ::-1]]))
            plain, flipped = both[:n], _unit_rows(both[:n] + both[n:])
        else:
            plain, flipped = self.embedder(crops), None
        out = {}
        for version, spec in settings.TEMPLATE_VERSIONS.items():
            if not spec.flip:
                out[version] = plain
            elif flipped is not None:
                out[version] = flipped
        return out

    def embed_faces(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings of already-cropped 160x160 RGB faces as the current version's templates embed them
        (a version with flip: crop + mirrored crop, one model call for both)."""
        return self.embed_versions(crops)[self.model_version]

    # --- enrollment and verification -------------------------------------------------------------
    def embed_dlib(self, faces) -> np.ndarray:
        """dlib's embeddings (n, 128) of the faces in ``faces``: (RGB frame, box) pairs."""
        return self.dlib(list(faces))

    def _as_analyses(self, frames: Iterable, dlib: bool = False, mirror: bool | None = None) -> list[FrameAnalysis]:
        """Frames as analyses; images are analysed here (``dlib``: with dlib's embedding of good frames;
        ``mirror``: as analyze_batch)."""
        frames = list(frames)
        todo = [f for f in frames if not isinstance(f, FrameAnalysis)]
        done = iter(self.analyze_batch(todo, dlib="ok" if dlib else "never", mirror=mirror)) if todo else iter(())
        return [f if isinstance(f, FrameAnalysis) else next(done) for f in frames]

    def enroll(self, frames: Iterable, min_frames: int | None = None) -> EnrollmentResult:
        """Build a template from frames (FrameAnalysis objects, arrays or bytes).

        Frames failing quality are dropped; then frames that do not agree with
        most of the others, or with the mean of the others (cosine <
        OUTLIER_MIN_SIMILARITY), are dropped (FaceNet decides). Too many outliers means the
        capture showed more than one person and is refused. A version that fuses dlib's ResNet
        also averages the dlib embeddings of the kept frames, and needs one on at least
        ``min_frames`` of them (analysed images get one; frames analysed by the caller must carry it).
        """
        min_frames = self.min_enroll_frames if min_frames is None else max(1, int(min_frames))
        needs_dlib = settings.TEMPLATE_VERSIONS[self.model_version].dlib
        analyses = self._as_analyses(frames, dlib=needs_dlib, mirror=self.mirrors())
        good = [a for a in analyses if a.ok and a.embedding is not None]
        rejected: dict[str, int] = {}
        for a in analyses:
            for r in a.reasons:
                rejected[r] = rejected.get(r, 0) + 1
        stats = {"frames_offered": len(analyses), "frames_good": len(good), "rejected_reasons": rejected}
        if len(good) < min_frames:
            return EnrollmentResult(False, None, [NOT_ENOUGH_GOOD_FRAMES] + sorted(rejected), len(good), stats)
        # 1. Majority vote: a frame must agree (cosine >= OUTLIER_MIN_SIMILARITY) with at least half of
        #    the other frames; with two people in the capture, nobody has a majority.
        embs = np.stack([a.embedding for a in good])
        if len(good) > 2:
            agree = (embs @ embs.T >= settings.OUTLIER_MIN_SIMILARITY).sum(axis=1) - 1
            kept = [a for a, n in zip(good, agree) if n >= (len(good) - 1) / 2.0]
        else:
            kept = list(good)
        # 2. Then drop, worst first, any frame that does not agree with the mean of the rest.
        while len(kept) > 2:
            embs = np.stack([a.embedding for a in kept])
            total = embs.sum(axis=0)
            loo = [float(np.dot(_unit(total - e), e)) for e in embs]
            worst = int(np.argmin(loo))
            if loo[worst] >= settings.OUTLIER_MIN_SIMILARITY:
                break
            kept.pop(worst)
        if len(kept) == 2 and float(np.dot(kept[0].embedding, kept[1].embedding)) < settings.OUTLIER_MIN_SIMILARITY:
            kept = []
        outliers = len(good) - len(kept)
        stats["outliers"] = outliers
        if outliers > settings.MAX_OUTLIER_FRACTION * len(good) or len(kept) < min_frames:
            reason = INCONSISTENT_FRAMES if outliers else NOT_ENOUGH_GOOD_FRAMES
            return EnrollmentResult(False, None, [reason], len(kept), stats)
        embs = np.stack([a.embedding for a in kept]).astype(np.float32)
        dlib_embs = [a.dlib_embedding for a in kept if a.dlib_embedding is not None]
        if needs_dlib and len(dlib_embs) < min_frames:
            return EnrollmentResult(False, None, [NOT_ENOUGH_GOOD_FRAMES], len(dlib_embs), stats)
        template = Template.from_embeddings(embs, dlib_embeddings=np.stack(dlib_embs) if needs_dlib else None,
                                            model_id=self.model_id, model_version=self.model_version,
                                            scoring=self.scorer.method)
        sims = embs @ template.mean
        stats.update({
            "frames_used": len(kept),
            "consistency_min": round(float(sims.min()), 4),
            "consistency_mean": round(float(sims.mean()), 4),
            "brightness_mean": round(float(np.mean([a.quality["brightness"] for a in kept])), 2),
            "sharpness_mean": round(float(np.mean([a.quality["sharpness"] for a in kept])), 2),
            "face_px_mean": round(float(np.mean([a.quality["face_px"] for a in kept])), 1),
            "yaw_abs_mean": round(float(np.mean([abs(a.quality["yaw"]) for a in kept])), 4),
        })
        template.quality = dict(stats)
        return EnrollmentResult(True, template, [], len(kept), stats)

    @staticmethod
    def template_version(template: Template) -> str:
        """The template version a stored template is scored as (its recorded model_version)."""
        return template.model_version or settings.LEGACY_MODEL_VERSION

    def threshold_for(self, version: str, threshold: float | None = None) -> float:
        """The match threshold of templates of ``version``. ``threshold`` (default: the engine's) is the
        current version's; another version's calibrated threshold moves by the same amount."""
        base = self.threshold if threshold is None else float(threshold)
        shift = base - settings.TEMPLATE_VERSIONS[self.model_version].threshold
        return round(settings.TEMPLATE_VERSIONS[version].threshold + shift, 6)

    def score(self, template: Template, embeddings: np.ndarray, dlib_embeddings=None,
              version: str | None = None) -> float:
        """The decision score (scoring.Scorer, with the cohort(s) of the template's version, or of
        ``version``) of 1..M probe embeddings, embedded as that version embeds faces, against the template;
        a version that fuses dlib also needs the probe's dlib embeddings (ValueError without them)."""
        scorer = self.scorers[version or self.template_version(template)]
        return scorer.score(template, embeddings, dlib_embeddings)

    def verify(self, template: Template, frames: Iterable, threshold: float | None = None,
               facenet_only: bool = False) -> VerificationResult:
        """Compare 1..M frames with a template; frames failing quality are not used.

        A template is judged as its version (settings.TEMPLATE_VERSIONS): the frames' embeddings of that
        version, that version's cohort(s) and threshold, so templates enrolled before a version change
        keep their measured error rates. A version that fuses dlib's ResNet scores the mean FaceNet
        embedding of the good frames and the mean dlib embedding of those good frames that carry one (a
        sign-in embeds only its first few good frames with dlib); without any, there is no decision
        (``second_model_missing``, frames_used 0), never a FaceNet-only match. ``facenet_only`` judges the
        template's FaceNet part alone, as the version named by its ``facenet_version`` (that version's
        scorer and threshold: 2 for version 3, 1 for version 4): for the capture's next-move gate, whose
        frames carry no dlib embedding; for versions 1 and 2 it changes nothing. Images (not analyses)
        are embedded as the version judged needs: the mirror only for a version that flips. A template of
        another model, of a version this engine cannot score, or lacking a part its version needs
        (``Template.incomplete``) needs a re-enrollment."""
        version = self.template_version(template) if template is not None else ""
        if (template is None or template.model_id != self.model_id or version not in self.scorers
                or template.incomplete):
            threshold = self.threshold if threshold is None else float(threshold)
            return VerificationResult(False, 0.0, threshold, [REENROLL_REQUIRED], 0)
        spec = settings.TEMPLATE_VERSIONS[version]
        if facenet_only:
            version = spec.facenet_version or version
            spec = settings.TEMPLATE_VERSIONS[version]
        threshold = self.threshold_for(version, threshold)
        analyses = self._as_analyses(frames, dlib=spec.dlib, mirror=spec.flip)
        good = [a for a in analyses if a.ok and a.embedding_for(version) is not None]
        if not good:
            reasons = [NO_USABLE_FRAMES] + sorted({r for a in analyses for r in a.reasons})
            return VerificationResult(False, 0.0, threshold, reasons, 0)
        dlib_embs = None
        if spec.dlib:
            dlib_embs = [a.dlib_embedding for a in good if a.dlib_embedding is not None]
            if not dlib_embs:
                return VerificationResult(False, 0.0, threshold, [SECOND_MODEL_MISSING], 0)
            dlib_embs = np.stack(dlib_embs)
        score = self.score(template, np.stack([a.embedding_for(version) for a in good]), dlib_embs, version)
        match = score >= threshold
        return VerificationResult(match, round(score, 6), threshold, [] if match else [BELOW_THRESHOLD], len(good))


_engines: dict = {}
_models: dict = {}
_engines_lock = threading.Lock()
_models_lock = threading.Lock()


def _warm_up(detector, embedder, dlib=None) -> None:
    """Trace every tf.function once: the embedding model, PNet at a 640x480 (and 320x240) frame's
    pyramid shapes, and RNet/ONet directly (a noise frame may yield no candidates for them); run dlib's
    ResNet once (its first call allocates)."""
    import tensorflow as tf

    embedder.warm_up()
    if dlib is not None:
        dlib.embed_chips([np.zeros((settings.DLIB_CHIP, settings.DLIB_CHIP, 3), np.uint8)])
    detector.detect(np.random.RandomState(0).randint(0, 255, (480, 640, 3)).astype(np.uint8))
    for stage, size in zip(detector.mtcnn.stages[1:], (24, 48)):
        stage.model(tf.zeros((1, size, size, 3), tf.float32))


def configure_threads() -> dict:
    """Apply the thread settings (settings.BLAS_THREADS, settings.TF_INTRA_OP_THREADS) to this process;
    called before the models are built. Returns the counts in force afterwards.

    Both are process-wide. numpy's BLAS is limited at once (threadpoolctl) and stays limited.
    TensorFlow's intra-op pool is sized when TensorFlow runs its first operation; if something in the
    process ran one before (its pools are then fixed), they stay as they are, with a warning."""
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    if settings.BLAS_THREADS:
        threadpool_limits(limits=settings.BLAS_THREADS, user_api="blas")
    wanted = settings.TF_INTRA_OP_THREADS
    if wanted and tf.config.threading.get_intra_op_parallelism_threads() != wanted:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(wanted)
        except RuntimeError:  # TensorFlow already initialised in this process
            log.warning("TensorFlow was initialised before the face models; its intra-op threads stay at "
                        "its own setting", extra={"wanted": wanted})
    from threadpoolctl import threadpool_info

    blas = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"blas": max(blas) if blas else None, "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads()}


def _shared_models(data_dir: Path, warm_up: bool = True):
    from .detector import FaceDetector
    from .dlibnet import DlibEmbedder
    from .model import Embedder

    key = str(Path(data_dir).resolve())
    with _models_lock:
        models = _models.get(key)
        if models is None:
            configure_threads()
            second = DlibEmbedder()  # first: a wrong model file stops the engine before the rest loads
            models = (FaceDetector(), Embedder(Path(data_dir)), second)
            if warm_up:
                _warm_up(*models)
            _models[key] = models
    return models


def get_engine(data_dir, **settings_overrides) -> FaceEngine:
    """The process-wide engine for these settings, created (and warmed up) on first use. ``data_dir`` holds the
    converted model weights (the configuration's data directory: ``engine_for``)."""
    key = (str(Path(data_dir).resolve()), tuple(sorted(settings_overrides.items())))
    engine = _engines.get(key)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = FaceEngine(data_dir, **settings_overrides)
                _engines[key] = engine
    return engine


__all__ = ["FaceEngine", "FrameAnalysis", "EnrollmentResult", "VerificationResult", "get_engine",
           "FaceInputError", "decode_image"]


def engine_for(config):
    """The process-wide engine for an ``idp.config.Config`` (threshold and input limits; loaded once, ~7 s)."""
    return get_engine(config.data_dir, threshold=config.face_threshold, max_image_bytes=config.max_image_bytes,
                      max_image_pixels=config.max_image_pixels)
