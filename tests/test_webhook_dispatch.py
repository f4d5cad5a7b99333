"""The dispatcher's pure parts and its switch: backoff stays under its cap with jitter,
and a server with webhooks off starts no dispatcher."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from registry.config import ServerConfig
from registry.store.sql import SqlStore
from registry.webhook_dispatch import BASE_BACKOFF_S, backoff, start


@pytest.mark.parametrize("attempts", [1, 2, 3, 5, 10, 64, 10_000])
def test_backoff_doubles_per_attempt_and_never_exceeds_the_cap(attempts: int) -> None:
    rng = random.Random(attempts)
    cap = 20.0
    ceiling = cap if attempts > 60 else min(cap, BASE_BACKOFF_S * 2 ** (attempts - 1))

    waits = [backoff(attempts, cap, rng) for _ in range(200)]

    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert len(set(waits)) > 100  # jittered: retries of many deliveries spread out


def test_a_small_cap_bounds_even_the_first_retry() -> None:
    waits = [backoff(1, 0.1, random.Random(i)) for i in range(50)]

    assert max(waits) <= 0.1


def test_a_server_with_webhooks_off_starts_no_dispatcher(tmp_path: Path) -> None:
    with SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester") as store:
        made, _ = store.add_webhook("https://h.example/", ["*"])
        app = SimpleNamespace(state=SimpleNamespace(store=store))
        config = ServerConfig(registry_url=store.url, webhooks=False)

        stop = start(app, config)
        threads = [t.name for t in threading.enumerate()]
        stop()

        assert "modelreg-webhooks" not in threads
        assert store.webhook_leases() == [(made.id, None, None)]


def test_a_server_with_webhooks_on_holds_the_leases_until_it_stops(tmp_path: Path) -> None:
    with SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester") as store:
        made, _ = store.add_webhook("https://h.example/", ["*"])
        app = SimpleNamespace(state=SimpleNamespace(store=store))
        config = ServerConfig(registry_url=store.url, webhook_max_backoff_s=1)

        stop = start(app, config)
        try:
            held = _wait_for_owner(store, made.id)
        finally:
            stop()

        assert held is not None
        assert store.webhook_leases() == [(made.id, None, None)]


def _wait_for_owner(store: SqlStore, webhook_id: int) -> str | None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        owners = {i: owner for i, owner, _until in store.webhook_leases()}
        if owners.get(webhook_id) is not None:
            return owners[webhook_id]
        time.sleep(0.05)
    return None
