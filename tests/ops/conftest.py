"""Helpers for the operations tests: the real ``idp`` CLI and ``idp serve`` as subprocesses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from support.servers import free_port, stop_process_group  # noqa: F401  (free_port re-exported to the tests)

ROOT = Path(__file__).resolve().parents[2]


def idp_env(data_dir: Path, **extra) -> dict:
    """The environment of an IdP on ``data_dir`` with the embedded database (no MONGODB_URI)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IDP_", "MONGODB_", "PROMETHEUS_", "DEMO_"))}
    env.update(IDP_DATA_DIR=str(data_dir), IDP_FACE_ENABLED="false", IDP_LOG_FORMAT="json",
               PYTHONPATH=str(ROOT))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(env: dict, *args: str, stdin: str | None = None, python: str = sys.executable,
            timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "idp.cli", *args], env=env, cwd=str(ROOT), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


class Server:
    """``idp serve`` in its own process group, stopped with SIGINT (and killed if it hangs)."""

    def __init__(self, env: dict, port: int, command: list[str] | None = None, cwd: str | None = None,
                 workers: int = 1):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        Path(env["IDP_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(env["IDP_DATA_DIR"]) / f"serve-{port}.log"
        self.log = open(self.log_path, "wb")
        cmd = command or [sys.executable, "-m", "idp.cli"]
        self.proc = subprocess.Popen([*cmd, "serve", "--port", str(port), "--workers", str(workers),
                                      "--threads", "2"], env=env, cwd=cwd or str(ROOT),
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 90, path: str = "/.well-known/openid-configuration") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"idp serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"idp serve did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_process_group(self.proc, 30, signal.SIGINT)
        self.log.close()


@pytest.fixture
def serve_factory():
    started: list[Server] = []

    def start(env: dict, **kw) -> Server:
        server = Server(env, kw.pop("port", None) or free_port(), **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def serve_refused(env: dict, *args: str) -> str:
    """``idp serve ARGS`` must stop before it serves (status 1); its output (stdout and stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "idp.cli", "serve", *args], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        stop_process_group(proc)
        pytest.fail(f"idp serve {' '.join(args)} started serving")
    assert proc.returncode == 1, output[-800:]
    return output
