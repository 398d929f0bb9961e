"""Prometheus metrics: every metric of the IdP is defined here, and fed from two places only.

* :func:`observe_audit` — called by the audit writer (``idp.audit.record``) for every event it
  records, stored or not (a capped repeat, a failed write), so every audit event is counted by name
  and outcome, and sign-ins, face verifications and liveness failures exactly when they are audited;
* :func:`observe_request` — called once per HTTP request by ``idp.ops`` (latency by endpoint
  group, token grants by type, the duration of judging a face capture).

Label values come from fixed vocabularies (event outcomes, reason codes, endpoint groups);
anything else becomes ``other``, so a client cannot create unbounded series. No user, client,
IP or token ever becomes a label.

Under gunicorn, ``idp serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory under the data
directory) before the workers start, and :func:`exposition` merges every worker's values.
``prometheus_client`` is imported lazily because it reads that variable at import time.
"""
from __future__ import annotations

import os
import re
import threading

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LABEL_OK = re.compile(r"^[a-z0-9_.]{1,48}$")
_lock = threading.Lock()
_metrics: dict | None = None

SIGNIN_OUTCOMES = {"account.login": "success", "account.login_failed": "failed",
                   "account.login_throttled": "throttled"}
AUDIT_OUTCOMES = ("stored", "capped", "failed")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FACE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)

# Endpoint groups for request latency: path prefix -> group (first match wins).
ENDPOINT_GROUPS = (
    ("/healthz", "health"), ("/readyz", "health"), ("/metrics", "metrics"), ("/static/", "static"),
    ("/.well-known/", "discovery"), ("/jwks.json", "discovery"), ("/authorize", "authorize"),
    ("/oauth/token", "token"), ("/oauth/userinfo", "userinfo"), ("/oauth/", "oauth_other"),
    ("/end-session", "logout"), ("/api/face/", "face_api"), ("/face/", "face_pages"),
    ("/login", "signin"), ("/register", "signin"), ("/account", "account"), ("/admin", "admin"),
)


def _label(value) -> str:
    value = str(value or "none").lower()
    return value if _LABEL_OK.match(value) else "other"


def _define() -> dict:
    from prometheus_client import Counter, Histogram

    return {
        "audit_events": Counter("idp_audit_events_total",
                                "Audit events by event name and outcome (stored, capped: a repeat not stored, "
                                "failed: the write failed)", ["event", "outcome"]),
        "signins": Counter("idp_signins_total", "Password sign-in attempts by outcome", ["outcome"]),
        "face_verifications": Counter("idp_face_verifications_total",
                                      "Face verifications at sign-in by decision and reason code",
                                      ["decision", "reason"]),
        "liveness_failures": Counter("idp_liveness_failures_total",
                                     "Failed liveness checks by purpose (enroll/verify) and reason code",
                                     ["purpose", "reason"]),
        "token_grants": Counter("idp_token_grants_total", "Token endpoint requests by grant type and outcome",
                                ["grant_type", "outcome"]),
        "request_seconds": Histogram("idp_request_duration_seconds", "HTTP request latency by endpoint group",
                                     ["group"], buckets=LATENCY_BUCKETS),
        "face_step_seconds": Histogram("idp_face_step_duration_seconds",
                                       "Time to judge one face capture (liveness + identity) by purpose",
                                       ["purpose"], buckets=FACE_BUCKETS),
    }


def metrics() -> dict:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _define()
    return _metrics


def observe_audit(doc: dict, outcome: str = "stored") -> None:
    """Count one recorded audit event (see the module docstring); ``outcome``: stored, capped or failed."""
    event = doc.get("event")
    m = metrics()
    m["audit_events"].labels(_label(event), outcome if outcome in AUDIT_OUTCOMES else "other").inc()
    if event in SIGNIN_OUTCOMES:
        m["signins"].labels(SIGNIN_OUTCOMES[event]).inc()
        return
    details = doc.get("details") or {}
    reasons = doc.get("reasons") or []
    if event == "face.verify":
        for reason in reasons or ["none"]:
            m["face_verifications"].labels(_label(doc.get("decision")), _label(reason)).inc()
    if event in ("face.verify", "face.enroll") and details.get("liveness_passed") is False:
        purpose = "verify" if event == "face.verify" else "enroll"
        for reason in details.get("liveness_reasons") or reasons or ["none"]:
            m["liveness_failures"].labels(purpose, _label(reason)).inc()


def endpoint_group(path: str) -> str:
    for prefix, group in ENDPOINT_GROUPS:
        if path.startswith(prefix):
            return group
    return "pages" if path == "/" else "other"


def observe_request(path: str, endpoint: str | None, status: int, seconds: float, *,
                    grant_type: str | None = None, face_purpose: str | None = None) -> None:
    m = metrics()
    m["request_seconds"].labels(endpoint_group(path)).observe(seconds)
    if path == "/oauth/token":
        grant = grant_type if grant_type in GRANT_TYPES else "other"
        m["token_grants"].labels(grant, "issued" if status == 200 else "refused").inc()
    if endpoint == "face.api_finish" and face_purpose in ("enroll", "verify"):
        m["face_step_seconds"].labels(face_purpose).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The text exposition (body, content type): all workers' values in multiprocess mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    metrics()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def prepare_multiprocess_dir(data_dir) -> str:
    """A fresh, empty ``<data_dir>/metrics/<pid>`` for this server's workers, set in the environment.
    Call it before anything in the process counts a metric (``prometheus_client`` picks its
    multiprocess mode at import); values of a previous run are not carried over."""
    import shutil
    from pathlib import Path

    current = os.environ.get(MULTIPROC_ENV, "")
    if current and Path(current).name == str(os.getpid()) and Path(current).is_dir():
        return current  # already prepared by this process (``idp demo`` before ``serve``)
    base = Path(data_dir) / "metrics"
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():  # directories of servers that are gone
        if old.name.isdigit() and not _pid_running(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    path = base / str(os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    os.environ[MULTIPROC_ENV] = str(path)
    return str(path)


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_exit(pid: int) -> None:
    """gunicorn ``child_exit`` hook: drop a dead worker's live-only files (counters are kept)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid)
