"""Wrong recovery codes posted at once from several sessions of one account are never judged beyond the waiting time.

Several browsers signed in with the password post a wrong recovery code to ``/face/recover`` together, over real
HTTP, to two app instances (two workers) on one database. The per-user recovery-check reservation makes them take
turns, but it expires after ``lockout.JUDGING_S`` (so that a crashed worker does not block the account): a check
that outlasts it (a loaded host, a slow database) lets the next post take over. If the waiting time is only
*checked* before the code is judged and the failure *counted* after it, every post past the check is judged: with
the reservation gone, more codes are tried than the free failures allow before the waiting time holds. The check
must be charged atomically before the code is judged, refused while a waiting time runs, so no timing gets a code
judged past it.

A host on which every check takes longer than the reservation is played by a reservation that lasts no time
(``JUDGING_S`` = 0). Real apps, real MongoDB, real HTTP.
"""
from __future__ import annotations

import re

import requests

from idp import get_db
from idp.faceweb import lockout

from ._face import Browser, app, cheap_password_hashing, engine, enroll_user, make_app, new_user, people  # noqa: F401
from faceweb.conftest import USER_AGENT
from support.concurrency import at_once
from support.servers import LiveServer

FREE = 3
POSTERS = 10
ROUNDS_AT_THE_EDGE = 4


def _posters(app, servers, n: int, tag: str):
    """``n`` browsers signed in with alice's password, each ready to post a wrong code to /face/recover, in turn
    on each of ``servers``."""
    calls = []
    for i in range(n):
        b = Browser(app)
        b.login("alice")
        data = {"csrf_token": b.page_csrf("/face/recover"), "code": f"wrong-{tag}-{i:04d}"}
        cookies = {"deepauth_session": b.client.get_cookie("deepauth_session").value}
        url = f"{servers[i % len(servers)].url}/face/recover"
        calls.append(lambda url=url, data=data, cookies=cookies: requests.post(
            url, data=data, cookies=cookies, headers={"User-Agent": USER_AGENT}, allow_redirects=False,
            timeout=60))
    return calls


def _judged(db, uid) -> int:
    return db.audit_log.count_documents({"event": "face.recovery", "user_id": uid, "decision": "rejected"})


def _round(app, servers, db, uid, already: int, tag: str) -> None:
    """``already`` wrong codes counted (and no waiting time yet), then ``POSTERS`` wrong codes at once: at most
    ``FREE - already`` of them judged, the rest refused (busy, or the waiting time) without being judged."""
    lockout.reset_failures(db, uid, prefix="recovery_")
    db.face_status.update_one({"_id": uid}, {"$set": {"recovery_failures": already}})
    before = _judged(db, uid)
    answers = at_once(_posters(app, servers, POSTERS, tag))
    judged = _judged(db, uid) - before
    shown = sum("not valid or was already used" in r.text for r in answers)
    codes = [r.status_code for r in answers]
    assert judged == shown, codes
    assert judged <= FREE - already, {"already": already, "judged": judged, "answers": codes}
    assert all(c in (400, 429) for c in codes), codes
    assert db.face_status.find_one({"_id": uid})["recovery_failures"] == already + judged


def test_parallel_wrong_codes_are_never_judged_past_the_waiting_time_even_when_the_reservation_expires(
        make_app, new_user, people, monkeypatch):
    app = make_app(face_free_failures=FREE)
    other = make_app(face_free_failures=FREE)  # a second worker on the same database
    user, _ = enroll_user(app, new_user, people["alice"])
    uid = user["_id"]
    db = get_db(app)
    monkeypatch.setattr(lockout, "JUDGING_S", 0)  # every check outlasts its reservation
    servers = [LiveServer(app), LiveServer(other)]
    try:
        _round(app, servers, db, uid, 0, "first")
        for k in range(ROUNDS_AT_THE_EDGE):  # one short of the waiting time: one code judged at most
            _round(app, servers, db, uid, FREE - 1, f"edge{k}")
        # the waiting time holds: another post is refused before its code is judged
        db.face_status.update_one({"_id": uid}, {"$set": {"recovery_failures": FREE,
                                                          "recovery_last_failure_at": lockout.utcnow()}})
        before = _judged(db, uid)
        late = _posters(app, servers, 1, "late")[0]()
        assert late.status_code == 429 and "Too many wrong codes" in late.text
        assert _judged(db, uid) == before
    finally:
        for s in servers:
            s.stop()


def test_a_post_that_judges_no_code_is_not_counted_and_a_right_code_resets_the_count(make_app, new_user, people):
    """Charged before it is judged, a post without a code (nothing decided) gets its charge back, even one short
    of the waiting time; a wrong code then keeps its charge and starts the waiting time, and a right code (after
    the wait) resets the count."""
    app = make_app(face_free_failures=FREE)
    user, owner = enroll_user(app, new_user, people["alice"])
    uid = user["_id"]
    db = get_db(app)
    code = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", owner.get("/face/enroll/done").text)[0]
    db.face_status.update_one({"_id": uid}, {"$set": {"recovery_failures": FREE - 1}})
    b = Browser(app)
    b.login("alice")
    for empty in ("", " - "):
        r = b.form("/face/recover", {"code": empty})
        assert r.status_code == 400 and "Please enter one of your recovery codes." in r.text
        status = db.face_status.find_one({"_id": uid})
        assert status["recovery_failures"] == FREE - 1 and "recovery_last_failure_at" not in status, status
    r = b.form("/face/recover", {"code": "wrong-00000"})
    assert r.status_code == 400 and "not valid or was already used" in r.text
    assert db.face_status.find_one({"_id": uid})["recovery_failures"] == FREE
    r = b.form("/face/recover", {"code": code})  # the waiting time runs: not judged, the code stays unused
    assert r.status_code == 429 and "Too many wrong codes" in r.text
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10
    db.face_status.update_one({"_id": uid}, {"$unset": {"recovery_last_failure_at": ""}})  # (the wait is over)
    assert b.form("/face/recover", {"code": code}).status_code == 302
    status = db.face_status.find_one({"_id": uid})
    assert status["recovery_failures"] == 0 and "recovery_last_failure_at" not in status, status
