"""Password reset ("Forgot password?") through a real SMTP server: same answer for unknown accounts, a
single-use 30-minute link hashed at rest, per-IP and per-account limits, NIST rules, and on success every
session and app token ended and the password counter reset. Plus the owner's notices by email."""
from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from support.concurrency import at_once
from support.fixtures import away_from_a_rate_window_edge  # noqa: F401  (fixture)
from tests.conftest import mail_link

from .conftest import GOOD_PASSWORD, Browser, alert, field_errors, stored_user

NEW_PASSWORD = "purple elephant violin sunrise"


def _forgot(b, login):
    return b.submit("/forgot", {"login": login})


def _registered(app, smtp_server, username="alice"):
    before = len(smtp_server.messages)
    b = Browser(app.test_client())
    assert b.register(username=username).status_code == 302
    smtp_server.wait_for(before + 1)  # the verification mail
    return b


def _reset_mail(smtp_server, count):
    mails = smtp_server.wait_for(count)
    reset = [m for m in mails if m["Subject"] == "Reset your password"]
    assert reset, [m["Subject"] for m in mails]
    return reset[-1]


def _visible(html: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", html)


def test_sign_in_page_offers_forgot_password(mail_app):
    page = Browser(mail_app.test_client()).get("/login")
    assert 'id="forgot-password"' in page.text and 'href="/forgot"' in page.text


def test_same_answer_whether_or_not_the_account_exists(mail_app, smtp_server):
    _registered(mail_app, smtp_server)
    b = Browser(mail_app.test_client(), remote_addr="10.0.0.9")
    timings, pages = [], []
    for login in ("alice", "nobody", "alice@example.com", "nobody@example.com"):
        started = time.perf_counter()
        r = _forgot(b, login)
        timings.append(time.perf_counter() - started)
        assert r.status_code == 200
        pages.append(_visible(r.text))
    assert pages[0] == pages[1] == pages[2] == pages[3]
    assert "If an account with that name or address exists" in pages[0]
    assert max(timings) < 2.0  # no password hashing on either path; both only queue (or not) a message
    mails = smtp_server.wait_for(3)
    time.sleep(0.5)
    assert [m["To"] for m in smtp_server.messages[1:]] == ["alice@example.com", "alice@example.com"]
    assert len(mails) == 3


def test_reset_link_sets_the_password_once_and_ends_every_session_and_token(mail_app, smtp_server):
    db = mail_app.extensions["db"]
    b = _registered(mail_app, smtp_server)
    uid = stored_user(mail_app)["_id"]
    other = Browser(mail_app.test_client(), remote_addr="10.0.0.2")
    assert other.login("alice", GOOD_PASSWORD).status_code == 302
    db.tokens.insert_one({"_id": "t1", "user_id": uid, "client_id": "c1", "revoked": False})
    # a few wrong passwords on the account counter
    for _ in range(3):
        Browser(mail_app.test_client(), remote_addr="10.0.0.3").login("alice", "wrong wrong wrong")
    assert db.throttles.count_documents({"_id": f"pwd:user:{uid}"}) == 1

    stranger = Browser(mail_app.test_client(), remote_addr="10.0.0.4")
    _forgot(stranger, "alice@example.com")
    path = mail_link(_reset_mail(smtp_server, 3), "reset")  # after the notice of the other browser's sign-in
    token = path.rsplit("/", 1)[1]
    stored = db.email_tokens.find_one({"purpose": "reset_password"})
    assert stored["_id"] == hashlib.sha256(token.encode()).hexdigest() and token not in str(stored)
    assert stored["expires"] - stored["created"] == timedelta(minutes=30)

    # NIST rules with the same form helper: too short, breached, mismatch
    for new, confirm, field in (("short", "short", "new_password"), ("password1234", "password1234", "new_password"),
                                (NEW_PASSWORD, NEW_PASSWORD + "x", "confirm")):
        r = stranger.submit(path, {"new_password": new, "confirm": confirm})
        assert r.status_code == 200 and field_errors(r.text).get(field), (new, field_errors(r.text))
    assert db.email_tokens.count_documents({"purpose": "reset_password"}) == 1  # a refused form spends nothing

    r = stranger.submit(path, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert "Your password was reset" in stranger.get("/login").text

    assert db.sessions.count_documents({"data.auth.uid": uid}) == 0
    assert b.get("/account").status_code == 302 and other.get("/account").status_code == 302
    assert db.tokens.find_one({"_id": "t1"})["revoked"] is True
    assert db.throttles.count_documents({"_id": f"pwd:user:{uid}"}) == 0  # the password counter starts over
    assert stored_user(mail_app)["email_verified"] is True  # the mailbox proved itself

    fresh = Browser(mail_app.test_client(), remote_addr="10.0.0.5")
    assert alert(fresh.login("alice", GOOD_PASSWORD).text) == "Invalid username or password."
    assert fresh.login("alice", NEW_PASSWORD).status_code == 302

    # single use
    r = Browser(mail_app.test_client()).get(path)
    assert r.status_code == 400 and "This link is not valid" in r.text and 'href="/forgot"' in r.text
    r = stranger.client.post(path, data={"new_password": "another long passphrase", "confirm": "x"})
    assert r.status_code == 400


def test_an_expired_reset_link_is_refused(mail_app, smtp_server):
    _registered(mail_app, smtp_server)
    b = Browser(mail_app.test_client())
    _forgot(b, "alice")
    path = mail_link(_reset_mail(smtp_server, 2), "reset")
    mail_app.extensions["db"].email_tokens.update_many(
        {}, {"$set": {"expires": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    assert b.get(path).status_code == 400
    before = stored_user(mail_app)["password_hash"]
    r = b.client.post(path, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 400 and stored_user(mail_app)["password_hash"] == before


def test_a_newer_link_or_a_password_change_voids_older_links(mail_app, smtp_server):
    b = _registered(mail_app, smtp_server)
    _forgot(b, "alice")
    first = mail_link(_reset_mail(smtp_server, 2), "reset")
    _forgot(b, "alice")
    second = mail_link(_reset_mail(smtp_server, 3), "reset")
    assert b.get(first).status_code == 400 and b.get(second).status_code == 200
    r = b.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD,
                                       "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert b.get(second).status_code == 400


@pytest.mark.usefixtures("away_from_a_rate_window_edge")
def test_reset_requests_are_limited_per_ip_and_per_account(make_app, smtp_server):
    app = make_app(smtp_url=smtp_server.url, reset_ip_limit=4, reset_account_limit=2)
    _registered(app, smtp_server)
    b = Browser(app.test_client(), remote_addr="10.1.1.1")
    for _ in range(3):
        assert _forgot(b, "alice").status_code == 200  # the third: same page, no mail (account limit)
    smtp_server.wait_for(3)  # (sent by the outbox's thread: not always within a fixed pause on a busy machine)
    time.sleep(1)
    assert len(smtp_server.messages) == 3  # verification + 2 resets
    assert _forgot(b, "nobody").status_code == 200
    r = _forgot(b, "nobody")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # another address still gets its answer; the account's limit still holds there
    c = Browser(app.test_client(), remote_addr="10.1.1.2")
    assert _forgot(c, "alice").status_code == 200
    time.sleep(1)
    assert len(smtp_server.messages) == 3


def test_owner_is_notified_of_password_change_and_reset(mail_app, smtp_server):
    b = _registered(mail_app, smtp_server)
    r = b.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD,
                                       "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    notice = smtp_server.wait_for(2)[1]
    assert notice["Subject"] == "Your password was changed" and notice["To"] == "alice@example.com"
    body = notice.get_payload(decode=True).decode()
    assert NEW_PASSWORD not in body and GOOD_PASSWORD not in body
    _forgot(b, "alice")
    path = mail_link(_reset_mail(smtp_server, 3), "reset")
    b.submit(path, {"new_password": "another strong passphrase", "confirm": "another strong passphrase"})
    assert smtp_server.wait_for(4)[3]["Subject"] == "Your password was reset"


def test_notices_cover_face_changes_and_recovery_codes_from_the_audit_log(mail_app, smtp_server):
    """One place (the audit writer's listener): every face event of these kinds mails the owner."""
    from idp import audit
    db = mail_app.extensions["db"]
    _registered(mail_app, smtp_server)
    uid = stored_user(mail_app)["_id"]
    # the first enrollment too: it is trusted on first use, so the owner hears of it
    audit.record(db, audit.FACE_ENROLL, user_id=uid, decision="enrolled",
                 details={"via": "first", "replaced": False, "codes_issued": True})
    audit.record(db, audit.FACE_ENROLL, user_id=uid, decision="rejected", details={"via": "recovery"})  # no notice
    audit.record(db, audit.FACE_RECOVERY, user_id=uid, decision="rejected")  # no notice
    audit.record(db, audit.FACE_ENROLL, user_id=uid, decision="enrolled", details={"via": "recovery"})
    audit.record(db, audit.FACE_ENROLL, user_id=uid, decision="enrolled",  # a re-enrollment confirmed by a face match
                 details={"via": "first", "replaced": True, "codes_issued": False})
    audit.record(db, audit.FACE_ENROLL, user_id=uid, decision="enrolled",  # the same, when no code was left
                 details={"via": "first", "replaced": True, "codes_issued": True})
    audit.record(db, audit.FACE_DELETE, user_id=uid, decision="deleted")
    audit.record(db, audit.FACE_RECOVERY, user_id=uid, decision="accepted")
    audit.record(db, audit.FACE_RESET, user_id=uid, decision="reset")
    audit.record(db, audit.RECOVERY_CODES_VOIDED, user_id=uid, details={"voided": 9})
    mails = smtp_server.wait_for(9)
    time.sleep(0.5)
    assert sorted(m["Subject"] for m in smtp_server.messages[1:]) == sorted([
        "Face sign-in was set up for your account", "Your face sign-in was set up again",
        "Your face sign-in was set up again", "Your face sign-in was set up again", "Your face sign-in data was deleted",
        "A recovery code was used on your account", "An administrator reset your face sign-in",
        "An administrator voided your recovery codes"])
    assert len(smtp_server.messages) == 9
    first = next(m for m in mails if m["Subject"] == "Face sign-in was set up for your account")
    body = first.get_payload(decode=True).decode()
    way_back = "one of your recovery codes and enroll your face again"  # no enrollment voids the owner's codes
    assert way_back in body and "reset face sign-in" in body and "not replaced" not in body
    assert "Sign out everywhere" not in body  # out of its reach
    void = "If you did not enroll, they went to whoever did: ask your administrator to void them."
    assert f"Recovery codes were made for it. {void}" in body
    again = [m.get_payload(decode=True).decode() for m in mails if m["Subject"] == "Your face sign-in was set up again"]
    after = next(body for body in again if "after a sign-in with a recovery code" in body)
    assert "replacing" not in after
    replaced = next(body for body in again if "replacing the previous one" in body and "not replaced" in body)
    assert "Your recovery codes were not replaced: the unused ones still work." in replaced and void not in replaced
    issued = next(body for body in again if "replacing the previous one" in body and "not replaced" not in body)
    assert f"New recovery codes were made (you had no unused ones left). {void}" in issued
    for body in (after, replaced):  # the face on the account may be someone else's: the account page is out of reach
        assert way_back in body and "reset face sign-in" in body and "Sign out everywhere" not in body


def _links_in_the_log(mail_app, smtp_server):
    """Access log on, alice registered and asking for a reset: her reset and verification links, and her
    browser."""
    mail_app.config["IDP_ACCESS_LOG"] = True
    _registered(mail_app, smtp_server)
    verify = mail_link(smtp_server.wait_for(1)[0], "verify-email")
    b = Browser(mail_app.test_client())
    _forgot(b, "alice")
    return mail_link(_reset_mail(smtp_server, 2), "reset"), verify, b


def test_the_request_log_never_holds_a_link_token(mail_app, smtp_server, caplog):
    """The token in /reset/<token> and /verify-email/<token> is the link's secret (whoever has it sets the
    password until it is used): the request log names the route, never the token. It logged the path."""
    import logging
    reset, verify, b = _links_in_the_log(mail_app, smtp_server)
    with caplog.at_level(logging.INFO, logger="idp.request"):
        assert b.get(reset).status_code == 200 and b.get(verify).status_code == 200
        assert b.get("/reset/not-a-real-token-x").status_code == 400
    logged = [r for r in caplog.records if r.name == "idp.request"]
    assert [r.path for r in logged] == ["/reset/<token>", "/verify-email/<token>", "/reset/<token>"]
    text = caplog.text + " ".join(str(r.__dict__) for r in logged)
    for token in (reset.rsplit("/", 1)[1], verify.rsplit("/", 1)[1], "not-a-real-token-x"):
        assert token not in text


def _logged(caplog, records) -> str:
    """Everything the records put in a log: caplog's lines, their fields, and the app's JSON lines."""
    from idp.web.logs import JsonFormatter
    return caplog.text + " ".join(str(r.__dict__) + JsonFormatter().format(r) for r in records)


def test_a_link_token_stays_out_of_the_log_when_the_request_matches_no_route(mail_app, smtp_server, caplog):
    """A link mangled on the way (an extra segment, a trailing or doubled slash, another case) matches no
    route, and a wrong method matches none with that method: those were logged with their raw path, the
    token in it. Now the token's segment is replaced, the rest kept."""
    import logging
    reset, verify, b = _links_in_the_log(mail_app, smtp_server)
    reset_token, verify_token = reset.rsplit("/", 1)[1], verify.rsplit("/", 1)[1]
    client = mail_app.test_client()
    with caplog.at_level(logging.INFO, logger="idp.request"):
        assert client.get(reset + "/extra").status_code == 404
        assert client.get(reset + "/").status_code == 404
        assert client.put(reset).status_code == 405
        assert client.delete(verify).status_code == 405
        assert client.get("/reset//" + reset_token).status_code in (301, 308)
        assert client.get("/Verify-Email/" + verify_token).status_code == 404
    logged = [r for r in caplog.records if r.name == "idp.request"]
    assert [(r.method, r.path, r.status) for r in logged] == [
        ("GET", "/reset/<token>/extra", 404), ("GET", "/reset/<token>/", 404), ("PUT", "/reset/<token>", 405),
        ("DELETE", "/verify-email/<token>", 405), ("GET", "/reset/<token>", logged[4].status),
        ("GET", "/Verify-Email/<token>", 404)]
    text = _logged(caplog, logged)
    assert reset_token not in text and verify_token not in text


def test_the_token_prefixes_come_from_the_routes_and_cover_the_unhandled_error_line(app, caplog):
    """Any route with a token variable is covered, not a list of known ones: a route added here is
    redacted in the access log and in the unhandled-error line (both use ``logged_path``), matched or not."""
    import logging
    app.config["IDP_ACCESS_LOG"] = True

    @app.route("/_t/invite/<token>/accept")
    def _accept(token):
        raise RuntimeError("failed while accepting")

    client = app.test_client()
    with caplog.at_level(logging.INFO):
        assert client.get("/_t/invite/Secret-Invite-1/accept").status_code == 500
        assert client.get("/_t/invite/Secret-Invite-2/other").status_code == 404
        assert client.post("/_t/invite/Secret-Invite-3/accept").status_code == 405
        assert client.get("/_t/other/Not-A-Secret").status_code == 404
    errors = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert [r.path for r in errors] == ["/_t/invite/<token>/accept"]
    requests = [r for r in caplog.records if r.name == "idp.request"]
    assert [r.path for r in requests] == ["/_t/invite/<token>/accept", "/_t/invite/<token>/other",
                                          "/_t/invite/<token>/accept", "/_t/other/Not-A-Secret"]
    assert "Secret-Invite" not in _logged(caplog, errors + requests)


def test_one_reset_link_posted_several_times_at_once_sets_one_password(mail_app, smtp_server):
    """The link is used up by one atomic find-and-delete: of several posts at once (a double submit, the form
    in two tabs) exactly one sets its password, the others see a used link."""
    import requests
    from support.oidc import csrf_from
    from support.servers import LiveServer

    _registered(mail_app, smtp_server)
    _forgot(Browser(mail_app.test_client()), "alice")
    path = mail_link(_reset_mail(smtp_server, 2), "reset")
    server = LiveServer(mail_app)
    try:
        news = [f"{NEW_PASSWORD} {i}" for i in range(4)]
        forms = []
        for _ in news:
            s = requests.Session()
            forms.append((s, csrf_from(s.get(server.url + path).text)))
        answers = at_once([
            lambda s=s, token=token, new=new: s.post(server.url + path, allow_redirects=False, data={
                "csrf_token": token, "new_password": new, "confirm": new})
            for (s, token), new in zip(forms, news)])
    finally:
        server.stop()
    assert sorted(r.status_code for r in answers) == [302, 400, 400, 400]
    winner = news[[r.status_code for r in answers].index(302)]
    from idp.accounts import passwords
    assert passwords.check_password(stored_user(mail_app)["password_hash"], winner)
    assert mail_app.extensions["db"].audit_log.count_documents({"event": "account.password_reset"}) == 1


def test_a_reset_and_a_password_change_at_once_do_not_both_succeed(make_app, smtp_server):
    """A password change voids the reset links asked for before it, and a reset ends every session: when both
    are posted at once, the second write is a compare-and-set on the hash its request read, so the later one
    finds the password changed and stores nothing (before, both succeeded and the later write silently won)."""
    import requests
    from support.oidc import csrf_from
    from support.servers import LiveServer

    from .conftest import registered_over_http
    app = make_app(smtp_url=smtp_server.url)
    server = LiveServer(app)
    try:
        owner = registered_over_http(server.url)
        smtp_server.wait_for(1)  # the verification mail
        requests.post(f"{server.url}/forgot", cookies=owner.cookies.get_dict(), data={
            "csrf_token": csrf_from(owner.get(f"{server.url}/forgot").text), "login": "alice"})
        path = mail_link(_reset_mail(smtp_server, 2), "reset")
        mailbox = requests.Session()
        reset_token = csrf_from(mailbox.get(server.url + path).text)
        change_token = csrf_from(owner.get(f"{server.url}/account/password").text)
        changed, reset = at_once([
            lambda: owner.post(f"{server.url}/account/password", allow_redirects=False, data={
                "csrf_token": change_token, "current_password": GOOD_PASSWORD,
                "new_password": "changed in the account page", "confirm": "changed in the account page"}),
            lambda: mailbox.post(server.url + path, allow_redirects=False, data={
                "csrf_token": reset_token, "new_password": "set through the reset link",
                "confirm": "set through the reset link"}),
        ])
    finally:
        server.stop()
    change_won = changed.status_code == 302 and changed.headers["Location"] == "/account"
    reset_won = reset.status_code == 302 and reset.headers["Location"] == "/login"
    assert change_won != reset_won, (changed.status_code, reset.status_code)
    from idp.accounts import passwords
    stored = stored_user(app)["password_hash"]
    assert passwords.check_password(stored, "changed in the account page" if change_won else "set through the reset link")
    if change_won:
        assert reset.status_code == 400 and "This link is not valid" in reset.text
    else:
        assert changed.status_code in (200, 302), changed.status_code  # a form error, or signed out by the reset
