"""Numbered MongoDB migrations from ``migrations/NNNN_name.py`` (each defines ``up(db)``).

Applied ones are recorded in the ``migrations`` collection. Migrations must be
idempotent (creating an index twice is harmless), so a crash between applying
and recording only re-runs the last one.
"""
from __future__ import annotations

import importlib.util
import re
from datetime import datetime, timezone
from pathlib import Path

from idp.assets import asset_dir

MIGRATIONS_DIR = asset_dir("migrations")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.py$")


def available(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    return sorted((p.stem, p) for p in directory.glob("*.py") if _NAME.match(p.name))


def applied(db) -> set[str]:
    return {d["_id"] for d in db.migrations.find({}, {"_id": 1})}


def pending(db, directory: Path = MIGRATIONS_DIR) -> list[str]:
    done = applied(db)
    return [name for name, _ in available(directory) if name not in done]


def load(path: Path):
    """The migration module in the file ``path`` (its ``up(db)`` applies it; tests run one on its own)."""
    spec = importlib.util.spec_from_file_location(f"deepauth_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply(db, directory: Path = MIGRATIONS_DIR) -> list[str]:
    done = applied(db)
    ran = []
    for name, path in available(directory):
        if name in done:
            continue
        load(path).up(db)
        db.migrations.update_one({"_id": name}, {"$set": {"applied_at": datetime.now(timezone.utc)}}, upsert=True)
        ran.append(name)
    return ran


class PendingMigrations(RuntimeError):
    pass
