"""Quick start: the face model is converted before ``idp serve`` listens, once; the demo's banner waits
for both servers."""
from __future__ import annotations

import pytest

import http.server
import socket
import threading
import time

from idp.face.model import cached_weights_ok, weights_path
from idp.serving import announce_when_ready

from .conftest import free_port, idp_env

PROGRESS = "Converting the FaceNet model once"


def _wait_accepts(server, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, server.output()
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"port never accepted:\n{server.output()}")


@pytest.mark.slow
def test_face_model_is_converted_before_the_port_accepts_and_only_once(tmp_path, serve_factory):
    data_dir = tmp_path / "data"
    env = idp_env(data_dir, IDP_FACE_ENABLED="true", IDP_LOG_FORMAT="text")
    first = serve_factory(env)
    _wait_accepts(first)
    # The first moment anyone can connect, the cache is complete and verified.
    assert cached_weights_ok(data_dir), first.output()
    first.stop()
    log = first.log_path.read_text(errors="replace")
    assert log.count(PROGRESS) == 1, log

    second = serve_factory(env)
    _wait_accepts(second, timeout=60)
    second.stop()
    assert PROGRESS not in second.log_path.read_text(errors="replace")
    assert weights_path(data_dir).is_file()


class _Switchable(http.server.BaseHTTPRequestHandler):
    status = 503

    def do_GET(self):
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_demo_banner_waits_until_every_server_answers_200(capsys):
    handler = type("Handler", (_Switchable,), {"status": 503})
    idp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=idp.serve_forever, daemon=True).start()
    rp_port = free_port()  # nothing listens yet
    urls = [f"http://127.0.0.1:{idp.server_port}/readyz", f"http://127.0.0.1:{rp_port}/"]
    stop = threading.Event()
    printed = []
    announcer = threading.Thread(target=lambda: printed.append(announce_when_ready(urls, "BANNER", stop, 0.05)))
    announcer.start()
    try:
        time.sleep(0.5)
        assert "BANNER" not in capsys.readouterr().out  # IdP 503, RP not listening
        rp = http.server.ThreadingHTTPServer(("127.0.0.1", rp_port), type("Ok", (_Switchable,), {"status": 200}))
        threading.Thread(target=rp.serve_forever, daemon=True).start()
        time.sleep(0.5)
        assert "BANNER" not in capsys.readouterr().out  # RP up, IdP still 503
        handler.status = 200
        announcer.join(timeout=5)
        assert printed == [True]
        assert capsys.readouterr().out.count("BANNER") == 1
        rp.shutdown()
    finally:
        stop.set()
        announcer.join(timeout=5)
        idp.shutdown()
