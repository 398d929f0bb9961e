"""Audit entries for OAuth events: ids and outcomes only, never codes, tokens or secrets."""
from __future__ import annotations

import json
import re

from .conftest import RP_CALLBACK, csrf_from, pkce_pair, signed_in_admin


def _entries(db, event):
    return list(db.audit_log.find({"event": event}).sort("at", 1))


def _no_secret_in_log(db, *secrets):
    dump = json.dumps(list(db.audit_log.find({}, {"_id": 0, "at": 0})), default=str)
    for s in secrets:
        assert s and s not in dump
        family, dot, _ = s.partition(".")
        if dot:  # a token value: not even its family id (the part before the dot)
            assert family not in dump


def test_code_issued_and_consent_granted(idp, user, rp):
    res, verifier = rp.sign_in_for_code(scope="openid email offline_access")
    code = res.params["code"]
    [granted] = _entries(idp.db, "oauth.consent_granted")
    assert granted["user_id"] == user["_id"] and granted["client_id"] == rp.client_id
    assert granted["details"]["scopes"] == ["openid", "email", "offline_access"] and granted["ip"] == "127.0.0.1"
    [issued] = _entries(idp.db, "oauth.code_issued")
    assert issued["user_id"] == user["_id"] and issued["client_id"] == rp.client_id
    assert issued["decision"] == "issued" and issued["ip"] == "127.0.0.1" and issued["user_agent"]
    assert issued["details"]["scopes"] == ["openid", "email", "offline_access"] and issued["details"]["amr"] == ["pwd"]
    tok = rp.redeem(code, verifier).json()
    _no_secret_in_log(idp.db, code, verifier, tok["access_token"], tok["refresh_token"], tok["id_token"],
                      rp.secret)


def test_consent_denied(idp, user, rp):
    res = rp.login(rp.follow(rp.authorize_url(code_challenge=pkce_pair()[1], code_challenge_method="S256")))
    res = rp.consent(res, decision="deny")
    assert res.params["error"] == "access_denied"
    [denied] = _entries(idp.db, "oauth.consent_denied")
    assert denied["user_id"] == user["_id"] and denied["client_id"] == rp.client_id
    assert denied["decision"] == "denied"
    assert _entries(idp.db, "oauth.code_issued") == [] and _entries(idp.db, "oauth.consent_granted") == []


def test_consent_revoked_on_connected_apps(idp, user, rp):
    rp.tokens()
    page = rp.browser.get(f"{idp.url}/account/apps")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    rp.browser.post(f"{idp.url}/account/apps/{rp.client_id}/remove", data={"csrf_token": token})
    rp.browser.post(f"{idp.url}/account/apps/no-such-client/remove", data={"csrf_token": token})
    [revoked] = _entries(idp.db, "oauth.consent_revoked")  # the unknown one is not logged
    assert revoked["user_id"] == user["_id"] and revoked["client_id"] == rp.client_id
    assert revoked["decision"] == "revoked" and revoked["ip"] == "127.0.0.1"


def test_refresh_reuse_audited_but_normal_refresh_not(idp, user, rp):
    tok = rp.tokens()
    before = idp.db.audit_log.count_documents({})
    r1 = rp.refresh(tok["refresh_token"]).json()
    r2 = rp.refresh(r1["refresh_token"]).json()
    assert idp.db.audit_log.count_documents({}) == before  # the hot path writes no audit entry
    assert rp.refresh(tok["refresh_token"]).status_code == 400
    [reuse] = _entries(idp.db, "oauth.refresh_reuse")
    assert reuse["user_id"] == user["_id"] and reuse["client_id"] == rp.client_id
    assert reuse["decision"] == "family_revoked" and reuse["ip"] == "127.0.0.1"
    assert reuse["details"] == {"presented_by": rp.client_id, "reason": "not_last_retired"}
    _no_secret_in_log(idp.db, tok["refresh_token"], r1["refresh_token"], r2["refresh_token"], r2["access_token"])


