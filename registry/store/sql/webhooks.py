"""Webhook subscriptions and their delivery rows (to be written: see the webhooks work)."""

from __future__ import annotations

from collections.abc import Sequence

from registry.store.sql.engine import Database
from registry.webhooks import Delivery, Webhook


class WebhooksMixin:
    db: Database
    actor: str

    def add_webhook(
        self, url: str, events: Sequence[str], *, model: str | None = None
    ) -> tuple[Webhook, str]:
        raise NotImplementedError

    def list_webhooks(self) -> list[Webhook]:
        raise NotImplementedError

    def remove_webhook(self, webhook_id: int) -> Webhook:
        raise NotImplementedError

    def webhook_deliveries(
        self, webhook_id: int, *, since: int = 0, limit: int = 100
    ) -> list[Delivery]:
        raise NotImplementedError

    def replay_webhook(self, webhook_id: int, *, from_seq: int) -> int:
        raise NotImplementedError
