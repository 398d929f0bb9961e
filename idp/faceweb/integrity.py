"""Face template integrity, without Flask: a stored template that cannot be used is never deleted and
never replaced on the password alone.

* :func:`template_problem` says why a user's template cannot be used: ``tampered`` (it fails AES-GCM
  authentication: altered, moved, or encrypted under another ``IDP_TEMPLATE_KEY``), ``model_mismatch``
  (made by another face model, or under a template version the engine can no longer score) or ``marked`` (``idp faces mark-reenroll``). The face step then fails
  closed; a recovery code or an administrator's reset leads to a new enrollment (with a cooling-off
  period, see :mod:`.store`).
* :func:`check_template_key` runs at start-up: when stored templates carry the key id of a key that is
  neither ``IDP_TEMPLATE_KEY`` nor one of ``IDP_TEMPLATE_KEYS_RETIRED``, the configured keys are wrong for
  this database and the server refuses to run. It reads only the
  templates' clear key ids (one query, no decryption), so it stays cheap for any number of templates.
"""
from __future__ import annotations

from . import reenrollment

TAMPERED, MODEL_MISMATCH, MARKED = "tampered", "model_mismatch", "marked"


class TemplateKeyError(RuntimeError):
    """The configured template key cannot decrypt the stored face templates (one-line message)."""


def model_errors() -> tuple[type[Exception], ...]:
    """The exceptions :func:`check_liveness_models` raises (each with a one-line message)."""
    from idp.liveness.antispoof import AntiSpoofModelError
    from idp.liveness.landmarks import LandmarkModelError
    return LandmarkModelError, AntiSpoofModelError


def check_liveness_models(config) -> None:
    """At start-up, with face sign-in and liveness on: the liveness decision was measured with these
    model files, so a missing or altered one (sha256) stops the server here instead of failing every
    capture later. The landmark model always; MiniFASNet's weights when the passive check is on."""
    if not (config.face_enabled and config.liveness_enabled):
        return
    from idp.liveness.landmarks import load_model_bytes
    load_model_bytes()
    if config.liveness_passive_min_score > 0:
        from idp.liveness.antispoof import load_weights
        load_weights()


COOLOFF = "face_cooloff"


def refusal(db, user_id: str, cipher) -> tuple[str, object] | None:
    """Why no face check of this user can give amr "face" now, in any browser session: ``(problem, None)`` from
    :func:`template_problem`, or ``(COOLOFF, until)`` while a cooling-off period runs; None when one can. The
    sign-in's face step and ``idp faces verify`` both ask this, so the command never says "match" for a
    template the sign-in refuses."""
    problem = template_problem(db, user_id, cipher)
    if problem is not None:
        return problem, None
    until = reenrollment.cooloff_until(db, user_id)
    return (COOLOFF, until) if until is not None else None


def template_problem(db, user_id: str, cipher) -> str | None:
    """Why the user's stored template cannot be used (see the module doc), or None (usable or absent)."""
    from idp.face import TemplateTamperedError, settings
    from idp.face.repository import load_template
    if reenrollment.reenroll_required(db, user_id):
        return MARKED
    try:
        template = load_template(db, user_id, cipher)
    except TemplateTamperedError:
        return TAMPERED
    if template is not None and (template.model_id != settings.MODEL_ID
                                 or template.model_version not in settings.TEMPLATE_VERSIONS
                                 or template.incomplete):  # e.g. a version-3 or 4 template without its dlib part
        return MODEL_MISMATCH
    return None


def check_template_key(db, cipher) -> None:
    """Raise TemplateKeyError when a stored template was encrypted under a key ``cipher`` does not hold
    (neither the current key nor a retired one)."""
    from idp.face.repository import COLLECTION
    known = sorted(cipher.key_ids)
    other = db[COLLECTION].find_one({"key_id": {"$nin": known}}, {"key_id": 1})
    if other is None:
        return
    count = db[COLLECTION].count_documents({"key_id": {"$nin": known}})
    raise TemplateKeyError(
        f"IDP_TEMPLATE_KEY is wrong for this database: {count} stored face template(s) were encrypted with "
        f"key id {other.get('key_id')!s}, the configured key has id {cipher.key_id}"
        + (f" (retired: {', '.join(k for k in known if k != cipher.key_id)})" if len(known) > 1 else "")
        + "; configure the key they were made with, as IDP_TEMPLATE_KEY or in IDP_TEMPLATE_KEYS_RETIRED "
        "(face templates cannot be used with another key)")


def mark_for_reenrollment(db, *, model_id: str | None = None, every: bool = False) -> list[str]:
    """Mark templates as unusable until re-enrolled through a recovery code or an admin reset: those of
    ``model_id``, every one (``every``), or by default those not made by today's model. Returns the
    user ids marked."""
    from idp.face import settings
    from idp.face.repository import COLLECTION
    if every:
        flt: dict = {}
    elif model_id:
        flt = {"model_id": model_id}
    else:
        flt = {"model_id": {"$ne": settings.MODEL_ID}}
    marked = []
    for doc in db[COLLECTION].find(flt, {"model_id": 1}):
        reenrollment.mark_reenroll(db, doc["_id"], MARKED, model_id=str(doc.get("model_id")))
        marked.append(doc["_id"])
    return marked
