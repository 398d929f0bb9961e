"""The users repository: accounts in the ``users`` collection (no Flask here).

Document: {_id (opaque random str, the OIDC ``sub``), username (lowercased), email
(lowercased), email_skeleton (:func:`email_skeleton`), name, phone, password_hash (argon2id), is_admin, created_at,
email_verified, pending_email?, pending_email_at?, email_changed_at?, email_changed_from?, email_held_until?}.
Uniqueness of username and email is enforced by the unique indexes of migration 0001, so two racing
registrations cannot both succeed.

An address with a character outside ASCII must not read as another account's address: it is refused when its
confusable skeleton is another account's (:func:`refuse_lookalike`; the ``email_skeleton`` index of migration
0015). Two ASCII addresses are never compared so (``rn`` and ``m`` have one skeleton, and both are real mailboxes).

``email`` is the account's address: the one it signs in with and the one its reset links and notices go to.
Once confirmed it stays so until another address is confirmed: a change asked for is only ``pending_email``
(:func:`request_email_change`) and takes effect when the link sent there is used (:func:`confirm_email`), so
whoever briefly holds a session or the password cannot move the owner's mail away with one form. An account
that never confirmed an address (a registration whose link was not used) has no mail to protect: its change
replaces ``email`` at once (:func:`set_email`), still unconfirmed. ``pending_email`` exists only next to a
confirmed ``email``; it is not unique (it reserves nothing): the unique index decides when it takes effect. A
change that took effect can be undone for a while from the previous address (:func:`restore_email`); until then
that address is held for the account (``email_changed_from`` until ``email_held_until``, written with the change):
no other account takes it (:func:`create_user`, :func:`set_email`), or whoever made the change could register it
to make the undo impossible.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from idp.store import durable
from idp.text import hidden_characters, lookalike_identifier, mixed_scripts, skeleton

from . import passwords

# A new username: it starts with a letter or digit, so it can be given to the CLI as an argument (click reads a
# leading '-' as an option). Only creation checks it: sign-in looks a name up, so an older account named
# "-x" still signs in (and is named to the CLI after "--").
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
# Pragmatic address check (no deliverability lookup): one @, a dotted domain, no spaces, and a local part
# without the mail header's specials or control characters, so the address names one mailbox (a "To" header
# reads "mallory,alice@example.com" as two recipients).
EMAIL_RE = re.compile(r"^[^@\s()<>\[\]:;\\,\"\x00-\x1f\x7f]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
PHONE_RE = re.compile(r"^\+?[0-9 ().-]{6,24}$")
NAME_MAX = 100


# Callables ``(db, user_id)`` run by ``delete_user`` before anything is erased, filled by other packages at
# import (e.g. idp.oauth queues back-channel logouts); a failing hook does not stop the erasure.
BEFORE_DELETE_HOOKS: list = []


class DuplicateUser(Exception):
    """An account with this username or email exists; ``field`` is "username" or "email"."""

    def __init__(self, field: str):
        super().__init__(f"{field} already registered")
        self.field = field

    @property
    def message(self) -> str:
        return ("This username is taken. Choose another one." if self.field == "username"
                else "An account with this email address already exists.")


class LookalikeEmail(DuplicateUser):
    """Another account's address reads as this one (the same confusable skeleton: :func:`refuse_lookalike`)."""

    def __init__(self):
        super().__init__("email")

    @property
    def message(self) -> str:
        return ("This address looks like the address of another account (letters of another alphabet that look "
                "the same). Enter it in the letters you use, or choose another one.")


