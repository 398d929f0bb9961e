"""``idp clients`` / ``idp keys`` (CliRunner), the demo client, admin pages for clients."""
from __future__ import annotations

import json
import os
import re
import stat

import requests

from .conftest import PASSWORD, RP, RP_CALLBACK, csrf_from, signed_in_admin


def test_cli_clients_create_list_delete(cli_env, db):
    r = cli_env("clients", "create", "--name", "CLI RP", "--redirect-uri", "https://a.example/cb",
                "--redirect-uri", "https://a.example/cb2", "--scope", "openid profile email",
                "--face", "optional", "--post-logout-redirect-uri", "https://a.example/", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["client_id"] and out["client_secret"]
    assert out["redirect_uris"] == ["https://a.example/cb", "https://a.example/cb2"]
    assert out["face_policy"] == "optional" and "secret_hash" not in out
    doc = db.clients.find_one({"_id": out["client_id"]})
    assert doc["secret_hash"] and out["client_secret"] not in repr(doc)

    r = cli_env("clients", "create", "--name", "SPA", "--redirect-uri", "https://spa.example/cb", "--public", "--json")
    pub = json.loads(r.output)
    assert pub["public"] is True and "client_secret" not in pub

    r = cli_env("clients", "list", "--json")
    listed = json.loads(r.output)
    assert {c["client_id"] for c in listed} == {out["client_id"], pub["client_id"]}
    assert all("client_secret" not in c and "secret_hash" not in c for c in listed)

    r = cli_env("clients", "delete", out["client_id"])
    assert r.exit_code == 0
    assert [c["client_id"] for c in json.loads(cli_env("clients", "list", "--json").output)] == [pub["client_id"]]
    assert cli_env("clients", "delete", "nope").exit_code != 0


def test_cli_clients_list_of_none_says_so(cli_env):
    r = cli_env("clients", "list")
    assert r.exit_code == 0 and r.output.strip() == "no clients yet (idp clients create, or the admin pages)"
    assert json.loads(cli_env("clients", "list", "--json").output) == []


def test_cli_rejects_bad_input(cli_env):
    r = cli_env("clients", "create", "--name", "x", "--redirect-uri", "not-a-url", "--json")
    assert r.exit_code != 0 and "redirect URI" in r.output
    r = cli_env("clients", "create", "--name", "x", "--redirect-uri", "https://a/cb", "--scope", "openid admin")
    assert r.exit_code != 0
    r = cli_env("clients", "create", "--name", "x", "--redirect-uri", "https://a/cb", "--face", "sometimes")
    assert r.exit_code != 0
    # a name is shown on the sign-in and consent pages: text only, no control characters
    r = cli_env("clients", "create", "--name", "Pay\nroll\x00", "--redirect-uri", "https://a/cb")
    assert r.exit_code != 0 and "control characters" in r.output


def test_cli_keys_rotate_and_list(cli_env, db):
    r = cli_env("keys", "rotate")
    assert r.exit_code == 0, r.output
    keys = json.loads(cli_env("keys", "list", "--json").output)
    active = [k for k in keys if k["active"]]
    assert sorted(k["alg"] for k in active) == ["ES256", "RS256"]
    assert len([k for k in keys if not k["active"] and k["retire_after"]]) == 2


def test_ensure_demo_client_idempotent(db, tmp_path):
    from idp.config import Config
    from idp.oauth import clients
    from idp.store import migrate
    migrate.apply(db)
    config = Config(data_dir=tmp_path).ensure_secrets()
    a = clients.ensure_demo_client(db, config, "http://127.0.0.1:5001")
    path = tmp_path / "demo-client.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    b = clients.ensure_demo_client(db, config, "http://127.0.0.1:5001")
    assert a == b and db.clients.count_documents({}) == 1
    doc = db.clients.find_one({})
    assert doc["redirect_uris"] == ["http://127.0.0.1:5001/callback"]
    assert doc["post_logout_redirect_uris"] == ["http://127.0.0.1:5001/"]
    assert "refresh_token" in doc["grant_types"]
    assert clients.verify_secret(config, doc, a["client_secret"])
    path.unlink()  # credentials lost: the secret is rotated, same client
    c = clients.ensure_demo_client(db, config, "http://127.0.0.1:5001")
    assert c["client_id"] == a["client_id"] and c["client_secret"] != a["client_secret"]
    assert clients.verify_secret(config, db.clients.find_one({}), c["client_secret"])
    assert not clients.verify_secret(config, db.clients.find_one({}), a["client_secret"])


def test_admin_pages(face_idp, people):
    # non-admins are refused
    from idp.accounts.users import create_user
    idp = face_idp
    create_user(idp.db, "alice", "alice@example.org", PASSWORD)
    s = requests.Session()
    page = s.get(f"{idp.url}/login")
    s.post(f"{idp.url}/login", data={"csrf_token": csrf_from(page.text), "username": "alice", "password": PASSWORD})
    assert s.get(f"{idp.url}/admin/clients/").status_code == 403

    admin = signed_in_admin(idp, people)  # password, then enrollment and a face check
    page = admin.get(f"{idp.url}/admin/clients/new")
    assert page.status_code == 200
    r = admin.post(f"{idp.url}/admin/clients/new", data={
        "csrf_token": csrf_from(page.text), "name": "Admin RP", "redirect_uris": RP_CALLBACK,
        "scope": ["openid", "email"], "face_policy": "optional"})
    assert r.status_code == 200
    client_id = re.search(r'class="client-id">([^<]+)<', r.text).group(1)
    secret = re.search(r'class="client-secret">([^<]+)<', r.text).group(1)
    doc = idp.db.clients.find_one({"_id": client_id})
    assert doc["face_policy"] == "optional" and doc["scope"] == "openid email" and doc["created_via"] == "admin"
    assert RP(idp, client_id, secret).tokens(scope="openid email")["access_token"]

    listing = admin.get(f"{idp.url}/admin/clients/")
    assert "Admin RP" in listing.text
    # edit
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    r = admin.post(f"{idp.url}/admin/clients/{client_id}", data={
        "csrf_token": csrf_from(page.text), "name": "Renamed RP", "redirect_uris": RP_CALLBACK + "\nhttps://b.example/cb",
        "scope": ["openid", "profile"], "face_policy": "required", "enabled": "on",
        "backchannel_logout_uri": "https://b.example/bc", "backchannel_logout_session_required": "on",
        "logo_uri": "https://b.example/logo.png", "default_max_age": "600"})
    assert r.status_code == 200
    doc = idp.db.clients.find_one({"_id": client_id})
    assert doc["default_max_age"] == 600
    assert doc["name"] == "Renamed RP" and doc["redirect_uris"] == [RP_CALLBACK, "https://b.example/cb"]
    assert doc["backchannel_logout_uri"] == "https://b.example/bc" and doc["backchannel_logout_session_required"]
    assert doc["logo_uri"] == "https://b.example/logo.png"
    edit_page = admin.get(f"{idp.url}/admin/clients/{client_id}").text
    assert 'value="https://b.example/bc"' in edit_page and 'name="default_max_age" type="number" min="0" step="1" ' \
        'value="600"' in edit_page
    # a value edited into the database by hand is shown (escaped) for the admin to mend, not a 500
    idp.db.clients.update_one({"_id": client_id}, {"$set": {"default_max_age": "<b>soon"}})
    r = admin.get(f"{idp.url}/admin/clients/{client_id}")
    assert r.status_code == 200 and 'value="&lt;b&gt;soon"' in r.text and "<b>soon" not in r.text
    # a whole double (as the mongo shell writes 300) shows as the whole seconds the form accepts back
    idp.db.clients.update_one({"_id": client_id}, {"$set": {"default_max_age": 300.0}})
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    assert 'step="1" value="300"' in page.text, re.findall(r'name="default_max_age"[^>]*>', page.text)
    r = admin.post(f"{idp.url}/admin/clients/{client_id}", data={
        "csrf_token": csrf_from(page.text), "name": "Renamed RP", "redirect_uris": RP_CALLBACK + "\nhttps://b.example/cb",
        "scope": ["openid", "profile"], "face_policy": "required", "enabled": "on",
        "backchannel_logout_uri": "https://b.example/bc", "backchannel_logout_session_required": "on",
        "logo_uri": "https://b.example/logo.png",
        "default_max_age": re.search(r'name="default_max_age"[^>]*value="([^"]*)"', page.text).group(1)})
    assert r.status_code == 200, r.status_code
    assert idp.db.clients.find_one({"_id": client_id})["default_max_age"] == 300
    idp.db.clients.update_one({"_id": client_id}, {"$set": {"default_max_age": 600}})
    # rotate secret: shown once, old one stops working
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    r = admin.post(f"{idp.url}/admin/clients/{client_id}/rotate-secret", data={"csrf_token": csrf_from(page.text)})
    assert 'id="confirm-rotate"' in r.text and "client-secret" not in r.text  # asks first
    r = admin.post(f"{idp.url}/admin/clients/{client_id}/rotate-secret", data={"csrf_token": csrf_from(r.text),
                                                                                "confirm": "yes"})
    new_secret = re.search(r'class="client-secret">([^<]+)<', r.text).group(1)
    assert new_secret != secret
    from idp.oauth.clients import verify_secret
    doc = idp.db.clients.find_one({"_id": client_id})
    assert verify_secret(idp.config, doc, new_secret) and not verify_secret(idp.config, doc, secret)
    # disable (confirmed)
    r = admin.post(f"{idp.url}/admin/clients/{client_id}/disable", data={"csrf_token": csrf_from(page.text),
                                                                         "confirm": "yes"})
    assert idp.db.clients.find_one({"_id": client_id})["enabled"] is False
    # invalid input is refused
    page = admin.get(f"{idp.url}/admin/clients/new")
    r = admin.post(f"{idp.url}/admin/clients/new", data={"csrf_token": csrf_from(page.text), "name": "x",
                                                         "redirect_uris": "javascript:alert(1)"})
    assert r.status_code == 400
    # at most 20 redirect URIs (clients.MAX_LIST_ITEMS): a form error, nothing written
    many = "\n".join(f"https://rp.example/cb/{i}" for i in range(21))
    before = idp.db.clients.count_documents({})
    page = admin.get(f"{idp.url}/admin/clients/new")
    r = admin.post(f"{idp.url}/admin/clients/new", data={"csrf_token": csrf_from(page.text), "name": "Many",
                                                         "redirect_uris": many})
    assert r.status_code == 400 and "at most 20 redirect URIs are allowed (21 given)" in r.text
    assert idp.db.clients.count_documents({}) == before
    # a maximum sign-in age that is not whole seconds: a form error (escaped), nothing written
    page = admin.get(f"{idp.url}/admin/clients/new")
    r = admin.post(f"{idp.url}/admin/clients/new", data={"csrf_token": csrf_from(page.text), "name": "Aged",
                                                         "redirect_uris": RP_CALLBACK, "default_max_age": "<b>1h"})
    assert r.status_code == 400 and "default_max_age must be a whole number of seconds" in r.text
    assert "<b>1h" not in r.text and idp.db.clients.count_documents({}) == before
    page = admin.get(f"{idp.url}/admin/clients/{client_id}")
    r = admin.post(f"{idp.url}/admin/clients/{client_id}", data={
        "csrf_token": csrf_from(page.text), "name": "Renamed again", "redirect_uris": many, "enabled": "on"})
    assert r.status_code == 400 and "at most 20 redirect URIs" in r.text
    doc = idp.db.clients.find_one({"_id": client_id})
    assert doc["name"] == "Renamed RP" and doc["redirect_uris"] == [RP_CALLBACK, "https://b.example/cb"]


def test_cli_refuses_too_many_or_too_long_redirect_uris(cli_env, db):
    """The CLI registers through the same clients service: at most 20 redirect URIs of at most 2,000
    characters (``clients.MAX_LIST_ITEMS``, ``clients.MAX_URI_LENGTH``), refused with nothing written."""
    args = [a for i in range(21) for a in ("--redirect-uri", f"https://a.example/cb/{i}")]
    r = cli_env("clients", "create", "--name", "Many", *args)
    assert r.exit_code != 0 and "at most 20 redirect URIs are allowed (21 given)" in r.output
    r = cli_env("clients", "create", "--name", "Long", "--redirect-uri", "https://a.example/" + "a" * 2000)
    assert r.exit_code != 0 and "at most 2000 characters" in r.output
    r = cli_env("clients", "create", "--name", "Many logouts", "--redirect-uri", "https://a.example/cb",
                *[a for i in range(21) for a in ("--post-logout-redirect-uri", f"https://a.example/{i}")])
    assert r.exit_code != 0 and "at most 20 post-logout redirect URIs" in r.output
    assert db.clients.count_documents({}) == 0
    r = cli_env("clients", "create", "--name", "Twenty", "--json", *args[:40])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["redirect_uris"]) == 20


