"""``idp mail send-pending`` / ``idp mail status``: the outbox delivered from the command line, over real SMTP."""
from __future__ import annotations

from click.testing import CliRunner

from idp.cli import cli
from idp.mail import outbox
from tests.accounts.conftest import migrated_db  # noqa: F401  (fixture)


def test_send_pending_delivers_the_outbox_with_the_configured_server(migrated_db, mongo_uri, smtp_server,  # noqa: F811
                                                                     tmp_path):
    outbox.queue(migrated_db, "bob@example.com", "Hello", "Body text", kind="test")
    env = {"MONGODB_URI": mongo_uri, "IDP_DATA_DIR": str(tmp_path), "IDP_DB_NAME": migrated_db.name,
           "IDP_SMTP_URL": smtp_server.url, "IDP_MAIL_FROM": "IdP <idp@example.com>"}

    before = CliRunner().invoke(cli, ["mail", "status"], env=env, catch_exceptions=False)
    assert before.exit_code == 0 and before.output.strip() == "pending: 1"

    sent = CliRunner().invoke(cli, ["mail", "send-pending"], env=env, catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    assert sent.output.startswith("sent 1, failed 0 (will retry), pending 0")
    msg = smtp_server.wait_for(1)[0]
    assert msg["To"] == "bob@example.com" and msg["From"] == "IdP <idp@example.com>" and msg["Subject"] == "Hello"

    after = CliRunner().invoke(cli, ["mail", "status"], env=env, catch_exceptions=False)
    assert after.output.strip() == "sent: 1"


def test_status_of_an_empty_outbox_says_so(migrated_db, mongo_uri, tmp_path):  # noqa: F811
    """An operator checking the outbox gets an answer, not an empty output."""
    env = {"MONGODB_URI": mongo_uri, "IDP_DATA_DIR": str(tmp_path), "IDP_DB_NAME": migrated_db.name}
    r = CliRunner().invoke(cli, ["mail", "status"], env=env, catch_exceptions=False)
    assert r.exit_code == 0 and r.output.strip() == "outbox empty: no pending, sent or failed messages"
