"""An administrator's face-reset grant (enroll a new face after the password alone) expires after
``IDP_FACE_RESET_GRANT_LIFETIME`` (default 72 h): an old grant no longer lets anyone enroll. Real app, real
database; the grant's time is set in the past instead of waiting."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser, enroll_user


def _enrolled_with_reset_grant(app, new_user, people, age: timedelta):
    """alice enrolled, then granted an admin reset (the function the admin page calls) ``age`` ago."""
    from idp.faceweb import reenrollment
    _, owner = enroll_user(app, new_user, people["alice"])
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    reenrollment.grant_reset(db, uid, "some-admin")
    db.face_status.update_one({"_id": uid}, {"$set": {"reset.at": datetime.now(timezone.utc) - age}})
    return uid


def test_default_lifetime_is_72_hours():
    from idp.config import Config
    assert Config().face_reset_grant_lifetime_s == 72 * 3600
    assert Config.from_env({"IDP_FACE_RESET_GRANT_LIFETIME": "600"}).face_reset_grant_lifetime_s == 600
    with pytest.raises(SystemExit, match="IDP_FACE_RESET_GRANT_LIFETIME"):
        Config(face_reset_grant_lifetime_s=0)


def test_an_expired_reset_grant_no_longer_allows_enrollment(app, new_user, people):
    uid = _enrolled_with_reset_grant(app, new_user, people, timedelta(hours=72, minutes=1))
    db = get_db(app)
    template = db.face_templates.find_one({"_id": uid})["ciphertext"]

    mallory = Browser(app)  # holds alice's password only
    mallory.login("alice")
    page = mallory.get("/face/verify")
    assert page.status_code == 200 and 'id="reenroll-after-reset"' not in page.text
    r = mallory.get("/face/enroll")
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/face")
    r = mallory.start("enroll")
    assert r.status_code == 403
    assert db.face_templates.find_one({"_id": uid})["ciphertext"] == template  # nothing replaced


def test_a_reset_grant_within_its_lifetime_still_allows_enrollment(make_app, new_user, people):
    app = make_app(face_reset_grant_lifetime_s=3600)
    _enrolled_with_reset_grant(app, new_user, people, timedelta(minutes=59))
    b = Browser(app)
    b.login("alice")
    assert 'id="reenroll-after-reset"' in b.get("/face/verify").text
    assert b.start("enroll").status_code == 201
