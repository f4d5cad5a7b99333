"""``ReplicatedStore`` on a real streaming replica: reads go to the standby, writes to
the primary, and a client's own writes are never hidden by a standby that lags."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from release_facts import release, replicate_everywhere

from registry.config import Settings
from registry.errors import InvalidInput, RegistryError
from registry.models import ArtifactRef, Stage, VersionCreate
from registry.store.base import RegistryStore
from registry.store.replicated import (
    PRIMARY_READS,
    REPLICA_READS,
    ReadMark,
    ReplicaLag,
    ReplicatedStore,
    read_only_url,
)
from registry.store.sql import SqlStore

from .conftest import Replicated

ArtifactFor = Callable[..., ArtifactRef]


def _connect(db: Replicated, actor: str = "client") -> RegistryStore:
    """A client as ``registry.connect`` opens one with MODELREG_READ_URL set."""
    import registry

    settings = Settings(registry_url=db.primary_url, read_registry_url=db.replica_url, actor=actor)
    return registry.connect(settings=settings)


@pytest.fixture
def client(replicated: Replicated) -> Iterator[RegistryStore]:
    store = _connect(replicated)
    assert isinstance(store, ReplicatedStore)
    yield store
    store.close()


def _register(store: RegistryStore, name: str, artifact_for: ArtifactFor) -> int:
    return store.register(name, artifact_for(uuid.uuid4().bytes), VersionCreate()).version


def _serving(store: RegistryStore, name: str, artifact_for: ArtifactFor, count: int) -> list[int]:
    """``count`` versions, each released to Production in turn (the last one serves)."""
    versions = [_register(store, name, artifact_for) for _ in range(count)]
    for version in versions:
        release(store, name, version)
    return versions


def test_reads_come_from_the_replica(replicated: Replicated, artifact_for: ArtifactFor) -> None:
    """Another client's promotion is on the primary only while replay is paused: a
    client that wrote nothing since reads the standby, and sees the old pointer (allowed:
    not its write); it sees the new one once the standby replays."""
    with replicated.primary_store() as other:
        v1, v2 = (
            _serving(other, "fraud", artifact_for, 1)[0],
            _register(other, "fraud", artifact_for),
        )
        replicated.pair.wait_caught_up()
        replicated.pair.pause()
        release(other, "fraud", v2)
        assert other.resolve("fraud", "production") == v2
    fresh = _connect(replicated, "reader")
    try:
        assert fresh.resolve("fraud", "production") == v1
        assert fresh.get_model("fraud").production == v1
        replicated.pair.resume()
        replicated.pair.wait_caught_up()
        assert fresh.resolve("fraud", "production") == v2
    finally:
        fresh.close()


def test_a_client_reads_its_own_promotion_while_the_replica_lags(
    replicated: Replicated, client: RegistryStore, artifact_for: ArtifactFor
) -> None:
    v1, v2 = _serving(client, "fraud", artifact_for, 2)
    v3 = _register(client, "fraud", artifact_for)
    replicated.pair.wait_caught_up()
    replicated.pair.pause()
    release(client, "fraud", v3)
    assert client.resolve("fraud", "production") == v3
    assert client.get_model("fraud").production == v3
    assert client.get_version("fraud", v2).stage is Stage.ARCHIVED
    assert client.history("fraud")[-1].version == v3
    # The standby itself still says v2 serves: the answers above came from the primary.
    with SqlStore(read_only_url(replicated.replica_url), actor="x", migrate=False) as standby:
        assert standby.resolve("fraud", "production") == v2
    assert v1 < v2 < v3


def test_a_client_reads_its_own_alias_rollback_and_registration_while_the_replica_lags(
    replicated: Replicated, client: RegistryStore, artifact_for: ArtifactFor
) -> None:
    v1, _v2 = _serving(client, "fraud", artifact_for, 2)
    replicate_everywhere(client, "fraud", v1)
    replicated.pair.wait_caught_up()
    replicated.pair.pause()

    client.set_aliases("fraud", {"challenger": v1})
    assert client.resolve("fraud", "challenger") == v1

    client.rollback("fraud", reason="bad canary")
    assert client.resolve("fraud", "production") == v1
    assert client.get_model("fraud").production == v1

    v3 = _register(client, "fraud", artifact_for)
    assert client.get_version("fraud", v3).version == v3
    assert client.list_versions("fraud")[0].version == v3
    assert client.resolve("fraud", "latest") == v3

    client.update_version("fraud", v3, tags={"team": "payments"})
    assert client.get_version("fraud", v3).tags == {"team": "payments"}
    assert [mv.version for mv in client.search("tags.team = 'payments'")] == [v3]


def test_every_store_of_the_process_reads_the_writes_of_the_others(
    replicated: Replicated, artifact_for: ArtifactFor
) -> None:
    """The mark belongs to the process (per primary), as HttpStore's seen sequence
    number: a write through one store is never hidden from another of the same process."""
    writer, reader = _connect(replicated, "writer"), _connect(replicated, "reader")
    try:
        v1 = _serving(writer, "fraud", artifact_for, 1)[0]
        v2 = _register(writer, "fraud", artifact_for)
        replicated.pair.wait_caught_up()
        replicated.pair.pause()
        release(writer, "fraud", v2)
        assert reader.resolve("fraud", "production") == v2 != v1
    finally:
        writer.close()
        reader.close()


def test_a_caught_up_replica_serves_reads_again_after_a_write(
    replicated: Replicated, client: RegistryStore, artifact_for: ArtifactFor
) -> None:
    """Once the standby has replayed the client's write, reads go back to it: proven by
    a change made on the primary while replay is paused being invisible to the client."""
    _register(client, "fraud", artifact_for)
    replicated.pair.wait_caught_up()
    assert isinstance(client, ReplicatedStore)
    client.lag.RECHECK_S = 0
    assert client.get_model("fraud").name == "fraud"
    assert client.lag.reached >= client.mark.seq
    replicated.pair.pause()
    with replicated.primary_store() as other:
        other.update_model("fraud", description="changed on the primary")
    assert client.get_model("fraud").description is None


def test_a_follower_never_reads_a_replica_behind_what_it_has_seen(
    replicated: Replicated, client: RegistryStore, artifact_for: ArtifactFor
) -> None:
    """A sequence number read from the primary raises the mark: the events up to it are
    read from the primary too, never skipped because the standby lacks them."""
    _register(client, "fraud", artifact_for)
    replicated.pair.wait_caught_up()
    replicated.pair.pause()
    with replicated.primary_store() as other:
        other.update_model("fraud", description="one")
        other.update_model("fraud", description="two")
        newest = other.latest_seq()
    assert isinstance(client, ReplicatedStore)
    client.mark.raise_to(client.replica.latest_seq() + 1)  # one of them was seen elsewhere
    assert client.latest_seq() == newest
    assert [e.seq for e in client.events(since=newest - 2)] == [newest - 1, newest]


def test_a_replica_that_is_down_sends_reads_to_the_primary_and_is_used_again_when_back(
    replicated: Replicated,
    client: RegistryStore,
    artifact_for: ArtifactFor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    v1 = _serving(client, "fraud", artifact_for, 1)[0]
    replicated.pair.wait_caught_up()
    assert isinstance(client, ReplicatedStore)
    client.lag.RETRY_S = 0
    replicated.pair.stop_replica()
    with caplog.at_level("WARNING", logger="registry.replica"):
        assert client.resolve("fraud", "production") == v1
        assert client.get_model("fraud").production == v1
        assert [e.version for e in client.history("fraud")][-1] == v1
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, "one warning line while the replica is down"
    assert "read replica" in warnings[0].getMessage()

    replicated.pair.start_replica()
    replicated.pair.wait_caught_up()
    replicated.pair.pause()
    with replicated.primary_store() as other:
        other.update_model("fraud", description="primary only")
    assert client.get_model("fraud").description is None, "the standby answers again"


def test_a_replica_store_never_writes(replicated: Replicated, artifact_for: ArtifactFor) -> None:
    """Replica connections are read-only transactions, even on a writable database."""
    read_only = read_only_url(replicated.primary_url)
    with (
        SqlStore(read_only, actor="x", migrate=False) as store,
        pytest.raises(RegistryError, match="read-only transaction"),
    ):
        store.register("fraud", artifact_for(b"x"), VersionCreate())
    with SqlStore(replicated.primary_url, actor="x") as primary:
        assert primary.list_models() == []


def test_a_sqlite_or_server_read_url_is_refused_with_one_line(tmp_path: Any) -> None:
    import registry

    for primary, read, said in [
        ("postgresql://h/db", f"sqlite:///{tmp_path}/copy.db", "a read replica is a PostgreSQL"),
        ("postgresql://h/db", "http://127.0.0.1:1", "a read replica is a PostgreSQL"),
        (f"sqlite:///{tmp_path}/reg.db", "postgresql://h/db", "needs a postgresql:// registry"),
    ]:
        settings = Settings(registry_url=primary, read_registry_url=read, actor="x")
        with pytest.raises(InvalidInput, match=said) as caught:
            registry.connect(settings=settings)
        assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- routing, exhaustively


class _Recorder:
    """Stands in for a store: records which methods were called on it, answers nothing."""

    actor = "recorder"
    origin = None
    url = ""

    def __init__(self) -> None:
        self.called: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in RegistryStore.__abstractmethods__:
            raise AttributeError(name)

        def record(*_args: Any, **_kwargs: Any) -> Any:
            self.called.append(name)
            return 0 if name == "latest_seq" else []

        return record


def _dummy_args(method: Callable[..., Any]) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in inspect.signature(method).parameters.values():
        if param.default is not inspect.Parameter.empty:
            continue
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[param.name] = None
        else:
            args.append(None)
    return args, kwargs


@pytest.mark.parametrize("method", sorted(RegistryStore.__abstractmethods__))
def test_every_method_of_the_interface_is_routed_explicitly(method: str) -> None:
    """A method added to ``RegistryStore`` fails here until ReplicatedStore routes it:
    a read of the replica, a read of the primary, or a write (to the primary)."""
    assert method in vars(ReplicatedStore), f"ReplicatedStore does not route {method}"
    primary, replica = _Recorder(), _Recorder()
    store = ReplicatedStore(
        cast(RegistryStore, primary),
        cast(RegistryStore, replica),
        lag=ReplicaLag("r"),
        mark=ReadMark(),
    )
    args, kwargs = _dummy_args(getattr(RegistryStore, method))
    getattr(store, method)(*args[1:], **kwargs)
    if method == "close":
        assert (primary.called, replica.called) == (["close"], ["close"])
    elif method in REPLICA_READS:
        assert (primary.called, replica.called) == ([], [method])
    else:
        assert (primary.called, replica.called) == ([method], [])
    assert not REPLICA_READS & PRIMARY_READS
