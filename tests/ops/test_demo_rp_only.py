"""``idp demo --rp-only`` (the demo relying party against an IdP that runs elsewhere) says where to open it,
as ``idp demo`` does: it started silently, so an operator could not tell whether or where it was running."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from .conftest import ROOT, free_port, idp_env


def test_rp_only_prints_where_the_demo_is(tmp_path):
    port, client_port = free_port(), free_port()
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "idp.cli", "demo", "--rp-only", "--port", str(port),
                                 "--client-port", str(client_port)], env=idp_env(tmp_path / "data"),
                                cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            expected = f"Demo relying party: http://127.0.0.1:{client_port}  <- open this"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and expected not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.3)
            out = log_path.read_text()
            assert expected in out, out
            assert f"Identity provider: http://127.0.0.1:{port}" in out
            assert requests.get(f"http://127.0.0.1:{client_port}/", timeout=5).status_code == 200
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
