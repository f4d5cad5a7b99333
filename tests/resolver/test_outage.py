"""Riding out the registry: a cold start while it is unreachable serves the disk's
last-known-good model, and losing it while serving changes nothing for callers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from registry.config import Settings

from .conftest import MODEL, REF, Registry
from .support import RegistryHop, wait_for

postgres = pytest.mark.postgres


def _closed_port() -> int:
    probe = socket.create_server(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def _unreachable_url(kind: str, registry: Registry) -> str:
    if kind == "closed-port":
        url = make_url(registry.store.url).set(host="127.0.0.1", port=_closed_port())
        return url.render_as_string(hide_password=False)
    if kind == "not-a-folder":  # the registry's folder is a plain file: nothing can open it
        (registry.tmp / "unmounted").write_text("")
    return f"sqlite:///{registry.tmp}/unmounted/registry.db"


@pytest.mark.parametrize(
    ("backend", "unreachable"),
    [
        pytest.param("sqlite", "missing-folder", id="sqlite-missing-folder"),
        pytest.param("sqlite", "not-a-folder", id="sqlite-not-a-folder"),
        pytest.param("postgres", "closed-port", id="postgres-closed-port", marks=postgres),
    ],
)
def test_a_cold_start_while_the_registry_is_unreachable_serves_from_disk(
    fraud: Registry, unreachable: str, rows: list[dict[str, Any]]
) -> None:
    cache = fraud.cache_dir()
    fraud.resolver(cache_dir=cache).close()  # served v1 once, on this host
    offline = fraud.settings.model_copy(
        update={"registry_url": _unreachable_url(unreachable, fraud)}
    )
    resolver = fraud.resolver(settings=offline, cache_dir=cache)
    served = resolver.get(REF)
    assert (served.version, served.source) == (1, "disk")
    assert len(served.predict(rows)) == len(rows)
    [status] = resolver.status()
    assert (status.version, status.source, status.degraded) == (1, "disk", True)
    assert "from disk" in (status.reason or "")


@pytest.fixture
def hop(registry: Registry) -> Iterator[RegistryHop]:
    url = make_url(registry.store.url)
    proxy = RegistryHop((url.host or "127.0.0.1", url.port or 5432))
    yield proxy
    proxy.cut()


def _through(hop: RegistryHop, registry: Registry) -> Settings:
    url = make_url(registry.store.url).set(host="127.0.0.1", port=hop.port)
    return registry.settings.model_copy(
        update={"registry_url": url.render_as_string(hide_password=False)}
    )


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=postgres)])
def test_a_cold_started_resolver_goes_back_to_the_registry_when_it_returns(
    fraud: Registry, hop: RegistryHop
) -> None:
    cache = fraud.cache_dir()
    fraud.resolver(cache_dir=cache).close()
    resolver = fraud.resolver(settings=_through(hop, fraud), cache_dir=cache, heartbeat_s=0.1)
    assert resolver.get(REF).source == "disk"
    time.sleep(0.5)  # an outage that outlasts a few polls and heartbeats
    hop.restore()
    wait_for(resolver.status, lambda s: s[0].source == "registry" and not s[0].degraded)
    fraud.promote(2)
    wait_for(lambda: resolver.get(REF).version, lambda v: v == 2)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=postgres)])
def test_the_registry_going_away_changes_nothing_for_callers(
    fraud: Registry, hop: RegistryHop, rows: list[dict[str, Any]]
) -> None:
    hop.restore()
    resolver = fraud.resolver(settings=_through(hop, fraud), heartbeat_s=0.1)
    before = resolver.get(REF)
    predictions = before.predict(rows)
    hop.cut()
    [status] = wait_for(resolver.status, lambda s: s[0].degraded)
    assert "unreachable" in (status.reason or "") and "keeping v1" in (status.reason or "")
    assert resolver.get(REF) is before
    assert resolver.get(REF).predict(rows) == predictions
    assert (status.version, status.source) == (1, "registry")


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=postgres)])
def test_a_resolver_follows_again_once_the_registry_returns(
    fraud: Registry, hop: RegistryHop
) -> None:
    hop.restore()
    resolver = fraud.resolver(settings=_through(hop, fraud), ttl_s=3600)
    hop.cut()
    wait_for(resolver.status, lambda s: s[0].degraded)
    fraud.promote(2)  # while the resolver cannot see it
    hop.restore()
    wait_for(resolver.status, lambda s: s[0].version == 2 and not s[0].degraded)
    assert resolver.get(REF).version == 2
    assert fraud.store.get_model(MODEL).production == 2


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=postgres)])
def test_a_closed_resolver_leaves_no_connection_behind(fraud: Registry) -> None:
    engine = sa.create_engine(make_url(fraud.store.url), poolclass=sa.NullPool)
    count = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")

    def connections() -> int:
        with engine.connect() as conn:
            return int(conn.execute(count).scalar_one())

    try:
        before = connections()
        for _ in range(5):
            fraud.resolver().close()
        wait_for(connections, lambda n: n <= before)
    finally:
        engine.dispose()