class InvalidUser(ValueError):
    """The account data breaks a rule; ``errors`` maps field name to message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- normalisation and validation ----------------------------------------------------------

def normalize_username(value: str | None) -> str:
    return (value or "").strip().lower()


def normalize_email(value: str | None) -> str:
    return (value or "").strip().lower()


def username_problem(username: str) -> str | None:
    if not USERNAME_RE.match(normalize_username(username)):
        return "Use 3 to 32 characters: letters, digits, dots, dashes or underscores, starting with a letter or digit."
    return None


def email_problem(email: str) -> str | None:
    """Why ``email`` cannot be an account's address: not one mailbox (``EMAIL_RE``), or one that reads as another
    address (an invisible character or a compatibility form: :func:`idp.text.lookalike_identifier`; a local part or
    domain label mixing scripts that look alike, a Cyrillic ``а`` among Latin letters: :func:`idp.text.mixed_scripts`),
    which would give a second account that looks like the first on the admin pages, in mails and in the ``email``
    claim. An address reading as one of another account is :func:`refuse_lookalike`'s part (it needs the
    database)."""
    email = normalize_email(email)
    if len(email) > 254 or not EMAIL_RE.match(email):
        return "Enter a valid email address, like name@example.com."
    if lookalike_identifier(email):
        return "Enter the address without invisible or special-width characters, like name@example.com."
    local, _, domain = email.rpartition("@")
    if mixed_scripts(local) or any(mixed_scripts(label) for label in domain.split(".")):
        return ("Enter the address in the letters of one alphabet (not Latin mixed with Cyrillic or Greek letters "
                "that look alike), like name@example.com.")
    return None


def email_skeleton(email: str) -> str:
    """The confusable skeleton of the address (:func:`idp.text.skeleton`), stored as ``email_skeleton``."""
    return skeleton(normalize_email(email))


def refuse_lookalike(db: Database, email: str, uid: str | None = None) -> None:
    """Raise :class:`LookalikeEmail` when ``email`` holds a character outside ASCII and another account than
    ``uid`` has an address of the same skeleton (``аlice@`` in Cyrillic beside ``alice@``, whole-script ``аре@``
    beside ``ape@``); the very same address is left to the unique index (:class:`DuplicateUser`). One indexed
    lookup. ASCII addresses are not compared: ``rn`` and ``m`` share a skeleton and are both real mailboxes. A
    check before the write: two lookalikes registered at the same instant can both pass."""
    email = normalize_email(email)
    if email.isascii():
        return
    query = {"email_skeleton": email_skeleton(email), "email": {"$ne": email}}
    if uid is not None:
        query["_id"] = {"$ne": uid}
    if db.users.find_one(query, {"_id": 1}):
        raise LookalikeEmail()


def phone_problem(phone: str | None) -> str | None:
    if not phone:
        return None
    if not PHONE_RE.match(phone.strip()) or sum(c.isdigit() for c in phone) < 6:
        return "Enter a phone number with digits only, optionally starting with + (e.g. +41 44 123 45 67)."
    return None


def name_problem(name: str | None) -> str | None:
    """A display name is at most ``NAME_MAX`` characters of text without hidden characters
    (:func:`idp.text.hidden_characters`: NUL, line breaks, bidi overrides), which would reach the ID token's
    ``name``, every mail's greeting and the admin pages."""
    if name is not None and len(name.strip()) > NAME_MAX:
        return f"Use at most {NAME_MAX} characters."
    if name is not None and hidden_characters(name):
        return "Use letters, spaces and punctuation only (no control characters such as line breaks)."
    return None


def validate(username: str, email: str, password: str, name: str | None = None,
             phone: str | None = None) -> dict[str, str]:
    """Per-field problems of new account data (empty when acceptable)."""
    errors = {}
    for field, problem in (
        ("username", username_problem(username)),
        ("email", email_problem(email)),
        ("name", name_problem(name)),
        ("phone", phone_problem(phone)),
        ("password", passwords.password_problem(password, username=normalize_username(username),
                                                email=normalize_email(email))),
    ):
        if problem:
            errors[field] = problem
    return errors


# --- repository ----------------------------------------------------------------------------

def new_user_id() -> str:
    """A random user id (``idp.store.new_id``: never a leading '-', for the CLI)."""
    from idp.store import new_id
    return new_id()


