"""The liveness models' files and instances: a shipped file is read only with its pinned sha256, and
each model is built once per process on first use (a cache: no state beyond the loaded weights)."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def built_once(factory: Callable[[], T]) -> Callable[[], T]:
    """``get = built_once(Model)``: ``get()`` returns the one instance, building it on the first call under a
    lock (two threads never load the same weights twice). A failed build is not cached: the next call
    raises again (a missing model keeps failing closed, it is never replaced by None)."""
    lock = threading.Lock()
    box: list[T] = []

    def get() -> T:
        with lock:
            if not box:
                box.append(factory())
            return box[0]
    get.__doc__ = f"The process-wide {getattr(factory, '__name__', 'model')} (built on first use)."
    return get


def read_pinned(path, sha256: str, what: str, error: type[Exception], remedy: str) -> bytes:
    """The bytes of ``path`` if their sha256 is ``sha256``; else ``error`` with a one-line message naming
    ``what`` and the ``remedy``. The bytes checked are the bytes returned (no check-then-read race)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise error(f"{what} not found at {path}: {e}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise error(f"{what} {path} has sha256 {digest}, expected {sha256}: {remedy}")
    return data
