"""Webhook subscriptions: what they are, which events they take, and how a delivery
is signed. Pure: the store keeps subscriptions and delivery rows; the dispatcher
(``registry.webhook_dispatch``) sends them.

A delivery is ``POST <url>`` with the event as JSON and these headers:

    X-Modelreg-Event-Id:   the event's sequence number (unique: a receiver dedups on it)
    X-Modelreg-Event-Type: promoted, rolled_back, registered, refused, …
    X-Modelreg-Timestamp:  Unix seconds when this attempt was signed
    X-Modelreg-Signature:  v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in
constant time, and rejects a timestamp too far from its clock (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from registry.errors import InvalidInput
from registry.models import Event

# The types a subscription can ask for; "*" takes every one.
EVENT_TYPES = (
    "registered",
    "staged",
    "promoted",
    "archived",
    "rolled_back",
    "refused",
    "alias_moved",
    "policy",
    "approval",
    "binding",
    "tags",
    "description",
    "model_created",
    "model_renamed",
    "deleted",
    "erasure",  # an erasure request flagged, or a flagged version justified or retrained
    "collected",  # gc removed bytes a version had
)
SIGNATURE_VERSION = "v1"
MAX_URL = 2048
_URL_RE = re.compile(r"^https?://[^\s/?#\x00-\x1f\x7f]+[^\s\x00-\x1f\x7f]*$")  # no control bytes

DeliveryStatus = Literal["pending", "delivered"]


def event_type(event: Event) -> str:
    """The webhook type of one event (``stage`` to Production is ``promoted`` …)."""
    if event.kind == "stage":
        return {"Production": "promoted", "Staging": "staged", "Archived": "archived"}.get(
            event.to_value or "", "staged"
        )
    return {
        "version.registered": "registered",
        "rollback": "rolled_back",
        "alias": "alias_moved",
        "model.created": "model_created",
        "model.renamed": "model_renamed",
        "model.deleted": "deleted",
        "version.deleted": "deleted",
        "erasure.requested": "erasure",
        "erasure.justified": "erasure",
        "erasure.retrained": "erasure",
        "artifact.collected": "collected",
    }.get(event.kind, event.kind)


def check_events(types: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(t.strip() for t in types if t.strip()))
    if not wanted:
        raise InvalidInput("a webhook needs at least one event type (or '*')")
    unknown = [t for t in wanted if t != "*" and t not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown webhook event type {unknown[0]!r}: use {', '.join(EVENT_TYPES)} or '*'"
        )
    return ("*",) if "*" in wanted else wanted


def check_url(url: str) -> str:
    if not isinstance(url, str) or len(url) > MAX_URL or not _URL_RE.fullmatch(url):
        raise InvalidInput(f"invalid webhook URL {str(url)[:200]!r}: use http(s)://host/path")
    return url


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Modelreg-Signature`` value of one attempt."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class Webhook(BaseModel):
    """A subscription as the registry shows it (its secret only once, at creation)."""

    model_config = ConfigDict(frozen=True)

    id: int
    url: str
    events: tuple[str, ...]
    model: str | None = None  # a model name or "ns/*"; None: every model
    cursor: int = 0  # the newest event sequence number turned into deliveries
    created_at: datetime
    created_by: str
    removed_at: datetime | None = None

    def wants(self, event: Event) -> bool:
        if self.model is not None:
            if self.model.endswith("/*"):
                if not event.model.startswith(self.model[:-1]):
                    return False
            elif event.model != self.model:
                return False
        return "*" in self.events or event_type(event) in self.events


class Delivery(BaseModel):
    """One event for one webhook: pending until the receiver answered 2xx."""

    model_config = ConfigDict(frozen=True)

    webhook_id: int
    seq: int
    event_type: str
    model: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
