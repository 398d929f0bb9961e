"""The operator's documents name what the code has: every command and option of ``idp`` in the README's
command-line section, every migration in docs/operations.md's table (none that does not exist), and no
``IDP_`` variable in README.md or docs/ that the one Config does not declare. (The configuration table itself is
held to ``Config`` by test_config_env.py.)"""
from __future__ import annotations

import re
from pathlib import Path

import click

from idp.cli import cli
from idp.config import INTERNAL_ENV, Config

ROOT = Path(__file__).resolve().parents[2]


def _section(path: Path, heading: str) -> str:
    return path.read_text().split(heading, 1)[1].split("\n## ", 1)[0]


def _commands(cmd, prefix: list[str]):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, prefix + [name])
    else:
        yield " ".join(prefix), cmd


def test_readme_lists_every_command_with_its_options():
    lines = _section(ROOT / "README.md", "## Command line").splitlines()
    missing = []
    for name, cmd in _commands(cli, ["idp"]):
        at = [i for i, line in enumerate(lines) if re.search(re.escape(name) + r"(\s|$)", line)]
        if not at:
            missing.append(name)
            continue
        block = [lines[at[0]]]  # its line and the continuation lines up to the next command
        for line in lines[at[0] + 1:]:
            if line.startswith("idp "):
                break
            block.append(line)
        text = "\n".join(block)
        missing += [f"{name} {opt}" for param in cmd.params if isinstance(param, click.Option)
                    for opt in param.opts if opt.startswith("--") and not re.search(re.escape(opt) + r"\b", text)]
    assert not missing, f"not in README's command-line section: {missing}"


def test_operations_table_lists_exactly_the_migrations():
    files = {p.name[:4] for p in (ROOT / "migrations").glob("[0-9][0-9][0-9][0-9]_*.py")}
    rows = set(re.findall(r"^\| (\d{4}) \|", (ROOT / "docs" / "operations.md").read_text(), re.M))
    assert files, "no migrations found"
    assert not files - rows, f"missing from docs/operations.md's migrations table: {sorted(files - rows)}"
    assert not rows - files, f"in docs/operations.md's table but not in migrations/: {sorted(rows - files)}"


def test_docs_name_no_variable_config_does_not_declare():
    declared = set(Config.ENV.values()) | set(Config.SECRET_FILES.values()) | set(INTERNAL_ENV)
    stale = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        names = set(re.findall(r"\b(IDP_[A-Z0-9_]*[A-Z0-9])\b", path.read_text())) - declared
        if names:
            stale[path.name] = sorted(names)
    assert not stale, f"variables no Config declares: {stale}"
