"""Webhook subscriptions and their outbox of delivery rows.

The interface methods (``add_webhook`` … ``replay_webhook``) are documented on
``RegistryStore``. Below them are the dispatcher's operations, which only
``registry.webhook_dispatch`` calls:

- ``claim_webhooks``: take or renew the lease of every subscription nobody else
  holds. The UPDATE is guarded on ``lease_until``, so of two server processes only
  one delivers a given webhook at a time.
- ``queue_deliveries``: turn events after the cursor into delivery rows (one per
  webhook and seq) and advance the cursor, in one transaction. Events commit in
  ``seq`` order (the event counter's row lock), so a cursor never skips one.
- ``next_delivery`` and ``record_attempt``: the oldest pending delivery, and what
  one attempt to send it came to.

A replay deletes the rows it re-queues and inserts fresh ones, due at the time of
the replay. An attempt in flight meanwhile records nothing: ``record_attempt`` is
guarded on the row's id and due time as that attempt read them (SQLite may give a
new row the id of a deleted one; the due time is later than any read before the
replay). So the replayed delivery stays pending and is sent again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import Conflict, InvalidInput, NotFound
from registry.models import MODEL_NAME_RE, Event, check_id_page, check_model_name
from registry.store.sql.common import EVENT_COLUMNS, event_from_row, utcnow
from registry.store.sql.engine import Database
from registry.store.sql.schema import event_counter_table, events_table
from registry.store.sql.schema_access import deliveries_table, webhooks_table
from registry.webhooks import Delivery, Webhook, check_events, check_url, event_type

SECRET_PREFIX = "whsec_"
MAX_DELIVERIES = 1000
QUEUE_BATCH = 500  # events read per queueing transaction

_W, _D = webhooks_table, deliveries_table
_WEBHOOK_COLUMNS = (
    _W.c.id,
    _W.c.url,
    _W.c.events,
    _W.c.model,
    _W.c.cursor,
    _W.c.created_at,
    _W.c.created_by,
    _W.c.removed_at,
)
_DELIVERY_COLUMNS = tuple(_D.c[name] for name in Delivery.model_fields)
_LATEST_SEQ = select(event_counter_table.c.seq).where(event_counter_table.c.id == 1)


@dataclass(frozen=True)
class Held:
    """A subscription this dispatcher holds the lease of, with the key it signs with."""

    webhook: Webhook
    secret: str
    lease_until: datetime


@dataclass(frozen=True)
class Queued:
    """What one queueing transaction did: events read, deliveries made, the new cursor."""

    scanned: int  # events the cursor moved past
    queued: int
    cursor: int


@dataclass(frozen=True)
class Due:
    """The oldest pending delivery of a webhook, with the event it carries."""

    delivery_id: int
    attempts: int
    next_attempt_at: datetime
    event: Event


def check_model_filter(model: str | None) -> str | None:
    """A model name, ``ns/*`` for a namespace, or None (``*``) for every model."""
    if model is None or model == "*":
        return None
    if isinstance(model, str) and model.endswith("/*"):
        namespace = model[:-2]
        if "/" not in namespace and MODEL_NAME_RE.fullmatch(namespace):
            return model
        raise InvalidInput(f"invalid model filter {model!r}: use a model name or 'NAMESPACE/*'")
    return check_model_name(model)


def _webhook(row: Any) -> Webhook:
    values = row._asdict()
    values["events"] = tuple(json.loads(values["events"]))
    return Webhook.model_validate(values)


def _insert_ignoring_duplicates(dialect: str) -> Any:
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_D)
    # RETURNING, not rowcount: psycopg reports -1 for an executemany.
    return statement.on_conflict_do_nothing(index_elements=["webhook_id", "seq"]).returning(_D.c.id)


_INSERT_NEW = {d: _insert_ignoring_duplicates(d) for d in ("sqlite", "postgresql")}


def _pending_row(webhook_id: int, event: Event, now: datetime) -> dict[str, Any]:
    return {
        "webhook_id": webhook_id,
        "seq": event.seq,
        "event_type": event_type(event),
        "model": event.model,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }


def _check_id(webhook_id: int) -> int:
    if (
        isinstance(webhook_id, bool)
        or not isinstance(webhook_id, int)
        or not 1 <= webhook_id < 2**31
    ):
        raise InvalidInput(f"invalid webhook id {webhook_id!r}: a positive integer")
    return webhook_id


def _check_seq(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidInput(f"{what} must be an event sequence number (>= 0), got {value!r}")
    return value


class WebhooksMixin:
    db: Database
    actor: str

    # ------------------------------------------------------------ the interface

    def add_webhook(
        self, url: str, events: Sequence[str], *, model: str | None = None
    ) -> tuple[Webhook, str]:
        check_url(url)
        wanted = check_events(events.split(",") if isinstance(events, str) else events)
        model = check_model_filter(model)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as conn:
            start = int(conn.execute(_LATEST_SEQ).scalar() or 0)
            webhook_id = conn.execute(
                insert(_W).returning(_W.c.id),
                {
                    "url": url,
                    "events": json.dumps(list(wanted)),
                    "model": model,
                    "secret": secret,
                    "cursor": start,
                    "created_at": utcnow(),
                    "created_by": self.actor,
                },
            ).scalar_one()
            return self._webhook(conn, webhook_id), secret

    def list_webhooks(self, *, limit: int = 1000, after: int = 0) -> list[Webhook]:
        check_id_page(limit, after)
        with self.db.read() as conn:
            rows = conn.execute(
                select(*_WEBHOOK_COLUMNS)
                .where(_W.c.removed_at.is_(None), _W.c.id > after)
                .order_by(_W.c.id)
                .limit(limit)
            )
            return [_webhook(row) for row in rows]

    def remove_webhook(self, webhook_id: int) -> Webhook:
        _check_id(webhook_id)
        with self.db.write() as conn:
            self._webhook(conn, webhook_id)
            conn.execute(
                update(_W)
                .where(_W.c.id == webhook_id, _W.c.removed_at.is_(None))
                .values(removed_at=utcnow(), lease_owner=None, lease_until=None)
            )
            conn.execute(delete(_D).where(_D.c.webhook_id == webhook_id, _D.c.status == "pending"))
            return self._webhook(conn, webhook_id)

    def webhook_deliveries(
        self, webhook_id: int, *, since: int = 0, limit: int = 100
    ) -> list[Delivery]:
        _check_id(webhook_id)
        _check_seq(since, "since")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_DELIVERIES
        ):
            raise InvalidInput(f"limit must be between 1 and {MAX_DELIVERIES}, got {limit!r}")
        with self.db.read() as conn:
            self._webhook(conn, webhook_id)
            rows = conn.execute(
                select(*_DELIVERY_COLUMNS)
                .where(_D.c.webhook_id == webhook_id, _D.c.seq > since)
                .order_by(_D.c.seq)
                .limit(limit)
            )
            return [Delivery.model_validate(row._asdict()) for row in rows]

    def replay_webhook(self, webhook_id: int, *, from_seq: int) -> int:
        _check_id(webhook_id)
        _check_seq(from_seq, "from_seq")
        with self.db.write() as conn:
            # FOR UPDATE (PostgreSQL): a dispatcher queueing this webhook waits for us.
            row = conn.execute(
                select(*_WEBHOOK_COLUMNS).where(_W.c.id == webhook_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no webhook {webhook_id}")
            webhook = _webhook(row)
            if webhook.removed_at is not None:
                raise Conflict(f"webhook {webhook_id} was removed: add a new one")
            # Events after the cursor are not queued yet: the dispatcher will do that.
            span = (_D.c.webhook_id == webhook_id, _D.c.seq >= from_seq, _D.c.seq <= webhook.cursor)
            conn.execute(delete(_D).where(*span))
            return self._queue(conn, webhook, after=max(from_seq - 1, 0), upto=webhook.cursor)

    # ------------------------------------------------------------ the dispatcher's

    def claim_webhooks(self, owner: str, lease: timedelta) -> list[Held]:
        """Take (or renew) the lease of every subscription whose lease is free, expired
        or already ``owner``'s; the ones ``owner`` holds now."""
        now = utcnow()
        free = or_(_W.c.lease_owner == owner, _W.c.lease_until.is_(None), _W.c.lease_until < now)
        with self.db.write() as conn:
            conn.execute(
                update(_W)
                .where(_W.c.removed_at.is_(None), free)
                .values(lease_owner=owner, lease_until=now + lease)
            )
            rows = conn.execute(
                select(*_WEBHOOK_COLUMNS, _W.c.secret, _W.c.lease_until)
                .where(_W.c.lease_owner == owner, _W.c.removed_at.is_(None))
                .order_by(_W.c.id)
            ).all()
        return [Held(_webhook(row), row.secret, row.lease_until) for row in rows]

    def webhook_leases(self) -> list[tuple[int, str | None, datetime | None]]:
        """(id, lease owner, lease end) of every subscription: a read the dispatcher polls
        to see new webhooks and leases to take over, without a write."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(_W.c.id, _W.c.lease_owner, _W.c.lease_until)
                .where(_W.c.removed_at.is_(None))
                .order_by(_W.c.id)
            )
            return [(row.id, row.lease_owner, row.lease_until) for row in rows]

    def release_webhooks(self, owner: str) -> None:
        """Give up ``owner``'s leases (a stopping dispatcher: another may take over now)."""
        with self.db.write() as conn:
            conn.execute(
                update(_W)
                .where(_W.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def queue_deliveries(self, webhook_id: int, owner: str, *, limit: int = QUEUE_BATCH) -> Queued:
        """Up to ``limit`` events after the cursor, as delivery rows for the ones the
        webhook wants, and the cursor moved past them; nothing unless ``owner`` holds
        the lease."""
        with self.db.write() as conn:
            row = conn.execute(
                select(*_WEBHOOK_COLUMNS)
                .where(_W.c.id == webhook_id, _W.c.lease_owner == owner)
                .where(_W.c.removed_at.is_(None))
                .with_for_update()
            ).first()
            if row is None:
                return Queued(0, 0, 0)
            webhook = _webhook(row)
            # Every event up to the counter has committed (they move in one transaction).
            latest = int(conn.execute(_LATEST_SEQ).scalar() or 0)
            upto = min(latest, webhook.cursor + limit)
            if upto <= webhook.cursor:
                return Queued(0, 0, webhook.cursor)
            queued = self._queue(conn, webhook, after=webhook.cursor, upto=upto)
            conn.execute(update(_W).where(_W.c.id == webhook_id).values(cursor=upto))
            return Queued(upto - webhook.cursor, queued, upto)

    def next_delivery(
        self, webhook_id: int, owner: str, *, margin: timedelta = timedelta(0)
    ) -> Due | None:
        """The pending delivery with the lowest seq (due or not), with its event; None
        unless ``owner`` holds the webhook's lease for ``margin`` longer at least (an
        attempt must end before another dispatcher may take over)."""
        leased = (_W.c.lease_owner == owner, _W.c.lease_until > utcnow() + margin)
        with self.db.read() as conn:
            pending = conn.execute(
                select(_D.c.id, _D.c.seq, _D.c.attempts, _D.c.next_attempt_at)
                .join(_W, _W.c.id == _D.c.webhook_id)
                .where(_D.c.webhook_id == webhook_id, _D.c.status == "pending", *leased)
                .order_by(_D.c.seq)
                .limit(1)
            ).first()
            if pending is None:
                return None
            event = conn.execute(
                select(*EVENT_COLUMNS).where(events_table.c.seq == pending.seq)
            ).one()
        return Due(pending.id, pending.attempts, pending.next_attempt_at, event_from_row(event))

    def record_attempt(
        self,
        due: Due,
        *,
        delivered: bool,
        status: int | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        """What one attempt to send ``due`` came to: delivered, or failed (``status`` the
        receiver's HTTP status, ``error`` what went wrong) to be tried again at
        ``retry_at``. False when the delivery is not the one that was sent any more
        (its webhook was removed, or a replay queued it again)."""
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": _D.c.attempts + 1,
            "last_attempt_at": now,
            "last_status": status,
            "last_error": None if delivered else (error or f"HTTP {status}")[:2000],
        }
        if delivered:
            values.update(status="delivered", delivered_at=now)
        else:
            values["next_attempt_at"] = retry_at or now
        with self.db.write() as conn:
            done = conn.execute(
                update(_D)
                .where(_D.c.id == due.delivery_id, _D.c.status == "pending")
                .where(_D.c.next_attempt_at == due.next_attempt_at)
                .values(**values)
            )
            return bool(done.rowcount)

    # ------------------------------------------------------------ helpers

    def _webhook(self, conn: Connection, webhook_id: int) -> Webhook:
        row = conn.execute(select(*_WEBHOOK_COLUMNS).where(_W.c.id == webhook_id)).first()
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        return _webhook(row)

    def _queue(self, conn: Connection, webhook: Webhook, *, after: int, upto: int) -> int:
        """Pending rows for the events in (after, upto] the webhook wants; how many."""
        now, queued = utcnow(), 0
        query = (
            select(*EVENT_COLUMNS).where(events_table.c.seq <= upto).order_by(events_table.c.seq)
        )
        if webhook.model is not None and not webhook.model.endswith("/*"):
            query = query.where(events_table.c.model_name == webhook.model)
        while after < upto:
            events = [
                event_from_row(r)
                for r in conn.execute(query.where(events_table.c.seq > after).limit(QUEUE_BATCH))
            ]
            if not events:
                break
            rows = [_pending_row(webhook.id, e, now) for e in events if webhook.wants(e)]
            if rows:
                queued += len(conn.execute(_INSERT_NEW[conn.dialect.name], rows).all())
            after = events[-1].seq
        return queued
