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
