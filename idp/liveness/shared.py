"""Process-wide models, built once on first use (a cache: no state beyond the loaded weights)."""
from __future__ import annotations

import threading
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
