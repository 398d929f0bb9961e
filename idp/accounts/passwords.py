"""Password hashing (argon2id) and the password policy (NIST SP 800-63B), in one place.

Hashing parameters live only in ``HASH_PARAMS``; hashes made with other
parameters are transparently upgraded at the next successful sign-in
(``needs_rehash``). Passwords are NFKC-normalised before hashing, so the same
password typed on different keyboards/IMEs verifies (SP 800-63B 5.1.1.2).
"""
from __future__ import annotations

import functools
import unicodedata
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's minimum argon2id configuration (m=19 MiB, t=2, p=1): ~50 ms per hash on one
# core, i.e. ~20 password sign-ins per second per core.
HASH_PARAMS = dict(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)

MIN_LENGTH = 8
MAX_LENGTH = 128


def make_hasher(**overrides) -> PasswordHasher:
    return PasswordHasher(**{**HASH_PARAMS, **overrides})


_hasher = make_hasher()


def hasher() -> PasswordHasher:
    return _hasher


def set_hasher(new: PasswordHasher) -> PasswordHasher:
    """Replace the process-wide hasher (tests, or a deliberate parameter change); returns the old one."""
    global _hasher, _dummy_hash
    old, _hasher, _dummy_hash = _hasher, new, None
    return old


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hasher.hash(normalize(password))


_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not-a-real-password: timing equaliser")
    return _dummy_hash


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. With ``None`` (unknown account) a dummy
    hash is verified instead, so the answer takes the same time and is always False."""
    target = password_hash or _dummy()
    try:
        ok = _hasher.verify(target, normalize(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("idp.accounts").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def password_problem(password: str | None, *, username: str | None = None, email: str | None = None) -> str | None:
    """The reason ``password`` is not acceptable for a new account, or None.

    SP 800-63B: at least 8 characters, at least 64 allowed (we allow 128), no
    composition rules, and no commonly used, expected or compromised values.
    """
    if not password:
        return "Enter a password."
    length = len(normalize(password))
    if length < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if length > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    folded = normalize(password).strip().lower()
    if folded in common_passwords():
        return "This password is too common. Choose one that is harder to guess."
    if len(set(folded)) == 1:
        return "This password is too easy to guess (one repeated character)."
    for context in (username, email, (email or "").split("@")[0] if email and "@" in email else None):
        if context and folded == context.strip().lower():
            return "Your password must not be your username or email address."
    return None
