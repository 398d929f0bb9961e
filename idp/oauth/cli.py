"""``idp clients ...`` and ``idp keys ...`` command groups."""
from __future__ import annotations

import json
from datetime import datetime

import click

from idp.config import Config
from idp.oauth.clients import ID_TOKEN_ALGS, SECRET_AUTH_METHODS


def _db():
    from idp.store.runtime import open_database
    return open_database(Config.load())


def _json(obj) -> str:
    return json.dumps(obj, default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o), sort_keys=True)


def _warn_face_off(config, docs) -> None:
    """With face sign-in off, a face-required client's sign-ins are all refused (the face step cannot be
    performed): say so on stderr, for the enabled clients that sign users in (authorization code grant)."""
    if config.face_enabled:
        return
    from .clients import face_required_signin_clients
    stuck = face_required_signin_clients(docs)
    if stuck:
        click.echo(f"warning: face sign-in is turned off (IDP_FACE_ENABLED=false): {len(stuck)} client(s) with "
                   "face policy 'required' cannot sign anyone in (their authorization requests are refused with "
                   "unmet_authentication_requirements) - turn face sign-in on, or make them password-only with "
                   "`idp clients face-policy CLIENT_ID optional`: " + ", ".join(stuck),
                   err=True)


@click.group()
def clients():
    """Manage relying-party clients."""


@clients.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="repeat for several (required unless "
              "the only grant type is client_credentials)")
@click.option("--public", is_flag=True, help="public client (no secret, PKCE required)")
@click.option("--scope", default="openid profile email", show_default=True)
@click.option("--face", "face_policy", type=click.Choice(["required", "optional"]), default="required",
              show_default=True)
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option("--skip-consent", is_flag=True, help="first-party client: no consent page")
@click.option("--no-refresh", is_flag=True, help="do not issue refresh tokens")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
              help="repeat for several (default: authorization_code refresh_token); client_credentials only "
                   "for confidential clients, and alone it needs no redirect URI")
@click.option("--id-token-alg", type=click.Choice(ID_TOKEN_ALGS), default="RS256", show_default=True)
@click.option("--auth-method", type=click.Choice(SECRET_AUTH_METHODS),
              default="client_secret_basic", show_default=True)
@click.option("--logo-uri", help="https URL of the app's logo, shown on the sign-in and consent pages")
@click.option("--policy-uri", help="the app's privacy policy, linked on the sign-in and consent pages")
@click.option("--tos-uri", help="the app's terms of service, linked on the sign-in and consent pages")
@click.option("--backchannel-logout-uri", help="where the IdP POSTs logout tokens (Back-Channel Logout 1.0)")
@click.option("--backchannel-logout-session-required", is_flag=True, help="the client needs sid in logout tokens")
@click.option("--default-max-age", type=int, metavar="SECONDS",
              help="re-authenticate a user whose sign-in is older than this, when the request has no max_age")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def create(name, redirect_uris, public, scope, face_policy, post_logout_redirect_uris, skip_consent, no_refresh,
           grant_types, id_token_alg, auth_method, logo_uri, policy_uri, tos_uri, backchannel_logout_uri,
           backchannel_logout_session_required, default_max_age, as_json):
    """Register a client; the secret is printed once."""
    from .clients import ClientError, create_client, public_view
    config = Config.load()
    from idp.store.runtime import open_database
    with open_database(config) as db:
        try:
            doc, secret = create_client(
                db, config, name, list(redirect_uris), public=public, scope=scope, face_policy=face_policy,
                post_logout_redirect_uris=list(post_logout_redirect_uris), skip_consent=skip_consent,
                grant_types=[g for g in grant_types if not (no_refresh and g == "refresh_token")] or (
                    ["authorization_code"] if no_refresh else None), id_token_signed_response_alg=id_token_alg,
                token_endpoint_auth_method=None if public else auth_method, logo_uri=logo_uri,
                policy_uri=policy_uri, tos_uri=tos_uri, backchannel_logout_uri=backchannel_logout_uri,
                backchannel_logout_session_required=backchannel_logout_session_required,
                default_max_age=default_max_age)
        except ClientError as e:
            raise click.ClickException(str(e)) from None
    _warn_face_off(config, [doc])
    out = public_view(doc)
    if secret:
        out["client_secret"] = secret
    if as_json:
        click.echo(_json(out))
    else:
        click.echo(f"client_id:     {doc['client_id']}")
        if secret:
            click.echo(f"client_secret: {secret}   (shown once: store it now)")
        else:
            click.echo("public client: no secret, PKCE (S256) required")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
