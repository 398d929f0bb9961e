"""A pre-recorded clip gets one judged try per challenge, and one try per recording.

The liveness challenge is a random sequence of head moves; a fixed clip performs one sequence, so it
passes a try only when the draw happens to fit it. Two ways around that bound are closed here:

* throwing a challenge away until a draw fits the clip (restarting, abandoning, failing on purpose): at
  sign-in the challenge is kept until the user matches;
* trying the same clip again, or rehearsing it in a capture that is never finished: the face hashes of
  a failed, abandoned or undecided capture's frames join the user's perceptual replay store, so the same
  recording, re-encoded, is refused as a replay; an abandoned capture is a counted failure.

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

import io

from PIL import Image

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    FPS, T0, _transformed, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, held_still, live_app,
    send_burst,
)
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, enrolled, make_app, new_user, people  # noqa: F401


def _enrolled_alice(live_app, new_user, frames):
    """alice enrolled with a live turn (challenge turn_left): (app pinned to turn_left, db, her id)."""
    app = live_app("turn_left")
    enroll_with(app, new_user, frames)
    db = get_db(app)
    return app, db, db.users.find_one({"username": "alice"})["_id"]


def _pending(app, uid):
    return (get_db(app).face_status.find_one({"_id": uid}) or {}).get("pending_challenge")


def test_only_a_match_draws_a_new_sign_in_challenge(enrolled, make_app, new_user, faces_dir, d3_turn_left):
    user, _ = enrolled
    uid = user["_id"]
    app = make_app(liveness_enabled=True)  # the default: a turn and a tilt in random order (8 sequences)
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    first = b.start("verify").get_json()
    assert first["moves_needed"] == 2 and "challenge" not in first  # (shown with the first face frame)
    pending = _pending(app, uid)
    # abandoned before filming: six more starts keep the same moves (a fresh draw each time would repeat
    # the first one six times with probability 8**-6), and nothing is counted
    for _ in range(6):
        cap = b.start("verify").get_json()
        assert _pending(app, uid) == pending and cap["capture_id"] != first["capture_id"]
    # finished without a decision (no frame): not a counted attempt, and the challenge stays
    assert b.finish(cap).get_json()["ok"] is False
    assert (db.face_status.find_one({"_id": uid}) or {}).get("failures", 0) == 0
    b.start("verify")
    assert _pending(app, uid) == pending
    # a counted failure (a still photo) does not throw the challenge away either ...
    still = Image.open(io.BytesIO(clip_frames(faces_dir, "d3", 1.0, 0.2)[0]))
    cap, answers, fin = send_burst(b, "verify", held_still(still, 16, shift=True))
    assert answers[0]["liveness"]["challenge"] == pending.split("+")[0]  # (a face: the first move is shown)
    assert fin.get_json()["ok"] is False and fin.get_json()["liveness"]["passed"] is False
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    assert _pending(app, uid) == pending
    # ... nor does the cheapest counted failure: a frame another capture already sent (409)
    cap = b.start("verify").get_json()
    r = b.api(cap["frames_url"], data=held_still(still, 16, shift=True)[0], content_type="image/jpeg",
              headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0)})
    assert r.status_code == 409 and r.get_json()["error"] == "replayed_frame"
    assert db.face_status.find_one({"_id": uid})["failures"] == 2
    b.start("verify")
    assert _pending(app, uid) == pending
    # enrollment draws per capture and leaves the pending sign-in challenge alone
    bob = Browser(app)
    new_user("bob")
    bob.login("bob")
    bob.consent()
    assert all(bob.start("enroll").status_code == 201 for _ in range(3))
    assert _pending(app, uid) == pending
    assert (db.face_status.find_one({"_id": db.users.find_one({"username": "bob"})["_id"]}) or {}).get(
        "pending_challenge") is None


def _send(b, cap, frames, *, stop_when_done=True, first=0):
    statuses, r = [], None
    for i, image in enumerate(frames, start=first):
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + i * 1000.0 / FPS)})
        statuses.append(r.status_code)
        if r.status_code != 200 or (stop_when_done and r.get_json()["done"]):
            break
    return statuses, r


def test_a_recording_that_failed_is_refused_as_a_replay_on_the_next_try(live_app, new_user, d3_turn_left,
                                                                        d3_turn_left_other):
    """alice enrolls with one d3 turn. At sign-in the page asks for a right turn; a recording of her
    turning left (other frames of d3) fails. The same recording re-encoded, when the page asks for a left
    turn, is refused as a replay instead of passing (a counted failure: an uncounted refusal would be a
    free way out of any capture)."""
    _, db, uid = _enrolled_alice(live_app, new_user, d3_turn_left)
    accepted = db.liveness_face_hashes.count_documents({"user_id": uid})

    wrong = live_app("turn_right")
    b = Browser(wrong)
    b.login("alice")
    cap, answers, fin = send_burst(b, "verify", d3_turn_left_other)
    body = fin.get_json()
    assert body["ok"] is False and body["liveness"]["reasons"][0] == "challenge_wrong_direction", body
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    failed = db.liveness_face_hashes.count_documents({"user_id": uid, "failed": True})
    stored = db.liveness_face_hashes.count_documents({"user_id": uid})

    right = live_app("turn_left")  # (the pinned pool changed: the pending turn_right is redrawn)
    b = Browser(right)
    b.login("alice")
    cap = b.start("verify").get_json()
    statuses, r = _send(b, cap, _transformed(d3_turn_left_other, "jpeg90"))
    assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", statuses
    assert db.face_status.find_one({"_id": uid})["failures"] == 2  # a replay is a counted failure
    # the failed capture's frames were kept, marked as such, beside the accepted ones
    assert failed >= 4 and stored == accepted + failed


def test_an_abandoned_capture_counts_and_its_recording_cannot_be_tried_again(live_app, new_user, d3_turn_left,
                                                                             d3_turn_left_other, faces_dir):
    """Rehearsal: the recording is played into a capture that is never finished (the page closed when
    it went badly, or a second capture opened beside it). The next capture settles it: a counted
    failure, and the same recording, played again, is refused as a replay."""
    app, db, uid = _enrolled_alice(live_app, new_user, d3_turn_left)
    b = Browser(app)
    b.login("alice")
    # capture A shows a face (so its moves are shown) and is left open; capture B opened beside it
    a = b.start("verify").get_json()
    bcap = b.start("verify").get_json()
    statuses, _ = _send(b, a, d3_turn_left_other[:10], stop_when_done=False)
    assert set(statuses) == {200} and db.face_status.find_one({"_id": uid})["unsettled"] == [a["capture_id"]]
    assert (db.face_status.find_one({"_id": uid}) or {}).get("failures", 0) == 0
    # B plays the same recording re-encoded: A's frames were kept as they came, so B is a replay
    statuses, r = _send(b, bcap, _transformed(d3_turn_left_other, "jpeg90"))
    assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", statuses
    # the frame refused as the last near copy was recorded in B first: its fingerprint stays with B's others
    assert db.liveness_frames.count_documents({"capture_id": bcap["capture_id"]}) == len(statuses)
    b.start("verify")  # (B's first face frame settled A already; a start would have too)
    assert db.face_status.find_one({"_id": uid})["failures"] == 2  # A abandoned, B a replay
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "abandoned"}) == 1
    assert db.capture_sessions.find_one({"_id": a["capture_id"]})["result"]["reasons"] == ["abandoned"]
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": True, "turned": True}) >= 4
    # a capture left open is settled by the next start too (and only once)
    c = b.start("verify").get_json()
    assert db.face_status.find_one({"_id": uid})["failures"] == 2
    others = clip_frames(faces_dir, "d3", 1.0, 0.8)
    _send(b, c, others, stop_when_done=False)
    b.start("verify")
    b.start("verify")
    assert db.face_status.find_one({"_id": uid})["failures"] == 3
    assert not db.face_status.find_one({"_id": uid}).get("unsettled")


def test_a_rehearsal_cannot_unburn_its_recording(live_app, new_user, d3_turn_left, d3_turn_left_other, faces_dir):
    """Frames are kept as they arrive, each marked turned or not from its own geometry: a capture that
    rehearses a recording (d3's right turn), then floods copies of its own frames (which used to make them
    look like held poses) and ends with copies of an earlier failed capture, has burnt that recording: played
    again it is refused as a replay. And ending a capture that way is a counted failure."""
    app, db, uid = _enrolled_alice(live_app, new_user, d3_turn_left)
    b = Browser(live_app("turn_right"))
    b.login("alice")
    _, _, fin = send_burst(b, "verify", d3_turn_left_other)  # a first try, failed (wrong way)
    assert fin.get_json()["ok"] is False and db.face_status.find_one({"_id": uid})["failures"] == 1
    rehearsal = clip_frames(faces_dir, "d3", 0.2, 1.6)
    x = b.start("verify").get_json()
    statuses, _ = _send(b, x, rehearsal, stop_when_done=False)
    assert set(statuses) == {200}
    flood = _transformed(rehearsal, "jpeg95") + _transformed(rehearsal, "jpeg80")
    statuses, _ = _send(b, x, flood, first=len(rehearsal), stop_when_done=False)
    assert set(statuses) == {200}
    assert db.liveness_face_hashes.count_documents({"capture_id": x["capture_id"], "turned": True}) >= 4
    statuses, r = _send(b, x, _transformed(d3_turn_left_other, "jpeg90"), first=len(rehearsal) + len(flood),
                        stop_when_done=False)
    assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", statuses
    assert db.face_status.find_one({"_id": uid})["failures"] == 2  # counted
    y = b.start("verify").get_json()
    statuses, r = _send(b, y, _transformed(rehearsal, "jpeg90"))
    assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", statuses


def test_frames_out_of_order_are_refused_and_the_cue_is_the_servers_clock(live_app, new_user, d3_turn_left,
                                                                         d3_turn_left_other):
    """The page sends frames in order; one stamped before an earlier one would move the burst's time
    origin. And a capture is an attempt from its first usable face, whatever the client's frame times say
    (frames stamped 9 ms apart stay 'before the cue' all along)."""
    app, db, uid = _enrolled_alice(live_app, new_user, d3_turn_left)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    frames = d3_turn_left_other

    def send(i, t):
        return b.api(cap["frames_url"], data=frames[i], content_type="image/jpeg",
                     headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t)})
    assert send(0, 0).status_code == 200
    r = send(1, -1400)  # before the first frame
    assert r.status_code == 400 and r.get_json()["error"] == "frame_out_of_order"
    assert send(2, 9).status_code == 200
    assert send(3, 5).status_code == 400
    for i in range(4, 8):
        assert send(i, 9 * i).status_code == 200
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert max(f["t_ms"] for f in doc["frames"]) < doc["cue_ms"]  # every frame "before the cue" by its stamp
    assert doc["lv_committed"] is True and db.face_status.find_one({"_id": uid})["unsettled"] == [cap["capture_id"]]


def test_deleting_face_data_deletes_the_replay_fingerprints(live_app, new_user, d3_turn_left, d3_turn_left_other):
    from idp.faceweb.erasure import delete_face_data
    app, db, uid = _enrolled_alice(live_app, new_user, d3_turn_left)
    b = Browser(live_app("turn_right"))
    b.login("alice")
    send_burst(b, "verify", d3_turn_left_other)  # a failed capture: its hashes are kept too
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": True}) >= 4
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": {"$ne": True}}) >= 4
    counts = delete_face_data(db, uid)
    assert counts["face_hashes"] >= 8 and db.liveness_face_hashes.count_documents({"user_id": uid}) == 0


def test_failed_frames_never_push_out_accepted_or_older_failed_ones(make_app, new_user):
    """Accepted hashes are told apart from failed ones, and failed ones are never evicted by newer ones
    (only by their lifetime) nor hidden by them (the lookup goes through the band index): a flood of junk
    captures cannot push a burnt recording out of the store or out of the check."""
    from datetime import datetime, timezone

    from idp.faceweb import liveness as web
    app = make_app()
    db = get_db(app)
    uid = new_user("alice")["_id"]
    now = datetime.now(timezone.utc)
    rng = __import__("random").Random(5)
    burnt = [f"{rng.getrandbits(256):064x}" for _ in range(3)]
    for h in burnt:
        web.remember_frame_hash(db, uid, "rehearsal", h, True, now)
    web.remember_face_hashes(db, uid, {"_id": "ok", "frames": [{"fh": f"{rng.getrandbits(256):064x}"}
                                                              for _ in range(40)]}, now)
    for k in range(60):  # 2,400 junk frames in later captures, settled as failed
        db.liveness_face_hashes.insert_many([
            {"user_id": uid, "capture_id": f"junk{k}", "hash": h, "bands": web.hash_bands(h), "turned": True,
             "failed": True, "created": now, "expires": now}
            for h in (f"{rng.getrandbits(256):064x}" for _ in range(40))])
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": {"$ne": True}}) == 40
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "capture_id": "rehearsal"}) == 3
    assert web.near_copy(db, uid, burnt[0]) == "failed"  # found through the band index, not by recency
    flipped = f"{int(burnt[1], 16) ^ sum(1 << b for b in range(0, 256, 17)):064x}"  # 16 bits away
    assert web.near_copy(db, uid, flipped) == "failed"
    assert web.near_copy(db, uid, burnt[0], exclude="rehearsal") is None  # never its own capture
    # an unturned frame's hash does not take part
    still = f"{rng.getrandbits(256):064x}"
    web.remember_frame_hash(db, uid, "still", still, False, now)
    assert web.near_copy(db, uid, still) is None


def test_unlock_reset_and_a_lock_clear_the_unsettled_list_a_waiting_time_does_not(make_app, new_user):
    """Captures left open are charged as abandoned later - but not after an unlock or an admin reset (a
    fresh start), and not once a lock runs (they cannot be finished before it is lifted). A waiting time ends by
    itself: they are still charged after it (see the next test for why)."""
    from idp import get_config
    from idp.faceweb import attempts, lockout, reenrollment
    from idp.faceweb.capture import CaptureService
    from idp.faceweb.capture_sessions import CaptureError
    app = make_app(liveness_enabled=True, face_free_failures=1, face_base_delay_s=60)
    db = get_db(app)
    uid = new_user("alice")["_id"]

    def listed():
        return (db.face_status.find_one({"_id": uid}) or {}).get("unsettled") or []
    # (open captures: a finished one is never listed)
    db.capture_sessions.insert_many([{"_id": f"cap-{k}", "user_id": uid, "status": "open"} for k in (1, 2, 3)])
    attempts.committed(db, uid, "cap-1")
    assert listed() == ["cap-1"]
    lockout.reset_failures(db, uid, unlock=True)
    assert listed() == []
    attempts.committed(db, uid, "cap-2")
    reenrollment.grant_reset(db, uid, "admin")
    assert listed() == []
    # a waiting time: the capture API's access check refuses and keeps the list; a lock clears it
    attempts.committed(db, uid, "cap-3")
    svc = CaptureService(db, get_config(app), uid, "verify", engine=None, cipher=None)
    lockout.register_failure(db, uid, svc.limits)
    for code, left in (("slow_down", ["cap-3"]), ("face_locked", [])):
        if code == "face_locked":
            db.face_status.update_one({"_id": uid}, {"$set": {"locked_at": lockout.utcnow()}})
        try:
            svc._check_lock()
        except CaptureError as e:
            assert e.code == code
        else:
            raise AssertionError(f"{code}: refused")
        assert listed() == left, code


def test_a_waiting_time_does_not_excuse_a_capture_left_open(live_app, new_user, d3_turn_left, d3_turn_left_other):
    """A capture whose moves were shown and that is left open is charged as abandoned by the next start - also
    when a request met a waiting time in between. A charged finish raises the count before it is judged, so
    for a moment every other request of the user sees a waiting time; those requests used to clear the list of
    open captures, and a capture rehearsed beside a finish that judged nothing (refunded) was never charged:
    free looks at the challenge, without end. Only a lock (which needs a recovery code or an administrator)
    clears the list now."""
    from datetime import datetime, timezone
    app, db, uid = _enrolled_alice(live_app, new_user, d3_turn_left)
    b = Browser(app)
    b.login("alice")
    a = b.start("verify").get_json()
    _send(b, a, d3_turn_left_other[:4], stop_when_done=False)  # A's moves are shown; it is left open
    assert db.face_status.find_one({"_id": uid})["unsettled"] == [a["capture_id"]]
    free = app.config["IDP"].face_free_failures
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": free, "last_failure_at": datetime.now(timezone.utc)}})
    r = b.start("verify")
    assert r.status_code == 429 and r.get_json()["error"] == "slow_down", r.get_json()
    assert db.face_status.find_one({"_id": uid}).get("unsettled") == [a["capture_id"]]
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": 0}, "$unset": {"last_failure_at": ""}})
    assert b.start("verify").status_code == 201  # the next start settles A
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "abandoned"}) == 1
