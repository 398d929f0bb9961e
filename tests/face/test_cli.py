"""The `faces` click group: exact command forms scripts rely on."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from idp.faceweb.cli import faces


@pytest.fixture
def cli_env(face_data_dir, mongo_uri, db, engine):
    # Same data dir as the session engine, so the CLI reuses the loaded models. The database is an
    # external one from the CLI's point of view: migrate it first, as a deployment would.
    from idp.store import migrate
    migrate.apply(db)
    return {"IDP_DATA_DIR": str(face_data_dir), "MONGODB_URI": mongo_uri, "IDP_DB_NAME": db.name}


def test_embed_json_two_images(cli_env, photos, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    result = CliRunner().invoke(faces, ["embed", str(photos["obama"][0]), str(junk), "--json"], env=cli_env)
    assert result.exit_code == 1, result.output  # one image refused: not a success for a script
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert len(lines) == 2
    assert lines[0]["image"] == str(photos["obama"][0]) and lines[0]["reason"] is None
    assert len(lines[0]["embedding"]) == 512
    assert lines[1] == {"image": str(junk), "embedding": None, "reason": "unsupported_format"}
    good = CliRunner().invoke(faces, ["embed", str(photos["obama"][0])], env=cli_env)
    assert good.exit_code == 0 and ": ok, 512-d embedding" in good.output, good.output


def test_enroll_and_verify(cli_env, db, photos):
    db["users"].insert_one({"_id": "sub-123", "username": "blair"})
    runner = CliRunner()
    enroll = runner.invoke(faces, ["enroll", "Blair"] + [str(p) for p in photos["blair"][:5]], env=cli_env)
    assert enroll.exit_code == 0, enroll.output
    assert db["face_templates"].find_one({"_id": "sub-123"})["alg"] == "AES-256-GCM"

    ok = runner.invoke(faces, ["verify", "blair", str(photos["blair"][6]), "--json"], env=cli_env)
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    assert out["decision"] == "match" and out["score"] >= out["threshold"] and out["reasons"] == []

    no = runner.invoke(faces, ["verify", "blair", str(photos["putin"][0]), "--json"], env=cli_env)
    assert no.exit_code == 2
    out = json.loads(no.output)
    assert out["decision"] == "no_match" and out["reasons"] == ["below_threshold"]


def test_unknown_user(cli_env, photos):
    result = CliRunner().invoke(faces, ["verify", "nobody", str(photos["obama"][0])], env=cli_env)
    assert result.exit_code == 1
    assert "no user named" in result.output


def test_no_enrollment_for_an_account_being_deleted(cli_env, db, photos):
    """A deletion that has claimed the account erases its face data: a template the command stored meanwhile
    would outlive the account (the web pages refuse such an account too)."""
    from idp.accounts import users
    db["users"].insert_one({"_id": "sub-9", "username": "blair", "email": "blair@example.com"})
    users._claim_deletion(db, "sub-9")
    result = CliRunner().invoke(faces, ["enroll", "blair"] + [str(p) for p in photos["blair"][:5]], env=cli_env)
    assert result.exit_code == 1 and "being deleted" in result.output, result.output
    assert db["face_templates"].count_documents({}) == 0


def test_verify_judges_a_version_3_template_as_version_3(cli_env, db, photos, engine):
    """`idp faces verify` embeds the images as the stored template's version needs (version 3: crop +
    mirror, and dlib), so a template stored before version 4 still matches its owner at 5.00."""
    from idp.config import Config
    from idp.face.repository import save_template
    from idp.face.template import TemplateCipher
    from support.fixtures import enroll_as_version_3

    db["users"].insert_one({"_id": "sub-3", "username": "putin"})
    template = enroll_as_version_3(engine, [p.read_bytes() for p in photos["putin"][:5]])
    save_template(db, "sub-3", template, TemplateCipher.from_config(Config.from_env(cli_env).ensure_secrets()))
    runner = CliRunner()
    ok = runner.invoke(faces, ["verify", "putin", str(photos["putin"][6]), "--json"], env=cli_env)
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    assert out["decision"] == "match" and out["threshold"] == 5.00 and out["frames_used"] == 1
    no = runner.invoke(faces, ["verify", "putin", str(photos["blair"][0]), "--json"], env=cli_env)
    assert no.exit_code == 2 and json.loads(no.output)["reasons"] == ["below_threshold"]


def test_mark_reenroll_refuses_a_model_id_together_with_all(cli_env, db, photos):
    """`--model-id ID | --all` are alternatives: both given is refused (exit 2) and nothing is marked, rather
    than `--all` silently taking every user's face sign-in away."""
    from idp.faceweb.reenrollment import reenroll_required

    db["users"].insert_one({"_id": "sub-9", "username": "blair"})
    runner = CliRunner()
    enroll = runner.invoke(faces, ["enroll", "blair"] + [str(p) for p in photos["blair"][:5]], env=cli_env)
    assert enroll.exit_code == 0, enroll.output
    both = runner.invoke(faces, ["mark-reenroll", "--model-id", "some-old-model", "--all"], env=cli_env)
    assert both.exit_code == 2, both.output
    assert "--all" in both.output and "marked" not in both.output
    assert reenroll_required(db, "sub-9") is None


