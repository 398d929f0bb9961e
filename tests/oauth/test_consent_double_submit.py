"""One authorization request gets one answer: the consent form posted several times at once (a double
click, a retried submission) issues one code, and every post is sent that same answer (the browser follows
whichever response comes last, so a losing post must not end on an error page); once the answer is no
longer kept (the code's lifetime, or the client redeemed the code) a replayed form finds the request no
longer active. A copy of the session
written back by another request of the browser (with the answered request still in it) reopens nothing."""
from __future__ import annotations

import html as htmlmod
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from flask import request as flask_request

from support.concurrency import at_once
from support.oidc import account_from, query_params

from idp.audit import CONSENT_DENIED

from .conftest import PASSWORD, RP_CALLBACK, csrf_from, pkce_pair, register_client


def _consent_form(rp, **params) -> tuple[dict, dict]:
    """Sign in up to the consent page: the form's fields and the browser's cookies."""
    page = rp.login(rp.follow(rp.authorize_url(prompt="consent", **params)))
    html = page.response.text
    assert '/authorize/consent"' in html
    data = {"rid": re.search(r'name="rid" value="([^"]+)"', html).group(1), "csrf_token": csrf_from(html),
            "account": account_from(html)}
    return data, rp.browser.cookies.get_dict()


def _at_once(n: int, send) -> list[requests.Response]:
    return at_once([send] * n)


