"""``modelreg webhook``: subscriptions to registry events, their deliveries and replays.

Against a database URL these act as the OS user; against a registry server
(``--registry http://…``) they need an admin token in ``$MODELREG_TOKEN``. A server
delivers its webhooks itself; ``deliver`` is one pass for a registry without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.webhooks import Delivery, Webhook

WEBHOOK_ID = click.IntRange(1, 2**31 - 1)
SEQ = click.IntRange(min=0)


@click.group()
@json_option
def webhook() -> None:
    """Webhooks: signed deliveries of registry events to an HTTP receiver.

    Each event goes to a subscribed URL as a POST of the event's JSON, signed with
    HMAC-SHA256 over the timestamp and the body (headers X-Modelreg-Event-Id,
    -Event-Type, -Timestamp, -Signature). Deliveries are at least once, in order,
    and retried with backoff: a receiver dedups on the event id.
    """


@webhook.command("add")
@click.argument("url")
@click.option(
    "--events",
    required=True,
    metavar="TYPES",
    help="Comma-separated event types: promoted, rolled_back, registered, refused, staged, "
    "archived, alias_moved, policy, approval, binding, tags, description, model_created, "
    "model_renamed, deleted, erasure, collected; or '*' for all.",
)
@click.option(
    "--model", metavar="NAME", help="Only this model's events, or a namespace's ('payments/*')."
)
@json_option
@pass_state
def add(state: CliState, url: str, events: str, model: str | None) -> None:
    """Subscribe URL to events from the next one on; prints its id and signing secret
    (shown this once)."""
    from registry.cli.render import emit_json

    made, secret = state.store().add_webhook(url, events.split(","), model=model)
    if state.json:
        emit_json({"webhook": made, "secret": secret})
        return
    click.echo(f"webhook {made.id} added: {describe(made)}")
    click.echo(secret)


@webhook.command("list")
@json_option
@pass_state
def list_(state: CliState) -> None:
    """Every subscription: id, URL, event types, model filter, last event queued."""
    from registry.cli.render import stream_json, stream_table
    from registry.store.pages import walk

    store = state.store()
    pages = walk(lambda n, after: store.list_webhooks(limit=n, after=after), _id, 0)
    if state.json:
        stream_json(pages)
        return
    stream_table(
        ("id", "url", "events", "model", "queued up to", "added by"),
        (
            [
                (
                    str(h.id),
                    h.url,
                    ",".join(h.events),
                    h.model or "*",
                    str(h.cursor),
                    h.created_by,
                )
                for h in page
            ]
            for page in pages
        ),
        empty="no webhooks (add one with 'modelreg webhook add URL --events …')",
    )


def _id(hook: Webhook) -> int:
    return hook.id


@webhook.command("remove")
@click.argument("webhook_id", metavar="ID", type=WEBHOOK_ID)
@json_option
@pass_state
def remove(state: CliState, webhook_id: int) -> None:
    """Stop webhook ID; its pending deliveries are dropped."""
    from registry.cli.render import emit_json

    removed = state.store().remove_webhook(webhook_id)
    if state.json:
        emit_json(removed)
        return
    click.echo(f"webhook {removed.id} removed ({removed.url})")


@webhook.command("deliveries")
@click.argument("webhook_id", metavar="ID", type=WEBHOOK_ID)
@click.option("--since", type=SEQ, default=0, metavar="SEQ", help="Events after this seq.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, metavar="N")
@json_option
@pass_state
def deliveries(state: CliState, webhook_id: int, since: int, limit: int) -> None:
    """The deliveries of webhook ID, in event order: delivered or pending, attempts, and
    the last attempt's HTTP status or error."""
    from registry.cli.render import emit_json, print_table

    rows = state.store().webhook_deliveries(webhook_id, since=since, limit=limit)
    if state.json:
        emit_json(rows)
        return
    print_table(
        ("seq", "model", "event", "status", "attempts", "last attempt", "result"),
        (_delivery_row(d) for d in rows),
        empty=f"no deliveries of webhook {webhook_id} after event {since}",
    )


def _delivery_row(d: Delivery) -> tuple[str, ...]:
    from registry.cli.render import when

    if d.status == "delivered":
        status = f"delivered {when(d.delivered_at)}"
    elif d.attempts:
        status = f"pending, retry {when(d.next_attempt_at)}"
    else:
        status = "pending"
    result = d.last_error or (f"HTTP {d.last_status}" if d.last_status is not None else "-")
    return (
        str(d.seq),
        d.model,
        d.event_type,
        status,
        str(d.attempts),
        when(d.last_attempt_at),
        result,
    )


@webhook.command("replay")
@click.argument("webhook_id", metavar="ID", type=WEBHOOK_ID)
@click.option(
    "--from",
    "from_seq",
    type=SEQ,
    required=True,
    metavar="SEQ",
    help="Deliver again every matching event from this seq on.",
)
@json_option
@pass_state
def replay(state: CliState, webhook_id: int, from_seq: int) -> None:
    """Deliver again every event of webhook ID from SEQ on, delivered ones included."""
    from registry.cli.render import emit_json

    queued = state.store().replay_webhook(webhook_id, from_seq=from_seq)
    if state.json:
        emit_json({"webhook": webhook_id, "from_seq": from_seq, "queued": queued})
        return
    click.echo(f"webhook {webhook_id}: {queued} deliveries queued from event {from_seq}")


@webhook.command("deliver")
@click.option(
    "--max-backoff",
    "max_backoff_s",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Longest wait before a failed delivery is tried again.",
)
@json_option
@pass_state
def deliver(state: CliState, max_backoff_s: float) -> None:
    """One delivery pass for a registry without a server (run it from cron): queue new
    events, send what is due, in order. Webhooks a running server holds are left to it."""
    from registry.cli.render import emit_json
    from registry.errors import InvalidInput
    from registry.store.replicated import ReplicatedStore
    from registry.store.sql import SqlStore
    from registry.webhook_dispatch import deliver_once

    store = state.store()
    if isinstance(store, ReplicatedStore):  # deliveries are writes: the primary's
        store = store.primary
    if not isinstance(store, SqlStore):
        raise InvalidInput(
            "modelreg webhook deliver runs against a database (sqlite:///… or postgresql://…); "
            "a registry server delivers its own webhooks"
        )
    report = deliver_once(store, max_backoff_s=max_backoff_s)
    if state.json:
        emit_json(
            {
                "webhooks": report.webhooks,
                "queued": report.queued,
                "delivered": report.delivered,
                "failed": report.failed,
            }
        )
        return
    click.echo(
        f"{report.delivered} delivered, {report.failed} failed (retried later), "
        f"{report.queued} new deliveries queued, over {report.webhooks} webhook(s)"
    )


def describe(hook: Webhook) -> str:
    model = f" of {hook.model}" if hook.model else ""
    return f"{', '.join(hook.events)} events{model} to {hook.url}"
