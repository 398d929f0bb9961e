"""An authorization code is consumed only by a token request that passes every check (client, redirect_uri,
PKCE verifier): whoever sees a public client's code cannot burn it (or revoke its tokens) with a wrong
verifier, and at most one valid redemption wins under concurrency (none when a losing one revoked its tokens
before they were stored)."""
from __future__ import annotations

import threading

from oauth.conftest import (RP_CALLBACK, cheap_password_hashing, idp, make_server, pkce_pair,  # noqa: F401
                            public_rp, rp, user)


def _code(client):
    res, verifier = client.sign_in_for_code()
    assert "code" in res.params, res.params
    return res.params["code"], verifier


def _reuse_events(idp):
    return idp.db.audit_log.count_documents({"event": "oauth.code_reuse"})


def _attacker_tries(client, code, verifier):
    """What an eavesdropper without the verifier can send."""
    wrong = pkce_pair()[0]
    cases = [
        {"code_verifier": wrong},
        {"code_verifier": verifier[:-1] + ("A" if verifier[-1] != "A" else "B")},
        {"code_verifier": "short"},
        {"code_verifier": "\u00e9" * 50},
        {},  # no verifier
        {"code_verifier": verifier, "redirect_uri": RP_CALLBACK + "/other"},
        {"code_verifier": verifier, "redirect_uri": None},
        {"code_verifier": wrong, "redirect_uri": "https://evil.example/cb"},
    ]
    for extra in cases:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK, **extra}
        data = {k: v for k, v in data.items() if v is not None}
        r = client.token(**data)
        assert r.status_code == 400, (extra, r.status_code, r.text)
        assert r.json()["error"] in ("invalid_grant", "invalid_request"), (extra, r.json())


def test_wrong_verifier_or_redirect_uri_does_not_burn_a_public_clients_code(idp, user, public_rp):
    code, verifier = _code(public_rp)
    _attacker_tries(public_rp, code, verifier)
    assert idp.db.auth_codes.find_one({})["used"] is False
    assert _reuse_events(idp) == 0
    r = public_rp.redeem(code, verifier)
    assert r.status_code == 200, r.text
    tok = r.json()
    # still single use: a second valid redemption is refused and counts as reuse
    again = public_rp.redeem(code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert _reuse_events(idp) == 1
    assert public_rp.refresh(tok["refresh_token"]).json()["error"] == "invalid_grant"


def test_wrong_verifier_after_redemption_does_not_revoke_the_tokens(idp, user, public_rp):
    """A code seen after it was redeemed (history, logs) cannot be used to revoke the client's tokens
    without the verifier."""
    code, verifier = _code(public_rp)
    tok = public_rp.redeem(code, verifier).json()
    _attacker_tries(public_rp, code, verifier)
    assert _reuse_events(idp) == 0
    r = public_rp.refresh(tok["refresh_token"])
    assert r.status_code == 200, r.text


def test_wrong_verifier_does_not_burn_a_confidential_clients_code(idp, user, rp):
    code, verifier = _code(rp)
    r = rp.redeem(code, pkce_pair()[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert rp.redeem(code, verifier).status_code == 200
    assert rp.redeem(code, verifier).json()["error"] == "invalid_grant"


def test_concurrent_redemptions_mixed_with_wrong_verifiers_at_most_one_wins(idp, user, public_rp):
    for _ in range(3):
        code, verifier = _code(public_rp)
        results: list[tuple[bool, object]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(12)

        def redeem(right: bool):
            barrier.wait()
            r = public_rp.redeem(code, verifier if right else pkce_pair()[0])
            with lock:
                results.append((right, r))

        threads = [threading.Thread(target=redeem, args=(i % 2 == 0,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 12
        # at most one wins: the one whose compare-and-set marked the code used - and none when a losing valid
        # redemption revoked its family before its tokens were stored (they would be dead on arrival, so
        # none are sent: invalid_grant)
        ok = [r for right, r in results if r.status_code == 200]
        assert len(ok) <= 1 and all(right for right, r in results if r.status_code == 200)
        assert all(r.json()["error"] == "invalid_grant" for _, r in results if r.status_code != 200)
        # the wrong verifiers never count as reuse; the five losing valid redemptions do
        doc = idp.db.auth_codes.find_one({"code_hash": __import__("hashlib").sha256(code.encode()).hexdigest()})
        assert doc["used"] is True and doc["reused"] is True