def test_an_enrollment_from_the_command_line_is_audited_and_told_to_the_owner(cli_env, db, photos):
    """`idp faces enroll` stored (or replaced) a user's template with no audit entry and no mail to the owner, while
    every template stored through the pages is both ("face.enroll", the owner's notice): an operator's binding of a
    face to an account, which then signs in with amr face, left no trace. Now it is audited with via "cli" and
    queued for the owner like any enrollment."""
    from idp.cli import cli
    from idp.mail.notify import SUBJECTS
    db["users"].insert_one({"_id": "sub-9", "username": "blair", "email": "blair@example.com", "email_verified": True})
    runner = CliRunner()
    for n, replaced in ((1, False), (2, True)):
        r = runner.invoke(cli, ["faces", "enroll", "blair"] + [str(p) for p in photos["blair"][:5]], env=cli_env)
        assert r.exit_code == 0, r.output
        entries = list(db["audit_log"].find({"event": "face.enroll", "user_id": "sub-9"}).sort("at", 1))
        assert len(entries) == n and entries[-1]["decision"] == "enrolled"
        assert entries[-1]["details"]["via"] == "cli" and entries[-1]["details"]["replaced"] is replaced
        mails = list(db["mail_outbox"].find({"user_id": "sub-9"}).sort("created", 1))
        assert len(mails) == n and mails[-1]["to"] == "blair@example.com"
    assert [m["subject"] for m in mails] == [SUBJECTS["face.enroll.first"], SUBJECTS["face.enroll"]]


def test_an_enrollment_from_the_command_line_ends_a_pending_reset_and_the_reenrollment_mark(cli_env, db, photos):
    """An operator's enrollment is one like the pages' (``reenrollment.after_enrollment``): an administrator's reset
    grant still pending is used up, and a template marked by ``idp faces mark-reenroll`` is replaced for good.
    Before, both stayed: for the rest of the grant (72 h) whoever held the password could still replace the face the
    operator had just enrolled, after the password alone; and the new template stayed "marked", so the face step
    refused it."""
    from idp.faceweb import reenrollment
    db["users"].insert_one({"_id": "sub-9", "username": "blair", "email": "blair@example.com", "email_verified": True})
    reenrollment.grant_reset(db, "sub-9", "an-admin")
    reenrollment.mark_reenroll(db, "sub-9", "marked")
    assert reenrollment.reset_granted(db, "sub-9", 3600) and reenrollment.reenroll_required(db, "sub-9")
    r = CliRunner().invoke(faces, ["enroll", "blair"] + [str(p) for p in photos["blair"][:5]], env=cli_env)
    assert r.exit_code == 0, r.output
    assert not reenrollment.reset_granted(db, "sub-9", 3600)
    assert reenrollment.reenroll_required(db, "sub-9") is None


def _enroll_blair_while(cli_env, db, photos, monkeypatch, meanwhile):
    """`idp faces enroll blair` (account sub-9) with ``meanwhile()`` run (it must return something) while the
    command loads the face models, after its first check of the account."""
    from idp.faceweb import cli as faces_cli
    db["users"].insert_one({"_id": "sub-9", "username": "blair", "email": "blair@example.com"})
    load = faces_cli.engine_for

    def load_meanwhile(config):
        assert meanwhile() is not None
        return load(config)
    monkeypatch.setattr(faces_cli, "engine_for", load_meanwhile)
    return CliRunner().invoke(faces, ["enroll", "blair"] + [str(p) for p in photos["blair"][:5]], env=cli_env)


