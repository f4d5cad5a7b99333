"""The SQL implementation of the registry store."""

from registry.store.sql.store import SqlStore

__all__ = ["SqlStore"]