def create_user(db: Database, username: str, email: str, password: str, name: str | None = None,
                phone: str | None = None, is_admin: bool = False, *, validate_input: bool = True) -> dict:
    """Create an account and return its document. Raises ``InvalidUser`` (rule broken) or
    ``DuplicateUser`` (username or email taken — decided by the unique index, race-free; or
    :class:`LookalikeEmail`, an address reading as another account's, checked before anything is written)."""
    if validate_input:
        errors = validate(username, email, password, name, phone)
        if errors:
            raise InvalidUser(errors)
    refuse_lookalike(db, email)
    doc = {
        "_id": new_user_id(),
        "username": normalize_username(username),
        "email": normalize_email(email),
        "email_skeleton": email_skeleton(email),
        "name": (name or "").strip() or None,
        "phone": (phone or "").strip() or None,
        "password_hash": passwords.hash_password(password),
        "is_admin": bool(is_admin),
        "created_at": datetime.now(timezone.utc),
        "email_verified": False,
    }
    try:
        durable(db, "users").insert_one(doc)
    except DuplicateKeyError as e:
        raise DuplicateUser(_duplicate_field(db, e, doc)) from None
    if held_for_another(db, doc["email"], doc["_id"]):  # checked after the insert: see held_for_another
        durable(db, "users").delete_one({"_id": doc["_id"]})
        raise DuplicateUser("email")
    return doc


def held_for_another(db: Database, email: str, uid: str) -> bool:
    """Whether ``email`` is the previous address of another account whose change to another address can still be
    undone (``email_held_until``, see the module's text). Checked after the write that gives ``email`` to ``uid``:
    that write can only succeed once the change freed the address, and the hold is part of the change's write,
    so the check never misses it."""
    return db.users.find_one({"email_changed_from": normalize_email(email), "_id": {"$ne": uid},
                              "email_held_until": {"$gt": datetime.now(timezone.utc)}}, {"_id": 1}) is not None


def _duplicate_field(db: Database, error: DuplicateKeyError, doc: dict) -> str:
    details = error.details or {}
    pattern = details.get("keyPattern") or details.get("keyValue") or {}
    for field in ("username", "email"):
        if field in pattern:
            return field
    text = str(details.get("errmsg") or error)
    for field in ("username", "email"):
        if f"{field}_unique" in text or f"{field}_1" in text:
            return field
    if db.users.find_one({"username": doc["username"]}, {"_id": 1}):
        return "username"
    return "email"


def get_user(db: Database, uid: str) -> dict | None:
    if not uid or not isinstance(uid, str):
        return None
    return db.users.find_one({"_id": uid})


def find_by_login(db: Database, username_or_email: str) -> dict | None:
    """The account whose username — or, when the value contains "@", email — matches."""
    value = (username_or_email or "").strip().lower()
    if not value or len(value) > 254:
        return None
    return db.users.find_one({"email": value} if "@" in value else {"username": value})


def find_for_sign_in(db: Database, username_or_email: str) -> dict | None:
    """:func:`find_by_login` for the password step and "Forgot password?": an account a deletion has claimed
    (:func:`deletion_claimed`) is answered as no account - the same answer, and nothing written under it."""
    user = find_by_login(db, username_or_email)
    return None if deletion_claimed(user) else user


def verify_password(db: Database, user: dict | None, password: str) -> bool:
    """Check ``password`` for ``user`` (None = unknown account: same time, always False).
    On success a hash made with outdated parameters is replaced by a fresh one; ``user["password_hash"]`` is
    then the stored hash this password checks against (the one checked if the hash changed to another
    password meanwhile)."""
    if password is None or len(password) > 4 * passwords.MAX_LENGTH:
        password = ""  # still spend the hashing time
    ok = passwords.check_password(user.get("password_hash") if user else None, password)
    if ok and passwords.needs_rehash(user["password_hash"]):
        new_hash = passwords.hash_password(password)
        if durable(db, "users").update_one({"_id": user["_id"], "password_hash": user["password_hash"]},
                                           {"$set": {"password_hash": new_hash}}).modified_count:
            user["password_hash"] = new_hash  # what is stored now
        else:
            # The hash changed since it was read (a change that won meanwhile stays): a concurrent sign-in's
            # rehash of this same password, or a new password. Only the first leaves this sign-in standing
            # (:func:`signs_in_with`), so the stored hash is adopted only if the password checks against it
            # too - one more hashing, on this race only.
            stored = (db.users.find_one({"_id": user["_id"]}, {"password_hash": 1}) or {}).get("password_hash")
            if stored and passwords.check_password(stored, password):
                user["password_hash"] = stored
    return ok


