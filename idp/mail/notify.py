"""The account owner's notices: one mail per security-relevant change of the account.

Fed by the audit writer (``idp.audit.listen``), so every place that records one of these events notifies
the owner, with no second copy per view: password changed or reset, a change of the confirmed email address
asked for (to that address, which stays the account's until the new one is confirmed) and the change taking
effect (to the previous address, if it was confirmed: the new one may be an intruder's; both name the new
address only masked, ``masked_address``; the latter with a link that undoes the change for
``IDP_EMAIL_UNDO_WINDOW``), such a change undone (to the restored address), face sign-in set up (the account's first
enrollment: whoever holds the password binds the face, so the owner must hear of it), face template replaced
or enrolled through a recovery code or admin reset, face data deleted or reset by an administrator, face sign-in
unlocked by an administrator, recovery code used, a failed face check (the first since the last success) and a
face sign-in lock, and a password sign-in from a browser not seen before on the account (a few an hour at
most: ``NEW_DEVICE_NOTICES``).
No Flask import here and no page's: a link a notice carries is added by the area that owns its page
(``add_lines``; the undo link by ``idp.accounts.verification``); a failure to queue is logged and never breaks
the event.
"""
from __future__ import annotations

import logging

from idp.text import browser_summary

log = logging.getLogger("idp.mail")

SUBJECTS = {
    "account.password_changed": "Your password was changed",
    "account.new_device": "New sign-in to your account",
    "account.password_reset": "Your password was reset",
    "account.email_change_requested": "A change of your email address was requested",
    "account.email_changed": "The email address of your account was changed",
    "account.email_change_undone": "The change of your email address was undone",
    "face.enroll.first": "Face sign-in was set up for your account",
    "face.enroll": "Your face sign-in was set up again",
    "face.delete": "Your face sign-in data was deleted",
    "face.reset": "An administrator reset your face sign-in",
    "face.recovery": "A recovery code was used on your account",
    "admin.recovery_codes_voided": "An administrator voided your recovery codes",
    "admin.face_unlocked": "An administrator unlocked your face sign-in",
    "face.verify": "A face check on your account did not pass",
    "face.lockout": "Face sign-in for your account was locked",
}

TEXT = {
    "account.password_changed": "The password of your account was changed.",
    "account.new_device": "The password of your account was used to sign in from a browser not seen before on "
                          "this account.",
    "account.password_reset": "The password of your account was reset through an emailed link. Every session "
                              "and every app signed in to your account was signed out.",
    "account.email_change_requested": "A change of the email address of your account from this address to {new} "
                                      "was requested. It takes effect only when the link we sent to that address "
                                      "is opened; until then this address stays the account's, and notices and "
                                      "password-reset links keep coming here.",
    "account.email_changed": "The email address of your account was changed from this address to {new}, "
                             "confirmed through the link sent there. Notices and password-reset links now go to "
                             "the new address; this is the last mail to this address about the account.",
    "account.email_change_undone": "The change of the email address of your account to {new} was undone through "
                                   "the link sent to this address: this address is the account's again, a new "
                                   "password was set, and every session and every app signed in to your account "
                                   "was signed out.",
    "face.enroll.first": "A face was enrolled for sign-in on your account. From now on, signing in to apps "
                         "that use face sign-in needs this face.",
    "face.enroll": "A new face template was stored for your account, replacing the previous one.",
    "face.enroll.after": "A face template was stored for your account after {how}.",
    "face.delete": "The face sign-in data of your account (its face template, if one was enrolled, and the consent "
                   "to the biometric notice) was deleted.",
    "face.reset": "An administrator reset the face sign-in of your account: a new face may be enrolled after "
                  "the password alone for a limited time.",
    "face.recovery": "One of your recovery codes was used to sign in without your face.",
    "admin.recovery_codes_voided": "An administrator voided the unused recovery codes of your account: they no "
                                   "longer work. New codes come with your next re-enrollment confirmed by your face.",
    "admin.face_unlocked": "An administrator lifted the lock of face sign-in on your account (and the count of failed "
                           "face checks): face checks may be tried again. Your face data was not changed.",
    "face.verify": "Someone entered the password of your account, then did not pass the face check (or stopped "
                   "it once the instruction was shown). Until your next successful face sign-in, further failed "
                   "checks are not mailed one by one.",
    "face.lockout": "Face sign-in for your account was locked after too many failed face checks. Sign in with a "
                    "recovery code, or ask your administrator to unlock it.",
}


