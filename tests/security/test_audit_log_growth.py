"""The audit log has no TTL (it is the record), so a request anyone can repeat at no cost must not add a
document each time: an anonymous visitor looping a refused authorization request, a throttled sign-in or
registration, a freshly registered account looping codes, consents or a throttled password change, a holder
of one code or refresh token replaying it. Of each such event ``audit.REPEATS_STORED`` per key (client,
account, network, code, token family) per hour are stored (``audit.USE_REPEATS_STORED`` of a signed-in
account's codes and consents), then the first one over them marked ``details.cap_reached`` (the log itself
says that the record of that key goes no further this hour); every one is still counted in
``idp_audit_events_total{event,outcome}`` (``stored`` + ``capped``), and every checked wrong password is
still stored. Real app, real database; the counts come from the app's own ``/metrics``."""
from __future__ import annotations

import re
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from accounts.conftest import GOOD_PASSWORD, Browser, alert
from support.oidc import csrf_from
from accounts.conftest import make_app  # noqa: F401  (fixture)
from oauth.conftest import RP_CALLBACK, cheap_password_hashing, idp, make_server, rp, user  # noqa: F401

INVALID = "Invalid username or password."


def _metrics(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _scrape(app_or_server) -> dict:
    if hasattr(app_or_server, "url"):
        r = requests.get(app_or_server.url + "/metrics")
    else:
        r = app_or_server.test_client().get("/metrics")
    assert r.status_code == 200
    return _metrics(r.text)


def _counted(metrics: dict, event: str, outcome: str) -> float:
    return metrics.get(("idp_audit_events_total", (("event", event), ("outcome", outcome))), 0.0)


def _delta(before: dict, after: dict, event: str) -> dict:
    return {o: _counted(after, event, o) - _counted(before, event, o) for o in ("stored", "capped", "failed")}


def _window() -> int:
    from idp import audit
    return int(time.time() // audit.REPEAT_WINDOW_S)


def _capped_to_a_few(db, flt: dict, since: int, cap: int | None = None) -> int:
    """The first ``cap`` (default REPEATS_STORED) of a key's window are stored, then the first one over them
    marked ``details.cap_reached`` (the log says its record of the key ends there), the rest not: exactly
    ``cap`` + 1, the newest marked, when the loop ran within one window (it began in window ``since``), up to
    twice that when a window ended during it. Returns how many of ``flt`` are stored."""
    from idp import audit
    cap = audit.REPEATS_STORED if cap is None else cap
    stored = db.audit_log.count_documents(flt)
    marked = [e.get("details", {}).get("cap_reached") for e in db.audit_log.find(flt).sort("_id", 1)]
    if _window() == since:
        assert stored == cap + 1, stored
        assert marked[-1] is True and not any(marked[:-1]), marked
    else:
        assert cap + 1 <= stored <= 2 * (cap + 1), stored
        assert 1 <= marked.count(True) <= 2, marked
    return stored


def test_refused_authorization_requests_store_a_few_per_client_and_network(make_app):  # noqa: F811
    from idp import audit
    from idp.oauth.clients import create_client
    app = make_app()  # face sign-in off: a face-required client's requests are refused
    db = app.extensions["db"]
    clients = [create_client(db, app.config["IDP"], name, [RP_CALLBACK])[0]["client_id"] for name in ("A", "B")]

    def refused(client_id: str, ip: str) -> None:
        r = app.test_client().get("/authorize", query_string={
            "response_type": "code", "client_id": client_id, "redirect_uri": RP_CALLBACK, "scope": "openid",
            "state": "s"}, environ_base={"REMOTE_ADDR": ip})
        assert r.status_code == 302 and "error=unmet_authentication_requirements" in r.location, r.location

    before = _scrape(app)

    since = _window()
    for _ in range(50):
        refused(clients[0], "203.0.113.5")
    _capped_to_a_few(db, {"event": audit.AUTHENTICATION_UNMET}, since)
    entries = list(db.audit_log.find({"event": audit.AUTHENTICATION_UNMET}))
    assert {(e["client_id"], e["ip"], e["decision"], tuple(e["reasons"])) for e in entries} == {
        (clients[0], "203.0.113.5", "refused", ("face",))}
    counted = _delta(before, _scrape(app), audit.AUTHENTICATION_UNMET)
    assert counted == {"stored": len(entries), "capped": 50 - len(entries), "failed": 0}
    # the first refusals of another client, and of another network, are stored again
    refused(clients[1], "203.0.113.5")
    refused(clients[0], "198.51.100.9")
    assert db.audit_log.count_documents({"event": audit.AUTHENTICATION_UNMET, "client_id": clients[1]}) == 1
    assert db.audit_log.count_documents({"event": audit.AUTHENTICATION_UNMET, "ip": "198.51.100.9"}) == 1


def test_throttled_sign_ins_store_a_few_and_every_checked_password(make_app):  # noqa: F811
    from idp import audit
    from idp.accounts import users
    app = make_app(login_free_failures=3)
    db = app.extensions["db"]
    users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    before = _scrape(app)
    since = _window()
    b = Browser(app.test_client(), remote_addr="203.0.113.6")
    answers = [b.login("alice", f"wrong guess {i}") for i in range(30)]
    checked = sum(r.status_code == 200 and alert(r.text) == INVALID for r in answers)
    throttled = sum(r.status_code == 429 for r in answers)
    assert checked + throttled == 30 and throttled >= 20
    # every password that was checked is in the log: the throttle bounds those
    assert db.audit_log.count_documents({"event": audit.LOGIN_FAILED}) == checked
    stored = _capped_to_a_few(db, {"event": audit.LOGIN_THROTTLED}, since)
    after = _scrape(app)
    assert _delta(before, after, audit.LOGIN_THROTTLED) == {"stored": stored, "capped": throttled - stored,
                                                            "failed": 0}
    key = ("idp_signins_total", (("outcome", "throttled"),))
    assert after.get(key, 0.0) - before.get(key, 0.0) == throttled


def test_throttled_registrations_store_a_few_per_network(make_app):  # noqa: F811
    from idp import audit
    app = make_app(register_ip_limit=1)
    db = app.extensions["db"]
    assert Browser(app.test_client(), remote_addr="203.0.113.7").register("first").status_code == 302
    before = _scrape(app)
    since = _window()
    for i in range(20):
        r = Browser(app.test_client(), remote_addr="203.0.113.7").register(f"more{i}")
        assert r.status_code == 429
    stored = _capped_to_a_few(db, {"event": audit.REGISTER_THROTTLED}, since)
    assert _delta(before, _scrape(app), audit.REGISTER_THROTTLED) == {"stored": stored, "capped": 20 - stored,
                                                                      "failed": 0}
    assert Browser(app.test_client(), remote_addr="198.51.100.8").register("other").status_code == 302
    assert Browser(app.test_client(), remote_addr="198.51.100.8").register("other2").status_code == 429
    assert db.audit_log.count_documents({"event": audit.REGISTER_THROTTLED, "ip": "198.51.100.8"}) == 1


def test_throttled_password_changes_store_a_few_and_every_checked_password(make_app):  # noqa: F811
    from idp import audit
    app = make_app(login_free_failures=2)
    db = app.extensions["db"]
    b = Browser(app.test_client(), remote_addr="203.0.113.9")
    assert b.register("alice").status_code == 302  # a freshly registered account, signed in
    before = _scrape(app)
    since = _window()
    answers = [b.submit("/account/password", {"current_password": f"wrong {i}", "new_password": "purple elephant "
                                              "violin sunrise", "confirm": "purple elephant violin sunrise"})
               for i in range(20)]
    throttled = sum(r.status_code == 429 for r in answers)
    checked = sum(r.status_code == 200 for r in answers)
    assert checked + throttled == 20 and throttled >= 15
    assert db.audit_log.count_documents({"event": audit.PASSWORD_CHANGE_FAILED,
                                         "details.reason": "wrong_password"}) == checked
    stored = _capped_to_a_few(db, {"event": audit.PASSWORD_CHANGE_FAILED, "details.reason": "throttled"}, since)
    counted = _delta(before, _scrape(app), audit.PASSWORD_CHANGE_FAILED)
    assert counted == {"stored": checked + stored, "capped": throttled - stored, "failed": 0}


def test_codes_and_consents_of_one_signed_in_account_store_an_hour_of_use(idp, user, rp):  # noqa: F811
    """A signed-in account's codes and consents: USE_REPEATS_STORED an hour per account, client and network
    (one a minute: an app renewing its session silently every minute keeps its whole record)."""
    from idp import audit
    events = (audit.CODE_ISSUED, audit.CONSENT_GRANTED, audit.CONSENT_REVOKED, audit.CONSENT_DENIED)
    since = _window()  # the first code and consent share the window's count
    rp.tokens()  # signed in, consent given, one code
    stored_before = {e: idp.db.audit_log.count_documents({"event": e}) for e in events}
    before = _scrape(idp)
    loops = audit.USE_REPEATS_STORED + 5
    for _ in range(loops):  # consent asked again and given, then taken back on the account page
        res = rp.consent(rp.follow(rp.authorize_url(prompt="consent")))
        assert "code" in res.params, res.params
        apps = rp.browser.get(f"{idp.url}/account/apps")
        rp.browser.post(f"{idp.url}/account/apps/{rp.client_id}/remove", data={"csrf_token": csrf_from(apps.text)})
    for _ in range(loops):
        res = rp.consent(rp.follow(rp.authorize_url(prompt="consent")), decision="deny")
        assert res.params["error"] == "access_denied"
    after = _scrape(idp)
    for event in events:
        stored = _capped_to_a_few(idp.db, {"event": event}, since, audit.USE_REPEATS_STORED)
        assert _delta(before, after, event) == {"stored": stored - stored_before[event],
                                                "capped": loops - (stored - stored_before[event]), "failed": 0}, event
    # what a consent or code grants is part of its key: a consent to other scopes, and its code, are on record
    res = rp.consent(rp.follow(rp.authorize_url(prompt="consent", scope="openid email")))
    assert "code" in res.params, res.params
    for event in (audit.CONSENT_GRANTED, audit.CODE_ISSUED):
        assert idp.db.audit_log.count_documents({"event": event, "details.scopes": ["openid", "email"]}) == 1, event


def test_replayed_code_and_refresh_token_store_a_few_each(idp, user, rp):  # noqa: F811
    from idp import audit
    res, verifier = rp.sign_in_for_code()
    code = res.params["code"]
    tok = rp.redeem(code, verifier).json()
    before = _scrape(idp)
    since = _window()
    for _ in range(15):
        assert rp.redeem(code, verifier).status_code == 400
    stored = _capped_to_a_few(idp.db, {"event": audit.CODE_REUSE}, since)
    assert _delta(before, _scrape(idp), audit.CODE_REUSE) == {"stored": stored, "capped": 15 - stored, "failed": 0}

    tok = rp.tokens()
    r1 = rp.refresh(tok["refresh_token"])
    assert r1.status_code == 200
    assert rp.refresh(r1.json()["refresh_token"]).status_code == 200  # tok is no longer a retry (tokens._retried)
    before = _scrape(idp)
    since = _window()
    for _ in range(15):
        assert rp.refresh(tok["refresh_token"]).status_code == 400
    stored = _capped_to_a_few(idp.db, {"event": audit.REFRESH_REUSE}, since)
    assert _delta(before, _scrape(idp), audit.REFRESH_REUSE) == {"stored": stored, "capped": 15 - stored,
                                                                 "failed": 0}
    # a second code's replay is its own key: stored
    res, verifier = rp.sign_in_for_code()
    assert rp.redeem(res.params["code"], verifier).status_code == 200
    assert rp.redeem(res.params["code"], verifier).status_code == 400
    assert idp.db.audit_log.count_documents({"event": audit.CODE_REUSE}) == stored + 1


def test_repeated_face_consent_stores_an_hour_of_use(make_server):  # noqa: F811
    from idp import audit
    from idp.faceweb.notice import NOTICE_VERSION
    app = make_server(face_enabled=True).app  # the consent page needs no face model
    db = app.extensions["db"]
    b = Browser(app.test_client(), remote_addr="203.0.113.10")
    assert b.register("alice").status_code == 302
    before = _scrape(app)
    since = _window()
    loops = audit.USE_REPEATS_STORED + 5
    for _ in range(loops):
        page = b.get("/face/enroll").text  # the notice's form, or once consented the capture page's token
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        r = b.client.post("/face/consent", data={"csrf_token": token.group(1) if token else csrf_from(page),
                                                 "consent": "yes", "notice_version": NOTICE_VERSION},
                          environ_base=b.environ)
        assert r.status_code == 302, r.status_code
    stored = _capped_to_a_few(db, {"event": audit.FACE_CONSENT}, since, audit.USE_REPEATS_STORED)
    assert _delta(before, _scrape(app), audit.FACE_CONSENT) == {"stored": stored, "capped": loops - stored,
                                                                "failed": 0}
    assert db.face_status.find_one({})["consent"]["notice_version"] == NOTICE_VERSION


def test_a_clients_tokens_store_an_hour_of_use(idp):  # noqa: F811
    """A confidential client fetching a token per call: USE_REPEATS_STORED an hour per client and network
    are stored (its secret check is a cheap HMAC, so this is the client's own rate), every one counted."""
    from idp import audit
    from idp.oauth.clients import create_client
    doc, secret = create_client(idp.db, idp.config, "Batch job", [], scope="email",
                                grant_types=["client_credentials"])
    before = _scrape(idp)
    since = _window()
    loops = audit.USE_REPEATS_STORED + 5
    with requests.Session() as s:
        for _ in range(loops):
            r = s.post(f"{idp.url}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(doc["client_id"], secret))
            assert r.status_code == 200, r.text
    stored = _capped_to_a_few(idp.db, {"event": audit.CLIENT_TOKEN_ISSUED, "client_id": doc["client_id"]}, since,
                              audit.USE_REPEATS_STORED)
    assert _delta(before, _scrape(idp), audit.CLIENT_TOKEN_ISSUED) == {"stored": stored, "capped": loops - stored,
                                                                      "failed": 0}
