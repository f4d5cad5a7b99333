"""Registry down at registration: queued durably, drained once it is back, exactly once."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from flow_helpers import MODEL, ROWS, THIRD, open_store, point_at

from flows.drain import drain_flow
from flows.promote import promote_flow
from flows.retrain import retrain_flow
from registry.outbox import Outbox
from registry.subjects import PENDING_FOLDER

pytestmark = pytest.mark.slow


def closed_port_url() -> str:
    """A PostgreSQL URL at a local port where nothing listens: the registry is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/registry?connect_timeout=2"


def test_unreachable_registry_queues_then_drain_registers_exactly_once(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_URL", closed_port_url())
    queued = retrain_flow(model=MODEL, as_of=THIRD, rows=ROWS, return_state=True)
    assert queued.is_completed() and queued.name == "Queued", queued.message
    [entry] = Outbox(home / "outbox.db").pending()
    registration = queued.result()
    assert registration.status == "queued" and registration.version is None
    assert entry.name == MODEL and entry.meta.idempotency_key == registration.key
    # The data's subject manifest is stored as an artifact and noted for later.
    [note] = (home / PENDING_FOLDER).glob("*.json")

    # Still down: the drain keeps the entry and says why.
    still_down = drain_flow(return_state=True)
    assert still_down.is_completed()
    assert still_down.result().unavailable and still_down.result().remaining == 1

    monkeypatch.setenv("MODELREG_URL", point_at(home)["MODELREG_URL"])
    delivered = drain_flow(return_state=True).result()
    assert [tuple(d[1:]) for d in delivered.delivered] == [(MODEL, 1)]
    assert drain_flow(return_state=True).result().delivered == []
    with open_store(home) as store:
        [version] = store.list_versions(MODEL)
        manifest = store.subject_manifest("transactions", THIRD.isoformat())
    assert version.version == 1 and version.idempotency_key == entry.meta.idempotency_key
    assert manifest.subjects > 0 and not note.exists()  # recorded by the drain, first
    assert manifest.recorded_at <= version.created_at

    promoted = promote_flow(version=1, model=MODEL, return_state=True)
    assert promoted.is_completed(), promoted.message
    with open_store(home) as store:
        assert store.get_model(MODEL).production == 1
