"""The admin users page in Chromium: an administrator signs in with password and face (fake webcam),
searches a user, views them, disables (with confirmation), enables, and deletes (with confirmation);
the admin pages fit a 390 px phone and every submit button is at least 24 px tall."""
from __future__ import annotations

import re

import pytest

from .test_face_signin import login, path_of, run_capture


@pytest.fixture(autouse=True)
def _without_liveness(liveness):
    liveness(False)  # the looping fake webcam cannot follow a random head-turn challenge


def _confirm(page, form_id: str, shots, label: str) -> None:
    page.wait_for_selector(f"#{form_id}")
    shots(page, label)
    page.click(f"#{form_id} button[type=submit]")
    page.wait_for_load_state()


def _fits(page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{path_of(page.url)} is {scroll} px wide on a {width} px screen"
    small = page.evaluate("""() => [...document.querySelectorAll('button, input[type=submit]')]
        .filter(b => b.offsetParent !== null && b.getBoundingClientRect().height < 24)
        .map(b => b.outerHTML.slice(0, 80))""")
    assert not small, f"buttons under 24 px on {path_of(page.url)}: {small}"


def test_admin_search_view_disable_enable_delete(y4m, new_page, shots, idp_server, make_account):
    db = idp_server.db
    admin = make_account(enrolled=True, person="d9")
    db.users.update_one({"_id": admin.uid}, {"$set": {"is_admin": True}})
    target = make_account(enrolled=False)
    page = new_page(y4m.clip("d9"))

    page.goto(idp_server.url + "/admin/users")
    login(page, shots, admin)
    page.wait_for_url(re.compile(r"/face/verify"))
    assert run_capture(page, idp_server, shots, "admin-verify") == "left"
    page.wait_for_url(re.compile(r"/admin/"))

    page.goto(idp_server.url + "/admin/users")
    page.fill("#user-q", target.username[:-2])
    page.click("#user-search")
    page.wait_for_selector(f"tr[data-user-id='{target.uid}']")
    shots(page, "users-search")
    page.click(f"tr[data-user-id='{target.uid}'] a")
    page.wait_for_selector("#user-title")
    assert page.locator("#user-title").text_content().strip() == target.username
    assert "not enrolled" in page.locator("#user-face").text_content()
    shots(page, "user-view")

    page.click("#user-disable")
    _confirm(page, "confirm-user-disable", shots, "confirm-disable")
    assert "disabled" in page.locator("#user-status").text_content()
    assert db.users.find_one({"_id": target.uid})["disabled"]
    # the disabled user is refused at the password step, in another browser
    other = new_page(y4m.clip("d3"))
    other.goto(idp_server.url + "/login")
    login(other, shots, target)
    other.wait_for_load_state()
    assert "This account is disabled" in other.content()

    page.click("#user-enable")
    page.wait_for_selector("#user-disable")
    assert "active" in page.locator("#user-status").text_content()

    page.click("#user-delete")
    _confirm(page, "confirm-user-delete", shots, "confirm-delete")
    assert path_of(page.url) == "/admin/users"
    assert db.users.find_one({"_id": target.uid}) is None
    assert db.audit_log.count_documents({"event": "admin.user_deleted", "details.deleted_user": target.uid}) == 1

    # phone width: users, audit log and client list fit, buttons are tall enough
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/admin/users", "/admin/audit", "/admin/clients/", f"/admin/users/{admin.uid}"):
        page.goto(idp_server.url + path)
        page.wait_for_load_state()
        _fits(page, 390)
        shots(page, "phone-" + path.strip("/").replace("/", "-")[:30])
    page.goto(idp_server.url + "/admin/audit")
    widths = page.evaluate("""() => [...document.querySelectorAll('code.event')].map(c =>
        c.getClientRects().length)""")
    assert widths and max(widths) == 1, "an event name wraps onto two lines"
    page.goto(idp_server.url + "/login")
    _fits(page, 390)
    shots.assert_clean()
