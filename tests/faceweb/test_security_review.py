"""Regressions from the security review of the face pages, the capture API and the admin pages."""
from __future__ import annotations

from .conftest import Browser


def test_capture_nonce_with_non_ascii_characters_is_a_clear_403_not_a_500(app, new_user, people):
    new_user("alice")
    b = Browser(app)
    b.login("alice")
    b.consent()
    cap = b.start("enroll").get_json()
    for nonce in ("\xff\xfe", "ü" + cap["nonce"][1:]):
        r = b.frame(cap, people["alice"][0], nonce=nonce)
        assert r.status_code == 403 and r.get_json()["error"] == "bad_nonce"
        r = b.finish(cap, nonce=nonce)
        assert r.status_code == 403 and r.get_json()["error"] == "bad_nonce"
    # The capture is still usable with its real nonce: the bad requests recorded nothing.
    assert b.frame(cap, people["alice"][0]).status_code == 200


def test_admin_audit_page_number_beyond_any_offset_is_clamped_not_a_500(app, new_user):
    new_user("root", is_admin=True)
    a = Browser(app)
    a.login("root")
    for page in ("9" * 30, "9223372036854775807", "-9" * 10, "1e9", "x"):
        r = a.get(f"/admin/audit?page={page}")
        assert r.status_code == 200, page
        assert "Traceback" not in r.text
