"""The ``idp`` console script. Feature packages contribute their own command groups."""
from __future__ import annotations

import importlib
from pathlib import Path

import click

from idp.config import Config

# (module, attribute) of command groups contributed by feature packages.
GROUPS = (
    ("idp.accounts.cli", "users"),
    ("idp.oauth.cli", "clients"),
    ("idp.oauth.cli", "keys"),
    ("idp.faceweb.cli", "faces"),
    ("idp.mail.cli", "mail"),
)


# Imported only by `idp faces eval` (the `eval` extra).
EVAL_ONLY_MODULES = {"matplotlib", "tqdm"}


@click.group()
def cli():
    """Deep Authenticator identity provider."""
    from idp import audit
    from idp.mail import notify
    # The owner's notices of the events a command records (a face enrolled from the command line), as the app's
    # (idp.mail.init_app): queued in the outbox, delivered by the servers' senders or `idp mail send-pending`.
    audit.listen("mail.notify", notify.on_audit)


@cli.command()
def migrate():
    """Apply pending database migrations."""
    from idp.store import migrate as m
    from idp.store.runtime import open_database

    config = Config.load()
    with open_database(config, migrations=False) as db:
        ran = m.apply(db)
    click.echo("applied: " + ", ".join(ran) if ran else "no pending migrations")


@cli.group()
def backup():
    """Back up or restore the database and the four secrets (see docs/operations.md)."""


@backup.command("create")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup_create(directory):
    """Write every collection and the secrets to the new DIRECTORY (keep it as secret as the keys)."""
    from idp.store import backup as b
    from idp.store.runtime import open_database

    config = Config.load()
    with open_database(config) as db:
        try:
            manifest = b.create(db, config, directory)
        except b.BackupError as exc:
            raise click.ClickException(str(exc)) from None
    total = sum(manifest["collections"].values())
    click.echo(f"backed up {total} documents in {len(manifest['collections'])} collections and 4 secrets "
               f"to {directory}")
    if any(config.retired_keys(name) for name in config.RETIRED):
        # only the current secrets are saved: data still under a retired key would not be readable after a restore
        click.echo("warning: retired keys are configured and are not in the backup; finish the rotation "
                   "(`idp faces rekey`, `idp keys rekey`) and back up again (docs/operations.md)", err=True)


@backup.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="do not ask: every collection of the database is replaced")
def backup_restore(directory, yes):
    """Replace the database and the secrets by those of the backup in DIRECTORY (stop the server first)."""
    from idp.store import backup as b
    from idp.store.runtime import open_database

    config = Config.from_env()
    try:
        manifest = b.read_manifest(directory)
        saved = b.backup_secrets(directory)
        b.check_given_secrets({name: getattr(config, name) for name in b.SECRETS}, saved)
    except b.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    if not yes:
        click.confirm(f"Replace every collection of database {config.db_name!r} with the backup of "
                      f"{manifest['created']}?", abort=True)
    for name, value in saved.items():
        setattr(config, name, value)
    try:
        staged = b.stage_secrets(config, saved)  # before the database: a restore stops while nothing is replaced
    except b.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        with open_database(config, migrations=False) as db:
            b.restore(db, directory)
    except BaseException as exc:
        b.drop_staged_secrets(staged)
        if isinstance(exc, b.BackupError):
            raise click.ClickException(str(exc)) from None
        raise
    b.put_secrets(staged)
    click.echo(f"restored {sum(manifest['collections'].values())} documents and 4 secrets; "
               "run `idp migrate` if this version has newer migrations")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="worker processes [default: IDP_WORKERS or 2]")
@click.option("--threads", default=None, type=int, help="threads per worker [default: IDP_THREADS or 4]")
def serve(host, port, workers, threads):
    """Serve the IdP with gunicorn (production WSGI server)."""
    from idp.serving import serve as run
    config = Config.load()
    run(config, host=host, port=port, workers=workers or config.workers or 2, threads=threads or config.threads)


@cli.command()
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--client-port", default=5001, show_default=True, type=int)
@click.option("--rp-only", is_flag=True, help="run only the demo relying party (the IdP runs elsewhere)")
def demo(port, client_port, rp_only):
    """Start the IdP (embedded database) and the demo relying party together."""
    from idp.serving import run_demo
    run_demo(Config.load(), port=port, client_port=client_port, rp_only=rp_only)


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

    from idp.faceweb.integrity import TemplateKeyError, model_errors
    from idp.oauth.keys import SealedKeyError
    from idp.store.migrate import PendingMigrations
    from idp.store.runtime import DatabaseUnavailable
    try:
        cli(prog_name="idp")
    except (PendingMigrations, DatabaseUnavailable, TemplateKeyError, SealedKeyError, *model_errors()) as e:
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
