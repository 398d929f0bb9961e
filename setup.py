"""Build hook: templates/, static/ and migrations/ live at the repository root (the checkout and
editable installs read them there); a wheel carries copies under ``idp/_assets/`` (see
``idp.assets.asset_dir``). Everything else is configured in pyproject.toml."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = ("templates", "static", "migrations")


class BuildPyWithAssets(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in ASSETS:
            for src in sorted(Path(name).rglob("*")):
                if src.is_file() and "__pycache__" not in src.parts and src.suffix != ".pyc":
                    dst = Path(self.build_lib) / "idp" / "_assets" / src
                    self.mkpath(str(dst.parent))
                    self.copy_file(str(src), str(dst))


setup(cmdclass={"build_py": BuildPyWithAssets})
