"""Convert the two upstream MiniFASNet ``.pth`` files into the shipped ``idp/liveness/models/minifasnet.npz``.

Usage::

    .venv/bin/python benchmarks/convert_minifasnet.py [SRC_DIR] [--dtype float16|float32] [--check]

SRC_DIR defaults to ../shared/models/minifasnet. The upstream files' sha256 values are checked against
``idp.liveness.antispoof.UPSTREAM_SHA256`` (the values of that folder's README); the state dicts are read
without PyTorch (``read_torch_state_dict``, a restricted unpickler) and written as one uncompressed npz
(arrays ``v2/<tensor>`` and ``v1se/<tensor>``, names as upstream without ``module.``; numpy's zip entries
carry a fixed timestamp, so the output is byte-for-byte reproducible). Prints the output's sha256;
``--check`` writes nothing and fails unless that sha256 equals the pinned ``MODEL_SHA256``.
Run once by a maintainer; production never reads the .pth files.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from idp.liveness.antispoof import MODEL_PATH, MODEL_SHA256, MODELS, UPSTREAM_SHA256, read_torch_state_dict  # noqa: E402

DEFAULT_SRC = ROOT.parent / "shared" / "models" / "minifasnet"


def convert(src: Path, dtype: str) -> bytes:
    arrays = {}
    for prefix, _scale, filename in MODELS:
        path = src / filename
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != UPSTREAM_SHA256[filename]:
            raise SystemExit(f"{path}: sha256 {digest}, expected {UPSTREAM_SHA256[filename]}")
        sd = read_torch_state_dict(path)
        for name, value in sd.items():
            if name.endswith("num_batches_tracked"):
                continue  # training counter, unused at inference
            arrays[f"{prefix}/{name}"] = value.astype(dtype)
        print(f"{filename}: sha256 ok, {len(sd)} tensors, {sum(v.size for v in sd.values())} values")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--dtype", default="float16", choices=("float16", "float32"))
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--check", action="store_true", help="write nothing; compare with the pinned sha256")
    args = ap.parse_args(argv)
    data = convert(args.src, args.dtype)
    digest = hashlib.sha256(data).hexdigest()
    print(f"npz: {len(data)} bytes, sha256 {digest}")
    if args.check:
        ok = digest == MODEL_SHA256
        print("matches MODEL_SHA256" if ok else f"differs from MODEL_SHA256 {MODEL_SHA256}")
        return 0 if ok else 1
    args.out.write_bytes(data)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
