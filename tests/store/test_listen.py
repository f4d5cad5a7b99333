"""PostgreSQL's push channel: every event NOTIFYs its seq on commit, and a listener hears it."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from registry.errors import InvalidInput, RegistryUnavailable
from registry.store.sql import SqlStore
from registry.store.sql.common import append_event, lock_model
from registry.store.sql.listen import EventListener

from .support import promote, register_versions

QUIET = 0.5  # how long "nothing was heard" waits


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: SQLite has no notifications (its followers poll latest_seq)."""
    return str(request.param)


@dataclass
class Heard:
    """A listener running in its own thread, as a resolver's follower runs it."""

    listener: EventListener
    seqs: queue.Queue[int]
    thread: threading.Thread

    def next(self, timeout: float = 5) -> int:
        return self.seqs.get(timeout=timeout)

    def until(self, seq: int, timeout: float = 5) -> list[int]:
        got: list[int] = []
        while not got or got[-1] < seq:
            got.append(self.next(timeout))
        return got

    def nothing(self) -> bool:
        try:
            self.seqs.get(timeout=QUIET)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def heard(store_url: str) -> Iterator[Heard]:
    listener = EventListener(store_url)
    seqs: queue.Queue[int] = queue.Queue()

    def follow() -> None:
        for seq in listener.heard():
            seqs.put(seq)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    yield Heard(listener, seqs, thread)
    listener.close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_promotion_is_heard_after_it_commits(store: SqlStore, heard: Heard) -> None:
    register_versions(store, "fraud", 1)
    assert heard.until(store.latest_seq()) == [e.seq for e in store.events()]

    promote(store, "fraud", 1)

    promoted = [e.seq for e in store.events() if e.kind == "stage" and e.to_value == "Production"]
    assert promoted[0] in heard.until(store.latest_seq())


def test_an_open_transaction_is_not_heard_until_it_commits(store: SqlStore, heard: Heard) -> None:
    register_versions(store, "fraud", 1)
    heard.until(store.latest_seq())

    with store.db.write() as conn:
        event = append_event(conn, lock_model(conn, "fraud"), kind="tags", actor="t", generation=0)
        assert heard.nothing()

    assert heard.next() == event.seq


def test_a_rolled_back_event_is_never_heard(store: SqlStore, heard: Heard) -> None:
    register_versions(store, "fraud", 1)
    heard.until(store.latest_seq())

    with pytest.raises(RuntimeError), store.db.write() as conn:
        append_event(conn, lock_model(conn, "fraud"), kind="tags", actor="t", generation=0)
        raise RuntimeError("the change failed after its event was appended")

    assert heard.nothing()
    store.update_version("fraud", 1, description="next")
    assert heard.next() == store.latest_seq()


def test_close_ends_a_listener_waiting_in_another_thread(heard: Heard) -> None:
    started = time.monotonic()

    heard.listener.close()
    heard.thread.join(timeout=5)

    assert not heard.thread.is_alive()
    assert time.monotonic() - started < 2


def test_heard_stops_after_its_timeout(store_url: str) -> None:
    with EventListener(store_url) as listener:
        started = time.monotonic()
        assert list(listener.heard(timeout=0.3)) == []
        assert 0.25 < time.monotonic() - started < 2


def test_what_is_not_a_seq_is_ignored(store: SqlStore, store_url: str, heard: Heard) -> None:
    engine = sa.create_engine(store.url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_notify('modelreg_events', 'hello')"))
    finally:
        engine.dispose()
    register_versions(store, "fraud", 1)

    assert heard.until(store.latest_seq()) == [1, 2]


def test_a_lost_connection_is_registry_unavailable(store: SqlStore, store_url: str) -> None:
    listener = EventListener(store_url)
    engine = sa.create_engine(store.url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            )
        with pytest.raises(RegistryUnavailable, match="lost the registry event channel"):
            list(listener.heard(timeout=5))
    finally:
        engine.dispose()
        listener.close()


def test_an_unreachable_server_is_registry_unavailable() -> None:
    with pytest.raises(RegistryUnavailable, match="cannot listen"):
        EventListener("postgresql://postgres@127.0.0.1:1/nothing", connect_timeout=1)


def test_sqlite_has_no_channel(tmp_path: object) -> None:
    with pytest.raises(InvalidInput, match="poll latest_seq"):
        EventListener(f"sqlite:///{tmp_path}/reg.db")
