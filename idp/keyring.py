"""Key rotation helpers shared by the three rotatable secrets (no Flask).

``IDP_SECRET_KEY``, ``IDP_KEY_ENCRYPTION_KEY``, ``IDP_TEMPLATE_KEY`` and ``IDP_CLIENT_SECRET_PEPPER`` each
have a retired-keys setting (``Config.retired_keys``): values that still read or verify what they protected,
and never write or sign. What each key protects re-keys where it lives
(``idp.face.repository.rekey_templates``, ``idp.faceweb.capture_sessions.Captures.rekey``,
``idp.oauth.keys.rekey``; client secrets at their next use, ``idp.oauth.clients.verify_secret``); this module
holds the current-then-retired lists, the one signer of values a browser carries (:func:`signer`), the
non-secret key ids, and the one report format of the ``rekey`` commands (counts per key id, never key material).
"""
from __future__ import annotations

import hashlib

OUTCOMES = ("rekeyed", "changed", "unreadable", "unknown_key")


def current_and_retired(config, name: str) -> list[str]:
    """Secret ``name``'s current value first, then each retired one (no repeats): what a MAC made with it is
    checked against. Signing and hashing always use the first."""
    keys = [getattr(config, name)]
    for key in config.retired_keys(name):
        if key not in keys:
            keys.append(key)
    return keys


def secret_keys(config) -> list[str]:
    """``IDP_SECRET_KEY`` first, then each retired one."""
    return current_and_retired(config, "secret_key")


def signer(config, salt: str):
    """The one way a value is signed with ``IDP_SECRET_KEY`` for a browser to carry: signs with the current key,
    verifies under the retired ones too (itsdangerous tries its key list from the last), ``salt`` keeping one
    use's tokens from passing for another's."""
    from itsdangerous import URLSafeTimedSerializer
    return URLSafeTimedSerializer(list(reversed(secret_keys(config))), salt=salt)


def secret_key_id(key: str) -> str:
    """The non-secret id of a secret key (a truncated hash), stored with the recovery codes it keys."""
    return hashlib.sha256(b"deepauth-secret-key:" + key.encode()).hexdigest()[:16]


def pepper_id(pepper: str) -> str:
    """The non-secret id of a client-secret pepper (a truncated hash), stored with the secret hashes it keys."""
    return hashlib.sha256(b"deepauth-client-secret-pepper:" + pepper.encode()).hexdigest()[:16]


def merge(*counts: dict) -> dict:
    """Sum several ``{key id: {outcome: n}}`` reports."""
    out: dict[str, dict[str, int]] = {}
    for report in counts:
        for key_id, outcomes in report.items():
            per_key = out.setdefault(key_id, {})
            for outcome, n in outcomes.items():
                per_key[outcome] = per_key.get(outcome, 0) + n
    return out


def totals(counts: dict) -> dict[str, int]:
    return {o: sum(per.get(o, 0) for per in counts.values()) for o in OUTCOMES}


def report_lines(what: str, counts: dict, current_id: str, dry_run: bool) -> list[str]:
    """Human-readable lines: one per old key id, then the totals."""
    verb = "would re-seal" if dry_run else "re-sealed"
    lines = [f"current key id {current_id}"]
    for key_id in sorted(counts):
        per = counts[key_id]
        lines.append(f"  key id {key_id}: " + ", ".join(f"{o} {per[o]}" for o in OUTCOMES if per.get(o)))
    t = totals(counts)
    lines.append(f"{verb} {t['rekeyed']} {what}"
                 + (f"; {t['changed']} changed meanwhile (left as written, run again)" if t["changed"] else "")
                 + (f"; {t['unreadable'] + t['unknown_key']} not readable with the configured keys (left as they are)"
                    if t["unreadable"] + t["unknown_key"] else ""))
    return lines


def audit_details(counts: dict, current_id: str) -> dict:
    """Flat, scalar ``details`` for the audit event (the audit writer keeps scalars and lists only)."""
    details: dict = {"key_id": current_id, "from_key_ids": sorted(counts)[:20], **totals(counts)}
    for key_id in sorted(counts)[:10]:
        for outcome, n in counts[key_id].items():
            details[f"{key_id[:16]}_{outcome}"] = n
    return details


def parse_template_key(key_hex: str) -> bytes:
    """The 32-byte AES-256 key that ``key_hex`` spells in 64 hex characters (surrounding whitespace ignored).

    The one check of a template key, used by the face template cipher and by the configuration
    (``IDP_TEMPLATE_KEY``, its retired keys, ``secrets/template_key``) so a bad key stops start-up. It lives
    here, not in the face package, so that reading the configuration does not load that package. ValueError
    otherwise; its message never quotes the key (it goes to the start-up error line)."""
    text = (key_hex or "").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError("a template key is 64 hex characters (32 bytes); this one is not hex") from None
    if len(key) != 32:
        raise ValueError(f"a template key is 64 hex characters (32 bytes); this one has {len(text)} characters")
    return key