def authenticate(db: Database, username_or_email: str, password: str) -> dict | None:
    """The user document when the credentials are right, else None (constant work either way); an account
    a deletion has claimed never authenticates (:func:`find_for_sign_in`). The password step itself goes
    through ``idp.accounts.guard`` (throttled); this is the plain check, for tools and tests."""
    user = find_for_sign_in(db, username_or_email)
    return user if verify_password(db, user, password) else None


def signs_in_with(db: Database, uid: str, password_hash: str) -> bool:
    """Whether a sign-in of ``uid`` proved with the password of ``password_hash`` (as checked, or its rehash)
    still stands: the account may sign in (:func:`may_sign_in`) and that is still its password (a change or
    reset replaces the hash before it ends the account's sessions)."""
    doc = get_user(db, uid)
    return may_sign_in(doc) and doc.get("password_hash") == password_hash


def set_password(db: Database, uid: str, password: str, *, replacing: str | None = None,
                 email: str | None = None) -> tuple[str | None, str | None]:
    """Store a new password for ``uid``: (its hash, or None when nothing was written; the pending email address
    the same write dropped, or None). With ``replacing`` (the hash the caller checked the current password
    against, or read before the reset link was used) the write is a compare-and-set on that hash: of requests
    changing the same password at once exactly one succeeds, and a change made meanwhile is never silently
    overwritten. With ``email`` (a reset link's: the address the account had when it was read) the address must
    still be that one. The write also drops a pending email change, so that a change asked for with the old
    password (perhaps by whoever held it) can be confirmed neither before nor after the new one is stored. None
    also when the account is gone."""
    from pymongo import ReturnDocument
    query = {"_id": uid} if replacing is None else {"_id": uid, "password_hash": replacing}
    if email is not None:
        query["email"] = email
    new_hash = passwords.hash_password(password)
    before = durable(db, "users").find_one_and_update(
        query, {"$set": {"password_hash": new_hash}, "$unset": {"pending_email": "", "pending_email_at": ""}},
        projection={"pending_email": 1}, return_document=ReturnDocument.BEFORE)
    return (new_hash, before.get("pending_email")) if before is not None else (None, None)


def has_confirmed_email(user: dict | None) -> bool:
    """Whether the account's address (``email``) was confirmed through a link sent to it (or a reset link)."""
    return bool(user and user.get("email") and user.get("email_verified"))


def set_email(db: Database, uid: str, email: str, *, password_hash: str) -> bool:
    """Replace the address of an account that has no confirmed one (nothing to protect: see the module's text);
    the new one is unconfirmed until a link sent to it is used. False when the account is gone, has confirmed
    its address meanwhile (its change is then :func:`request_email_change`) or its password changed since the
    request checked it (``password_hash``). Raises ``DuplicateUser``, also for
    an address held for another account (:func:`held_for_another`), or :class:`LookalikeEmail` (before anything
    is written)."""
    email = normalize_email(email)
    refuse_lookalike(db, email, uid)
    if held_for_another(db, email, uid):
        raise DuplicateUser("email")
    try:
        before = durable(db, "users").find_one_and_update(
            {"_id": uid, "email_verified": {"$ne": True}, "password_hash": password_hash},
            {"$set": {"email": email, "email_skeleton": email_skeleton(email), "email_verified": False},
             "$unset": {"pending_email": "", "pending_email_at": ""}},
            projection={"email": 1})
    except DuplicateKeyError:
        raise DuplicateUser("email") from None
    if before is not None and held_for_another(db, email, uid):  # held just before the write: undone
        try:
            durable(db, "users").update_one({"_id": uid, "email": email}, {"$set": {
                "email": before.get("email"), "email_skeleton": email_skeleton(before.get("email") or "")}})
        except DuplicateKeyError:  # (its old address taken in that very moment: nothing left to go back to)
            pass
        raise DuplicateUser("email")
    return before is not None


