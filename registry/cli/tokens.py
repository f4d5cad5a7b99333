"""``modelreg token``: bearer tokens for the registry server (admin only over HTTP)."""

from __future__ import annotations

import click

from registry.cli.state import CliState, json_option, pass_state


@click.group()
def token() -> None:
    """Bearer tokens for the registry server: create, list, revoke."""


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["reader", "data-scientist", "deployer", "admin"]),
    help="What the token may do (each role adds to the one before).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="The models it sees and where its writes apply: '*' (default), 'NAMESPACE/*', a "
    "model name, optionally '@POINTER' (an alias or a stage: writes move only that "
    "pointer). Repeat for several.",
)
@json_option
@pass_state
def create(state: CliState, name: str, role: str, scopes: tuple[str, ...]) -> None:
    """Create token NAME and print its secret (shown this once; only a hash is kept)."""
    import json

    from registry.auth import Role

    made, secret = state.store().create_token(name, Role(role), scopes=scopes or ("*",))
    if state.json:
        click.echo(json.dumps({**made.model_dump(mode="json"), "secret": secret}, indent=2))
        return
    click.echo(f"token {made.name} ({made.role}, scope {', '.join(made.scopes)}) created")
    click.echo(secret)


@token.command("list")
@json_option
@pass_state
def list_(state: CliState) -> None:
    """Every token with its role and scope; revoked ones marked."""
    import json

    tokens = state.store().list_tokens()
    if state.json:
        click.echo(json.dumps([t.model_dump(mode="json") for t in tokens], indent=2))
        return
    for t in tokens:
        status = (
            f"revoked {t.revoked_at:%Y-%m-%d %H:%M} by {t.revoked_by}" if t.revoked_at else "active"
        )
        click.echo(f"{t.name}  {t.role}  {','.join(t.scopes)}  {status}  (by {t.created_by})")


@token.command("revoke")
@click.argument("name")
@json_option
@pass_state
def revoke(state: CliState, name: str) -> None:
    """Revoke token NAME: the server refuses it from the next request on."""
    revoked = state.store().revoke_token(name)
    if state.json:
        click.echo(revoked.model_dump_json())
        return
    click.echo(f"token {revoked.name} revoked")
