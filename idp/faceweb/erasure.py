"""Deleting a user's face data (template, captures, replay-store hashes, status), without Flask."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from idp.store import durable, written_before

from .reenrollment import VIA_DELETED
from .face_status import aware, status_collection, utcnow


# A face deletion claims the user's ``face_status`` first (``erasing``: {at, claim}); a claim older than this (its
# process died mid-erasure) may be taken over, so an interrupted deletion can be run again.
ERASE_CLAIM_S = 60


def _claim(db, user_id: str) -> tuple[str, dict, datetime] | None:
    """Claim the deletion of the user's face data (one conditional upsert of ``face_status``): this call's
    claim, the status as it was before and the moment from which another deletion may take the claim over; or
    None when another deletion holds a live claim (its upsert then meets the existing document: a duplicate
    key)."""
    from pymongo import ReturnDocument
    from pymongo.errors import DuplicateKeyError
    now = utcnow()
    claim = secrets.token_urlsafe(12)
    try:
        before = status_collection(db).find_one_and_update(
            {"_id": user_id, "$or": [{"erasing": {"$exists": False}},
                                     {"erasing.at": {"$lt": now - timedelta(seconds=ERASE_CLAIM_S)}}]},
            {"$set": {"erasing": {"at": now, "claim": claim}}}, upsert=True, return_document=ReturnDocument.BEFORE)
    except DuplicateKeyError:
        return None
    return claim, before or {}, now + timedelta(seconds=ERASE_CLAIM_S)


def _erasable_before(db, mine: dict, fence: datetime) -> datetime:
    """Up to when a deletion holding (or having held) the claim ``mine`` may erase what was written: up to the
    moment read just before it found its claim still held, or, when the claim was taken over, up to ``fence`` (the
    claim's expiry, before which no other deletion could take over). So a deletion that is only slow erases what
    was written while it ran, and one that stalled and was taken over spares what came after the other one."""
    now = utcnow()
    held = status_collection(db).count_documents(mine, limit=1)
    return max(fence, now) if held else fence


def _write_status(db, mine: dict, enroll_cooloff: dict | None) -> int:
    """The deletion's one atomic write of the status (1, or 0 when the claim ``mine`` was taken over): only the
    guards stay - ``enroll_cooloff`` and a running cooling-off period - and the claim ends. A request writing the
    status meanwhile (a sign-in start, a consent) cannot slip between a delete and a re-insert and make a guard
    disappear. The period kept is the one stored at the write (compare-and-set on it): one an enrollment started
    after the deletion began (before it saves its template) is never dropped; a period that keeps changing under
    the write (it never does: one start per enrollment) leaves the claim to expire and reports 0."""
    coll = status_collection(db)
    for _ in range(5):
        current = coll.find_one(mine, {"cooloff_until": 1})
        if current is None:
            return 0
        until = current.get("cooloff_until")
        keep = {"cooloff_until": until} if until and aware(until) > utcnow() else {}
        if enroll_cooloff:
            keep["enroll_cooloff"] = enroll_cooloff
        same = {**mine, "cooloff_until": until}
        if keep and coll.replace_one(same, {"_id": mine["_id"], **keep}).matched_count:
            return 1
        if not keep and coll.delete_one(same).deleted_count:
            return 1
    return 0


def delete_face_data(db, user_id: str, *, face_proven: bool = True) -> dict | None:
    """Delete everything biometric about the user: template, capture sessions, the face hashes and frame
    fingerprints of the replay store, consent and counters. The recovery codes stay (they are not biometric
    data, and a face match never voids them: whoever passes the face step without being the owner - the open
    attacks in docs/security.md - must not take away the owner's way back). Returns how many documents went
    from each collection (``consent`` 1 when a consent was withdrawn) - only in the call that deleted
    something, which audits and notifies: the deletion claims the user's ``face_status`` first, so of
    deletions running at once exactly one erases and reports, with or without a template (an account with a
    consent alone too). None when another deletion holds the claim, or
    there was nothing to delete (a second submit after the first finished).

    What guards the next enrollment survives, without any biometric data: a running cooling-off period
    and a pending one. When the deletion was asked by a sign-in that did not pass the face (``face_proven``
    false: a recovery code), the next enrollment starts a cooling-off period, so that deleting cannot turn
    a recovery into a "first" enrollment.

    An enrollment finished while the deletion runs cannot get around either: the mark is written before the
    template is deleted, always a fresh one (an enrollment lifts only the mark it read before its save, so it
    cannot lift this deletion's, even where an earlier deletion left one), the status write keeps a cooling-off
    period started meanwhile (an enrollment starts it before it saves its template), and the template is deleted
    again before the status write ends the claim: an enrollment that saved meanwhile reads the claim, or the
    consent gone, after its save and undoes itself; one saved after the claim ended came after the deletion, with
    its cooling-off period already running.

    A deletion that stalls past its claim (``ERASE_CLAIM_S``) may be taken over; when it wakes it no longer holds
    the claim, so each of its deletes takes only what was written before the other deletion took over (up to the
    last moment it found its claim held, or the claim's expiry; the template by its ``updated_at``, the rest by
    their creation time, :func:`_erasable_before`): an enrollment made after the deletion that took over had
    finished keeps its template and captures. A deletion that is only slow (its claim still held) erases
    what was written up to each delete. (This compares the instances' clocks: a row dated by a clock behind this
    one's by more than the time from the takeover to that row's write is still taken.)"""
    from idp.face.repository import delete_template
    claimed = _claim(db, user_id)
    if claimed is None:
        return None
    claim, status, fence = claimed
    mine = {"_id": user_id, "erasing.claim": claim}
    mark = None
    if not face_proven:
        # before the template goes: an enrollment that saves into the emptied slot reads the mark (it reads
        # the template's absence first), so it starts a cooling-off period like any enrollment after this one
        mark = {"via": (status.get("enroll_cooloff") or {}).get("via") or VIA_DELETED, "at": utcnow()}
        status_collection(db).update_one(mine, {"$set": {"enroll_cooloff": mark}})
    out = {"template": int(delete_template(db, user_id, before=_erasable_before(db, mine, fence))),
           "consent": int(bool(status.get("consent")))}

    def delete(collection: str, created: str) -> int:
        bound = _erasable_before(db, mine, fence)
        return durable(db, collection).delete_many({"user_id": user_id, **written_before(created, bound)}).deleted_count
    out["captures"] = delete("capture_sessions", "created")
    out["face_hashes"] = delete("liveness_face_hashes", "created")
    out["frame_digests"] = delete("liveness_frames", "created")
    # A template saved after the first delete goes too, while the claim holds (the enrollment's own read after
    # its save sees the claim, or the consent gone, and undoes the rest). The status write then drops what an
    # enrollment wrote there meanwhile (its marks' removal; never a running cooling-off period).
    out["template"] += int(delete_template(db, user_id, before=_erasable_before(db, mine, fence)))
    out["status"] = _write_status(db, mine, mark or status.get("enroll_cooloff"))
    if not out["status"] or not any(n for name, n in out.items() if name != "status"):
        return None
    return out


def erased_meanwhile(db, user_id: str, saved, *, consent: bool = True) -> str | None:
    """Whether the account or its face data is being deleted, or was, since an enrollment checked them: read by
    every enrollment (the pages' and the command line's) right after it saved its template, which it then deletes
    again, and once more after its last writes under the face data (marks, recovery codes), which it then undoes.
    A deletion claims first and erases the templates after its claim, so either it erases the new template
    itself or this read sees it. ``"account"``: the account is gone or claimed for deletion (nothing more may be
    written under its id, not even an audit entry); ``"face_data"``: the face data is claimed (``erasing``), the
    template the enrollment saved (``saved``, as ``save_template`` answered) is no longer stored (a deletion that
    finished; maybe another enrollment saved since, which this one must not take for its own), or, with
    ``consent`` (the pages, which enroll only after it), the consent is gone (the same; a consent given again
    since counts as given); else None."""
    from idp.accounts.users import deletion_claimed
    from idp.face.repository import is_stored

    from .notice import has_consent
    user = db.users.find_one({"_id": user_id}, {"deleting": 1})
    if user is None or deletion_claimed(user):
        return "account"
    status = db.face_status.find_one({"_id": user_id}, {"erasing": 1}) or {}
    if status.get("erasing") or not is_stored(db, user_id, saved):
        return "face_data"
    return "face_data" if consent and not has_consent(db, user_id) else None


def undo_enrollment(db, user_id: str, erased: str, saved, mark: dict | None = None) -> None:
    """An enrollment that a deletion overtook (``erased``, as :func:`erased_meanwhile` answered) keeps nothing: its
    template goes (``saved``: the one it saved, not one saved since); the re-enrollment mark it read before its save (``mark``), which it may have lifted, is put
    back where no mark is stored (a deletion that kept it, rather than writing its own, wrote it back before the
    lift); and under an account being deleted or gone every row naming the id goes
    (``users.erased_if_claimed_since``: no status, no audit entry of it is left)."""
    from idp.accounts.users import erased_if_claimed_since
    from idp.face.repository import delete_template
    delete_template(db, user_id, saved)
    if erased == "account":
        erased_if_claimed_since(db, user_id)
    elif mark:
        status_collection(db).update_one({"_id": user_id, "enroll_cooloff": None}, {"$set": {"enroll_cooloff": mark}})