class ChangedRecently(Exception):
    """The account's confirmed address took effect less than the undo window ago; another change may be asked
    for from ``until`` (aware UTC)."""

    def __init__(self, until: datetime):
        super().__init__("email address changed recently")
        self.until = until


def request_email_change(db: Database, user: dict, email: str, *, quiet_s: int = 0) -> bool:
    """Make ``email`` the pending address of ``user`` (a document read with a confirmed ``email``, whose password
    the request checked); the account keeps its address until :func:`confirm_email`. A newer request replaces the
    pending one. False when the account's address or password changed since ``user`` was read (or the account is
    gone): a reset or change of the password drops a pending change in the same write as the new password, so a
    change asked with the old one must not be written after it. Raises ``DuplicateUser`` when
    another account has the address now (the same answer as :func:`set_email`; the unique index decides again
    when it takes effect); :class:`LookalikeEmail` when another account's address reads as it (checked again
    then too).

    Raises :class:`ChangedRecently` while a change took effect less than ``quiet_s`` ago (the undo window): one
    change at a time can be undone by the address it left, so a second change inside the window would move the
    undo link to a mailbox of whoever made the first (the condition is part of the one conditional write)."""
    email = normalize_email(email)
    if db.users.find_one({"email": email, "_id": {"$ne": user["_id"]}}, {"_id": 1}):
        raise DuplicateUser("email")
    refuse_lookalike(db, email, user["_id"])
    now = datetime.now(timezone.utc)
    mine = {"_id": user["_id"], "email": user["email"], "email_verified": True, "password_hash": user["password_hash"]}
    quiet = {"$or": [{"email_changed_at": {"$exists": False}},
                     {"email_changed_at": {"$lte": now - timedelta(seconds=max(0, quiet_s))}}]}
    if durable(db, "users").update_one({**mine, **quiet},
                                       {"$set": {"pending_email": email, "pending_email_at": now}}).matched_count:
        return True
    changed = (durable(db, "users").find_one(mine, {"email_changed_at": 1}) or {}).get("email_changed_at")
    if changed is not None:
        changed = changed if changed.tzinfo else changed.replace(tzinfo=timezone.utc)
        raise ChangedRecently(changed + timedelta(seconds=max(0, quiet_s)))
    return False


def cancel_email_change(db: Database, uid: str, address: str | None = None) -> str | None:
    """Drop the account's pending address (only if it is ``address``, when given: a newer request stays); the
    address dropped, or None when there was none."""
    from pymongo import ReturnDocument
    pending = {"$exists": True} if address is None else normalize_email(address)
    before = durable(db, "users").find_one_and_update(
        {"_id": uid, "pending_email": pending}, {"$unset": {"pending_email": "", "pending_email_at": ""}},
        projection={"pending_email": 1}, return_document=ReturnDocument.BEFORE)
    return before.get("pending_email") if before else None


