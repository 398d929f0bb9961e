"""Native libraries' load-time notices kept off the process's stderr.

TensorFlow (while it imports) and TensorFlow Lite (when an interpreter builds its XNNPACK delegate)
print INFO notices straight to file descriptor 2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, because absl
logging is not initialised yet. They are notices, not problems; an operator should not have to learn
to ignore them. Everything else written meanwhile (warnings, errors) still reaches stderr, in order.
No Flask here: the face and liveness cores use it too.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

NOTICE = re.compile(rb"oneDNN custom operations are on|All log messages before absl::InitializeLog"
                    rb"|cpu_feature_guard|rebuild TensorFlow with the appropriate compiler flags"
                    rb"|Created TensorFlow Lite XNNPACK delegate for CPU")

_lock = threading.Lock()


@contextlib.contextmanager
def notices_filtered():
    """Within the block, lines written to file descriptor 2 that match :data:`NOTICE` are dropped; the
    others are written to the real stderr when the block ends. Blocks are serialised (fd 2 is one per
    process), so nest none inside another."""
    with _lock:
        sys.stderr.flush()
        read_fd, write_fd = os.pipe()
        saved = os.dup(2)
        chunks: list[bytes] = []

        def drain():
            with os.fdopen(read_fd, "rb") as pipe:
                for chunk in iter(lambda: pipe.read1(65536), b""):
                    chunks.append(chunk)

        reader = threading.Thread(target=drain, daemon=True, name="native-notices")
        reader.start()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            reader.join(timeout=5)
            kept = [line for line in b"".join(chunks).splitlines(keepends=True) if not NOTICE.search(line)]
            if kept:
                os.write(2, b"".join(kept))


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its load-time notices filtered out (see :func:`notices_filtered`)."""
    if "tensorflow" in sys.modules:
        return
    with notices_filtered():
        import tensorflow  # noqa: F401
