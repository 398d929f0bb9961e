"""``idp users ...``: create, delete and list accounts from the command line."""
from __future__ import annotations

import json
import sys

import click

from idp import audit
from idp.config import Config


def _database():
    from idp.store.runtime import open_database
    return open_database(Config.load())


def _audit(db, event: str, user_id: str | None, **details) -> None:
    """An operator's account change from the command line, audited as the admin pages audit theirs (``via``
    "cli" where they name the signed-in administrator)."""
    audit.record(db, event, user_id=user_id, details={"via": "cli", **details})


def _find(db, who: str):
    from . import users
    return users.get_user(db, who) or users.find_by_login(db, who)


@click.group("users")
def users():
    """Manage user accounts."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--name", default=None)
@click.option("--phone", default=None)
@click.option("--password-stdin", "password_stdin", is_flag=True,
              help="read the password from standard input (one line); otherwise prompt for it")
@click.option("--admin", is_flag=True, help="make the user an administrator")
@click.option("--json", "as_json", is_flag=True, help="print the new account as JSON")
def create(username, email, name, phone, password_stdin, admin, as_json):
    """Create an account (same rules as the registration page). Prints the new user id."""
    from . import users as repo

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    errors = repo.validate(username, email, password, name, phone)
    if errors:
        for field, message in errors.items():
            click.echo(f"{field}: {message}", err=True)
        sys.exit(2)
    with _database() as db:
        try:
            doc = repo.create_user(db, username, email, password, name=name, phone=phone, is_admin=admin)
        except repo.DuplicateUser as e:
            raise click.ClickException(f"{e.field}: {e.message}") from None
        _audit(db, audit.REGISTER, doc["_id"], is_admin=bool(admin))
    if as_json:
        click.echo(json.dumps(repo.public_view(doc)))
    else:
        click.echo(doc["_id"])


@users.command("delete")
@click.argument("who")
@click.option("--json", "as_json", is_flag=True, help="print the deleted document counts as JSON")
def delete(who, as_json):
    """Delete the account WHO (username, email or id) and erase ALL of its data."""
    from . import users as repo

    with _database() as db:
        user = _find(db, who)
        if user is None:
            raise click.ClickException(f"no such user: {who}")
        counts = repo.delete_user(db, user["_id"])
        if counts is not None:
            _audit(db, audit.USER_DELETED, None, deleted_user=user["_id"], documents=sum(counts.values()))
    if counts is None:
        raise click.ClickException(f"{who} is being deleted by another request (or was just deleted); if that "
                                   f"deletion was interrupted, run this again after {repo.DELETE_CLAIM_S // 60} "
                                   "minutes")
    if as_json:
        click.echo(json.dumps({"id": user["_id"], "username": user["username"], "deleted": counts}))
        return
    click.echo(f"deleted user {user['username']} ({user['_id']})")
    for collection, n in sorted(counts.items()):
        click.echo(f"  {collection}: {n}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
def list_(as_json):
    """List accounts."""
    from . import users as repo

    with _database() as db:
        rows = [repo.public_view(u) for u in repo.list_users(db)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for u in rows:
        flags = " (admin)" if u.get("is_admin") else ""
        click.echo(f"{u['id']}  {u['username']}  {u['email']}{flags}")
    if not rows:
        click.echo("no users yet (idp users create, or the registration page)")