def confirm_email(db: Database, uid: str, email: str, *, hold_s: int = 0) -> dict | None:
    """Confirm ``email``, the address a verification link went to, for ``uid``, in one conditional write: the
    account's own address becomes confirmed (``{"changed": False}``), or its pending address becomes its
    confirmed address (``{"changed": True, "previous_email": ...}``). None when it is neither any more (a link
    to an address the account left or no longer asks for proves nothing). Raises ``DuplicateUser`` when
    another account took the pending address meanwhile, or :class:`LookalikeEmail` when another account's address
    reads as it now (nothing is written). A change holds the previous address for the account for ``hold_s`` (its
    undo window, :func:`held_for_another`), in the same write."""
    from pymongo import ReturnDocument
    email = normalize_email(email)
    if not email:
        return None
    coll = durable(db, "users")
    if coll.update_one({"_id": uid, "email": email}, {"$set": {"email_verified": True}}).matched_count:
        return {"changed": False}
    current = coll.find_one({"_id": uid, "pending_email": email, "email_verified": True}, {"email": 1})
    if current is None:
        return None
    refuse_lookalike(db, email, uid)
    now = datetime.now(timezone.utc)
    try:
        before = coll.find_one_and_update(
            {"_id": uid, "email": current["email"], "pending_email": email, "email_verified": True},
            {"$set": {"email": email, "email_skeleton": email_skeleton(email), "email_verified": True,
                      "email_changed_at": now, "email_changed_from": current["email"],
                      "email_held_until": now + timedelta(seconds=max(0, hold_s))},
             "$unset": {"pending_email": "", "pending_email_at": ""}},
            projection={"email": 1}, return_document=ReturnDocument.BEFORE)
    except DuplicateKeyError:
        raise DuplicateUser("email") from None
    return {"changed": True, "previous_email": before["email"]} if before else None


def restore_email(db: Database, uid: str, previous: str, changed_to: str, password: str) -> dict | None:
    """Undo a change of the address from ``previous`` to ``changed_to`` (the owner of ``previous`` used the link
    mailed there, which proves that mailbox as a reset link does), in one conditional write: ``previous`` is the
    account's confirmed address again, a pending change is dropped and ``password`` replaces the password (the
    change's author may know or have set it). Only while ``changed_to`` is still the account's address and no
    deletion has claimed it; else None. ``{"password_hash": ..., "dropped_pending": address or None}`` when
    written. Raises ``DuplicateUser`` when another account has ``previous`` now (nothing is written)."""
    from pymongo import ReturnDocument
    new_hash = passwords.hash_password(password)
    try:
        before = durable(db, "users").find_one_and_update(
            {"_id": uid, "email": normalize_email(changed_to), "deleting": {"$exists": False}},
            {"$set": {"email": normalize_email(previous), "email_skeleton": email_skeleton(previous),
                      "email_verified": True, "password_hash": new_hash},
             "$unset": {"pending_email": "", "pending_email_at": "", "email_changed_at": "", "email_changed_from": "",
                        "email_held_until": ""}},
            projection={"pending_email": 1}, return_document=ReturnDocument.BEFORE)
    except DuplicateKeyError:
        raise DuplicateUser("email") from None
    return {"password_hash": new_hash, "dropped_pending": before.get("pending_email")} if before else None


def mark_email_verified(db: Database, uid: str, email: str) -> bool:
    """Mark ``email`` verified, only if it is still the account's address (a link to an old one proves nothing)."""
    return durable(db, "users").update_one(
        {"_id": uid, "email": normalize_email(email)}, {"$set": {"email_verified": True}}).matched_count == 1


def list_users(db: Database) -> list[dict]:
    return list(db.users.find({}, {"password_hash": 0}).sort("username", 1))


def public_view(user: dict) -> dict:
    """The account without secrets, JSON-friendly."""
    def plain(value):
        if isinstance(value, datetime):
            return value.isoformat()
        return {k: plain(v) for k, v in value.items()} if isinstance(value, dict) else value

    out = {k: plain(v) for k, v in user.items() if k not in ("password_hash", "email_skeleton")}  # (internal)
    if isinstance(out.get("deleting"), dict):  # a deletion in progress (or interrupted): since when, not its claim
        out["deleting"] = {"at": out["deleting"].get("at")}
    out["id"] = out.pop("_id")
    return out


def throttle_keys(user: dict) -> list[str]:
    """Throttle keys that can belong to this user (password and face steps; ``pwd:login:<name>`` counted
    failures under the username or email before the account existed)."""
    keys = []
    for prefix in ("pwd", "face"):
        for value in (user.get("username"), user.get("email"), user.get("_id")):
            if value:
                keys.append(f"{prefix}:user:{value}")
    keys += [f"pwd:login:{value}" for value in (user.get("username"), user.get("email")) if value]
    return keys


