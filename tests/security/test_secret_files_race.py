"""Generated secrets (``<data_dir>/secrets/*``) are created atomically: processes starting together on a
fresh data directory all read the same complete, non-empty value; an empty secret file is refused."""
from __future__ import annotations

import multiprocessing as mp
import os
import stat
import traceback

import pytest

PROCS = 8
ROUNDS = 100


def _worker(root: str, barrier, out):
    from pathlib import Path

    from idp.config import Config
    for r in range(ROUNDS):
        barrier.wait(30)
        try:
            c = Config(data_dir=Path(root) / f"round-{r}").ensure_secrets()
            out.put((r, (c.secret_key, c.key_encryption_key, c.template_key, c.client_secret_pepper), None))
        except BaseException:  # noqa: BLE001 - reported to the test
            out.put((r, None, traceback.format_exc()))


@pytest.mark.slow
def test_processes_starting_together_share_one_complete_secret(tmp_path):
    ctx = mp.get_context("spawn")  # real, independent interpreters
    barrier = ctx.Barrier(PROCS)
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), barrier, out)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(PROCS * ROUNDS)]
    for p in procs:
        p.join(30)
    errors = [err for _, _, err in results if err]
    assert not errors, errors[0]
    for r in range(ROUNDS):
        values = {v for rr, v, _ in results if rr == r}
        assert len(values) == 1, (r, values)
        (vals,) = values
        assert all(len(v) == 64 for v in vals), (r, vals)
        secrets_dir = tmp_path / f"round-{r}" / "secrets"
        assert sorted(os.listdir(secrets_dir)) == sorted(["secret_key", "key_encryption_key", "template_key",
                                                          "client_secret_pepper"])  # no temp files left
        for name in os.listdir(secrets_dir):
            assert stat.S_IMODE(os.stat(secrets_dir / name).st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "\n", "   \n"])
def test_empty_secret_file_is_refused(tmp_path, content):
    from idp.config import Config
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "template_key").write_text(content)
    with pytest.raises(SystemExit) as e:
        Config(data_dir=tmp_path).ensure_secrets()
    assert "template_key" in str(e.value) and "empty" in str(e.value)


def _secret_files(d) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}


@pytest.mark.parametrize("content", ["zz" * 32, "ab" * 16, "ab" * 33, "ab" * 31 + "a", "ab" * 32 + "g"])
def test_a_corrupt_template_key_file_stops_start_up_with_one_line_and_is_kept(tmp_path, content):
    """A template key file that is not 64 hex characters (truncated, grown, damaged) gave a ValueError
    traceback from the first TemplateCipher (`idp serve`, `idp faces rekey`); it is refused as read, never
    replaced (a new key could not open the stored templates), and the line never shows the key."""
    from idp.config import Config
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "template_key").write_text(content)
    with pytest.raises(SystemExit) as e:
        Config(data_dir=tmp_path).ensure_secrets()
    message = str(e.value)
    assert message.startswith("configuration error: the secret file ") and "template_key" in message
    assert "\n" not in message and "zzzz" not in message and "abab" not in message
    assert (d / "template_key").read_text() == content
    assert not [n for n in _secret_files(d) if n != "template_key" and "template_key" in n]  # no temp file


@pytest.mark.parametrize("name", ["secret_key", "key_encryption_key", "template_key", "client_secret_pepper"])
def test_a_secret_file_that_cannot_be_read_stops_start_up_with_one_line(tmp_path, name):
    """Not text (a damaged disk, a binary copied over it) or a directory in its place: one line naming the
    file and why, never its bytes, and nothing written over it. It was a UnicodeDecodeError or
    IsADirectoryError traceback."""
    from idp.config import Config
    d = tmp_path / "secrets"
    d.mkdir()
    (d / name).write_bytes(b"\xff\xfe\x9c" + os.urandom(29))
    before = (d / name).read_bytes()
    with pytest.raises(SystemExit) as e:
        Config(data_dir=tmp_path).ensure_secrets()
    message = str(e.value)
    assert message.startswith(f"configuration error: the secret file {d / name} cannot be read")
    assert "not readable text" in message and "\n" not in message and "0xff" not in message
    assert (d / name).read_bytes() == before
    (d / name).unlink()
    (d / name).mkdir()
    with pytest.raises(SystemExit) as e:
        Config(data_dir=tmp_path).ensure_secrets()
    assert str(e.value).startswith(f"configuration error: the secret file {d / name} cannot be read")
    assert (d / name).is_dir()


def test_the_cli_reports_a_corrupt_template_key_file_in_one_line(tmp_path):
    """End to end: `idp faces rekey` on a data directory whose template key file was cut short prints one
    ``configuration error`` line and exits 1 (it printed a ValueError traceback)."""
    import subprocess
    import sys
    from pathlib import Path
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "template_key").write_text("ab" * 20)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "MONGODB_", "PROMETHEUS_"))}
    env.update(IDP_DATA_DIR=str(tmp_path), IDP_FACE_ENABLED="false",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    r = subprocess.run([sys.executable, "-m", "idp.cli", "faces", "rekey", "--dry-run"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: the secret file "), r.stderr
    assert "Traceback" not in r.stderr and "abab" not in r.stderr
