"""Face verifications and liveness failures reach /metrics (real engine, real photos), and /readyz
reports face models and pending migrations."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from .conftest import Browser


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(app) -> dict:
    resp = app.test_client().get("/metrics")
    assert resp.status_code == 200
    return samples(resp.get_data(as_text=True))


def test_face_verifications_and_liveness_failures_are_counted(make_app, app, enrolled, people):
    before = scrape(app)
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["mallory"][:3]).get_json()["ok"] is False
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"] is True
    after = scrape(app)
    name = "idp_face_verifications_total"
    assert value(after, name, decision="no_match", reason="below_threshold") - value(
        before, name, decision="no_match", reason="below_threshold") == 1
    assert value(after, name, decision="match", reason="none") - value(before, name, decision="match",
                                                                        reason="none") == 1
    step = "idp_face_step_duration_seconds_count"
    assert value(after, step, purpose="verify") - value(before, step, purpose="verify") == 2

    # With liveness on, still photos fail the head-turn challenge.
    live_app = make_app(liveness_enabled=True, liveness_challenges="turn_left")
    b = Browser(live_app)
    b.login("alice")
    body = b.capture("verify", people["alice"][5:8]).get_json()
    assert body["ok"] is False and body.get("liveness", {}).get("passed") is False, body
    final = scrape(live_app)
    moved = {labels for (n, labels), v in final.items() if n == "idp_liveness_failures_total"
             and v > before.get((n, labels), 0.0)}
    assert moved and all(dict(labels)["purpose"] == "verify" for labels in moved)
    assert {dict(labels)["reason"] for labels in moved} <= set(body["liveness"]["reasons"])
    assert value(final, name, decision="liveness_failed", reason=body["reasons"][0]) >= 1


def test_readyz_reports_models_and_migrations(make_app, app):
    from idp import get_db
    from idp.ops import run_warmups

    client = app.test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["reasons"] == ["face_models_not_loaded"]
    run_warmups(app)
    assert client.get("/readyz").status_code == 200
    get_db(app).migrations.delete_one({"_id": "0005_liveness"})
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.get_json() == {"status": "unready", "reasons": ["migrations_pending"]}
    assert client.get("/healthz").status_code == 200
