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
