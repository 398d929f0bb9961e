"""The ``idp`` console script. Feature packages contribute their own command groups."""
from __future__ import annotations

import importlib

import click

from idp.config import Config

# (module, attribute) of command groups contributed by feature packages.
GROUPS = (
    ("idp.accounts.cli", "users"),
    ("idp.oauth.cli", "clients"),
    ("idp.oauth.cli", "keys"),
    ("idp.face.cli", "faces"),
)


# Imported only by `idp faces eval` (the `eval` extra).
EVAL_ONLY_MODULES = {"matplotlib", "tqdm"}


@click.group()
def cli():
    """Deep Authenticator identity provider."""


def _config() -> Config:
    return Config.from_env().ensure_secrets()


@cli.command()
def migrate():
    """Apply pending database migrations."""
    from idp.store import migrate as m
    from idp.store.runtime import open_database

    config = _config()
    with open_database(config, migrations=False) as db:
        ran = m.apply(db)
    click.echo("applied: " + ", ".join(ran) if ran else "no pending migrations")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="worker processes [default: IDP_WORKERS or 2]")
@click.option("--threads", default=None, type=int, help="threads per worker [default: IDP_THREADS or 4]")
def serve(host, port, workers, threads):
    """Serve the IdP with gunicorn (production WSGI server)."""
    from idp.serving import serve as run
    config = _config()
    run(config, host=host, port=port, workers=workers or config.workers or 2, threads=threads or config.threads)


@cli.command()
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--client-port", default=5001, show_default=True, type=int)
@click.option("--rp-only", is_flag=True, help="run only the demo relying party (the IdP runs elsewhere)")
def demo(port, client_port, rp_only):
    """Start the IdP (embedded database) and the demo relying party together."""
    from idp.serving import run_demo
    run_demo(_config(), port=port, client_port=client_port, rp_only=rp_only)


def _register_groups():
    for module_name, attr in GROUPS:
        cli.add_command(getattr(importlib.import_module(module_name), attr))


_register_groups()


def _one_line(error: Exception) -> str:
    """A database error as one short line (pymongo's include a whole topology description)."""
    text = " ".join(str(error).split())
    for cut in (", Timeout:", " (configured timeouts"):
        text = text.split(cut)[0]
    return text[:300] or type(error).__name__


def main():
    """Run the CLI; a database failure ends with one ``error:`` line on stderr and exit code 1."""
    from pymongo.errors import PyMongoError

    from idp.faceweb.integrity import TemplateKeyError
    from idp.store.migrate import PendingMigrations
    from idp.store.runtime import DatabaseUnavailable
    try:
        cli(prog_name="idp")
    except (PendingMigrations, DatabaseUnavailable, TemplateKeyError) as e:
        raise SystemExit(f"error: {e}") from None
    except PyMongoError as e:
        raise SystemExit(f"error: database: {_one_line(e)}") from None
    except ModuleNotFoundError as e:
        if e.name not in EVAL_ONLY_MODULES:
            raise
        raise SystemExit(f"error: {e.name} is needed by `idp faces eval`: "
                         "pip install 'deep-authenticator[eval]'") from None


if __name__ == "__main__":
    main()
