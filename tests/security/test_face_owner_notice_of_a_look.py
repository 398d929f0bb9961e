"""The owner's notice of a look at the sign-in challenge names who looked.

A capture whose moves were shown and that is left open is counted as an abandoned attempt only when a
later request of the same user settles it: the next start, which may be the owner's own sign-in. The
audit entry of that attempt, and the mail it sends the owner (the first counted failure since the last
success), must name the address and browser that read the challenge, not those of the request that
happened to settle it: otherwise the owner is told that the failed check came from their own address
and has every reason to ignore it.

Real app, real MongoDB server, real face engine and landmark model, real SMTP server.
"""
from __future__ import annotations

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    T0, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst,
)
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401

ATTACKER, OWNER = "203.0.113.66", "198.51.100.20"


def _browser(app, ip: str, agent: str) -> Browser:
    b = Browser(app)
    b.client.environ_base["REMOTE_ADDR"] = ip
    b.client.environ_base["HTTP_USER_AGENT"] = agent
    b.login("alice")
    return b


def test_an_abandoned_look_is_audited_and_mailed_with_the_address_that_read_the_challenge(
        make_app, new_user, d3_turn_left, d3_turn_left_other, smtp_server):
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left", smtp_url=smtp_server.url),
                new_user, d3_turn_left)
    app = make_app(liveness_enabled=True, smtp_url=smtp_server.url)
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]

    # someone with the password reads the challenge (one frame with a face) and leaves the capture open
    thief = _browser(app, ATTACKER, "ThiefBrowser/1.0")
    cap = thief.start("verify").get_json()
    r = thief.api(cap["frames_url"], data=d3_turn_left_other[0], content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0)})
    assert r.get_json()["liveness"]["challenge"]

    # the owner's next sign-in settles it as an abandoned attempt
    owner = _browser(app, OWNER, "OwnerBrowser/2.0")
    assert owner.start("verify").status_code == 201
    # the look is counted (whenever it is: here at the latest): one failure, audited, mailed
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": uid, "details.failures": 1})
    assert entry is not None
    # (the enrollment's and the new browsers' notices arrive at their own pace: wait for this one by subject)
    mails = smtp_server.wait_matching(lambda m: m["Subject"] == "A face check on your account did not pass")
    assert len(mails) == 1
    body = mails[0].get_payload(decode=True).decode()
    # the attempt was the thief's: the audit and the owner's mail must say so
    assert (entry.get("ip"), entry.get("user_agent")) == (ATTACKER, "ThiefBrowser/1.0"), entry
    assert ATTACKER in body and OWNER not in body, body
