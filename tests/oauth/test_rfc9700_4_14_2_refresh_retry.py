"""RFC 9700 4.14.2 (refresh token rotation) with clients that retry. Two refresh requests with the same valid refresh
token - parallel calls of one client, or a retry after the first response was lost - used to be told apart from
a replay by nothing: the second was taken as reuse and revoked the whole family, so an honest client lost its
session. Now the refresh token a rotation retired, presented again by the same client within
``tokens.REFRESH_RETRY_S`` of it, for the same scope, while the new pair is unused, gets that same pair again (on
any instance: the pair is derived from the presented token under the shared secret key). Everything else that
presents a rotated refresh token is still a replay and revokes the family."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests

from idp.oauth import tokens

from .conftest import RP, register_client


def _both(call, *args):
    """``call(*args)`` twice at once (two threads released together); the two responses."""
    barrier, out = threading.Barrier(2), [None, None]

    def run(i):
        barrier.wait()
        out[i] = call[i](*args) if isinstance(call, tuple) else call(*args)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _live(rp, pair) -> bool:
    return rp.introspect(pair["access_token"]).get("active") is True


def test_parallel_refreshes_on_two_instances_both_get_the_new_pair(make_server, user):
    first = make_server()
    second = make_server()  # another instance on the same database (and secret key)
    doc, secret = register_client(first.db, first.config, "Example RP", scope="openid profile offline_access")
    rp_a, rp_b = RP(first, doc["client_id"], secret), RP(second, doc["client_id"], secret)
    tok = rp_a.tokens(scope="openid profile offline_access")
    for _ in range(3):  # a few rounds: each pair is refreshed by both instances at once
        a, b = _both((rp_a.refresh, rp_b.refresh), tok["refresh_token"])
        assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
        assert a.json()["refresh_token"] == b.json()["refresh_token"]
        assert a.json()["access_token"] == b.json()["access_token"]
        tok = a.json()
        assert _live(rp_a, tok)
    family = first.db.tokens.find_one({})
    assert family["revoked"] is False and family["rotations"] == 3
    assert first.db.audit_log.count_documents({"event": "oauth.refresh_reuse"}) == 0


def test_a_retry_after_a_lost_response_gets_the_same_pair(idp, user, rp):
    tok = rp.tokens()
    lost = rp.refresh(tok["refresh_token"]).json()  # the client never saw this answer
    again = rp.refresh(tok["refresh_token"])
    assert again.status_code == 200, again.text
    got = again.json()
    assert (got["access_token"], got["refresh_token"]) == (lost["access_token"], lost["refresh_token"])
    assert got["scope"] == "openid profile email offline_access" and got["token_type"] == "Bearer"
    assert _live(rp, got)
    # the session goes on: the new refresh token rotates as usual
    nxt = rp.refresh(got["refresh_token"])
    assert nxt.status_code == 200 and _live(rp, nxt.json())


def test_a_narrowed_refresh_retried_with_the_same_scope(idp, user, rp):
    tok = rp.tokens()
    r1 = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], scope="email openid")
    r2 = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], scope="openid email")
    assert r1.status_code == 200 and r2.status_code == 200, r2.text
    assert r2.json()["access_token"] == r1.json()["access_token"] and r2.json()["scope"] == r1.json()["scope"]
    assert set(rp.introspect(r2.json()["access_token"])["scope"].split()) == {"openid", "email"}


def _revoked_by_replay(idp, rp, pair):
    assert rp.introspect(pair["access_token"]) == {"active": False}
    doc = idp.db.tokens.find_one({})
    assert doc["revoked"] is True and doc["revoked_reason"] == "refresh_reuse"


def test_a_replay_after_the_window_revokes(idp, user, rp):
    tok = rp.tokens()
    new = rp.refresh(tok["refresh_token"]).json()
    # the rotation lies REFRESH_RETRY_S in the past (as when that much time passed)
    doc = idp.db.tokens.find_one({})
    idp.db.tokens.update_one({"_id": doc["_id"]},
                             {"$set": {"rotated_at": doc["rotated_at"] - timedelta(seconds=tokens.REFRESH_RETRY_S)}})
    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _revoked_by_replay(idp, rp, new)


def test_a_replay_once_the_new_refresh_token_was_used_revokes(idp, user, rp):
    tok = rp.tokens()
    r1 = rp.refresh(tok["refresh_token"]).json()
    r2 = rp.refresh(r1["refresh_token"]).json()  # the holder had r1: presenting tok now is not a retry
    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _revoked_by_replay(idp, rp, r2)


def test_a_retry_of_the_token_before_last_revokes(idp, user, rp):
    """Only the token the last rotation retired is retried; r1 presented after r1 -> r2 is within the window for
    r1 but r1 is the one retired last: it gets r2 again. tok, retired before, revokes."""
    tok = rp.tokens()
    r1 = rp.refresh(tok["refresh_token"]).json()
    r2 = rp.refresh(r1["refresh_token"]).json()
    again = rp.refresh(r1["refresh_token"])
    assert again.status_code == 200 and again.json()["refresh_token"] == r2["refresh_token"]
    assert rp.refresh(tok["refresh_token"]).status_code == 400
    _revoked_by_replay(idp, rp, r2)


@pytest.mark.parametrize("scope", ["openid email", None])
def test_a_retry_for_another_scope_is_a_replay(idp, user, rp, scope):
    """The retry must be the same request: the first asked for no scope (or for "openid profile"), the second for
    another (or none). Not merely refused with the family kept: its sender may be a thief holding the retired token,
    who could then send it again with the holder's scope (``tokens.rotate_refresh``)."""
    tok = rp.tokens()
    first = {} if scope else {"scope": "openid profile"}
    new = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], **first)
    assert new.status_code == 200
    second = {"scope": scope} if scope else {}
    r = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], **second)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _revoked_by_replay(idp, rp, new.json())
    # the holder's own request, sent now, finds the grant ended
    again = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], **first)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert [e["details"]["reason"] for e in _audited(idp, "oauth.refresh_reuse")][:1] == ["another_scope"]


