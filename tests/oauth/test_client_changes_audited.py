"""Every change to a relying-party client is in the audit log, whoever makes it (admin pages, ``idp clients``):
its redirect URIs, scopes, consent skipping, face policy, back-channel URI, enabling and disabling decide where
users' codes go and what they are asked. Before, only creating, deleting and rotating a secret were recorded: an
administrator's session (or whoever held it) could add a redirect URI to a trusted client and turn its consent
off, then put it back, and the log showed nothing. Real server over HTTP, real database, real face sign-in for
the admin pages; the command line through Click."""
from __future__ import annotations

import requests

from .conftest import RP_CALLBACK, csrf_from, register_client, signed_in_admin


def _events(db, client_id, event):
    return list(db.audit_log.find({"client_id": client_id, "event": event}).sort("at", 1))


def test_admin_page_changes_to_a_client_are_audited(face_idp, people):
    idp = face_idp
    doc, _ = register_client(idp.db, idp.config, "Bank", [RP_CALLBACK], created_via="admin")
    client_id = doc["client_id"]
    admin = signed_in_admin(idp, people)
    admin_id = idp.db.users.find_one({"username": "root"})["_id"]
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    r = admin.post(f"{idp.url}/admin/clients/{client_id}", data={
        "csrf_token": csrf_from(page.text), "name": "Bank", "redirect_uris": RP_CALLBACK + "\nhttps://evil.example/cb",
        "scope": ["openid", "profile", "email"], "face_policy": "optional", "skip_consent": "on", "enabled": "on"})
    assert r.status_code == 200
    updated = _events(idp.db, client_id, "oauth.client_updated")
    assert len(updated) == 1, updated
    entry = updated[0]
    assert entry["user_id"] == admin_id and entry["decision"] == "updated" and entry["ip"] == "127.0.0.1"
    details = entry["details"]
    assert set(details["changed"]) == {"redirect_uris", "skip_consent"}, details
    assert details["redirect_uris"] == [RP_CALLBACK, "https://evil.example/cb"] and details["skip_consent"] is True
    # the same form posted again changes nothing: nothing more recorded
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    admin.post(f"{idp.url}/admin/clients/{client_id}", data={
        "csrf_token": csrf_from(page.text), "name": "Bank", "redirect_uris": RP_CALLBACK + "\nhttps://evil.example/cb",
        "scope": ["openid", "profile", "email"], "face_policy": "optional", "skip_consent": "on", "enabled": "on"})
    assert len(_events(idp.db, client_id, "oauth.client_updated")) == 1

    r = admin.post(f"{idp.url}/admin/clients/{client_id}/disable", data={"csrf_token": csrf_from(page.text),
                                                                         "confirm": "yes"})
    assert r.status_code == 200 and idp.db.clients.find_one({"_id": client_id})["enabled"] is False
    r = admin.post(f"{idp.url}/admin/clients/{client_id}/enable", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 200 and idp.db.clients.find_one({"_id": client_id})["enabled"] is True
    for event, decision in (("oauth.client_disabled", "disabled"), ("oauth.client_enabled", "enabled")):
        entries = _events(idp.db, client_id, event)
        assert [(e["user_id"], e["decision"]) for e in entries] == [(admin_id, decision)], event
    # the edit form's "enabled" box turned off disables the client, recorded once
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    admin.post(f"{idp.url}/admin/clients/{client_id}", data={
        "csrf_token": csrf_from(page.text), "name": "Bank", "redirect_uris": RP_CALLBACK,
        "scope": ["openid", "profile", "email"], "face_policy": "optional"})
    assert idp.db.clients.find_one({"_id": client_id})["enabled"] is False
    last = _events(idp.db, client_id, "oauth.client_updated")[-1]["details"]
    assert set(last["changed"]) == {"redirect_uris", "skip_consent", "enabled"} and last["enabled"] is False
    assert len(_events(idp.db, client_id, "oauth.client_disabled")) == 1
    assert requests.get(f"{idp.url}/admin/audit", params={"event": "oauth.client_updated"},
                        cookies=admin.cookies).status_code == 200


def test_command_line_changes_to_a_client_are_audited(cli_env, db):  # noqa: F811
    import json

    r = cli_env("clients", "create", "--name", "CLI RP", "--redirect-uri", RP_CALLBACK, "--face", "optional", "--json")
    client_id = json.loads(r.output)["client_id"]
    assert cli_env("clients", "face-policy", client_id, "required").exit_code == 0
    assert cli_env("clients", "disable", client_id).exit_code == 0
    updated = _events(db, client_id, "oauth.client_updated")
    assert [e["details"]["changed"] for e in updated] == [["face_policy"]]
    assert updated[0]["details"]["face_policy"] == "required" and updated[0]["user_id"] is None
    assert [e["decision"] for e in _events(db, client_id, "oauth.client_disabled")] == ["disabled"]
