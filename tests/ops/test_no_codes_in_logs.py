"""No authorization code, state or token in any log: the demo RP under gunicorn (its access log
has paths without query strings) and the IdP's log formatter."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest
import requests

from support.servers import stop_process_group

from .conftest import ROOT, free_port

pytestmark = pytest.mark.slow


def test_demo_rp_runs_under_gunicorn_and_logs_no_code(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "DEMO_"))}
    env.update(DEMO_ISSUER=f"http://127.0.0.1:{free_port()}", DEMO_CLIENT_ID="demo", DEMO_CLIENT_SECRET="x",
               DEMO_PORT=str(port), PYTHONPATH=str(ROOT))
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "clients.demo"], env=env, cwd=str(tmp_path), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    requests.get(url + "/", timeout=2)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            code, state = "SplxlOBeZQQYbYS6WxSbIA-code", "af0ifjsldkj-state"
            requests.get(f"{url}/callback?code={code}&state={state}", timeout=10)
            requests.get(f"{url}/callback?error=access_denied&state={state}", timeout=10)
            time.sleep(0.5)
        finally:
            stop_process_group(proc, 20)
    out = log_path.read_text()
    assert "GET /callback" in out, out  # the access log is there ...
    assert code not in out and state not in out and "code=" not in out, out  # ... without the query
    assert "development server" not in out.lower()


def test_idp_log_formatter_redacts_codes_and_tokens_in_messages():
    from idp.web.logs import JsonFormatter, TextFormatter

    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1,
                               "GET /authorize/consent?code=abc123SECRET&state=s1&x=1 "
                               "access_token=tok456SECRET refresh_token=ref789SECRET", (), None)
    for formatter in (JsonFormatter(), TextFormatter("%(message)s")):
        line = formatter.format(record)
        for secret in ("abc123SECRET", "tok456SECRET", "ref789SECRET"):
            assert secret not in line, line
        assert "x=1" in line
