"""Deleting an account erases every rate counter of its own in ``throttles``, with the rest of its data: the
per-account face limits, its share of its address's face budget (a counter that pairs the account with the
address for the window and 5 minutes more: 15 minutes by default), its mail counter, the repeat counters of its
audit events, and the mail counter of its name typed in "Forgot password?" before the account had it. Before,
only the failure counters (``users.throttle_keys``) went; the others stayed until they expired. What the
address's other accounts share - its budgets and its number of accounts - stays. Real app, real database,
real face engine, every counter made by real requests; the deletion is the admin page's."""
from __future__ import annotations

import re

from .conftest import CSRF_INPUT, PASSWORD, Browser, enroll_user, signed_in_admin


def _forgot(app, login: str) -> None:
    b = Browser(app)
    r = b.form("/forgot", {"login": login})
    assert r.status_code == 200, r.status_code


def _kinds(ids, uid: str) -> set[str]:
    """What each counter is: its id without its window, its address as ``*`` and its account id as ``U``."""
    return {re.sub(r"@\d+$", "", re.sub(r":ip:[^#]*#", ":ip:*#", i)).replace(uid, "U") for i in ids}


def test_deleting_an_account_erases_its_rate_counters_and_keeps_the_shared_ones(make_app, people, new_user):
    from idp import get_db
    app = make_app(login_free_failures=1)
    db = get_db(app)
    _forgot(app, "bob")  # no account has the name yet: counted under it
    admin = signed_in_admin(app, people["alice"])  # another account behind the same address (the test client's)
    bob, b = enroll_user(app, new_user, people["alice"], "bob")
    uid = bob["_id"]
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]  # signed in
    _forgot(app, "bob")
    for _ in range(2):  # a wrong current password, then throttled: an audit event with a repeat counter
        token = CSRF_INPUT.search(b.get("/account/password").text).group(1)
        b.client.post("/account/password", data={"csrf_token": token, "current_password": "not " + PASSWORD,
                                                  "new_password": "another long password 1", "confirm":
                                                  "another long password 1"})

    def bobs(doc) -> bool:
        return doc.get("user_id") == uid or uid in doc["_id"] or bool(
            re.search(r"(^|:)(bob|bob@example\.org)(@|$)", doc["_id"]))
    before = list(db.throttles.find())
    mine = [d["_id"] for d in before if bobs(d)]
    assert {"face_captures:user:U", "face_frames:user:U", "face_captures:ip:*#member:U", "face_frames:ip:*#member:U",
            "mail:account:U", "mail:account:login:bob", "pwd:user:U", "audit:account.password_change_failed:U"
            } <= _kinds(mine, uid), mine
    shared = {d["_id"] for d in before if not bobs(d)}
    assert any("#members@" in i for i in shared) and any(re.match(r"face_frames:ip:[^#]*@\d+$", i) for i in shared)

    page = f"/admin/users/{uid}"
    token = CSRF_INPUT.search(admin.get(page).text).group(1)
    r = admin.client.post(f"{page}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 302 and db.users.count_documents({"_id": uid}) == 0

    after = list(db.throttles.find())
    assert [d["_id"] for d in after if bobs(d)] == []
    assert shared <= {d["_id"] for d in after}  # the address's budgets and counts, the admin's own counters