def throttle_records(user: dict) -> dict:
    """The query of this account's documents in ``throttles``: its failure counters (:func:`throttle_keys`),
    every rate counter of its own events (``user_id``: per account, and its share of an address's budget,
    which pairs the account with the address; ``idp.throttle``), and the mail counters of its
    username or email from before the account had it (``mail:account:login:<name>@<window>``). Counters
    shared with other accounts (an address's budget and number of accounts) are not the account's."""
    names = [re.escape(v) for v in (user.get("username"), user.get("email")) if v]
    query = [{"_id": {"$in": throttle_keys(user)}}, {"user_id": user["_id"]}]
    if names:
        query.append({"_id": {"$regex": f"^mail:account:login:(?:{'|'.join(names)})@[0-9]+$"}})
    return {"$or": query}


# A deletion claims the account first (from then on it cannot sign in: ``deletion_claimed``); a claim older than
# this (its process died mid-erasure) may be taken over, so an interrupted deletion can be run again.
DELETE_CLAIM_S = 600


def _claim_deletion(db: Database, uid: str) -> dict | None:
    """Mark the account as being deleted by this call (one conditional update): its document with this
    call's claim, or None when there is no such account or another call holds a live claim."""
    from pymongo import ReturnDocument
    now = datetime.now(timezone.utc)
    return durable(db, "users").find_one_and_update(
        {"_id": uid, "$or": [{"deleting": {"$exists": False}},
                             {"deleting.at": {"$lt": now - timedelta(seconds=DELETE_CLAIM_S)}}]},
        {"$set": {"deleting": {"at": now, "claim": secrets.token_urlsafe(12)}}},
        return_document=ReturnDocument.AFTER)


def delete_user(db: Database, uid: str, *, before=None) -> dict[str, int] | None:
    """Erase the user and ALL their data across collections. Returns the number of documents deleted per
    collection, or None when there is no such user - or another call is deleting it: the account is claimed
    first, so of concurrent deletions exactly one runs the hooks, ``before(db, uid)`` (the caller's side
    effects, e.g. ending app grants) and the erasure, and only its caller gets counts to audit and notify. From
    the claim on the account cannot sign in (:func:`deletion_claimed`), so nothing new is made for it while
    the erasure runs past its collections."""
    if not isinstance(uid, str) or not uid:
        return None
    user = _claim_deletion(db, uid)
    if user is None:
        return None
    counts: dict[str, int] = {}
    # the caller's own side effects first: what it counts (e.g. the app grants it ends) is still there
    for hook in ([before] if before is not None else []) + list(BEFORE_DELETE_HOOKS):
        try:
            hook(db, uid)
        except Exception:  # the erasure the user asked for must happen anyway
            import logging
            logging.getLogger("idp.accounts").exception("before-delete hook failed")

    def erase(collection: str, query: dict):
        counts[collection] = counts.get(collection, 0) + durable(db, collection).delete_many(query).deleted_count

    # Sign-ins and credentials first, so nothing can act for the user while the rest goes.
    erase("sessions", {"data.auth.uid": uid})
    erase("tokens", {"user_id": uid})
    erase("auth_codes", {"user_id": uid})
    erase("consents", {"user_id": uid})
    erase("face_templates", {"_id": uid})
    erase("face_templates", {"user_id": uid})
    erase("capture_sessions", {"user_id": uid})
    erase("recovery_codes", {"user_id": uid})
    erase("audit_log", {"user_id": uid})
    erase("throttles", throttle_records(user))
    erase("face_status", {"_id": uid})
    erase("known_devices", {"user_id": uid})
    # Safety net for collections added by other features: anything else tagged with the user.
    for name in _tagged_collections(db):
        erase(name, {"user_id": uid})
    erase("users", {"_id": uid, "deleting.claim": user["deleting"]["claim"]})
    if not counts["users"]:  # taken over after DELETE_CLAIM_S: that call reports the deletion
        return None
    return {name: n for name, n in counts.items() if n}


def _tagged_collections(db: Database) -> list[str]:
    """Every collection whose rows may name a user in ``user_id`` (all but the accounts and the migrations)."""
    return [n for n in db.list_collection_names() if n not in ("users", "migrations") and not n.startswith("system.")]


