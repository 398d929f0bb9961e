"""Passive presentation-attack signal: the project's own port of MiniFASNet (Silent-Face-Anti-Spoofing).

Two small CNNs by Minivision (Apache-2.0, see ``models/NOTICE``) score an 80x80 crop around the face:
``MiniFASNetV2`` on the detector box scaled 2.7x, ``MiniFASNetV1SE`` on it scaled 4.0x. Each gives
the softmax of 3 classes; as upstream, class 1 is "real" and the two models' softmaxes are averaged
(upstream sums them and halves the winning value). :meth:`AntiSpoof.score` returns that averaged real
probability (0..1); upstream calls a face real when class 1 has the largest averaged probability.

Weights: the two upstream ``.pth`` state dicts converted once (``benchmarks/convert_minifasnet.py``,
which checks the upstream sha256 values) into ``models/minifasnet.npz`` (float16: labels identical to
float32 on 402 test pictures, probabilities within 0.003; tensor names as in the state dicts). That
file's sha256 is checked before it is used: a missing or altered file raises :class:`AntiSpoofModelError`
(fail closed). Nothing is downloaded or read from outside the package.
:func:`read_torch_state_dict` reads a ``torch.save`` file without PyTorch through a restricted
unpickler that accepts only the tensor-rebuild and storage names (anything else raises).

Input as upstream builds it: the box (x, y, w, h) is scaled around its centre (the scale is reduced
when the scaled box would not fit the frame), shifted inside the frame, cropped, resized to 80x80 with
OpenCV's bilinear rule (reimplemented here, OpenCV is not a dependency), channels in **BGR** order,
values 0..255 (no normalisation). The network (batch normalisation folded into the convolutions at
load) runs as a TensorFlow graph by default - about 12 ms per face for both models on one busy CPU
core - or in plain numpy (``backend="numpy"``, the same arithmetic, used to cross-check the graph; as
fast with one BLAS thread, many times slower when OpenBLAS's threads compete with other work).
TensorFlow is imported only when the first :class:`AntiSpoof` is built. Not a decision by itself:
see docs/liveness.md for what it measured on this project's data.
"""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from .shared import built_once, read_pinned

MODEL_PATH = Path(__file__).resolve().parent / "models" / "minifasnet.npz"
#: sha256 of models/minifasnet.npz as written by benchmarks/convert_minifasnet.py.
MODEL_SHA256 = "cf063edfd91d67902a9b56f2ed8920adaca6090a07b94a19637e74b34798d5f5"
#: Upstream files (minivision-ai/Silent-Face-Anti-Spoofing @ b6d5f04, resources/anti_spoof_models/).
UPSTREAM_SHA256 = {
    "2.7_80x80_MiniFASNetV2.pth": "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
    "4_0_0_80x80_MiniFASNetV1SE.pth": "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
}
#: (key prefix in the npz, box scale, upstream file) of the two models, in upstream's order.
MODELS = (("v2", 2.7, "2.7_80x80_MiniFASNetV2.pth"), ("v1se", 4.0, "4_0_0_80x80_MiniFASNetV1SE.pth"))
INPUT_SIZE = 80
REAL_CLASS = 1
BN_EPS = 1e-5
BACKEND = "tensorflow"  # measured faster and steadier than numpy on CPU (docs/liveness.md)


class AntiSpoofModelError(RuntimeError):
    """The anti-spoofing weights cannot be used (missing file, wrong hash, unexpected content)."""