def _audited(idp, event):
    return list(idp.db.audit_log.find({"event": event}).sort("at", 1))


def test_a_served_retry_is_audited(idp, user, rp):
    tok = rp.tokens()
    rp.refresh(tok["refresh_token"])
    assert _audited(idp, "oauth.refresh_retry") == []  # a plain rotation writes nothing
    assert rp.refresh(tok["refresh_token"]).status_code == 200
    [retry] = _audited(idp, "oauth.refresh_retry")
    assert retry["user_id"] == user["_id"] and retry["client_id"] == rp.client_id
    assert retry["decision"] == "same_pair" and retry["ip"] == "127.0.0.1" and retry["user_agent"]
    assert retry["details"] == {"presented_by": rp.client_id}
    assert _audited(idp, "oauth.refresh_reuse") == []


@pytest.mark.parametrize("how", ["after_window", "not_last_retired", "another_client"])
def test_a_replay_is_audited_with_why_it_was_no_retry(idp, user, rp, how):
    tok = rp.tokens()
    new = rp.refresh(tok["refresh_token"]).json()
    presenter = rp
    if how == "after_window":
        doc = idp.db.tokens.find_one({})
        idp.db.tokens.update_one({"_id": doc["_id"]}, {"$set": {
            "rotated_at": doc["rotated_at"] - timedelta(seconds=tokens.REFRESH_RETRY_S)}})
    elif how == "not_last_retired":  # its successor was refreshed since
        assert rp.refresh(new["refresh_token"]).status_code == 200
    else:
        doc, secret = register_client(idp.db, idp.config, "Other", scope="openid profile email offline_access")
        presenter = RP(idp, doc["client_id"], secret)
    assert presenter.refresh(tok["refresh_token"]).status_code == 400
    [reuse] = _audited(idp, "oauth.refresh_reuse")
    assert reuse["decision"] == "family_revoked" and reuse["user_id"] == user["_id"]
    assert reuse["client_id"] == rp.client_id and reuse["ip"] == "127.0.0.1"
    assert reuse["details"] == {"presented_by": presenter.client_id, "reason": how}
    assert _audited(idp, "oauth.refresh_retry") == []


def test_another_client_presenting_the_retired_token_gets_nothing(idp, user, rp):
    tok = rp.tokens()
    new = rp.refresh(tok["refresh_token"]).json()
    doc, secret = register_client(idp.db, idp.config, "Other", scope="openid profile email offline_access")
    other = RP(idp, doc["client_id"], secret)
    r = other.refresh(tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and "access_token" not in r.json()
    _revoked_by_replay(idp, rp, new)


def test_a_retry_across_a_secret_key_rotation(make_server, user, tmp_path):
    """The first instance rotated under the old key; the retry reaches one whose key is new (the old one retired):
    the pair is found under the retired key."""
    old, new_key = "o" * 40, "n" * 40
    first = make_server(secret_key=old)
    second = make_server(secret_key=new_key, secret_keys_retired=old)
    doc, secret = register_client(first.db, first.config, "Example RP", scope="openid offline_access")
    rp_a, rp_b = RP(first, doc["client_id"], secret), RP(second, doc["client_id"], secret)
    tok = rp_a.tokens(scope="openid offline_access")
    lost = rp_a.refresh(tok["refresh_token"]).json()
    again = rp_b.refresh(tok["refresh_token"])
    assert again.status_code == 200 and again.json()["refresh_token"] == lost["refresh_token"]
    assert requests.get(f"{second.url}/oauth/userinfo",
                        headers={"Authorization": f"Bearer {again.json()['access_token']}"}).status_code == 200


@pytest.mark.parametrize("end", ["revoked", "client_disabled"])
def test_a_retry_after_the_grant_ended_gets_nothing(idp, user, rp, end):
    """Within the window and with the new pair unused, but the grant ended since (its client revoked it, RFC 7009;
    its client was disabled and enabled again): the retry is answered as any presentation of a dead grant, with no
    pair, not even a dead one."""
    from idp.oauth import clients

    tok = rp.tokens()
    new = rp.refresh(tok["refresh_token"]).json()
    if end == "revoked":
        r = requests.post(f"{idp.url}/oauth/revoke", data={"token": new["refresh_token"]}, auth=rp.auth())
        assert r.status_code == 200
    else:
        assert clients.disable_client(idp.db, rp.client_id) and clients.enable_client(idp.db, rp.client_id)
    r = rp.refresh(tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and "access_token" not in r.json(), r.text
    assert rp.introspect(new["access_token"]) == {"active": False}
