"""amr "face" means the enrolled live face: a recovery code never leads to it, and a template created
through a recovery code (or an administrator's reset) does not count as a face sign-in until its
cooling-off period is over."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import ACR_PWD_OTP, PASSWORD, Browser, UserAgent, _code, enroll_user, face_rp, notice_version


def _codes(browser) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", browser.get("/face/enroll/done").text)


def _recover_and_enroll(b: UserAgent, page, code, images):
    """On the face step: use a recovery code, then enroll the face in ``images``."""
    page, _ = b.go("/face/recover")
    page, _ = b.submit(page, "/face/recover", {"code": code})
    assert page.url.endswith("/face/enroll"), page.url
    if 'id="consent-checkbox"' in page.text:
        page, _ = b.submit(page, "/face/consent", {"consent": "yes", "notice_version": notice_version()})
    result = b.capture(page, "enroll", images)
    assert result["ok"], result
    return result


def test_victims_password_and_one_recovery_code_never_yield_amr_face(app, live, enrolled, people):
    """The attack: victim's password + one recovery code → /face/recover → enroll face B → verify face B.
    Neither that session nor a fresh sign-in during the cooling-off period gets amr face."""
    user, owner = enrolled
    code = _codes(owner)[0]
    db = get_db(app)
    old_template = db.face_templates.find_one({"_id": user["_id"]})
    required = face_rp(live, app, "required")
    optional = face_rp(live, app, "optional")

    attacker = UserAgent(live)
    page, _ = attacker.go(required.authorize_url())
    page, _ = attacker.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert page.url.endswith("/face/verify")
    _recover_and_enroll(attacker, page, code, people["mallory"][:5])

    # The face step of this session cannot be passed with a face any more: a clear page, no camera.
    page, loc = attacker.go("/face/continue")
    assert loc is None and page.url.endswith("/face/verify") and page.status_code == 200
    assert 'id="start-camera"' not in page.text and "recovery code" in page.text
    start = re.search(r'data-start-url="([^"]+)"', page.text)
    assert start is None
    r = attacker.s.post(live + "/api/face/verify/captures", json={}, headers={
        "X-CSRFToken": re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)})
    assert r.status_code == 403 and r.json()["error"] in ("recovery_session", "face_cooloff")
    # The face-required client never gets a code from this session.
    page, loc = attacker.go(required.authorize_url())
    assert loc is None and page.url.endswith("/face/verify")
    # A face-optional client gets the truth: password + one-time code.
    page, loc = attacker.go(optional.authorize_url())
    claims = optional.id_token_claims(_code(loc or attacker.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "otp"] and claims["acr"] == ACR_PWD_OTP

    # A fresh sign-in during the cooling-off period (default 24 h): face B is not accepted either.
    fresh = UserAgent(live)
    page, _ = fresh.go(required.authorize_url())
    page, loc = fresh.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert loc is None and page.url.endswith("/face/verify")
    assert 'id="start-camera"' not in page.text and "face-cooloff" in page.text
    until = db.face_status.find_one({"_id": user["_id"]})["cooloff_until"].replace(tzinfo=timezone.utc)
    assert timedelta(hours=23, minutes=59) < until - datetime.now(timezone.utc) <= timedelta(hours=24)
    assert until.strftime("%Y-%m-%d %H:%M") in page.text  # says when face sign-in becomes available
    r = fresh.s.post(live + "/api/face/verify/captures", json={}, headers={
        "X-CSRFToken": re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)})
    assert r.status_code == 403 and r.json()["error"] == "face_cooloff"

    # Visible and audited: the recovery, the replacement of the template and the cooling-off period.
    new_template = db.face_templates.find_one({"_id": user["_id"]})
    assert new_template["ciphertext"] != old_template["ciphertext"]
    events = {e["event"]: e for e in db.audit_log.find({"user_id": user["_id"]})}
    assert events["face.recovery"]["decision"] == "accepted"
    enroll = list(db.audit_log.find({"user_id": user["_id"], "event": "face.enroll", "decision": "enrolled"}).sort("at", 1))
    assert enroll[-1]["details"]["via"] == "recovery" and enroll[-1]["details"]["replaced"] is True
    cooloff = events["face.cooloff"]
    assert cooloff["decision"] == "started" and cooloff["details"]["via"] == "recovery"
    assert cooloff["details"]["until"].startswith(until.strftime("%Y-%m-%dT%H:%M"))
    assert not db.audit_log.find_one({"user_id": user["_id"], "event": "face.verify", "decision": "match",
                                      "at": {"$gt": events["face.recovery"]["at"]}})


def test_with_no_cooloff_the_recovering_session_still_never_gets_face_but_the_next_sign_in_does(
        make_app, new_user, people):
    app = make_app(face_recovery_cooloff_s=0)
    _, owner = enroll_user(app, new_user, people["alice"])
    code = _codes(owner)[0]
    db = get_db(app)

    b = Browser(app)
    b.login("alice")
    r = b.form("/face/recover", {"code": code})
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/enroll")
    assert b.capture("enroll", people["mallory"][:5]).get_json()["ok"]
    from faceweb.conftest import session_auth
    assert session_auth(b)["amr"] == ["pwd", "otp"]
    assert b.start("verify").status_code == 403  # never face in the session that used the code
    assert db.face_status.find_one({"_id": db.users.find_one()["_id"]}).get("cooloff_until") is None
    assert db.audit_log.find_one({"event": "face.enroll", "decision": "enrolled", "details.via": "recovery"})

    # Cool-off 0: the next sign-in (a fresh password) may verify with the new template at once.
    c = Browser(app)
    c.login("alice")
    assert c.capture("verify", people["mallory"][5:8]).get_json()["ok"] is True
    assert session_auth(c)["amr"] == ["pwd", "face"]


def test_recovery_code_alone_gives_otp_not_face_on_account_pages(app, enrolled):
    user, owner = enrolled
    code = _codes(owner)[0]
    b = Browser(app)
    b.login("alice")
    r = b.form("/face/recover", {"code": code})
    assert r.status_code == 302
    from faceweb.conftest import session_auth
    assert session_auth(b)["amr"] == ["pwd", "otp"]
    # The old template is kept until a new one is enrolled: using a code alone replaces nothing.
    assert get_db(app).face_templates.count_documents({"_id": user["_id"]}) == 1
    # Account pages accept password + recovery code (the face step for an account page).
    assert b.get("/account").status_code == 200
    # A new password sign-in in the same browser session still carries no face.
    b.login("alice")
    assert b.start("verify").status_code == 403


def test_admin_reset_then_enrollment_is_in_cooloff_and_audited(make_app, new_user, people):
    app = make_app(face_lock_after=1)
    _, b = enroll_user(app, new_user, people["alice"])
    assert b.capture("verify", people["mallory"][:3]).get_json()["locked"] is True
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    db.face_status.update_one({"_id": uid}, {"$set": {"reset": {"at": datetime.now(timezone.utc), "by": "x"}},
                                             "$unset": {"locked_at": ""}})
    c = Browser(app)
    c.login("alice")
    page = c.get("/face/verify")
    assert 'id="reenroll-after-reset"' in page.text
    assert c.capture("enroll", people["mallory"][:5]).get_json()["ok"]  # reset allows a new enrollment
    assert db.face_status.find_one({"_id": uid})["cooloff_until"].replace(tzinfo=timezone.utc) > datetime.now(timezone.utc)
    assert c.start("verify").status_code == 403
    assert db.audit_log.find_one({"event": "face.cooloff", "user_id": uid})["details"]["via"] == "admin_reset"


def test_deleting_face_data_from_a_recovery_code_session_cannot_make_a_first_enrollment(app, enrolled, people):
    """Password + recovery code → delete face data → a fresh sign-in enrolls "for the first time": that
    enrollment still starts the cooling-off period."""
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    assert b.form("/face/recover", {"code": _codes(owner)[0]}).status_code == 302
    r = b.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert r.status_code == 302 and db.face_templates.count_documents({"_id": uid}) == 0
    assert db.face_status.find_one({"_id": uid})["enroll_cooloff"]["via"] == "deleted"

    c = Browser(app)
    c.login("alice")
    c.consent()
    assert c.capture("enroll", people["mallory"][:5]).get_json()["ok"]
    r = c.start("verify")
    assert r.status_code == 403 and r.get_json()["error"] == "face_cooloff"
    assert db.audit_log.find_one({"event": "face.cooloff", "user_id": uid})["details"]["via"] == "deleted"


def test_a_face_session_deleting_its_own_face_data_leaves_nothing_behind(app, enrolled, people):
    user, _ = enrolled
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]
    b.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert get_db(app).face_status.count_documents({"_id": user["_id"]}) == 0