# ------------------------------------------------------------------------------------------------
# reading torch.save files without torch
# ------------------------------------------------------------------------------------------------
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _TensorRef:
    """A tensor whose storage bytes are resolved after unpickling."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def materialise(self, storages: dict) -> np.ndarray:
        key, dtype = self.storage
        flat = storages[key]
        n = int(np.prod(self.size)) if self.size else 1
        if n == 0:
            return np.zeros(self.size, dtype)
        if any(s < 0 for s in self.size) or any(st < 0 for st in self.stride):
            raise AntiSpoofModelError("tensor with a negative size or stride")
        last = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride))
        if self.offset < 0 or last >= flat.size:
            raise AntiSpoofModelError("tensor outside its storage")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.size,
                                               tuple(st * itemsize for st in self.stride), writeable=False)
        return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest):
    return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows only an OrderedDict of tensors: every other global raises (no code runs from the file)."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            import collections
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel[, view metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError("unexpected persistent id")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return (str(pid[2]), pid[1].dtype)


def read_torch_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save`` state dict as numpy arrays, without PyTorch: the legacy format
    (pickles followed by raw storages) and the zip format (``data.pkl`` + ``data/<key>``) are read."""
    data = Path(path).read_bytes()
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            pkl = next(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
            root = pkl[: -len("data.pkl")]
            up = _RestrictedUnpickler(io.BytesIO(z.read(pkl)))
            obj = up.load()
            refs = [v for v in obj.values() if isinstance(v, _TensorRef)]
            storages = {}
            for key, dtype in {r.storage for r in refs}:
                storages[key] = np.frombuffer(z.read(f"{root}data/{key}"), dtype.newbyteorder("<"))
    else:
        f = io.BytesIO(data)
        for _ in range(3):  # magic number, protocol version, system info
            header = _RestrictedUnpickler(f).load()
            if isinstance(header, dict) and not header.get("little_endian", True):
                raise AntiSpoofModelError("big-endian torch file")
        obj = _RestrictedUnpickler(f).load()
        keys = _RestrictedUnpickler(f).load()
        dtypes = {r.storage[0]: r.storage[1] for r in obj.values() if isinstance(r, _TensorRef)}
        storages = {}
        for key in keys:
            dtype = dtypes[key]
            (numel,) = struct.unpack("<q", f.read(8))
            raw = f.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise AntiSpoofModelError("truncated torch file")
            storages[key] = np.frombuffer(raw, dtype.newbyteorder("<"))
        if f.read(1):
            raise AntiSpoofModelError("trailing bytes after the storages")
    out = {}
    for name, value in obj.items():
        if not isinstance(value, _TensorRef):
            raise AntiSpoofModelError(f"{name} is not a tensor")
        out[name[len("module."):] if name.startswith("module.") else name] = value.materialise(storages)
    return out


# ------------------------------------------------------------------------------------------------
# crop (upstream's geometry, OpenCV's bilinear resize)
# ------------------------------------------------------------------------------------------------
def crop_box(src_w: int, src_h: int, box, scale: float) -> tuple[int, int, int, int]:
    """Inclusive pixel corners (x0, y0, x1, y1) of the context crop: ``box`` (x, y, w, h) scaled by
    ``scale`` around its centre (less if it would not fit the frame), then shifted inside the frame."""
    x, y, w, h = (float(v) for v in box)
    w, h = max(w, 1.0), max(h, 1.0)
    scale = min((src_h - 1) / h, (src_w - 1) / w, scale)
    nw, nh = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    x0, y0, x1, y1 = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if x0 < 0:
        x1 -= x0
        x0 = 0
    if y0 < 0:
        y1 -= y0
        y0 = 0
    if x1 > src_w - 1:
        x0 -= x1 - src_w + 1
        x1 = src_w - 1
    if y1 > src_h - 1:
        y0 -= y1 - src_h + 1
        y1 = src_h - 1
    x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
    # A box far outside the frame (not produced by a detector) still yields a valid crop.
    x0, y0 = min(max(x0, 0), src_w - 1), min(max(y0, 0), src_h - 1)
    x1, y1 = min(max(x1, x0), src_w - 1), min(max(y1, y0), src_h - 1)
    return x0, y0, x1, y1


def _linear_taps(n_src: int, n_dst: int):
    """Source indices and weights of OpenCV's INTER_LINEAR (half-pixel centres, edge clamped)."""
    f = (np.arange(n_dst) + 0.5) * (n_src / n_dst) - 0.5
    i0 = np.floor(f).astype(np.int64)
    a = f - i0
    a[i0 < 0] = 0.0
    i0[i0 < 0] = 0
    hi = i0 >= n_src - 1
    a[hi] = 0.0
    i0[hi] = n_src - 1
    i1 = np.minimum(i0 + 1, n_src - 1)
    return i0, i1, a.astype(np.float32)


def resize_linear(img: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """``img`` (h, w, c) uint8 resized as ``cv2.resize(img, (out_w, out_h))`` does (to +-1 level)."""
    h, w = img.shape[:2]
    y0, y1, ay = _linear_taps(h, out_h)
    x0, x1, ax = _linear_taps(w, out_w)
    src = img.astype(np.float32)
    rows = src[y0] * (1 - ay)[:, None, None] + src[y1] * ay[:, None, None]
    out = rows[:, x0] * (1 - ax)[None, :, None] + rows[:, x1] * ax[None, :, None]
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)  # round half up, as its fixed point


def crop(rgb: np.ndarray, box, scale: float) -> np.ndarray:
    """The 80x80x3 uint8 **BGR** model input for the face ``box`` in the RGB frame ``rgb``."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = crop_box(w, h, box, scale)
    patch = np.ascontiguousarray(rgb[y0:y1 + 1, x0:x1 + 1, 2::-1])  # RGB -> BGR
    return resize_linear(patch, INPUT_SIZE, INPUT_SIZE)


# ------------------------------------------------------------------------------------------------
# the network (numpy, NHWC)
# ------------------------------------------------------------------------------------------------
class _NumpyOps:
    """The layer primitives in numpy (NHWC float32). ``p`` = folded conv parameters (see ``_Net._conv``)."""

    @staticmethod
    def conv(p, x, stride: int, pad: int):
        kind, w, t, k = p
        if kind == "pw":
            n, h, wd, c = x.shape
            return (x.reshape(-1, c) @ w).reshape(n, h, wd, -1) + t
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else x
        n, hp, wp, c = xp.shape
        ho, wo = (hp - k) // stride + 1, (wp - k) // stride + 1
        taps = [xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                for i in range(k) for j in range(k)]
        if kind == "dw":
            out = taps[0] * w[0, 0]
            for i in range(1, k * k):
                out += taps[i] * w[i // k, i % k]
            return out + t
        cols = np.concatenate(taps, axis=-1)  # (n, ho, wo, k*k*cin), tap-major like the weight
        return (cols.reshape(-1, cols.shape[-1]) @ w.reshape(-1, w.shape[-1])).reshape(n, ho, wo, -1) + t

    prelu = staticmethod(lambda y, a: np.where(y > 0, y, y * a))
    relu = staticmethod(lambda z: np.maximum(z, 0))
    sigmoid = staticmethod(lambda z: 1.0 / (1.0 + np.exp(-z)))
    mean_hw = staticmethod(lambda x: x.mean(axis=(1, 2), keepdims=True))
    flatten = staticmethod(lambda x: x.reshape(x.shape[0], -1))
    matmul = staticmethod(lambda x, w: x @ w)


class _TensorFlowOps:
    """The same primitives as TensorFlow ops (traced once into a graph by ``tf.function``)."""

    def __init__(self):
        import tensorflow as tf
        self.tf = tf

    def conv(self, p, x, stride: int, pad: int):
        tf = self.tf
        kind, w, t, k = p
        if pad:
            x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])  # symmetric, as PyTorch
        if kind == "dw":
            y = tf.nn.depthwise_conv2d(x, w[:, :, :, None], [1, stride, stride, 1], "VALID")
        else:
            y = tf.nn.conv2d(x, w.reshape(k, k, -1, w.shape[-1]), stride, "VALID")
        return y + t

    def prelu(self, y, a):
        return self.tf.maximum(y, 0.0) + a * self.tf.minimum(y, 0.0)

    def relu(self, z):
        return self.tf.nn.relu(z)

    def sigmoid(self, z):
        return self.tf.sigmoid(z)

    def mean_hw(self, x):
        return self.tf.reduce_mean(x, axis=[1, 2], keepdims=True)

    def flatten(self, x):
        return self.tf.reshape(x, [-1, x.shape[-1]])

    def matmul(self, x, w):
        return self.tf.matmul(x, w)


class _Net:
    """One MiniFASNet (V2, or V1SE: squeeze-excitation in the last block of each residual stage) built
    from its state dict, batch normalisation folded into the preceding convolution. Channel widths come
    from the weights; the layer sequence is upstream's."""

    def __init__(self, sd: dict[str, np.ndarray]):
        self.sd = {k: np.asarray(v, np.float32) for k, v in sd.items()}
        self.se = any(".se_module." in k for k in sd)
        self._params: dict = {}
        self._tf = None

    def _bn(self, name: str):
        g, b = self.sd[f"{name}.weight"], self.sd[f"{name}.bias"]
        m, v = self.sd[f"{name}.running_mean"], self.sd[f"{name}.running_var"]
        s = g / np.sqrt(v + BN_EPS)
        return s, b - m * s

    def _conv(self, name: str, bn: str):
        """(kind, weight, shift, k): 'pw' weight (cin, cout); 'dw' (k, k, c); 'full' (k, k, cin, cout)."""
        key = (name, bn)
        if key not in self._params:
            w = self.sd[f"{name}.weight"]  # (out, in/groups, kh, kw)
            s, t = self._bn(bn)
            out, inpg, kh, kw = w.shape
            if kh != kw:
                raise ValueError(f"{name}: non-square kernel")
            w = w * s[:, None, None, None]
            if kh == 1:
                p = ("pw", np.ascontiguousarray(w[:, :, 0, 0].T), t, 1)
            elif inpg == 1:
                p = ("dw", np.ascontiguousarray(w[:, 0].transpose(1, 2, 0)), t, kh)
            else:
                p = ("full", np.ascontiguousarray(w.transpose(2, 3, 1, 0)), t, kh)
            self._params[key] = p
        return self._params[key]

    def _block(self, ops, name: str, x, stride=1, pad=0, act=True):
        """Conv_block (conv, BN, PReLU) or Linear_block (conv, BN) ``name``."""
        y = ops.conv(self._conv(f"{name}.conv", f"{name}.bn"), x, stride, pad)
        return ops.prelu(y, self.sd[f"{name}.prelu.weight"]) if act else y

    def _depthwise(self, ops, name: str, x, stride: int, residual: bool, se: bool = False):
        y = self._block(ops, f"{name}.conv", x)
        y = self._block(ops, f"{name}.conv_dw", y, stride=stride, pad=1)
        y = self._block(ops, f"{name}.project", y, act=False)
        if not residual:
            return y
        if se:
            m = f"{name}.se_module"
            z = ops.relu(ops.conv(self._conv(f"{m}.fc1", f"{m}.bn1"), ops.mean_hw(y), 1, 0))
            y = y * ops.sigmoid(ops.conv(self._conv(f"{m}.fc2", f"{m}.bn2"), z, 1, 0))
        return x + y

    def _forward(self, ops, x):
        x = self._block(ops, "conv1", x, stride=2, pad=1)
        x = self._block(ops, "conv2_dw", x, stride=1, pad=1)
        x = self._depthwise(ops, "conv_23", x, 2, False)
        for stage, n, down in (("conv_3", 4, "conv_34"), ("conv_4", 6, "conv_45"), ("conv_5", 2, None)):
            for i in range(n):
                x = self._depthwise(ops, f"{stage}.model.{i}", x, 1, True, se=self.se and i == n - 1)
            if down:
                x = self._depthwise(ops, down, x, 2, False)
        x = self._block(ops, "conv_6_sep", x)
        x = self._block(ops, "conv_6_dw", x, act=False)  # 5x5 depthwise, valid: (n, 1, 1, 512)
        x = ops.matmul(ops.flatten(x), np.ascontiguousarray(self.sd["linear.weight"].T))
        s, t = self._bn("bn")
        return ops.matmul(x * s + t, np.ascontiguousarray(self.sd["prob.weight"].T))

    def logits(self, x: np.ndarray, backend: str = "numpy") -> np.ndarray:
        """(n, 3) logits of a batch of (n, 80, 80, 3) float32 BGR 0..255 inputs."""
        x = np.asarray(x, np.float32)
        if backend == "numpy":
            return self._forward(_NumpyOps, x)
        if self._tf is None:
            ops = _TensorFlowOps()
            self._tf = ops.tf.function(lambda inp: self._forward(ops, inp), reduce_retracing=True,
                                       input_signature=[ops.tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 3],
                                                                          ops.tf.float32)])
        return self._tf(x).numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def load_weights(path: Path | str | None = None, sha256: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``{prefix: state dict}`` of the two models from the shipped npz after checking its sha256
    (raises :class:`AntiSpoofModelError`)."""
    path = MODEL_PATH if path is None else Path(path)
    data = read_pinned(path, MODEL_SHA256 if sha256 is None else sha256, "anti-spoofing weights",
                       AntiSpoofModelError,
                       "reinstall the package (benchmarks/convert_minifasnet.py writes the file)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
        raise AntiSpoofModelError(f"anti-spoofing weights {path} unreadable: {e}") from None
    out: dict[str, dict[str, np.ndarray]] = {p: {} for p, _, _ in MODELS}
    for k, v in arrays.items():
        prefix, _, name = k.partition("/")
        if prefix not in out:
            raise AntiSpoofModelError(f"unexpected array {k}")
        out[prefix][name] = v
    return out


class AntiSpoof:
    """Both MiniFASNet models on the hash-checked weights. Thread-safe (no mutable state per call
    besides a parameter cache filled once at construction)."""

    def __init__(self, path: Path | str | None = None, sha256: str | None = None, backend: str = BACKEND):
        if backend not in ("numpy", "tensorflow"):
            raise ValueError(f"unknown backend {backend}")
        self.backend = backend
        weights = load_weights(path, sha256)
        self.nets = []
        for prefix, scale, _ in MODELS:
            net = _Net(weights[prefix])
            try:  # build the folded parameters now: a state dict that does not fit fails here
                net.logits(np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32), backend)
            except (KeyError, ValueError) as e:
                raise AntiSpoofModelError(f"anti-spoofing weights {prefix} do not fit the network: {e}") from None
            self.nets.append((scale, net))

    def inputs(self, rgb: np.ndarray, box) -> list[np.ndarray]:
        """The two 80x80 BGR crops (one per model) of the face ``box`` (x, y, w, h) in ``rgb``."""
        return [crop(rgb, box, scale) for scale, _ in self.nets]

    def probabilities(self, rgb: np.ndarray, boxes) -> np.ndarray:
        """(n, 3) class probabilities, averaged over the two models, of the faces ``boxes`` in ``rgb``."""
        boxes = list(boxes)
        if not boxes:
            return np.zeros((0, 3), np.float32)
        total = np.zeros((len(boxes), 3), np.float64)
        for scale, net in self.nets:
            x = np.stack([crop(rgb, b, scale) for b in boxes]).astype(np.float32)
            total += _softmax(net.logits(x, self.backend).astype(np.float64))
        return (total / len(self.nets)).astype(np.float32)

    def score(self, rgb: np.ndarray, box) -> float:
        """Averaged probability (0..1) that the face in ``box`` is real (upstream's class 1)."""
        return float(self.probabilities(rgb, [box])[0, REAL_CLASS])


#: The process-wide model (built on first use; raises :class:`AntiSpoofModelError`).
shared_antispoof = built_once(AntiSpoof)
