"""``modelreg token``: bearer tokens for the registry server (admin only over HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.auth import Token


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
    from registry.cli.render import stream_json, write_text
    from registry.store.pages import walk

    store = state.store()
    pages = walk(lambda n, after: store.list_tokens(limit=n, after=after), _name, None)
    if state.json:
        stream_json(pages)
        return
    for page in pages:
        write_text("".join(f"{_token_line(t)}\n" for t in page))


def _name(token: Token) -> str | None:
    return token.name


def _token_line(t: Token) -> str:
    status = "active"
    if t.revoked_at:
        status = f"revoked {t.revoked_at:%Y-%m-%d %H:%M} by {t.revoked_by}"
    return f"{t.name}  {t.role}  {','.join(t.scopes)}  {status}  (by {t.created_by})"


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
