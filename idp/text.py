"""Checks of text shown to other people: names on the sign-in and consent pages, in mails and in ID tokens."""
from __future__ import annotations

import bisect
import functools
import json
import re
import unicodedata
from importlib import resources

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
    Letters of any script stay accepted here; letters of scripts that look alike are :func:`mixed_scripts` and
    :func:`skeleton`'s part."""
    return unicodedata.normalize("NFKC", text) != text or any(
        unicodedata.category(c) in IDENTIFIER_REFUSED_CATEGORIES for c in text)


# --- Unicode TR39 (UTS #39): mixed scripts and confusable skeletons --------------------------------------------
# The data is the confusable-homoglyphs package's (MIT): Scripts.txt's Script property and confusables.txt's
# pairs, shipped in its wheel and read from there (nothing is fetched at run time).

#: Scripts that may stand beside Latin and each other in one label (TR39's "Highly Restrictive" sets: Japanese,
#: Chinese with Bopomofo, Korean); any other script only alone or with Latin, and never Cyrillic or Greek with
#: Latin (TR39's "Moderately Restrictive" level, which browsers apply to domain names).
_CJK_SETS = (frozenset({"HAN", "HIRAGANA", "KATAKANA"}), frozenset({"HAN", "BOPOMOFO"}),
             frozenset({"HAN", "HANGUL"}))
_LOOK_LIKE_LATIN = frozenset({"CYRILLIC", "GREEK"})
_NO_SCRIPT = frozenset({"COMMON", "INHERITED"})


def _package_data(name: str) -> dict:
    return json.loads(resources.files("confusable_homoglyphs").joinpath(name).read_text("utf-8"))


@functools.lru_cache(maxsize=1)
def _script_ranges() -> tuple[list[int], list[tuple[int, str]]]:
    data = _package_data("categories.json")
    aliases = data["iso_15924_aliases"]
    ranges = sorted((lo, hi, aliases[a]) for lo, hi, a, _ in data["code_points_ranges"])
    return [lo for lo, _, _ in ranges], [(hi, alias) for _, hi, alias in ranges]


def script(char: str) -> str:
    """The Unicode Script property of ``char`` in upper case ("LATIN", "CYRILLIC", "COMMON", ...; "UNKNOWN" for
    an unassigned code point)."""
    starts, ends = _script_ranges()
    i = bisect.bisect_right(starts, ord(char)) - 1
    return ends[i][1] if i >= 0 and ord(char) <= ends[i][0] else "UNKNOWN"


def mixed_scripts(label: str) -> bool:
    """Whether ``label`` (a local part, a domain label) holds letters of scripts that do not belong together:
    Latin with Cyrillic or Greek (``pаypal`` with a Cyrillic ``а``), Cyrillic with Greek, or any two scripts other
    than Latin plus one more or the CJK sets of :data:`_CJK_SETS`. Common and Inherited characters (digits,
    punctuation, combining accents) count as no script."""
    scripts = {script(c) for c in label} - _NO_SCRIPT
    if len(scripts) <= 1:
        return False
    others = scripts - {"LATIN"}
    if any(others <= allowed for allowed in _CJK_SETS):
        return False
    return not ("LATIN" in scripts and len(others) == 1 and not others & _LOOK_LIKE_LATIN)


@functools.lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype. The package keeps confusables.txt's pairs in both directions (a
    source beside its prototype and the prototype beside each of its sources), so every prototype with its
    sources is one connected set; each set's character is mapped to one member: the prototype (the member most
    pairs go through; of two members alone, the ASCII one, else the lower). Which member is taken does not
    change which texts share a skeleton. Right-to-left rows carry the file's left-to-right marks: dropped."""
    marks = str.maketrans("", "", "\u200e\u200f")
    pairs: dict[str, set[str]] = {}
    for key, entries in _package_data("confusables.json").items():
        a = key.translate(marks)
        for entry in entries:
            b = entry["c"].translate(marks)
            if a and b and a != b:
                pairs.setdefault(a, set()).add(b)
                pairs.setdefault(b, set()).add(a)
    prototype: dict[str, str] = {}
    for start in pairs:
        if start in prototype:
            continue
        group, todo = {start}, [start]
        while todo:
            for other in pairs[todo.pop()] - group:
                group.add(other)
                todo.append(other)
        best = min(group, key=lambda m: (-len(pairs[m]), not m.isascii(), len(m), m))
        prototype.update({m: best for m in group if len(m) == 1 and m != best})
    return prototype


def skeleton(text: str) -> str:
    """The lowercased TR39 confusable skeleton of ``text``: two texts that read alike (``аре`` in Cyrillic and
    ``ape``; Latin with a Cyrillic ``а``) have the same one. NFD, each character replaced by its prototype, again
    until nothing changes. Also ASCII has confusables there (``m`` is ``rn``, ``0`` is ``o``, ``1`` and ``I`` are
    ``l``): callers decide which texts to compare. Lowercased, not case-folded: folding makes ``ß`` into ``ss``,
    which it does not look like."""
    prototype = _prototypes()
    text = unicodedata.normalize("NFD", text).lower()
    for _ in range(8):
        mapped = unicodedata.normalize("NFD", "".join(prototype.get(c, c) for c in text)).lower()
        if mapped == text:
            break
        text = mapped
    return text


#: Browser and system names a ``User-Agent`` can be summarised to, first match wins: the header names several
#: (Edge and Opera also say Chrome and Safari; Android says Linux; an iPhone says "like Mac OS X").
_BROWSERS = (("Edge", r"\bEdg(?:e|A|iOS)?/(\d{1,4})"), ("Opera", r"\bOPR/(\d{1,4})"),
             ("Samsung Internet", r"\bSamsungBrowser/(\d{1,4})"), ("Firefox", r"\b(?:Firefox|FxiOS)/(\d{1,4})"),
             ("Chrome", r"\b(?:Chrome|CriOS)/(\d{1,4})"), ("Safari", r"\bVersion/(\d{1,4})\b.*\bSafari/"))
_SYSTEMS = (("Android", r"\bAndroid\b"), ("iPhone", r"\biPhone\b"), ("iPad", r"\biPad\b"), ("ChromeOS", r"\bCrOS\b"),
            ("Windows", r"\bWindows\b"), ("macOS", r"\bMac OS X\b|\bMacintosh\b"), ("Linux", r"\bLinux\b|\bX11\b"))


def browser_summary(user_agent: str | None) -> str:
    """A ``User-Agent`` header as a short phrase for a person, "Chrome 156 on Windows", made only of the names
    above and a version number: whoever sends the header chooses every word of it, so a mail to the account's
    owner must not repeat it (it could read "this was you, ignore this mail"). The header itself stays in the
    audit log for operators. "an unrecognised browser" where it names none of these."""
    text = (user_agent or "")[:1000]
    browser = next((f"{name} {m.group(1)}" for name, pattern in _BROWSERS if (m := re.search(pattern, text))),
                   "an unrecognised browser")
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, text)), None)
    return f"{browser} on {system}" if system else browser
