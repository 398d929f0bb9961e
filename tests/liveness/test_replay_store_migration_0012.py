"""Migration 0012 and the replay store's one-query lookup against the lookup it replaced.

The store holds rows of every shape written since migration 0007: whole captures stored at once with ``near``
(enrollments; before ``near`` existed, without it), sign-in frames with ``turned`` (before the band index,
without ``bands``; after it, with the hash's bands; later with ``prev`` and both ends' bands), accepted
(no ``failed``) or failed, of several users and captures. After the migration, the lookup by user and band
alone must reach the same near-copy decision as the old two queries (kind, turned flag, capture, and rows
without bands asked for in the query) on the store as it was, for copies, near copies, copies just out of
reach, frames between two stored ones, and random frames, with and without a capture excluded and
segments - and must consider the same stored frames and motions. The migration is idempotent and safe on
an empty store; it keeps every row."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from idp.store.migrate import MIGRATIONS_DIR, load
from idp.faceweb import liveness as web
from idp.liveness.fingerprint import FACE_HASH_MAX_BITS, HELD_POSE_NEIGHBOURS, hamming, segment_distance

RNG = random.Random(12)
NOW = datetime.now(timezone.utc)


def _migration():
    return load(MIGRATIONS_DIR / "0012_liveness_face_hash_bands.py")


def _hex(h: int) -> str:
    return f"{h:064x}"


def _flip(h: int, bits: int) -> int:
    for b in RNG.sample(range(256), bits):
        h ^= 1 << b
    return h


def _between(a: int, b: int) -> int:
    """A frame filmed between ``a`` and ``b``: half of the bits on which they differ taken from ``b``."""
    diff = [k for k in range(256) if (a ^ b) >> k & 1]
    return a ^ sum(1 << k for k in RNG.sample(diff, len(diff) // 2))


def _old_near_copy(db, user_id, fh, exclude=None, *, segments=True, seen=None):
    """The lookup before the one-query change (idp.faceweb.liveness.near_copy at c0676fc^1), verbatim but for
    ``seen``, which collects what it compared."""
    coll = db.liveness_face_hashes
    candidates = {"$or": [{"bands": {"$in": web.hash_bands(fh)}}, {"bands": {"$exists": False}}]}
    for kind, query in (("accepted", {"failed": {"$ne": True}}),
                        ("failed", {"failed": True, "turned": {"$ne": False}})):
        rows = list(coll.find({"user_id": user_id, "capture_id": {"$ne": exclude}, **query, **candidates},
                              {"hash": 1, "near": 1, "turned": 1, "prev": 1}))
        hashes = [d["hash"] for d in rows if web._counts(d)]
        segs = [(d["hash"], d["prev"]) for d in rows if segments and web._segment(d)]
        if seen is not None:
            seen.append((kind, _matching(fh, hashes, segs)))
        if web._near(fh, hashes, FACE_HASH_MAX_BITS, segments=segs):
            return kind
    return None


def _matching(fh, hashes, segs):
    h = int(fh, 16)
    return (frozenset(g for g in hashes if hamming(h, int(g, 16)) <= FACE_HASH_MAX_BITS),
            frozenset(s for s in segs if segment_distance(h, int(s[0], 16), int(s[1], 16)) <= FACE_HASH_MAX_BITS))


def _row(uid, cap, h, **fields):
    return {"user_id": uid, "capture_id": cap, "hash": _hex(h), "created": NOW - timedelta(minutes=RNG.random() * 1e4),
            "expires": NOW + timedelta(days=30), **fields}


def _population():
    """Rows of every shape the store has held, for alice (and a little for bob); returns (rows, base hashes,
    (hash, prev) pairs of segment rows)."""
    rows, bases, pairs = [], [], []
    for cap in range(4):  # 0007: enrollments stored at once, accepted; some rows without "near" at all
        for k in range(8):
            h = RNG.getrandbits(256)
            extra = {} if k == 0 else {"near": RNG.choice([0, 1, HELD_POSE_NEIGHBOURS + 1, 5])}
            if cap == 3:
                extra["failed"] = True
            rows.append(_row("alice", f"e7-{cap}", h, **extra))
            bases.append(h)
    for cap in range(4):  # sign-in frames with "near", then with "turned", no bands (before migration 0010)
        for k in range(8):
            h = RNG.getrandbits(256)
            shape = {"near": RNG.choice([0, 1, 3])} if cap < 2 else {"turned": k % 3 != 0}
            rows.append(_row("alice", f"s7-{cap}", h, **shape, **({"failed": True} if cap % 2 else {})))
            bases.append(h)
    for cap in range(4):  # migration 0010: the hash's bands; enrollments (near) and sign-in frames (turned)
        for k in range(8):
            h = RNG.getrandbits(256)
            shape = {"near": RNG.choice([0, 1, 4])} if cap == 0 else {"turned": k % 2 == 0}
            rows.append(_row("alice", f"b10-{cap}", h, bands=web.hash_bands(_hex(h)), **shape,
                             **({"failed": True} if cap != 1 else {})))
            bases.append(h)
    for cap in range(4):  # then turned frames with "prev" (both ends indexed), accepted or failed
        prev = RNG.getrandbits(256)
        for k in range(8):
            h = _flip(prev, RNG.choice([30, 60, 100]))
            fields = {"turned": True}
            if k % 4 != 3:  # a few turned frames without a turned predecessor
                fields.update(prev=_hex(prev), bands=list(dict.fromkeys(web.hash_bands(_hex(h)) +
                                                                        web.hash_bands(_hex(prev)))))
                pairs.append((h, prev))
            else:
                fields["bands"] = web.hash_bands(_hex(h))
            rows.append(_row("alice", f"p-{cap}", h, **fields, **({"failed": True} if cap != 2 else {})))
            bases.append(h)
            prev = h
    for k in range(20):  # another user's rows, near copies of alice's
        rows.append(_row("bob", "bob-1", _flip(RNG.choice(bases), 2), turned=True, failed=True,
                         bands=[]))
    return rows, bases, pairs


def _queries(bases, pairs):
    out = []
    for h in RNG.sample(bases, 30):
        for bits in (0, 12, 16, 17):
            out.append(_flip(h, bits))
    for h, p in pairs:
        out.append(_between(h, p))
        out.append(_flip(_between(h, p), 6))
    out += [RNG.getrandbits(256) for _ in range(10)]
    return [_hex(q) for q in out]


@pytest.fixture
def recorded(monkeypatch):
    """The stored hashes and motions the current lookup compares (the real comparison, recorded)."""
    calls = []
    real = web._near

    def near(fh, stored, max_bits, segments=()):
        calls.append(_matching(fh, list(stored), list(segments)))
        return real(fh, stored, max_bits, segments=segments)

    monkeypatch.setattr(web, "_near", near)
    return calls


def test_the_one_query_lookup_after_migration_0012_decides_as_the_old_lookup_did(db, recorded):
    rows, bases, pairs = _population()
    db.liveness_face_hashes.insert_many(rows)
    for name, fields in (("user_bands", [("user_id", 1), ("bands", 1)]),
                         ("user_kind_created", [("user_id", 1), ("failed", 1), ("created", -1)])):
        db.liveness_face_hashes.create_index(fields, name=name)
    queries = _queries(bases, pairs)
    cases = [c for q in queries for c in ((q, None, True), (q, RNG.choice(["p-1", "s7-3", "b10-0"]), RNG.random() < 0.7))]
    before, seen_before = [], []
    for q, exclude, seg in cases:
        seen = []
        before.append(_old_near_copy(db, "alice", q, exclude, segments=seg, seen=seen))
        seen_before.append(seen)
    assert {"accepted", "failed", None} <= set(before)  # the population exercises every answer
    assert sum(1 for s in seen_before if any(m[1] for _, m in s)) >= 10  # and motions between frames

    stored = sorted(map(repr, db.liveness_face_hashes.find({}, {"bands": 0})))
    _migration().up(db)
    assert sorted(map(repr, db.liveness_face_hashes.find({}, {"bands": 0}))) == stored  # no row lost or changed
    after, seen_after = [], []
    for q, exclude, seg in cases:
        recorded.clear()
        after.append(web.near_copy(db, "alice", q, exclude, segments=seg))
        seen_after.append(list(recorded))
    assert after == before
    # the same stored frames and motions compared, kind by kind (the old lookup's own view of each kind)
    assert [[m for _, m in s] for s in seen_before] == seen_after

    once = sorted(map(repr, db.liveness_face_hashes.find({})))
    _migration().up(db)  # idempotent
    assert sorted(map(repr, db.liveness_face_hashes.find({}))) == once
    # rows that take part in no check got no bands; every other row its hash's bands (and its prev's)
    for d in db.liveness_face_hashes.find({"user_id": "alice"}):
        assert d["bands"] == web.row_bands(d)
        assert bool(d["bands"]) == (web._counts(d) or web._segment(d))


def test_migration_0012_on_an_empty_or_missing_collection(db):
    _migration().up(db)  # no collection at all
    db.create_collection("liveness_face_hashes")
    _migration().up(db)
    assert db.liveness_face_hashes.count_documents({}) == 0
