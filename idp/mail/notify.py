"""The account owner's notices: one mail per security-relevant change of the account.

Fed by the audit writer (``idp.audit.listen``), so every place that records one of these events notifies
the owner, with no second copy per view: password changed or reset, face template replaced or enrolled
through a recovery code or admin reset, face data deleted or reset by an administrator, recovery code used.
No Flask here; a failure to queue is logged and never breaks the event.
"""
from __future__ import annotations

import logging

log = logging.getLogger("idp.mail")

SUBJECTS = {
    "account.password_changed": "Your password was changed",
    "account.password_reset": "Your password was reset",
    "face.enroll": "Your face sign-in was set up again",
    "face.delete": "Your face sign-in data was deleted",
    "face.reset": "An administrator reset your face sign-in",
    "face.recovery": "A recovery code was used on your account",
}

TEXT = {
    "account.password_changed": "The password of your account was changed.",
    "account.password_reset": "The password of your account was reset through an emailed link. Every session "
                              "and every app signed in to your account was signed out.",
    "face.enroll": "A new face template was stored for your account, replacing the previous one.",
    "face.delete": "The face template of your account was deleted.",
    "face.reset": "An administrator reset the face sign-in of your account: a new face may be enrolled after "
                  "the password alone for a limited time.",
    "face.recovery": "One of your recovery codes was used to sign in without your face.",
}


def should_notify(doc: dict) -> bool:
    event, decision, details = doc.get("event"), doc.get("decision"), doc.get("details") or {}
    if event not in SUBJECTS or not doc.get("user_id"):
        return False
    if event == "face.enroll":  # a first enrollment is the owner's own act; a replacement or a recovery is news
        return decision == "enrolled" and (details.get("via") not in (None, "first") or bool(details.get("replaced")))
    if event in ("face.recovery", "face.delete"):
        return decision in ("accepted", "deleted")
    return True


def _detail_lines(doc: dict) -> list[str]:
    """What the owner needs to know beyond the event itself: until when a reset grant holds, and whether
    an enrollment replaced the recovery codes (if someone else enrolled, the owner's codes are what is left)."""
    details = doc.get("details") or {}
    if doc["event"] == "face.reset" and details.get("until"):
        return [f"That enrollment is allowed until {str(details['until'])[:16].replace('T', ' ')} UTC."]
    if doc["event"] == "face.enroll" and "codes_replaced" in details:
        return ["New recovery codes were made: your previous codes no longer work." if details["codes_replaced"]
                else "Your recovery codes were not replaced: the unused ones still work."]
    return []


def on_audit(db, doc: dict) -> None:
    if not should_notify(doc):
        return
    from idp.mail import send
    user = db.users.find_one({"_id": doc["user_id"]}, {"email": 1, "name": 1, "username": 1})
    if not user or not user.get("email"):
        return
    when = doc["at"].strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Hello {user.get('name') or user.get('username')},", "", TEXT[doc["event"]], *_detail_lines(doc), "",
             f"When: {when}"]
    if doc.get("ip"):
        lines.append(f"From address: {doc['ip']}")
    lines += ["", "If this was you, there is nothing to do. If it was not, reset your password at once and",
              "use \"Sign out everywhere\" on your account page.", "", "— Deep Authenticator"]
    send(db, user["email"], SUBJECTS[doc["event"]], "\n".join(lines), kind=f"notice:{doc['event']}",
         user_id=doc["user_id"])
