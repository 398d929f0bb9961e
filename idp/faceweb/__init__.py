"""Hosted face pages and the face step of the sign-in.

``init_app(app)`` registers the ``face`` blueprint (pages under /face and /account/face, the
capture API under /api/face), registers the face step in the app's sign-in flow right after the
password step (every capture also runs the liveness checks of :mod:`.liveness` unless
``config.liveness_enabled`` is off), and adds a warm-up that loads the face engine when ``config.face_enabled``.
With face sign-in on, it refuses to build the app (``TemplateKeyError``) when stored templates were
encrypted under another ``IDP_TEMPLATE_KEY`` (see :mod:`.integrity`).
"""
from __future__ import annotations


def init_app(app) -> None:
    from idp import get_config
    from idp.signin import flow_for

    from .step import face_step
    from .views import bp

    config = get_config(app)
    from idp.liveness import challenge_pool
    # a misspelt IDP_LIVENESS_CHALLENGES fails at start-up, not at the first capture
    challenge_pool(config.liveness_challenges)
    if config.face_enabled:
        # Fail closed at start-up: templates encrypted under another key would only fail one by one later.
        from idp import get_db
        from idp.face import TemplateCipher

        from .integrity import check_template_key
        check_template_key(get_db(app), TemplateCipher.from_config(config))  # raises TemplateKeyError
        from .integrity import check_liveness_models
        check_liveness_models(config)
        if not config.liveness_enabled:
            import logging
            logging.getLogger("idp.faceweb").warning(
                "liveness is off (IDP_LIVENESS_ENABLED=false): a photograph or a recording of an enrolled face "
                "passes the face step and signs in with amr face; for development and tests only")
    from .limits import FaceSlots
    # slots: this worker's bound on concurrent frame analysis (see .limits)
    slots = FaceSlots.from_config(config)
    app.extensions["faceweb"] = {"cipher": None, "slots": slots}
    app.register_blueprint(bp)
    flow_for(app).register(face_step("face.verify"), after="password")
    from .step import STEP_NAME, face_proof_stands
    flow_for(app).proof_checks[STEP_NAME] = face_proof_stands  # a face check stands while its template does

    def warm_up():
        if not config.face_enabled:
            return
        from idp.face.engine import engine_for

        def load():
            engine_for(config)
            if config.liveness_enabled:  # the liveness models too: no first capture pays their loading
                from idp.liveness.landmarks import shared_landmarker
                shared_landmarker()
                if config.liveness_passive_min_score > 0:
                    from idp.liveness.antispoof import shared_antispoof
                    shared_antispoof()
        # On a face-work thread: the TensorFlow thread pools created now inherit its lower priority.
        slots.warm_up(load)

    app.extensions.setdefault("idp_warmups", []).append(warm_up)
    if config.face_enabled:
        # Enrollment is offered right after registration (with "Not now" when nothing requires it).
        app.extensions["idp_after_register"] = "face.enroll"