#: How an enrollment that replaced nothing came about (``face.enroll`` ``details.via``).
ENROLLED_AFTER = {"recovery": "a sign-in with a recovery code", "admin_reset": "an administrator's reset",
                  "deleted": "the previous face data was deleted"}

#: Footers: what to do if it was not you. Once a face is enrolled, the account page needs that face, so
#: the owner of an account someone else enrolled cannot use "Sign out everywhere" there.
FOOTER = ["If this was you, there is nothing to do. If it was not, reset your password at once and",
          "use \"Sign out everywhere\" on your account page."]
FOOTER_EMAIL = {
    "account.email_change_requested": [
        "If this was you, there is nothing to do. If it was not, someone who knows your password or is signed in",
        "as you asked for it: reset your password at once (\"Forgot password?\" on the sign-in page, the link",
        "comes to this address). The reset cancels the change and signs out every session and app."],
    "account.email_changed": [
        "If this was you, there is nothing to do. If it was not, open the link above: it gives this address back",
        "to your account, signs out every session and app and has you choose a new password. Without the link",
        "(it expired, or the address was changed again since), ask your administrator at once: password-reset",
        "links no longer come to this address."],
}
FOOTER_NEW_DEVICE = [
    "If this was you, there is nothing to do. If it was not, someone knows your password: reset it at once",
    "(\"Forgot password?\" on the sign-in page, the link comes to this address). The reset signs out every",
    "session and app."]
#: Of the notices of sign-ins from new browsers, at most NEW_DEVICE_NOTICES per account per
#: NEW_DEVICE_WINDOW_S are mailed: whoever holds the password can throw the cookie away at every sign-in, and the
#: owner needs to hear of it, not to have the mailbox flooded. Every such sign-in is audited all the same.
NEW_DEVICE_NOTICES = 3
NEW_DEVICE_WINDOW_S = 3600
#: Every enrollment's notice (the first, a replacement, one after a recovery code or reset): the face on the
#: account may now be someone else's, so the account page, which needs that face, is out of the owner's reach.
FOOTER_FIRST = ["If this was you, there is nothing to do. If it was not, someone who knows your password set up",
                "their own face: reset your password at once (\"Forgot password?\" on the sign-in page), then sign",
                "in with the new password and one of your recovery codes and enroll your face again (no enrollment",
                "voids your unused codes). Without a code, ask your administrator to reset face sign-in."]


def masked_address(address: str | None) -> str:
    """An address as a notice shows it, ``a***@example.com``: enough for its owner to recognise their own,
    not a whole address of someone else's delivered to a mailbox (the previous one may no longer be the
    owner's either)."""
    local, _, domain = str(address or "").rpartition("@")
    return f"{local[:1]}***@{domain}" if local and domain else "another address"


def notice_kind(doc: dict) -> str:
    """The notice an event gets: its name; for an enrollment, ``face.enroll`` when it replaced a template,
    ``face.enroll.after`` when it followed a recovery code, an admin reset or a deletion, else
    ``face.enroll.first`` (no face before: trusted on first use)."""
    details = doc.get("details") or {}
    if doc.get("event") == "face.enroll" and not details.get("replaced"):
        return "face.enroll.after" if details.get("via") in ENROLLED_AFTER else "face.enroll.first"
    return str(doc.get("event"))


def should_notify(doc: dict) -> bool:
    event, decision = doc.get("event"), doc.get("decision")
    if event not in SUBJECTS or not doc.get("user_id"):
        return False
    if event == "face.enroll":  # every stored template, the first one included (it is trusted on first use)
        return decision == "enrolled"
    if event in ("face.recovery", "face.delete"):
        return decision in ("accepted", "deleted")
    if event == "account.email_changed":  # to the previous address, if the owner had confirmed it
        details = doc.get("details") or {}
        return bool(details.get("previous_email") and details.get("previous_verified"))
    if event == "account.email_change_requested":  # to the confirmed address, which stays the account's
        return bool((doc.get("details") or {}).get("new_email"))
    if event == "face.verify":
        # the first counted failure since the last success (or unlock): whoever failed holds the password.
        # One mail per such run, so each of an attacker's looks at a new challenge (one per owner sign-in)
        # reaches the owner, and a bad day of the owner's own does not flood the mailbox.
        return (doc.get("details") or {}).get("failures") == 1
    if event == "face.lockout":
        return decision == "locked"
    if event == "account.new_device":
        return decision == "signed_in"
    return True


