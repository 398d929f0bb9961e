"""Recovery codes against parallel requests over real HTTP (a threaded server, one thread per request): one code
posted at once from several signed-in browsers is accepted once; wrong codes posted at once are each either
judged and counted, or refused as busy and not judged, so the waiting time is never overshot. Real app, real
database, real face engine and photos."""
from __future__ import annotations

import re

import requests

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser
from faceweb.conftest import USER_AGENT
from support.concurrency import at_once
from support.servers import LiveServer


def _codes(browser) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", browser.get("/face/enroll/done").text)


def _poster(server, app, n: int, code_for):
    """``n`` browsers signed in with alice's password, each ready to post ``code_for(i)`` to /face/recover."""
    calls = []
    for i in range(n):
        b = Browser(app)
        b.login("alice")
        data = {"csrf_token": b.page_csrf("/face/recover"), "code": code_for(i)}
        cookies = {"deepauth_session": b.client.get_cookie("deepauth_session").value}
        calls.append(lambda data=data, cookies=cookies: requests.post(
            f"{server.url}/face/recover", data=data, cookies=cookies, headers={"User-Agent": USER_AGENT},
            allow_redirects=False, timeout=30))
    return calls


def test_one_code_posted_at_once_is_accepted_once_and_wrong_codes_never_overshoot(app, enrolled):
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    code = _codes(owner)[0]
    server = LiveServer(app)
    try:
        answers = at_once(_poster(server, app, 6, lambda i: code))
        assert sorted(r.status_code for r in answers).count(302) == 1, [r.status_code for r in answers]
        assert db.audit_log.count_documents({"event": "face.recovery", "decision": "accepted"}) == 1
        assert db.recovery_codes.count_documents({"user_id": uid, "used_at": {"$ne": None}}) == 1
        # a post of the same code judged after the one accepted (not held back as busy: a slow host lets it
        # through) finds it used: a wrong code, counted like the ones below
        judged = sum("not valid or was already used" in r.text for r in answers)
        again = _poster(server, app, 1, lambda i: code)[0]()  # and one posted after it, for certain
        assert again.status_code == 400 and "not valid or was already used" in again.text
        judged += 1
        for round_ in range(20):  # rounds of wrong codes at once, until the doubling wait holds them back
            answers = at_once(_poster(server, app, 6, lambda i: f"wrong{round_}{i:04d}"))
            assert all(r.status_code in (400, 429) for r in answers), [r.status_code for r in answers]
            judged += sum("not valid or was already used" in r.text for r in answers)
            if any("Too many wrong codes" in r.text for r in answers):
                break
        failures = db.face_status.find_one({"_id": uid})["recovery_failures"]
        assert failures == judged == 5  # the free failures, then a wait: never one more, however many at once
    finally:
        server.stop()
