"""REST resources: webhook subscriptions, their deliveries and replays (admin only).

The role is ``GuardedStore``'s to enforce; these routes parse, call the store and
reply. The secret a subscription signs with is in the reply to its creation only.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from registry.server.deps import Door, reply
from registry.server.routes.params import AfterId, LimitQuery
from registry.webhooks import Delivery, Webhook

router = APIRouter(tags=["webhooks"])


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Where deliveries go: http(s)://host/path")
    events: list[str] = Field(
        description="Event types (promoted, rolled_back, registered, refused, …) or ['*']"
    )
    model: str | None = Field(
        default=None, description="A model name or 'NAMESPACE/*'; omitted: every model"
    )


class WebhookCreated(BaseModel):
    webhook: Webhook
    secret: str = Field(description="The HMAC-SHA256 key deliveries are signed with (shown once)")


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_seq: int = Field(description="Deliver again every matching event from this seq on")


class Queued(BaseModel):
    queued: int


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe a URL to events (from the next event on); the secret is shown once",
)
def add_webhook(body: WebhookCreate, store: Door) -> Response:
    webhook, secret = store.add_webhook(body.url, body.events, model=body.model)
    return reply(WebhookCreated(webhook=webhook, secret=secret), 201)


@router.get("/webhooks", response_model=list[Webhook], summary="Subscriptions by id")
def list_webhooks(store: Door, limit: LimitQuery = 1000, after: AfterId = 0) -> Response:
    """At most ``limit`` (1..10,000) per page; the next page is ``after`` the last id."""
    webhooks: list[BaseModel] = [*store.list_webhooks(limit=limit, after=after)]
    return reply(webhooks)


@router.delete(
    "/webhooks/{webhook_id}",
    response_model=Webhook,
    summary="Stop a subscription (its pending deliveries are dropped)",
)
def remove_webhook(webhook_id: int, store: Door) -> Response:
    return reply(store.remove_webhook(webhook_id))


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=list[Delivery],
    summary="A subscription's deliveries after seq `since`, in order: status, attempts, errors",
)
def webhook_deliveries(webhook_id: int, store: Door, since: int = 0, limit: int = 100) -> Response:
    deliveries: list[BaseModel] = [*store.webhook_deliveries(webhook_id, since=since, limit=limit)]
    return reply(deliveries)


@router.post(
    "/webhooks/{webhook_id}/replay",
    response_model=Queued,
    summary="Deliver again every matching event from seq `from_seq` on (delivered ones too)",
)
def replay_webhook(webhook_id: int, body: Replay, store: Door) -> Response:
    return reply(Queued(queued=store.replay_webhook(webhook_id, from_seq=body.from_seq)))