def test_generated_client_ids_never_start_with_a_dash():
    """A client id is passed to `idp clients delete ID`: one starting with '-' would be read as an option."""
    from idp.oauth.clients import new_client_id
    ids = [new_client_id() for _ in range(3000)]  # about 47 would start with '-' if drawn plainly
    assert all(i[0] != "-" for i in ids) and len(set(ids)) == len(ids)


def test_the_demo_client_is_never_one_registered_by_someone_else_under_its_name(db, tmp_path):
    """The demo relying party's client was found by its name alone, the oldest first: a client registered under
    the name "Demo relying party" before the demo first ran (through RFC 7591 registration, whose registrant
    picks the name, or the admin pages) was taken for it - its secret rotated, its redirect URIs and back-channel
    URI rewritten (for a self-registered client the loopback back-channel URI is refused, so the demo did not
    start). Only a client the demo created (``created_via`` "demo") is the demo's."""
    from idp.config import Config
    from idp.oauth import clients
    from idp.store import migrate
    migrate.apply(db)
    config = Config(data_dir=tmp_path).ensure_secrets()
    squatter, secret = clients.create_client(db, config, clients.DEMO_CLIENT_NAME, ["https://squat.example/cb"],
                                             created_via="registration")
    demo = clients.ensure_demo_client(db, config, "http://127.0.0.1:5001")
    assert demo["client_id"] != squatter["client_id"]
    assert db.clients.find_one({"_id": demo["client_id"]})["created_via"] == "demo"
    kept = db.clients.find_one({"_id": squatter["client_id"]})
    assert kept["redirect_uris"] == ["https://squat.example/cb"] and clients.verify_secret(config, kept, secret)
    assert clients.ensure_demo_client(db, config, "http://127.0.0.1:5001") == demo
