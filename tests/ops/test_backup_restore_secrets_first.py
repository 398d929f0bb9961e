"""A restore whose secrets cannot be written replaces nothing. The restore replaced the database, then wrote the
backup's secrets: a secrets directory that refused them left the backup's data under the current secrets (face
templates, signing keys and client secrets unreadable) and a traceback. Now the secrets are written beside their
places first (``backup.stage_secrets``) and moved in after the database: one error line, the database as it was.
The embedded database, the real command line."""
from __future__ import annotations

from tests.ops.conftest import idp_env, run_cli

PASSWORD = "correct horse battery 7"


def _create_user(env, name):
    r = run_cli(env, "users", "create", "--username", name, "--email", f"{name}@example.org", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr


def _usernames(env) -> list[str]:
    r = run_cli(env, "users", "list")
    assert r.returncode == 0, r.stderr
    return sorted(n for n in ("alice", "bob") if n in r.stdout)


def test_a_restore_whose_secrets_cannot_be_written_replaces_nothing(tmp_path):
    data, saved = tmp_path / "var", tmp_path / "backup"
    env = idp_env(data)
    _create_user(env, "alice")
    assert run_cli(env, "backup", "create", str(saved)).returncode == 0
    _create_user(env, "bob")  # after the backup
    blocker = data / "secrets" / "template_key.restore"  # where the restore writes that secret first
    blocker.mkdir()
    (blocker / "x").write_text("in the way")
    r = run_cli(env, "backup", "restore", "--yes", str(saved))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "nothing was replaced" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert _usernames(env) == ["alice", "bob"]  # the database as it was
    assert not [p for p in (data / "secrets").iterdir() if p.suffix == ".restore" and p != blocker]
    (blocker / "x").unlink()
    blocker.rmdir()
    r = run_cli(env, "backup", "restore", "--yes", str(saved))
    assert r.returncode == 0, r.stderr
    assert _usernames(env) == ["alice"]