def _answer(resp: requests.Response) -> dict:
    """The authorization response's parameters: from the redirect, or from the form_post page's form."""
    if resp.status_code == 302:
        assert resp.headers["Location"].startswith(RP_CALLBACK + "?"), resp.headers["Location"]
        return query_params(resp.headers["Location"])
    assert resp.status_code == 200 and '<form method="post" action="https://rp.example/callback"' in resp.text, \
        (resp.status_code, resp.text[:300])
    return {htmlmod.unescape(n): htmlmod.unescape(v)
            for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', resp.text)}


def _no_longer_kept(idp, rid: str) -> None:
    """What the passing of the code's lifetime does to the kept answer (its keep time is over)."""
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    answer = {"_id": rid + "#answer"}
    assert idp.db.request_answers.update_one(answer, {"$set": {"answer_until": past}}).matched_count == 1


def _post_consent(idp, data, cookies, **extra):
    return requests.post(f"{idp.url}/authorize/consent", data={**data, **extra}, cookies=cookies,
                         allow_redirects=False)


@pytest.mark.parametrize("mode", ["query", "form_post"])
def test_concurrent_allow_posts_all_get_the_one_code(idp, user, rp, mode):
    verifier, challenge = pkce_pair()
    data, cookies = _consent_form(rp, state="st-1", response_mode=None if mode == "query" else mode,
                                  code_challenge=challenge, code_challenge_method="S256")
    answers = [_answer(a) for a in _at_once(6, lambda: _post_consent(idp, data, cookies, decision="allow"))]
    assert idp.db.auth_codes.count_documents({}) == 1
    code = answers[0]["code"]
    assert all(a == {"code": code, "state": "st-1", "iss": idp.url} for a in answers), answers
    # the answer is kept for the other posts encrypted: the database does not hold the code (only its hash)
    assert code not in repr(list(idp.db.request_answers.find()))
    # the form posted again before the client redeemed the code: the same answer, still one code
    assert _answer(_post_consent(idp, data, cookies, decision="allow")) == answers[0]
    tokens = rp.redeem(code, verifier)
    assert tokens.status_code == 200
    # once the client redeemed the code the answer is given no more: sent again, the client would present the
    # code a second time, which revokes what the first redemption got
    again = _post_consent(idp, data, cookies, decision="allow")
    assert again.status_code == 400 and "no longer active" in again.text
    assert idp.db.auth_codes.count_documents({}) == 1
    assert rp.introspect(tokens.json()["access_token"])["active"] is True
    # and the code stays single-use
    assert rp.redeem(code, verifier).status_code == 400


def test_concurrent_deny_posts_all_get_the_same_refusal(idp, user, rp):
    data, cookies = _consent_form(rp, state="st-2")
    answers = [_answer(a) for a in _at_once(4, lambda: _post_consent(idp, data, cookies, decision="deny"))]
    assert all(a == answers[0] for a in answers), answers
    assert (answers[0]["error"], answers[0]["state"], answers[0]["iss"]) == ("access_denied", "st-2", idp.url)
    assert idp.db.auth_codes.count_documents({}) == 0
    assert idp.db.audit_log.count_documents({"event": CONSENT_DENIED}) == 1  # one decision, recorded once


def test_allow_and_cancel_posted_at_once_get_one_answer(idp, user, rp):
    """"Allow" and the sign-in page's "Cancel" racing: whichever answered first is the answer of both."""
    data, cookies = _consent_form(rp, state="st-3")
    sends = iter([lambda: _post_consent(idp, data, cookies, decision="allow"),
                  lambda: requests.post(f"{idp.url}/authorize/cancel", data=data, cookies=cookies,
                                        allow_redirects=False)])
    lock = threading.Lock()

    def send():
        with lock:
            one = next(sends)
        return one()
    answers = [_answer(a) for a in _at_once(2, send)]
    assert answers[0] == answers[1], answers
    assert idp.db.auth_codes.count_documents({}) == (1 if "code" in answers[0] else 0)


def test_a_double_submitted_sign_in_resumes_the_request_once(idp, user):
    """Without a consent page the code is issued where the sign-in resumes the request: the login form
    posted twice leads the browser to the resume URL twice at once; one code, both sent it."""
    doc, secret = register_client(idp.db, idp.config, "First party", [RP_CALLBACK], skip_consent=True)
    s = requests.Session()
    url = f"{idp.url}/authorize?response_type=code&client_id={doc['client_id']}&redirect_uri={RP_CALLBACK}" \
          "&scope=openid&state=st-4"
    login = s.get(url)
    assert urlsplit(login.url).path == "/login"
    resumed = s.post(login.url, data={"csrf_token": csrf_from(login.text), "username": "alice",
                                      "password": PASSWORD}, allow_redirects=False)
    assert "_rid=" in resumed.headers["Location"]
    resume = requests.compat.urljoin(idp.url, resumed.headers["Location"])
    cookies = s.cookies.get_dict()
    answers = [_answer(a) for a in _at_once(6, lambda: requests.get(resume, cookies=cookies, allow_redirects=False))]
    assert idp.db.auth_codes.count_documents({}) == 1
    assert len({a["code"] for a in answers}) == 1 and answers[0]["state"] == "st-4"


def test_a_session_written_back_by_another_request_cannot_reopen_an_answered_request(idp, user, rp):
    """Another request of the same browser read the session (the request pending in it) before "Allow" was
    answered and saves its whole session after: the answered request is back in the stored session, and its
    form posted again (Back, resubmit) issues no second code."""
    data, cookies = _consent_form(rp, state="st-5")
    app = idp.app
    iface = app.session_interface
    with app.test_request_context("/account", headers={"Cookie": f"{iface.cookie_name}={cookies[iface.cookie_name]}"}):
        other = iface.open_session(app, flask_request)
        assert other["authz"]["rid"] == data["rid"]
        other["next"] = "/account"  # it changed the session, so it writes it back
        first = _post_consent(idp, data, cookies, decision="allow")
        iface.save_session(app, other, app.response_class())
    assert idp.db.sessions.count_documents({"data.authz.rid": data["rid"]}) == 1  # the request is back
    code = _answer(first)["code"]
    again = _post_consent(idp, data, cookies, decision="allow")
    assert _answer(again)["code"] == code
    assert idp.db.auth_codes.count_documents({}) == 1
    _no_longer_kept(idp, data["rid"])
    late = _post_consent(idp, data, cookies, decision="allow")
    assert late.status_code == 400 and "no longer active" in late.text
    assert idp.db.auth_codes.count_documents({}) == 1


def test_a_request_older_than_a_session_lives_gets_no_answer(idp, user, rp):
    """A claim is kept as long as a session lives, from the answer on: a request stored longer ago (kept
    alive in a session written back again and again) could have lost its claim, so it is not answered."""
    data, cookies = _consent_form(rp, state="st-6")
    old = datetime.now(timezone.utc).timestamp() - idp.config.session_lifetime_s - 1
    assert idp.db.sessions.update_one({"data.authz.rid": data["rid"]},
                                      {"$set": {"data.authz.created": int(old)}}).modified_count == 1
    late = _post_consent(idp, data, cookies, decision="allow")
    assert late.status_code == 400 and "no longer active" in late.text
    assert idp.db.auth_codes.count_documents({}) == 0


def test_an_answer_that_failed_or_was_never_written_holds_no_later_post(idp, user, rp, monkeypatch):
    """The claim is taken before the answer is made. An answer that raised leaves no claim (the request can be
    answered again); a claim whose answer was never written (its process died) is not waited for once it is
    older than the wait. Before, both left a claim without an answer for a session's lifetime, and every post
    naming the request held a server thread for 5 s, polling, before its 400."""
    from idp.web import sessions

    data, cookies = _consent_form(rp, state="st-6")
    app, iface = idp.app, idp.app.session_interface
    polls = []
    # the module's clock with its sleep counted (this module's only: the process's time.sleep stays)
    monkeypatch.setattr(sessions, "time", SimpleNamespace(time=time.time, monotonic=time.monotonic,
                                                          sleep=lambda s: polls.append(s)))

    def fails():
        raise RuntimeError("the database went away")
    with app.test_request_context("/authorize/consent",
                                  headers={"Cookie": f"{iface.cookie_name}={cookies[iface.cookie_name]}"}):
        with pytest.raises(RuntimeError):
            sessions.answer_once("failed-rid", time.time(), fails, keep_s=60)
        assert idp.db.request_answers.count_documents({"_id": "failed-rid"}) == 0
        assert sessions.answer_once("failed-rid", time.time(), lambda: {"location": "x"}, keep_s=60) == {
            "location": "x"}
        stale = datetime.now(timezone.utc) - timedelta(seconds=sessions.ANSWER_WAIT_S + 1)
        idp.db.request_answers.insert_one({"_id": "orphan-rid", "claimed": stale,
                                           "expires": stale + timedelta(hours=1)})
        assert sessions.kept_answer("orphan-rid") is None
    assert polls == []
    r = _post_consent(idp, dict(data, rid="orphan-rid"), cookies, decision="allow")
    assert r.status_code == 400 and polls == []


def test_an_answer_kept_in_its_claim_by_an_earlier_version_is_given_no_more_once_redeemed(idp, user, rp):
    """An answer written into its claim (the format before answers had documents of their own, which a claim
    made just before an upgrade, or by an instance not yet upgraded, still holds) is still given to a double
    submit; and once the client redeemed its code it is given no more, like any answer."""
    verifier, challenge = pkce_pair()
    data, cookies = _consent_form(rp, state="st-old", code_challenge=challenge, code_challenge_method="S256")
    code = _answer(_post_consent(idp, data, cookies, decision="allow"))["code"]
    answers = idp.db.request_answers
    kept = answers.find_one_and_delete({"_id": data["rid"] + "#answer"})
    answers.update_one({"_id": data["rid"]}, {"$set": {"answer": kept["answer"], "answer_until": kept["answer_until"]},
                                              "$unset": {"answered": ""}})
    assert _answer(_post_consent(idp, data, cookies, decision="allow"))["code"] == code
    assert rp.redeem(code, verifier).status_code == 200
    again = _post_consent(idp, data, cookies, decision="allow")
    assert again.status_code == 400 and "no longer active" in again.text