def _within_new_device_limit(db, uid: str) -> bool:
    """Whether a new-browser notice for ``uid`` is within ``NEW_DEVICE_NOTICES`` per window: a rate counter in
    ``throttles`` shared by every instance, owned by the account (erased with it). A count that cannot be kept
    lets the notice go."""
    from idp.throttle import RateLimit
    try:
        return not RateLimit(db, NEW_DEVICE_NOTICES, NEW_DEVICE_WINDOW_S).hit(f"notice:new_device:{uid}", owner=uid)
    except Exception:
        log.exception("the new-browser notice count failed")
        return True


def _detail_lines(doc: dict) -> list[str]:
    """What the owner needs to know beyond the event itself: until when a reset grant holds, and whether
    an enrollment made recovery codes (it never voids unused ones: if someone else enrolled, the owner's codes
    are the way back)."""
    details = doc.get("details") or {}
    if doc["event"] == "face.reset" and details.get("until"):
        return [f"That enrollment is allowed until {str(details['until'])[:16].replace('T', ' ')} UTC."]
    kind = notice_kind(doc)
    if "codes_issued" not in details or not kind.startswith("face.enroll"):
        return []
    if details["codes_issued"]:  # shown to whoever enrolled: if that was not the owner, they hold them
        made = ("Recovery codes were made for it" if kind == "face.enroll.first"
                else "New recovery codes were made (you had no unused ones left)")
        return [f"{made}. If you did not enroll, they went to whoever did: ask your administrator to void them."]
    return ["No recovery codes were made: any unused ones you have still work." if kind == "face.enroll.first"
            else "Your recovery codes were not replaced: the unused ones still work."]


#: Lines a notice carries that only the area owning their page can write (a link needs the issuer and a route),
#: by event: ``fn(db, doc) -> list[str]``, added with :func:`add_lines` by that area when it is imported (the
#: accounts pages add the undo link of ``account.email_changed``). The mail imports no page; without the app
#: (nothing added) the notice goes without them.
_EXTRA_LINES: dict = {}


def add_lines(event: str):
    """Decorator: ``fn(db, doc)`` writes lines for the notice of ``event``, after its text."""
    def add(fn):
        _EXTRA_LINES[event] = fn
        return fn
    return add


def _extra_lines(db, doc: dict) -> list[str]:
    """The lines added for ``doc``'s event; none when that fails (logged: the notice still goes)."""
    fn = _EXTRA_LINES.get(doc["event"])
    if fn is None:
        return []
    try:
        return list(fn(db, doc))
    except Exception:
        log.exception("the added lines of a %s notice could not be made", doc["event"])
        return []


def on_audit(db, doc: dict) -> None:
    if not should_notify(doc):
        return
    from idp.mail import greeting, send
    user = db.users.find_one({"_id": doc["user_id"]}, {"email": 1, "email_verified": 1, "name": 1, "username": 1})
    if not user or not user.get("email"):
        return
    to, confirmed = user["email"], None
    if doc["event"] == "account.email_changed":  # to the previous address, sent only if it was confirmed
        to, confirmed = doc["details"]["previous_email"], bool(doc["details"].get("previous_verified"))
    elif doc["event"] == "account.email_change_requested" and not user.get("email_verified"):
        return  # only a confirmed address has a change asked for (users.request_email_change)
    elif doc["event"] == "account.new_device" and not _within_new_device_limit(db, doc["user_id"]):
        return
    when = doc["at"].strftime("%Y-%m-%d %H:%M UTC")
    kind = notice_kind(doc)
    details = doc.get("details") or {}
    text = TEXT[kind].format(how=ENROLLED_AFTER.get(str(details.get("via")), ""),
                             new=masked_address(details.get("new_email")))
    lines = [greeting(user, confirmed=confirmed), "", text, *_detail_lines(doc), *_extra_lines(db, doc), "",
             f"When: {when}"]
    if doc.get("ip"):
        lines.append(f"From address: {doc['ip']}")
    if kind == "account.new_device" and doc.get("user_agent"):
        lines.append(f"Browser (as it names itself): {browser_summary(doc['user_agent'])}")
    footer = (FOOTER_FIRST if kind.startswith("face.enroll")
              else FOOTER_NEW_DEVICE if kind == "account.new_device" else FOOTER_EMAIL.get(kind, FOOTER))
    lines += ["", *footer, "", "— Deep Authenticator"]
    send(db, to, SUBJECTS[kind.replace(".after", "")], "\n".join(lines), kind=f"notice:{kind}",
         user_id=doc["user_id"])
