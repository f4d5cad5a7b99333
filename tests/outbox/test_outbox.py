"""The durable outbox: queued registrations survive, are delivered once, and never twice."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from registry.errors import Conflict, RegistryUnavailable
from registry.models import VersionCreate
from registry.outbox import Outbox
from registry.store.sql import SqlStore

from . import workers
from .workers import artifact


def closed_port_url() -> str:
    """A PostgreSQL URL at a local port where nothing listens: a registry that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/registry?connect_timeout=2"


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.db")


def meta(key: str | None = None, auc: float = 0.9) -> VersionCreate:
    return VersionCreate.parse({"metrics": {"auc": auc}, "idempotency_key": key})


def test_enqueue_keeps_the_given_key_and_survives_reopening(outbox: Outbox) -> None:
    ref = artifact(b"model-1")
    key = outbox.enqueue("fraud", ref, meta("run-42"))
    assert key == "run-42"
    [entry] = Outbox(outbox.path).pending()
    assert (entry.key, entry.name, entry.artifact, entry.state) == (
        "run-42",
        "fraud",
        ref,
        "pending",
    )
    assert entry.meta == meta("run-42")


def test_enqueue_assigns_a_key_when_the_metadata_has_none(outbox: Outbox) -> None:
    first = outbox.enqueue("fraud", artifact(b"a"), meta())
    second = outbox.enqueue("fraud", artifact(b"b"), meta())
    assert first != second
    assert [e.meta.idempotency_key for e in outbox.pending()] == [first, second]


def test_enqueue_commits_with_full_fsync(outbox: Outbox) -> None:
    outbox.enqueue("fraud", artifact(b"a"), meta())
    with outbox._connect() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_entry_survives_a_process_killed_right_after_enqueue(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    ref = artifact(b"bytes")
    proc = subprocess.run(
        [sys.executable, workers.__file__, str(path), ref.model_dump_json()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    key = proc.stdout.strip()
    assert [(e.key, e.artifact) for e in Outbox(path).pending()] == [(key, ref)]


def test_enqueuing_the_same_key_twice_is_a_no_op(outbox: Outbox) -> None:
    outbox.enqueue("fraud", artifact(b"a"), meta("k"))
    outbox.enqueue("fraud", artifact(b"a"), meta("k"))
    assert len(outbox.pending()) == 1


def test_a_rerun_queuing_the_same_bytes_keeps_the_first_entry(outbox: Outbox) -> None:
    outbox.enqueue("fraud", artifact(b"a"), meta("k", auc=0.91))
    outbox.enqueue("fraud", artifact(b"a"), meta("k", auc=0.95))
    [entry] = outbox.pending()
    assert entry.meta.metrics == {"auc": 0.91}


def test_reusing_a_key_for_other_content_is_a_conflict(outbox: Outbox) -> None:
    outbox.enqueue("fraud", artifact(b"a"), meta("k"))
    with pytest.raises(Conflict, match="already queued for other bytes"):
        outbox.enqueue("fraud", artifact(b"other"), meta("k"))


def test_drain_delivers_in_order_with_the_idempotency_key(outbox: Outbox, store: SqlStore) -> None:
    keys = [
        outbox.enqueue("fraud", artifact(f"m{i}".encode()), meta(auc=0.8 + i / 100))
        for i in range(3)
    ]
    report = outbox.drain(store)
    assert report.delivered == [(k, "fraud", v) for k, v in zip(keys, [1, 2, 3], strict=True)]
    assert (report.failed, report.unavailable, report.remaining) == ([], None, 0)
    assert [store.get_version("fraud", v).idempotency_key for v in (1, 2, 3)] == keys
    assert outbox.pending() == []
    assert [(e.state, e.version) for e in outbox.entries()] == [("delivered", v) for v in (1, 2, 3)]


def test_a_second_drain_delivers_nothing(outbox: Outbox, store: SqlStore) -> None:
    outbox.enqueue("fraud", artifact(b"a"), meta())
    outbox.drain(store)
    assert outbox.drain(store).delivered == []
    assert store.get_model("fraud").latest_version == 1


def test_a_registration_the_registry_already_has_is_not_registered_twice(
    outbox: Outbox, store: SqlStore
) -> None:
    # The registry committed, then the drainer died before marking the entry delivered.
    key = outbox.enqueue("fraud", artifact(b"a"), meta())
    [entry] = outbox.pending()
    store.register("fraud", entry.artifact, entry.meta)
    assert outbox.drain(store).delivered == [(key, "fraud", 1)]
    assert store.get_model("fraud").latest_version == 1


def test_drain_stops_at_an_unreachable_registry_and_keeps_the_entries(outbox: Outbox) -> None:
    keys = [outbox.enqueue("fraud", artifact(f"m{i}".encode()), meta()) for i in range(2)]
    down = SqlStore(closed_port_url(), actor="tester", migrate=False)
    try:
        report = outbox.drain(down)
    finally:
        down.close()
    assert report.delivered == []
    assert [k for k, _ in report.failed] == keys[:1]
    assert report.unavailable is not None and "unavailable" in report.unavailable
    assert report.remaining == 2
    first = outbox.pending()[0]
    assert (first.attempts, first.state) == (1, "pending")
    assert first.last_error == report.unavailable


def test_entries_wait_for_the_registry_to_come_back(outbox: Outbox, store: SqlStore) -> None:
    key = outbox.enqueue("fraud", artifact(b"a"), meta())
    with pytest.raises(RegistryUnavailable):
        SqlStore(closed_port_url(), actor="tester")
    assert outbox.drain(store).delivered == [(key, "fraud", 1)]


def test_a_refused_entry_is_rejected_and_does_not_block_the_rest(
    outbox: Outbox, store: SqlStore
) -> None:
    store.register("fraud", artifact(b"first bytes"), meta("reused"))
    bad = outbox.enqueue("fraud", artifact(b"other bytes"), meta("reused"))
    good = outbox.enqueue("fraud", artifact(b"good"), meta())
    report = outbox.drain(store)
    assert report.delivered == [(good, "fraud", 2)]
    assert [k for k, _ in report.failed] == [bad]
    assert outbox.get(bad) is not None and outbox.get(bad).state == "rejected"  # type: ignore[union-attr]
    assert report.remaining == 0


def test_two_drainers_at_once_register_each_entry_exactly_once(
    tmp_path: Path, store_url: str
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    keys = [outbox.enqueue("fraud", artifact(uuid.uuid4().bytes), meta()) for _ in range(20)]
    start_at = time.time() + 1.5
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(workers.drain, [(str(outbox.path), store_url, start_at)] * 2)
    delivered = [d for result in results for d in result]
    assert sorted(k for k, _, _ in delivered) == sorted(keys)
    with SqlStore(store_url, actor="tester") as reader:
        versions = reader.list_versions("fraud")
    assert sorted(v.version for v in versions) == list(range(1, 21))
    assert sorted(v.idempotency_key for v in versions) == sorted(keys)  # type: ignore[type-var]
    assert outbox.pending() == []


def test_an_unreadable_outbox_is_reported_as_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(RegistryUnavailable, match="outbox"):
        Outbox(path)
