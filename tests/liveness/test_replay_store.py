"""The perceptual replay store (idp.faceweb.liveness): a frame of a new capture is a near copy only of a
stored frame that shows a passing pose of the earlier capture, not of a pose the person held - a person
who sits still in the same place gives near-identical frontal frames in every sign-in, and a match with
those is no evidence of a replay."""
import random
from datetime import datetime, timezone

from idp.faceweb import liveness as web
from idp.liveness.fingerprint import FACE_HASH_MAX_BITS, HELD_POSE_NEIGHBOURS, hamming, passing_poses

RNG = random.Random(5)


def _flip(h: int, bits: int) -> int:
    """``h`` with ``bits`` random bits flipped (a re-encoded copy, or the same pose filmed again)."""
    for b in RNG.sample(range(1, 256), bits):
        h ^= 1 << b
    return h


def _hex(h: int) -> str:
    return f"{h:064x}"


def _store(db, uid, hashes):
    doc = {"_id": f"cap-{RNG.random()}", "frames": [{"fh": _hex(h)} for h in hashes]}
    return web.remember_face_hashes(db, uid, doc, datetime.now(timezone.utc))


def test_a_held_pose_is_not_evidence_of_a_replay_but_a_passing_pose_is(db):
    frontal = RNG.getrandbits(255) << 1
    still = [_flip(frontal, 3) for _ in range(8)]  # the person faced the camera for 8 frames (1.2 s)
    turn = [RNG.getrandbits(255) << 1 for _ in range(8)]  # a turn: every frame a different pose
    assert all(hamming(a, b) <= FACE_HASH_MAX_BITS for a in still for b in still)
    assert _store(db, "alice", still + turn) == 16
    # the rows that take part are the capture's passing poses (the rule the evaluation applies too)
    rows = db.liveness_face_hashes.find({"user_id": "alice"})
    assert sorted(d["hash"] for d in rows if d["near"] <= HELD_POSE_NEIGHBOURS) == \
        sorted(_hex(h) for h in passing_poses(still + turn)) == sorted(_hex(h) for h in turn)
    # a new sign-in of alice sitting in the same place: her frontal frames look like the stored ones
    fresh = [_flip(frontal, 5) for _ in range(8)]
    assert all(hamming(f, s) <= FACE_HASH_MAX_BITS for f in fresh for s in still[:1])
    assert [web.near_copy(db, "alice", _hex(f)) for f in fresh] == [None] * len(fresh)
    # the earlier capture re-encoded and re-sent: its turn frames are near copies
    resent = [_flip(h, 6) for h in turn]
    assert [web.near_copy(db, "alice", _hex(f)) for f in resent] == ["accepted"] * len(turn)
    assert len(turn) >= web.FACE_HASH_MIN_FRAMES
    # another user's store is not consulted
    assert not any(web.near_copy(db, "bob", _hex(f)) for f in resent)


def test_stored_rows_without_the_neighbour_count_still_count(db):
    # rows written before the count (and the bands) existed are compared as before (fail closed), once the
    # migration that indexes them has run
    from idp.store.migrate import MIGRATIONS_DIR, load
    h = RNG.getrandbits(255) << 1
    db.liveness_face_hashes.insert_one({"user_id": "carol", "capture_id": "old", "hash": _hex(h),
                                        "created": datetime.now(timezone.utc), "expires": datetime.now(timezone.utc)})
    migration = load(MIGRATIONS_DIR / "0012_liveness_face_hash_bands.py")
    migration.up(db)
    migration.up(db)  # idempotent
    assert web.near_copy(db, "carol", _hex(_flip(h, 4)))


def test_copies_of_a_failed_capture_are_told_apart_from_copies_of_an_accepted_one(db):
    """A near copy of a failed capture's frame is refused without a counted failure (the capture API);
    when a frame is near both kinds, the accepted one wins (a counted replay)."""
    turn = [RNG.getrandbits(255) << 1 for _ in range(6)]
    other = [RNG.getrandbits(255) << 1 for _ in range(6)]
    web.remember_face_hashes(db, "dave", {"_id": "bad", "frames": [{"fh": _hex(h)} for h in turn]},
                             datetime.now(timezone.utc), failed=True)
    assert [web.near_copy(db, "dave", _hex(_flip(h, 5))) for h in turn] == ["failed"] * len(turn)
    assert web.near_copy(db, "dave", _hex(other[0])) is None
    web.remember_face_hashes(db, "dave", {"_id": "ok", "frames": [{"fh": _hex(h)} for h in turn[:2] + other]},
                             datetime.now(timezone.utc))
    assert web.near_copy(db, "dave", _hex(_flip(turn[0], 5))) == "accepted"
    assert web.near_copy(db, "dave", _hex(_flip(turn[3], 5))) == "failed"


