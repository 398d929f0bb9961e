"""``idp mail``: deliver the outbox from the command line (cron, or instances run with IDP_MAIL_SENDER=0)."""
from __future__ import annotations

import click


@click.group()
def mail():
    """Email outbox."""


@mail.command("send-pending")
def send_pending():
    """Deliver every due message now (safe beside running senders: each message is claimed once)."""
    from idp.config import Config
    from idp.store.runtime import open_database

    from . import outbox
    from .transport import from_config

    config = Config.load()
    transport = from_config(config)
    with open_database(config) as db:
        sent, failed = outbox.send_pending(db, transport, limit=10_000)
        left = outbox.pending_count(db)
    click.echo(f"sent {sent}, failed {failed} (will retry), pending {left} — via {transport.describe()}")


@mail.command("status")
def status():
    """Count the outbox's messages by status."""
    from idp.config import Config
    from idp.store.runtime import open_database

    from .outbox import COLLECTION

    with open_database(Config.load()) as db:
        rows = list(db[COLLECTION].aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]))
    for row in rows:
        click.echo(f"{row['_id']}: {row['n']}")
    if not rows:
        click.echo("outbox empty: no pending, sent or failed messages")