def erased_if_claimed_since(db: Database, uid: str) -> bool:
    """Read after an action wrote under the account ``uid`` (it found the account usable when it began): when a
    deletion has claimed the account since, or finished, what the action wrote (an audit entry, a notice in the
    mail outbox, a face-status record, recovery codes, ...) may have come after the erasure passed those
    collections, so every row naming the user goes again here (as :func:`delete_user` erases them), and True is
    returned. A deletion erases only after its claim: either it erases what was written before this read, or this
    read sees the claim. Never erases by an empty id."""
    if not isinstance(uid, str) or not uid:
        return False
    user = db.users.find_one({"_id": uid}, {"deleting": 1})
    if user is not None and not deletion_claimed(user):
        return False
    for name in _tagged_collections(db):
        durable(db, name).delete_many({"user_id": uid})
    for name in ("face_status", "face_templates"):
        durable(db, name).delete_one({"_id": uid})
    return True


def set_disabled(db: Database, uid: str, disabled: bool, by: str | None = None) -> bool:
    """Disable or enable an account (administrators). A disabled account is refused at the password
    step; ending its sessions and app grants is the caller's part (the admin view does both).
    Returns whether the account exists."""
    update = ({"$set": {"disabled": {"at": datetime.now(timezone.utc), "by": by}}} if disabled
              else {"$unset": {"disabled": ""}})
    return durable(db, "users").update_one({"_id": uid}, update).matched_count == 1


def is_disabled(user: dict | None) -> bool:
    return bool(user and user.get("disabled"))


def deletion_claimed(user: dict | None) -> bool:
    """Whether a deletion has claimed the account (``delete_user`` sets ``deleting`` first and removes the
    document last): from then on the account answers every sign-in as if it did not exist.

    Live or stale alike: a claim older than ``DELETE_CLAIM_S`` (its process died mid-erasure) still refuses.
    Such a deletion may already have erased the account's sessions, tokens, face template, recovery codes and
    audit entries; letting the account sign in again would bring back an account an administrator removed,
    half erased (without its face template, whoever holds the password could enroll a face as its "first").
    The way out is to run the deletion again (``idp users delete``, or the admin page), which takes the stale
    claim over and finishes; the claim's time shows in ``idp users list --json`` and on the admin page."""
    return bool(user and user.get("deleting"))


def usable_account(db: Database, uid: str | None) -> dict | None:
    """The account ``uid`` as stored when it may sign in (:func:`may_sign_in`), else None: what a code, a token
    or a refresh proves for an account counts only through this (one read by ``_id``)."""
    doc = db.users.find_one({"_id": uid}) if isinstance(uid, str) and uid else None
    return doc if may_sign_in(doc) else None


def may_sign_in(user: dict | None) -> bool:
    """The one decision whether the account ``user`` (a users document; None = none) may sign in or be given
    anything new - a session, an authorization code, tokens, face data: it exists, no deletion has claimed
    it (:func:`deletion_claimed`) and it is not disabled. The password step answers a claimed account as an
    unknown one (the wrong-password answer, nothing written under it) and a disabled one with its own message
    after the right password; a session or code of either proves nothing from then on."""
    return user is not None and not deletion_claimed(user) and not is_disabled(user)


def search_users(db: Database, prefix: str, *, page: int = 1, per_page: int = 25) -> tuple[list[dict], int]:
    """Accounts whose username or email starts with ``prefix`` (case-insensitive; "" = all), by
    username, one page at a time, without password hashes; and the number of matches."""
    prefix = (prefix or "").strip().lower()[:254]
    query = {}
    if prefix:
        pattern = {"$regex": "^" + re.escape(prefix)}
        query = {"$or": [{"username": pattern}, {"email": pattern}]}
    total = db.users.count_documents(query)
    rows = list(db.users.find(query, {"password_hash": 0}).sort("username", 1)
                .skip((max(1, page) - 1) * per_page).limit(per_page))
    return rows, total
