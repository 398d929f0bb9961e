"""Sign-in face attempts around the liveness challenge, without Flask: which challenge a capture gets, and
which captures still have to be counted.

A pre-recorded clip performs one sequence of moves; the random challenge bounds it only if the clip cannot
pick its draw or rehearse against the server for free. So, at sign-in (``face_status``):

* ``pending_challenge``: drawn once and shown by every new capture until the user *matches*. A failed,
  abandoned or undecided capture does not redraw it: throwing a challenge away gains nothing, and a clip
  that does not fit it never will before the owner's next successful sign-in.
* the moves are shown only once a capture films a face (the answer to that frame, see
  ``liveness.revealed``), never in the start answer: from then on the capture is an attempt however it
  ends (judged, finished with too few frames, or left open), so reading the challenge costs one. The
  moves come one at a time: the next once the shown ones were performed with the enrolled face
  (``liveness.next_move_spans``; the capture API checks the face once per capture, after charging the
  capture's one attempt: ``CaptureService._gate``).
* ``unsettled``: the ids of captures whose moves were shown and that were not finished yet. When the
  user starts another capture, or another capture of theirs has its moves shown, each of them that was
  never finished is settled as an abandoned attempt (counted, and its face hashes kept as a failed
  capture's, so its recording cannot be tried again). Finishing a capture takes it off the list.

Enrollment draws per capture and is not tracked: its failures are not counted.
"""
from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from . import capture_sessions, face_status
from .liveness import drawable, new_challenge


def _valid_challenge(config, challenge) -> bool:
    """Whether a stored challenge is one the current configuration could draw."""
    return isinstance(challenge, str) and challenge in drawable(config)


def challenge_for(db, user_id: str, config, purpose: str) -> str | None:
    """The challenge of a new capture session: at sign-in the user's pending one (drawn if there is none,
    or if the configuration could no longer draw it), at enrollment a fresh draw; None with liveness off."""
    fresh = new_challenge(config)
    if fresh is None or purpose != "verify":
        return fresh
    coll = face_status.status_collection(db)
    for _ in range(3):
        doc = coll.find_one({"_id": user_id}, {"pending_challenge": 1})
        pending = (doc or {}).get("pending_challenge")
        if _valid_challenge(config, pending):
            return pending
        if doc is None:
            try:
                coll.insert_one({"_id": user_id, "pending_challenge": fresh})
                return fresh
            except DuplicateKeyError:  # created meanwhile: read it again
                continue
        if coll.update_one({"_id": user_id, "pending_challenge": pending},
                           {"$set": {"pending_challenge": fresh}}).modified_count:
            return fresh
    raise capture_sessions.CaptureError(429, "check_in_progress", "Another face check is starting. Try again in a "
                                        "moment.", retry_after=1)


def matched(db, user_id: str, challenge: str | None) -> None:
    """The user matched with ``challenge``: the next sign-in capture draws a new one."""
    if challenge:
        face_status.status_collection(db).update_one({"_id": user_id, "pending_challenge": challenge},
                                                     {"$unset": {"pending_challenge": ""}})


def committed(db, user_id: str, capture_id: str, by: dict | None = None) -> None:
    """A sign-in capture's moves were shown: it must be finished, or it is settled as abandoned. ``by``:
    the address and browser of the request that was shown them (``{"ip", "user_agent"}``), kept with the
    id so that the settlement is audited (and mailed) as theirs, not as the settling request's."""
    update = {"$addToSet": {"unsettled": capture_id}}
    if by is not None:
        update["$set"] = {f"unsettled_by.{capture_id}": by}
    face_status.status_collection(db).update_one({"_id": user_id}, update, upsert=True)
    # a frame still in flight when its capture was finished (or closed) must not list it again: checked
    # after adding, so that whichever of the two comes last leaves the list right
    if db.capture_sessions.count_documents({"_id": capture_id, "status": "open"}, limit=1) == 0:
        finished(db, user_id, capture_id)


def finished(db, user_id: str, capture_id: str) -> None:
    """A sign-in capture was finished (judged or not): nothing left to settle for it."""
    face_status.status_collection(db).update_one({"_id": user_id}, {"$pull": {"unsettled": capture_id},
                                                                    "$unset": {f"unsettled_by.{capture_id}": ""}})


def clear_unsettled(db, user_id: str) -> None:
    """Nothing to settle any more (a lock, an unlock or reset): open captures are not
    charged as abandoned. Their frames stay in the replay store as a failed capture's."""
    face_status.status_collection(db).update_one({"_id": user_id}, {"$unset": {"unsettled": "", "unsettled_by": ""}})


def claim_abandoned(db, user_id: str, keep: str | None = None) -> list[tuple[str, dict]]:
    """Take the user's unsettled capture ids other than ``keep`` off the list and return them with who was
    shown their moves (see :func:`committed`; {} if unknown); each id is returned to one caller only (so it
    is counted once, whatever runs in parallel)."""
    coll = face_status.status_collection(db)
    doc = coll.find_one({"_id": user_id}, {"unsettled": 1, "unsettled_by": 1}) or {}
    by = doc.get("unsettled_by") or {}
    out = []
    for cid in doc.get("unsettled") or []:
        if cid != keep and coll.update_one({"_id": user_id, "unsettled": cid},
                                           {"$pull": {"unsettled": cid},
                                            "$unset": {f"unsettled_by.{cid}": ""}}).modified_count:
            out.append((cid, by.get(cid) or {}))
    return out
