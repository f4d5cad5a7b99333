"""Server-side records: bearer tokens, idempotent write replies, webhooks and their
deliveries.

Declared on the same metadata as ``schema.py``; created by migration 0006. Tokens
keep only the sha256 of their secret. A webhook's ``cursor`` is the newest event
sequence number its dispatcher has turned into delivery rows; a delivery row is one
event for one webhook (unique), retried until it is delivered.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from registry.store.sql.schema import UTCDateTime, metadata

tokens_table = Table(
    "api_token",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("scopes", Text, nullable=False),  # JSON list of scope strings
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("revoked_by", String(256)),
)

# The reply to a write sent with an ``Idempotency-Key``, kept so a retry of the same
# request (same actor, key and body) gets the same answer instead of a second change.
replies_table = Table(
    "idempotent_reply",
    metadata,
    Column("actor", String(64), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # sha256 of method, path and body
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
)

webhooks_table = Table(
    "webhook",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event types
    Column("model", String(200)),  # a name or "ns/*"; None: all
    Column("secret", String(128), nullable=False),  # the HMAC key: the server signs with it
    Column("cursor", BigInteger, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("removed_at", UTCDateTime()),
    Column("lease_owner", String(128)),
    Column("lease_until", UTCDateTime()),
)

deliveries_table = Table(
    "webhook_delivery",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhook.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_attempt_at", UTCDateTime()),
    Column("last_status", Integer),  # the receiver's HTTP status of the last attempt
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime()),
    UniqueConstraint("webhook_id", "seq", name="uq_webhook_delivery_event"),
    Index("ix_webhook_delivery_pending", "webhook_id", "status", "seq"),
)
