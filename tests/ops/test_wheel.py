"""A real wheel: built from the checkout, installed (not editable) into a fresh virtualenv outside
the checkout, ``idp serve`` started from it answers discovery and serves its pages and static
files, and a CLI command works.

To stay fast, the fresh virtualenv does not reinstall TensorFlow & co: a ``.pth`` file puts the
test interpreter's site-packages after its own (paths added that way do not run their ``.pth``
files, so an editable install of the checkout there stays inactive), and the wheel is installed
with ``--no-deps``. That the wheel's own files come from the wheel is asserted."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests

from .conftest import ROOT, Server, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
                   check=True, timeout=300, cwd=str(base))
    wheel = next(dist.glob("deep_authenticator-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_deps_from_test_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    str(wheel)], check=True, timeout=300, cwd=str(base))
    return venv


def _env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IDP_", "MONGODB_", "PROMETHEUS_", "DEMO_", "PYTHON"))}
    # secantusd-py (the embedded database daemon) is a console script of the test environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(IDP_DATA_DIR=str(data_dir), IDP_FACE_ENABLED="false", IDP_LOG_FORMAT="json")
    return env


def test_installed_wheel_serves_and_runs_the_cli(wheel_venv, tmp_path):
    python = wheel_venv / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import idp, clients.demo; print(idp.__file__); "
                            "from idp.assets import asset_dir; print(asset_dir('templates'))"],
                           capture_output=True, text=True, check=True, cwd=str(tmp_path)).stdout.split()
    assert all(p.startswith(str(wheel_venv)) for p in where), where  # not the checkout
    assert (Path(where[1]) / "base.html").is_file()

    env = _env(tmp_path / "data")
    server = Server(env, free_port(), command=[str(wheel_venv / "bin" / "idp")], cwd=str(tmp_path))
    try:
        server.wait_ready(timeout=60)
        discovery = requests.get(server.url + "/.well-known/openid-configuration", timeout=5).json()
        assert discovery["issuer"] and discovery["token_endpoint"].endswith("/oauth/token")
        login = requests.get(server.url + "/login", timeout=5)
        assert login.status_code == 200 and 'name="csrf_token"' in login.text  # templates from the wheel
        assert requests.get(server.url + "/static/css/app.css", timeout=5).status_code == 200
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200  # migrations from the wheel
        listed = subprocess.run([str(wheel_venv / "bin" / "idp"), "clients", "list", "--json"], env=env,
                                cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
    finally:
        server.stop()