def list_(as_json):
    """List clients (never their secrets)."""
    from .clients import list_clients, public_view, secrets_under_other_peppers
    from idp.store.runtime import open_database
    config = Config.load()
    with open_database(config) as db:
        docs = [public_view(d) for d in list_clients(db)]
        old = secrets_under_other_peppers(db, config)
    _warn_face_off(config, docs)
    if as_json:
        click.echo(_json(docs))
        return
    for d in docs:
        kind = "public" if d.get("public") else "confidential"
        state = "enabled" if d.get("enabled") else "disabled"
        click.echo(f"{d['client_id']}  {d['name']!r}  {kind}  face={d.get('face_policy')}  {state}  "
                   f"{' '.join(d.get('redirect_uris', []))}")
    if not docs:
        click.echo("no clients yet (idp clients create, or the admin pages)")
    if old:
        click.echo(f"{old} client secret(s) not yet hashed under the current IDP_CLIENT_SECRET_PEPPER: each is "
                   "re-hashed at its client's next authentication (keep the old pepper retired until then)")


@clients.command("delete")
@click.argument("client_id")
def delete(client_id):
    """Delete a client with its consents and tokens."""
    from .clients import delete_client
    with _db() as db:
        if not delete_client(db, client_id):
            raise click.ClickException(f"no client {client_id}")
    click.echo(f"deleted {client_id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
def rotate_secret_cmd(client_id, as_json):
    """Give a confidential client a new secret (printed once)."""
    from .clients import ClientError, rotate_secret
    config = Config.load()
    from idp.store.runtime import open_database
    with open_database(config) as db:
        try:
            secret = rotate_secret(db, config, client_id)
        except ClientError as e:
            raise click.ClickException(str(e)) from None
    click.echo(_json({"client_id": client_id, "client_secret": secret}) if as_json else f"client_secret: {secret}")


@clients.command("disable")
@click.argument("client_id")
def disable(client_id):
    """Disable a client and revoke its tokens."""
    from .clients import disable_client
    with _db() as db:
        if not disable_client(db, client_id):
            raise click.ClickException(f"no client {client_id}")
    click.echo(f"disabled {client_id}")


@clients.command("face-policy")
@click.argument("client_id")
@click.argument("policy", type=click.Choice(["required", "optional"]))
def face_policy_cmd(client_id, policy):
    """Set whether a client's sign-ins need the face (required) or only when the user enrolled (optional)."""
    from .clients import update_client
    config = Config.load()
    from idp.store.runtime import open_database
    with open_database(config) as db:
        doc = update_client(db, client_id, face_policy=policy)
    if doc is None:
        raise click.ClickException(f"no client {client_id}")
    click.echo(f"{client_id}: face policy {policy}")
    _warn_face_off(config, [doc])


@click.group()
def keys():
    """Manage ID-token signing keys."""


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), multiple=True, help="default: all algorithms")
def rotate_cmd(alg):
    """Add a next key per algorithm: published in the JWKS now, signing once every JWKS cache holds it;
    the keys it replaces stay published until their ID tokens expire."""
    from .keys import ALGORITHMS, ensure_keys, prepublish_s, purge_retired, rotate
    config = Config.load()
    from idp.store.runtime import open_database
    with open_database(config) as db:
        ensure_keys(db, config)
        new = rotate(db, config, tuple(alg) or ALGORITHMS)
        purged = purge_retired(db)
    click.echo("next keys (published now, signing in %ds): " % prepublish_s(config) + ", ".join(new)
               + (f" (purged {purged} retired)" if purged else ""))


@keys.command("rekey")
@click.option("--dry-run", is_flag=True, help="count what would be re-sealed; change nothing")
def rekey_cmd(dry_run):
    """Re-seal every stored private signing key under IDP_KEY_ENCRYPTION_KEY (read with
    IDP_KEY_ENCRYPTION_KEYS_RETIRED); each document only if unchanged since read. Prints counts per
    key-encryption key id; exit 1 when a key stays unreadable."""
    import sys

    from idp import audit, keyring

    from .keys import current_kek_id, rekey
    config = Config.load()
    current_id = current_kek_id(config)
    from idp.store.runtime import open_database
    with open_database(config) as db:
        counts = rekey(db, config, dry_run=dry_run)
        if not dry_run:
            audit.record(db, audit.SIGNING_KEYS_REKEYED, decision="rekeyed",
                         details=keyring.audit_details(counts, current_id))
    click.echo("\n".join(keyring.report_lines("signing key(s)", counts, current_id, dry_run)))
    t = keyring.totals(counts)
    sys.exit(1 if t["unreadable"] + t["unknown_key"] else 0)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_keys_cmd(as_json):
    """List signing keys (public metadata only)."""
    from .keys import activate_at, list_keys, status
    with _db() as db:
        docs = [{"kid": d["_id"], "alg": d["alg"], "active": d["active"], "status": status(d),
                 "created_at": d["created_at"], "activate_at": activate_at(d),
                 "retire_after": d.get("retire_after")} for d in list_keys(db)]
    if as_json:
        click.echo(_json(docs))
        return
    for d in docs:
        state = {"next": f"next, signs from {d['activate_at']}", "active": "active"}.get(
            d["status"], f"retiring after {d['retire_after']}")
        click.echo(f"{d['kid']}  {d['alg']}  {state}")