def test_code_reuse_audited(idp, user, rp):
    res, verifier = rp.sign_in_for_code()
    code = res.params["code"]
    tok = rp.redeem(code, verifier).json()
    assert _entries(idp.db, "oauth.code_reuse") == []
    assert rp.redeem(code, verifier).status_code == 400
    [reuse] = _entries(idp.db, "oauth.code_reuse")
    assert reuse["user_id"] == user["_id"] and reuse["client_id"] == rp.client_id
    assert reuse["decision"] == "tokens_revoked" and reuse["ip"] == "127.0.0.1"
    assert reuse["details"]["presented_by"] == rp.client_id
    _no_secret_in_log(idp.db, code, verifier, tok["access_token"], tok["refresh_token"])


def test_client_lifecycle_from_admin_pages(face_idp, people):
    idp = face_idp
    admin = signed_in_admin(idp, people)
    root = idp.db.users.find_one({"username": "root"})["_id"]
    page = admin.get(f"{idp.url}/admin/clients/new")
    r = admin.post(f"{idp.url}/admin/clients/new", data={
        "csrf_token": csrf_from(page.text), "name": "Audited RP", "redirect_uris": RP_CALLBACK,
        "scope": ["openid", "email"], "face_policy": "optional"})
    client_id = re.search(r'class="client-id">([^<]+)<', r.text).group(1)
    secret = re.search(r'class="client-secret">([^<]+)<', r.text).group(1)
    [created] = _entries(idp.db, "oauth.client_created")
    assert created["client_id"] == client_id and created["user_id"] == root and created["ip"] == "127.0.0.1"
    assert created["details"]["via"] == "admin" and created["details"]["public"] is False
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    r = admin.post(f"{idp.url}/admin/clients/{client_id}/rotate-secret", data={"csrf_token": csrf_from(page.text),
                                                                                "confirm": "yes"})
    new_secret = re.search(r'class="client-secret">([^<]+)<', r.text).group(1)
    [rotated] = _entries(idp.db, "oauth.client_secret_rotated")
    assert rotated["client_id"] == client_id and rotated["user_id"] == root and rotated["decision"] == "rotated"
    r = admin.post(f"{idp.url}/admin/clients/{client_id}/delete", data={"csrf_token": csrf_from(page.text),
                                                                         "confirm": "yes"})
    [deleted] = _entries(idp.db, "oauth.client_deleted")
    assert deleted["client_id"] == client_id and deleted["user_id"] == root and deleted["ip"] == "127.0.0.1"
    _no_secret_in_log(idp.db, secret, new_secret)


def test_client_lifecycle_from_cli(cli_env, db):  # noqa: F811
    r = cli_env("clients", "create", "--name", "CLI RP", "--redirect-uri", RP_CALLBACK, "--json")
    out = json.loads(r.output)
    client_id = out["client_id"]
    r = cli_env("clients", "rotate-secret", "--json", "--", client_id)
    rotated_secret = json.loads(r.output)["client_secret"]
    cli_env("clients", "delete", "--", client_id)
    events = [(e["event"], e["client_id"], e["user_id"], e["ip"]) for e in db.audit_log.find({}).sort("at", 1)]
    assert events == [("oauth.client_created", client_id, None, None),
                      ("oauth.client_secret_rotated", client_id, None, None),
                      ("oauth.client_deleted", client_id, None, None)]
    _no_secret_in_log(db, out["client_secret"], rotated_secret)


def test_audit_failure_never_breaks_the_flow(idp, user, rp):
    # The real database refuses every audit document from here on (a collection validator).
    idp.db.command("collMod", "audit_log", validator={"event": {"$exists": False}})
    stored = idp.db.audit_log.count_documents({})
    tok = rp.tokens()
    r1 = rp.refresh(tok["refresh_token"])
    assert r1.status_code == 200
    r2 = rp.refresh(r1.json()["refresh_token"])
    assert r2.status_code == 200
    assert rp.refresh(tok["refresh_token"]).status_code == 400  # reuse (not a retry: r1 was used) still revokes
    assert rp.introspect(r2.json()["access_token"]) == {"active": False}
    assert idp.db.audit_log.count_documents({}) == stored  # every audit write of the flow failed
