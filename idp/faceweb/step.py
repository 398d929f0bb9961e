"""The face step of the sign-in flow (idp.signin): after the password, before the end.

``applies``:
  * a pending authorization request asks for it (``face_required``): its acr_values include
    ``urn:deepauth:acr:pwd+face`` or its client's ``face_policy`` is ``required`` (the default; unknown
    clients count as required) — also with face sign-in turned off (``IDP_FACE_ENABLED=false``): the step
    is then ``unavailable`` and the request is refused (``unmet_authentication_requirements``), never
    answered with a password-only sign-in; or
  * face sign-in is enabled and the user has a face template (opted in: enrolled users always get the
    face step).
``satisfied``: ``"face"`` is in the session's amr (only a passed verification adds it; a fresh
password login clears amr, so prompt=login / max_age re-run both steps), or, where nothing requires the
face itself (account pages, face-optional clients), ``"otp"``: a recovery code was used in this sign-in.

A face check stands only while the template it matched is the stored one (:func:`face_proof_stands`, the
flow's proof check for ``"face"``): once the face data is deleted (on any device, by the owner or with the
account) or the template replaced, no session keeps ``"face"`` from a check against the earlier one.
"""
from __future__ import annotations

import time

from flask import g, session

from idp.signin.flow import ACR_PWD_FACE, AuthState, PendingRequest, Step

STEP_NAME = "face"
FACE_CHECKED_KEY = "face_checked"  # session: {uid, at, template}: when this session last matched the user's face


def _stored_stamp(uid: str) -> str | None:
    """The stored template's stamp, read once per request (``repository.stored_stamp``)."""
    from idp import get_db
    from idp.face.repository import stored_stamp
    cache = g.setdefault("_idp_face_templates", {})
    if uid not in cache:
        cache[uid] = stored_stamp(get_db(), uid)
    return cache[uid]


def stamp_face_check(uid: str, template: str | None) -> None:
    """Record that this session matched ``uid``'s face now, against the save of the template named ``template``
    (``repository.stored_stamp``, read just before the check loaded the template: a template saved in between
    never matches the stamp, so it is not credited)."""
    g.pop("_idp_face_templates", None)
    session[FACE_CHECKED_KEY] = {"uid": uid, "at": time.time(), "template": template}


def face_proof_stands(uid: str) -> bool:
    """Whether this session's face check (amr ``"face"``) still stands: it matched ``uid``'s face against the
    template that is stored now. A check recorded without the template it matched stands no more (fail
    closed: that sign-in checks the face again)."""
    stamp = session.get(FACE_CHECKED_KEY)
    if not isinstance(stamp, dict) or stamp.get("uid") != uid or not isinstance(stamp.get("template"), str):
        return False
    return stamp["template"] == _stored_stamp(uid)


def client_face_policy(db, client_id: str | None) -> str:
    if not client_id:
        return "required"
    doc = db.clients.find_one({"_id": client_id}, {"face_policy": 1})
    policy = (doc or {}).get("face_policy") or "required"
    return policy if policy in ("required", "optional") else "required"


def has_template(db, user_id: str | None) -> bool:
    return bool(user_id) and db.face_templates.count_documents({"_id": user_id}, limit=1) > 0


def face_required(db, request: PendingRequest | None) -> bool:
    """The pending request needs the face itself (amr "face"); account pages (no request) do not."""
    if request is None:
        return False
    return ACR_PWD_FACE in (request.acr_values or []) or client_face_policy(db, request.client_id) == "required"


def _applies(state: AuthState, request: PendingRequest | None) -> bool:
    from idp import get_config, get_db
    db = get_db()
    if face_required(db, request):
        return True
    return get_config().face_enabled and has_template(db, state.uid)


def _unavailable(request: PendingRequest | None) -> str | None:
    from idp import get_config
    if get_config().face_enabled:
        return None
    if request is not None and ACR_PWD_FACE in (request.acr_values or []):
        return (f"The request asks for acr {ACR_PWD_FACE} (password and face) and face sign-in is turned off "
                "on this server.")
    return ("This application requires a face verification (its face policy is required) and face sign-in is "
            "turned off on this server.")


def _satisfied(state: AuthState, request: PendingRequest | None) -> bool:
    if "face" in state.amr:
        return True
    if "otp" in state.amr:
        from idp import get_db
        return not face_required(get_db(), request)
    return False


def face_step(endpoint: str) -> Step:
    """The face step, answered at ``endpoint`` (the verification page)."""
    return Step(name=STEP_NAME, endpoint=endpoint, satisfied=_satisfied, applies=_applies, unavailable=_unavailable)
