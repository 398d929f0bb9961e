"""Where the package's files are: ``templates``, ``static`` and ``migrations``, for a checkout and for an
installed wheel (read by the app factory and the migration runner; no configuration here)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A checkout (or editable install) has templates/, static/ and migrations/ beside the package; a wheel
# ships them inside it, under idp/_assets/ (see setup.py).
INSTALLED_ASSETS = Path(__file__).resolve().parent / "_assets"
FROM_CHECKOUT = (ROOT / "templates").is_dir() and (ROOT / "migrations").is_dir()


def asset_dir(name: str) -> Path:
    """Where ``templates``, ``static`` or ``migrations`` are, for a checkout and for an installed wheel."""
    return ROOT / name if FROM_CHECKOUT else INSTALLED_ASSETS / name
