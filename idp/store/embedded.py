"""The embedded development database: SecantusDB run as a child process.

Used only when ``MONGODB_URI`` is unset. It runs in standalone mode (its
replica-set emulation degrades under concurrent writes) as a separate process,
so several WSGI workers share it and our code is never linked with its GPL code.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon_command() -> list[str]:
    exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    if not Path(exe).exists():
        raise RuntimeError("SecantusDB is not installed (pip install secantusdb), and MONGODB_URI is unset")
    return [exe]


class EmbeddedMongo:
    """A SecantusDB daemon on 127.0.0.1 and a free port, stopped with its parent."""

    def __init__(self, storage_path: str | os.PathLike, port: int | None = None, sync_on_commit: bool = False):
        self.storage_path = str(storage_path)
        self.port = port or _free_port()
        self.sync_on_commit = sync_on_commit
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 30.0) -> "EmbeddedMongo":
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        cmd = _daemon_command() + [
            "--standalone", "--host", "127.0.0.1", "--port", str(self.port),
            "--storage-path", self.storage_path, "--log-level", "WARNING",
        ]
        if self.sync_on_commit:
            cmd.append("--sync-on-commit")
        log_path = None if self.storage_path == ":memory:" else Path(self.storage_path) / "secantusd.log"
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        client = MongoClient(self.uri, serverSelectionTimeoutMS=500)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"embedded database exited with code {self.proc.returncode}"
                                       + (f"; see {log_path}" if log_path else ""))
                try:
                    client.admin.command("ping")
                    break
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("embedded database did not answer within %.0f s" % timeout)
                    time.sleep(0.2)
        finally:
            client.close()
        log.info("embedded database started", extra={"port": self.port, "storage": self.storage_path})
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