def _between(a: int, b: int, noise: int = 3) -> int:
    """A hash of a frame filmed between two consecutive frames ``a`` and ``b``: on the bits where they
    agree it agrees (but for ``noise`` bits); of the bits where they differ it takes half from each, chosen at
    random (an exact half: "either at random" for each bit drew a frame near one end now and then, which made
    a test's premise depend on the random state other tests left)."""
    differ = [bit for bit in range(1, 256) if (a ^ b) >> bit & 1]
    h = a
    for bit in RNG.sample(differ, len(differ) // 2):
        h ^= 1 << bit
    return _flip(h, noise)


def test_a_frame_filmed_between_two_stored_turned_frames_is_a_near_copy(db):
    """A sign-in's turn, stored frame by frame as it arrives (each with the turned frame before it). A
    replay filmed again at other moments falls between two stored frames: far from each (a turn moves
    the hash a lot in 150 ms) but on the motion between them, so it is a near copy. The held pose before
    the turn is not compared (a person sitting still in the same place), nor is the motion from a stored
    frame that was not turned. (A segment is found through the band index of
    either end: a frame this near to it shares a band with one of them.)"""
    now = datetime.now(timezone.utc)
    frontal = RNG.getrandbits(255) << 1
    turn = [_flip(frontal, 40)]  # a turn: each frame 40 bits on from the one before (150 ms apart)
    for _ in range(5):
        turn.append(_flip(turn[-1], 40))
    web.remember_frame_hash(db, "erin", "signin", _hex(frontal), False, now)
    web.remember_frame_hash(db, "erin", "signin", _hex(turn[0]), True, now)  # (the frame before: not turned)
    for prev, h in zip(turn, turn[1:]):
        web.remember_frame_hash(db, "erin", "signin", _hex(h), True, now, prev=_hex(prev))
    web.accept_face_hashes(db, "erin", "signin")
    mids = [_between(a, b) for a, b in zip(turn, turn[1:])]
    assert all(hamming(m, h) > FACE_HASH_MAX_BITS for m in mids for h in turn)  # no single frame is near
    assert [web.near_copy(db, "erin", _hex(m)) for m in mids] == ["accepted"] * len(mids)
    assert web.near_copy(db, "erin", _hex(mids[0]), exclude="signin") is None  # never its own capture
    # the held frontal pose the turn started from is not evidence (a new sign-in facing the camera)
    assert web.near_copy(db, "erin", _hex(_flip(frontal, 5))) is None
    # unrelated frames are far from every segment
    assert not any(web.near_copy(db, "erin", _hex(RNG.getrandbits(255) << 1)) for _ in range(20))
    # a stored frame remembered without its turned flag set takes no part, nor does its segment
    web.remember_frame_hash(db, "frank", "still", _hex(turn[1]), False, now, prev=_hex(turn[0]))
    assert web.near_copy(db, "frank", _hex(mids[0])) is None
    # ... even when such a row carries the frame before it (written by anything else than
    # remember_frame_hash, which drops it): the segment rule itself asks for a turned frame
    db.liveness_face_hashes.insert_one({"user_id": "gina", "capture_id": "still", "hash": _hex(turn[1]),
                                        "prev": _hex(turn[0]), "turned": False,  # (an accepted row)
                                        "bands": web.hash_bands(_hex(turn[1])) + web.hash_bands(_hex(turn[0])),
                                        "created": now, "expires": now})
    assert web.near_copy(db, "gina", _hex(mids[0])) is None
    # a frame not turned from its own capture's start is compared with stored frames only, not segments
    assert web.near_copy(db, "erin", _hex(mids[0]), segments=False) is None
    assert web.near_copy(db, "erin", _hex(_flip(turn[2], 5)), segments=False) == "accepted"


def test_a_segment_between_frames_farther_apart_than_a_motion_claims_nothing(db):
    """The motion between two stored frames is compared on the bits where they agree, scaled to the whole
    hash. Two frames of a turn 150 ms apart differ in 40-100 bits (docs/liveness.md; measured at most 124
    on the shared clips), unrelated faces in about 128. Two consecutive stored frames whose hashes are
    nearly complementary (what a client can send as two turned frames in a row) agree on a handful of
    bits: every hash that matches those few is "between" them, so any frame near either end - 40 bits
    away, as far as another moment of a turn - would count as a near copy. Such a segment is no motion
    and takes no part; its ends still count as frames."""
    now = datetime.now(timezone.utc)
    a = RNG.getrandbits(255) << 1
    b = _flip(a, 250)  # agrees with a on 6 bits (the padding bit and 5 others)
    web.remember_frame_hash(db, "gina", "intruder", _hex(a), True, now)
    web.remember_frame_hash(db, "gina", "intruder", _hex(b), True, now, prev=_hex(a))
    others = [_flip(a, 40) for _ in range(200)]  # frames far from a (40 bits), and from b
    assert all(hamming(h, a) > FACE_HASH_MAX_BITS and hamming(h, b) > FACE_HASH_MAX_BITS for h in others)
    assert [h for h in others if web.near_copy(db, "gina", _hex(h))] == []
    assert web.near_copy(db, "gina", _hex(_flip(a, 5))) == "failed"  # (a copy of a stored frame still is)
