"""Checks of text shown to other people: names on the sign-in and consent pages, in mails and in ID tokens."""
from __future__ import annotations

import unicodedata

#: Unicode categories never accepted in a shown name: control characters (NUL, line breaks, tabs) and the
#: line and paragraph separators (U+2028, U+2029).
REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
#: Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder what
#: follows, so that a client's name can read as another on the consent page. Other format characters
#: (zero-width joiners and non-joiners) stay: names in several scripts need them.
BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def hidden_characters(text: str) -> bool:
    """Whether ``text`` holds a character that breaks or disguises it where it is shown."""
    return any(c in BIDI_CONTROLS or unicodedata.category(c) in REFUSED_CATEGORIES for c in text)


#: Categories never accepted in an identifier (an email address): every control, format (zero-width spaces and
#: joiners, soft hyphen, byte-order mark, bidi controls), surrogate, private-use and unassigned character, and
#: every separator; each either shows as nothing or as something its code does not say.
IDENTIFIER_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def lookalike_identifier(text: str) -> bool:
    """Whether ``text``, an identifier that must not read as another, holds an invisible or disguising character
    (:data:`IDENTIFIER_REFUSED_CATEGORIES`) or a compatibility form: a text that NFKC normalisation changes
    (full-width letters, ligatures, an accent sent as a combining mark) reads like the text it becomes.
    Letters of any script stay accepted; letters of two scripts that look alike (Latin and Cyrillic "a") are
    not told apart."""
    return unicodedata.normalize("NFKC", text) != text or any(
        unicodedata.category(c) in IDENTIFIER_REFUSED_CATEGORIES for c in text)
