"""Server-side records: bearer tokens, idempotent write replies, webhooks and their
deliveries.

Declared on the same metadata as ``schema.py``; created by migration 0006. Tokens
keep only the sha256 of their secret. A webhook's ``cursor`` is the newest event
sequence number its dispatcher has turned into delivery rows; a delivery row is one
event for one webhook (unique), retried until it is delivered.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.store.sql.schema import UTCDateTime


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_token"

    name: str = Field(max_length=64, primary_key=True)
    role: str = Field(max_length=32)
    scopes: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of scope strings
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=256)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str | None = Field(default=None, max_length=256)


class IdempotentReplyRow(SQLModel, table=True):
    """The reply to a write sent with an ``Idempotency-Key``, kept so a retry of the
    same request (same actor, key and body) gets the same answer instead of a second
    change."""

    __tablename__ = "idempotent_reply"

    actor: str = Field(max_length=64, primary_key=True)
    key: str = Field(max_length=128, primary_key=True)
    fingerprint: str = Field(max_length=64)  # sha256 of method, path and body
    status: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class WebhookRow(SQLModel, table=True):
    __tablename__ = "webhook"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048)
    events: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of event types
    model: str | None = Field(default=None, max_length=200)  # a name or "ns/*"; None: all
    secret: str = Field(max_length=128)  # the HMAC key: the server must sign with it
    cursor: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=256)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDeliveryRow(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "seq", name="uq_webhook_delivery_event"),
        Index("ix_webhook_delivery_pending", "webhook_id", "status", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhook.id")
    seq: int = Field(sa_type=BigInteger)
    event_type: str = Field(max_length=64)
    model: str = Field(max_length=200)
    status: str = Field(max_length=16)  # pending, delivered
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status: int | None = None  # the receiver's HTTP status of the last attempt
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


tokens_table = ApiTokenRow.__table__  # type: ignore[attr-defined]
replies_table = IdempotentReplyRow.__table__  # type: ignore[attr-defined]
webhooks_table = WebhookRow.__table__  # type: ignore[attr-defined]
deliveries_table = WebhookDeliveryRow.__table__  # type: ignore[attr-defined]
