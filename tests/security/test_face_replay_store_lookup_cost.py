"""A sign-in frame's look-up in the perceptual replay store reads the stored rows that share a band with its
face hash, not every row of the store.

Every sign-in frame's face hash is stored as it arrives and a failed capture's stay 30 days, so the store
grows with every sign-in on the server, and any account can make it grow (600 frames per 10 minutes). The
look-up of each frame (two queries) asked for the rows of the user that share a band *and* have a kind, a
turned flag, another capture, or no bands at all (``$or ... $exists``): the suite's database (SecantusDB,
the embedded default) serves only a query made of the index's own fields from the index, so every frame of
every user scanned the whole collection - another account's 6,000 rows made each of alice's frames examine
6,000 documents twice (at 20,000 rows, 0.8-1.3 s a frame on the shared machine, while the frame holds a
face slot of its worker). And the rows of a pose held still (not turned), which never
take part in a replay check, all share bands with the next frame of the same pose: an account that piles
them up made its own look-ups read them all.

Real app, real MongoDB server (the suite's), real face engine and landmark model on frames of a shared
clip; the queries the app sends are recorded as sent (a command listener) and explained by the server.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

from pymongo import monitoring

from faceweb.test_liveness_web import T0, d3_turn_left, d3_turn_left_other, enroll_with, live_app  # noqa: F401
from idp import get_db
from idp.faceweb import liveness as web

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user  # noqa: F401


class _Finds(monitoring.CommandListener):
    """The ``find`` commands sent to the replay store while ``on``."""

    def __init__(self):
        self.on, self.filters = False, []

    def started(self, event):
        if self.on and event.command_name == "find" and event.command.get("find") == "liveness_face_hashes":
            self.filters.append(event.command.get("filter") or {})

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


FINDS = _Finds()
monitoring.register(FINDS)  # clients made from here on (the test's app) report to it; idle unless on


def _hex(h: int) -> str:
    return f"{h:064x}"


def _others_rows(db, rng, now, with_prev: bool = False) -> None:
    """6,000 turned sign-in frames of seven other accounts' failed captures (random hashes), as stored."""
    for k in range(6000):
        fh = _hex(rng.getrandbits(256))
        web.remember_frame_hash(db, f"mallory-{k % 7}", f"m-cap-{k // 60}", fh, True, now,
                                prev=_hex(rng.getrandbits(256)) if with_prev else None)


def test_a_sign_in_frame_reads_only_the_replay_rows_sharing_a_band_with_it(live_app, new_user, d3_turn_left,
                                                                           d3_turn_left_other):
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    rng, now = random.Random(11), datetime.now(timezone.utc)
    # What other accounts' failed sign-ins leave (turned frames, stored as each arrived, kept 30 days) ...
    _others_rows(db, rng, now, with_prev=True)
    # ... and what alice's own account left when it filmed a pose held still in failed captures: near-identical
    # hashes of a pose that was not turned (they never take part in a replay check)
    held = rng.getrandbits(256)
    for k in range(1500):
        h = held
        for bit in rng.sample(range(256), 4):
            h ^= 1 << bit
        web.remember_frame_hash(db, uid, f"a-cap-{k // 60}", _hex(h), False, now)
    stored = db.liveness_face_hashes.count_documents({})

    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    FINDS.filters, FINDS.on = [], True
    try:
        for k, image in enumerate(d3_turn_left_other[:4]):
            r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                      headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + k * 150.0)})
            assert r.status_code == 200, r.get_json()
    finally:
        FINDS.on = False
    assert FINDS.filters, "no look-up of the replay store was made"
    examined = []
    for flt in FINDS.filters:
        plan = db.command("explain", {"find": "liveness_face_hashes", "filter": flt}, verbosity="executionStats")
        examined.append(int(plan["executionStats"]["totalDocsExamined"]))
    # rows sharing one of 17 15-bit bands with a random hash: about 13,500 * 17 / 32768 = 7 by chance; alice's
    # own held pose, were its rows indexed, all ~1500 for a frame of the same pose
    assert max(examined) <= 60, (examined, stored)


def test_an_accepted_sign_in_trims_the_accepted_rows_reading_only_the_users_own(live_app, new_user, d3_turn_left,
                                                                                d3_turn_left_other):
    """A match turns its capture's rows into accepted ones and keeps the user's newest FACE_HASHES_KEPT: the
    trim asked for the user's rows whose kind is not "failed" (``$ne``), which the embedded database answered
    by scanning the whole store, every user's rows, at every accepted sign-in."""
    from faceweb.test_liveness_web import send_burst

    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left_other)
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    rng, now = random.Random(12), datetime.now(timezone.utc)
    _others_rows(db, rng, now)
    b = Browser(app)
    b.login("alice")
    FINDS.filters, FINDS.on = [], True
    try:
        cap, answers, fin = send_burst(b, "verify", d3_turn_left)
    finally:
        FINDS.on = False
    assert fin.get_json()["ok"] is True, fin.get_json()
    own = db.liveness_face_hashes.count_documents({"user_id": uid})
    examined = []
    for flt in FINDS.filters:
        plan = db.command("explain", {"find": "liveness_face_hashes", "filter": flt, "sort": {"created": -1}},
                          verbosity="executionStats")
        examined.append(int(plan["executionStats"]["totalDocsExamined"]))
    assert max(examined) <= own, (examined, own)