def test_no_template_outlives_an_account_deleted_while_the_command_loads_the_models(cli_env, db, photos, monkeypatch):
    """`idp faces enroll` checks the account when it starts, then loads the face models (seconds) and analyses the
    images before it stores the template: an account deleted in between (admin page, `idp users delete`, the owner)
    had its face data erased already, and the template stored after it was a biometric record of an account that
    no longer exists (with its status and an audit entry under the gone id). The pages read the deletion again
    after their save (``erasure.erased_meanwhile``); the command now does too: the template goes, exit 1."""
    from idp.accounts import users
    result = _enroll_blair_while(cli_env, db, photos, monkeypatch, lambda: users.delete_user(db, "sub-9"))
    assert result.exit_code == 1 and "deleted" in result.output, result.output
    assert db["face_templates"].count_documents({}) == 0
    assert db["face_status"].count_documents({"_id": "sub-9"}) == 0
    assert db["audit_log"].count_documents({"user_id": "sub-9"}) == 0


def test_no_template_is_stored_while_a_deletion_of_the_face_data_runs(cli_env, db, photos, monkeypatch):
    """The same for a deletion of the face data that has claimed it (``erasing``) when the command stores its
    template: the deletion may have passed the templates already, so the template is deleted again, exit 1."""
    from idp.faceweb import erasure
    result = _enroll_blair_while(cli_env, db, photos, monkeypatch, lambda: erasure._claim(db, "sub-9"))
    assert result.exit_code == 1 and "deleted" in result.output, result.output
    assert db["face_templates"].count_documents({}) == 0


def test_verify_compares_nothing_for_a_template_the_sign_in_refuses(cli_env, db, photos):
    """``idp faces verify`` asks the sign-in's own question first (``integrity.refusal``): a template marked by
    ``idp faces mark-reenroll`` or in a cooling-off period gives no "match" (exit 1, nothing compared). Before, the
    command said "match" (exit 0) for both, though the face step refuses them."""
    from idp.faceweb import reenrollment
    db["users"].insert_one({"_id": "sub-7", "username": "blair"})
    runner = CliRunner()
    assert runner.invoke(faces, ["enroll", "blair"] + [str(p) for p in photos["blair"][:5]], env=cli_env).exit_code == 0
    verify = ["verify", "blair", str(photos["blair"][6]), "--json"]
    assert runner.invoke(faces, verify, env=cli_env).exit_code == 0

    reenrollment.start_cooloff(db, "sub-7", 3600)
    cooling = runner.invoke(faces, verify, env=cli_env)
    assert cooling.exit_code == 1 and "face_cooloff" in cooling.output and '"match"' not in cooling.output

    db["face_status"].update_one({"_id": "sub-7"}, {"$unset": {"cooloff_until": ""}})
    assert runner.invoke(faces, verify, env=cli_env).exit_code == 0
    reenrollment.mark_reenroll(db, "sub-7", "marked")
    marked = runner.invoke(faces, verify, env=cli_env)
    assert marked.exit_code == 1 and "marked" in marked.output and '"match"' not in marked.output


def test_a_deletion_after_the_commands_save_keeps_its_mark_and_no_template(cli_env, db, photos, monkeypatch):
    """A deletion of the face data by a recovery-code sign-in (which marks the next enrollment for a cooling-off
    period) that runs after the command's check that followed its save: the command lifted the re-enrollment marks
    after it, that one too, and said "enrolled" for a template the deletion had removed. It reads the deletion
    again once its writes are done; the mark stays, exit 1."""
    from idp.faceweb import erasure, reenrollment
    db["users"].insert_one({"_id": "sub-9", "username": "blair", "email": "blair@example.com"})
    runner = CliRunner()
    enroll = ["enroll", "blair"] + [str(p) for p in photos["blair"][:5]]
    assert runner.invoke(faces, enroll, env=cli_env).exit_code == 0
    real, ran = reenrollment.after_enrollment, []

    def deletion_first(db_, user_id, *args, **kw):
        if not ran:
            ran.append(erasure.delete_face_data(db, "sub-9", face_proven=False))
        return real(db_, user_id, *args, **kw)
    monkeypatch.setattr(reenrollment, "after_enrollment", deletion_first)
    result = runner.invoke(faces, enroll, env=cli_env)
    monkeypatch.undo()
    assert ran and ran[0] is not None, ran
    assert result.exit_code == 1 and "deleted" in result.output, result.output
    assert db["face_templates"].count_documents({}) == 0
    mark = (db["face_status"].find_one({"_id": "sub-9"}) or {}).get("enroll_cooloff")
    assert mark and mark.get("via") == "deleted", mark
