"""A real ``modelreg server --registry PRIMARY --read-registry REPLICA`` process: reads
work and come from the standby, writes go to the primary, and neither a client's own
write nor an event the server's follower has seen is hidden by a standby that lags."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from release_facts import release

from registry.auth import Role
from registry.models import ArtifactRef, VersionCreate
from registry.store import http as http_store
from registry.store.base import RegistryStore
from registry.store.http import MIN_SEQ_HEADER, HttpStore
from registry.store.replicated import read_only_url
from registry.store.sql import SqlStore

from .conftest import Replicated
from .support import RegistryServer, wait_for

ArtifactFor = Callable[..., ArtifactRef]


@pytest.fixture(scope="module")
def admin(module_replicated: Replicated) -> str:
    with module_replicated.primary_store("test-admin") as store:
        return store.create_token("admin", Role.ADMIN)[1]


@pytest.fixture(scope="module")
def server(
    module_replicated: Replicated, admin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    db = module_replicated
    args = ["--registry", db.primary_url, "--read-registry", db.replica_url]
    running = RegistryServer(args, tmp_path_factory.mktemp("server") / "server.log").start()
    yield running
    running.stop()


@pytest.fixture
def replicated(module_replicated: Replicated) -> Iterator[Replicated]:
    """The module's registry; the standby left running and replaying after each test."""
    yield module_replicated
    module_replicated.pair.restore()


@pytest.fixture
def name() -> str:
    """A model of this test's own in the module's registry."""
    return f"fraud-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def remote(server: RegistryServer, admin: str) -> Iterator[HttpStore]:
    store = HttpStore(server.url, token=admin)
    yield store
    store.close()


def _register(store: RegistryStore, name: str, artifact_for: ArtifactFor) -> int:
    return store.register(name, artifact_for(uuid.uuid4().bytes), VersionCreate()).version


def _standby_says(replicated: Replicated, name: str) -> int:
    with SqlStore(read_only_url(replicated.replica_url), actor="x", migrate=False) as standby:
        return standby.resolve(name, "production")


def test_reads_and_writes_work_through_a_server_with_a_read_replica(
    replicated: Replicated, remote: HttpStore, artifact_for: ArtifactFor, name: str
) -> None:
    v1 = _register(remote, name, artifact_for)
    release(remote, name, v1)
    assert remote.resolve(name, "production") == v1
    assert remote.get_model(name).production == v1
    assert [mv.version for mv in remote.search(f"name = '{name}'")] == [v1]
    with replicated.primary_store() as primary:  # the writes are on the primary
        assert primary.resolve(name, "production") == v1
    replicated.pair.wait_caught_up()
    assert _standby_says(replicated, name) == v1


def test_a_write_then_a_read_right_after_is_never_older_while_the_replica_lags(
    replicated: Replicated, remote: HttpStore, artifact_for: ArtifactFor, name: str
) -> None:
    v1 = _register(remote, name, artifact_for)
    release(remote, name, v1)
    v2 = _register(remote, name, artifact_for)
    replicated.pair.wait_caught_up()
    assert remote.resolve(name, "production") == v1  # now in the server's read cache
    replicated.pair.pause()
    release(remote, name, v2)
    assert remote.resolve(name, "production") == v2
    assert remote.get_model(name).production == v2
    remote.set_aliases(name, {"challenger": v1})
    assert remote.resolve(name, "challenger") == v1
    v3 = _register(remote, name, artifact_for)
    assert remote.get_version(name, v3).version == v3
    assert _standby_says(replicated, name) == v1, (
        "the standby lags: the answers came from the primary"
    )


def test_the_server_reads_the_standby(
    replicated: Replicated, remote: HttpStore, artifact_for: ArtifactFor, name: str
) -> None:
    """A change on the primary that no event announces (a row edited by hand) is
    invisible through the server while the standby has not replayed it: the server's
    reads came from the standby."""
    _register(remote, name, artifact_for)
    replicated.pair.wait_caught_up()
    assert remote.get_model(name).description is None
    replicated.pair.pause()
    _edit_by_hand(replicated, name, "by hand")
    assert remote.get_model(name).description is None
    replicated.pair.resume()
    replicated.pair.wait_caught_up()
    wait_for(lambda: remote.get_model(name).description, lambda said: said == "by hand")


def test_an_event_the_follower_applied_is_never_hidden_by_a_lagging_standby(
    replicated: Replicated, server: RegistryServer, admin: str, artifact_for: ArtifactFor, name: str
) -> None:
    """Another client promotes on the primary while replay is paused: once the server's
    follower has applied that event, the server's answer (and what it caches) is the new
    version, read from the primary; never the standby's older one again."""
    with replicated.primary_store() as other:
        v1 = _register(other, name, artifact_for)
        release(other, name, v1)
        v2 = _register(other, name, artifact_for)
        replicated.pair.wait_caught_up()
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers) as http:

            def resolved() -> int:
                return int(http.get(f"/resolve/{name}@production").json()["version"])

            assert resolved() == v1
            replicated.pair.pause()
            release(other, name, v2)
            wait_for(resolved, lambda version: version == v2)
            assert [resolved() for _ in range(20)] == [v2] * 20
    assert _standby_says(replicated, name) == v1


def _edit_by_hand(replicated: Replicated, name: str, description: str) -> None:
    """Change a row on the primary with no event: nothing tells the server about it."""
    url = replicated.primary_url.replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE registered_model SET description = :d WHERE name = :n"),
                {"d": description, "n": name},
            )
    finally:
        engine.dispose()


def test_every_read_honours_the_clients_min_seq(
    replicated: Replicated, server: RegistryServer, admin: str, artifact_for: ArtifactFor, name: str
) -> None:
    """A read that says it has seen a sequence number the standby has not reached is
    answered by the primary (the way any server process answers a client whose write
    another process made); HttpStore sends the newest it has seen with every read."""
    remote = HttpStore(server.url, token=admin)
    try:
        _register(remote, name, artifact_for)
        replicated.pair.wait_caught_up()
        replicated.pair.pause()
        _edit_by_hand(replicated, name, "primary only")
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers) as http:
            plain = http.get(f"/models/{name}").json()
            ahead = http.get(f"/models/{name}", headers={MIN_SEQ_HEADER: str(10**12)}).json()
        assert (plain["description"], ahead["description"]) == (None, "primary only")
        assert remote.get_model(name).description is None
        base = remote._base
        was = http_store._SEEN.get(base, 0)
        http_store._SEEN[base] = 10**12  # as if it had heard of an event on the feed
        try:
            assert remote.get_model(name).description == "primary only"
        finally:
            http_store._SEEN[base] = was
    finally:
        remote.close()


# Last in the module: the server then waits a moment before it tries the standby again.
def test_a_server_whose_replica_is_down_answers_from_the_primary(
    replicated: Replicated, remote: HttpStore, artifact_for: ArtifactFor, name: str
) -> None:
    v1 = _register(remote, name, artifact_for)
    release(remote, name, v1)
    replicated.pair.wait_caught_up()
    replicated.pair.stop_replica()
    with replicated.primary_store() as other:  # a change the standby could not have
        other.update_model(name, description="while the standby is down")
    assert remote.get_model(name).description == "while the standby is down"
    assert remote.resolve(name, "production") == v1
    assert [mv.version for mv in remote.list_versions(name)] == [v1]
