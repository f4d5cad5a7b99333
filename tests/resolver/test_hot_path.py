"""The hot path: ``get`` is an in-memory lookup that never reaches the registry."""

from __future__ import annotations

from typing import Any

from registry.models import VersionCreate
from registry.resolver import Served
from registry.store.sql import SqlStore

from .conftest import MODEL, REF, Registry
from .support import counting_statements

GETS = 10_000


def test_get_returns_the_served_model(fraud: Registry, rows: list[dict[str, Any]]) -> None:
    resolver = fraud.resolver()
    served = resolver.get(REF)
    assert isinstance(served, Served)
    assert (served.name, served.version, served.source) == (MODEL, 1, "registry")
    assert served.generation == fraud.store.get_model(MODEL).generation
    assert served.artifact == fraud.store.get_version(MODEL, 1).artifact
    assert served.signature == fraud.store.get_version(MODEL, 1).signature
    assert len(served.predict(rows)) == len(rows)


def test_get_sends_no_statement_to_the_registry(fraud: Registry) -> None:
    resolver = fraud.resolver(poll_s=3600, ttl_s=3600)
    store = resolver._store
    assert isinstance(store, SqlStore)
    with counting_statements(store.db.engine) as count:
        for _ in range(GETS):
            resolver.get(REF)
            resolver.get()
    assert (count.cursor, count.checkouts, count.driver) == (0, 0, 0)
    # The counter sees what the store sends, the raw SQLite fast path included.
    with counting_statements(store.db.engine) as count:
        store.register(MODEL, store.get_version(MODEL, 1).artifact, VersionCreate())
    assert count.checkouts > 0 and count.cursor + count.driver > 0
