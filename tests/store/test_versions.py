"""Registered models and versions: numbering, metadata round trip, immutability, idempotency."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from registry.errors import Conflict, InvalidInput, NotFound
from registry.models import ArtifactRef, Stage, VersionCreate
from registry.store.base import RegistryStore
from registry.store.sql import SqlStore

from .support import artifact, register_versions, snapshot

ArtifactFor = Callable[..., ArtifactRef]
MetaFor = Callable[..., dict[str, Any]]


# ---------------------------------------------------------------- numbering


def test_register_assigns_one_two_three(store: SqlStore) -> None:
    versions = register_versions(store, "fraud", 3)

    assert [v.version for v in versions] == [1, 2, 3]
    assert [v.version for v in store.list_versions("fraud")] == [3, 2, 1]
    assert store.get_model("fraud").latest_version == 3


def test_version_numbers_count_per_model(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)

    assert [v.version for v in register_versions(store, "churn", 2)] == [1, 2]


def test_register_creates_the_model_on_first_use(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_model("fraud")

    register_versions(store, "fraud", 1)

    model = store.get_model("fraud")
    assert (model.name, model.generation, model.latest_version) == ("fraud", 0, 1)
    assert [e.kind for e in store.history("fraud")] == ["model.created", "version.registered"]


def test_register_into_a_namespaced_model(store: SqlStore) -> None:
    register_versions(store, "payments/fraud-detector", 1)

    assert store.get_version("payments/fraud-detector", 1).name == "payments/fraud-detector"


def test_create_model_keeps_description_and_tags(store: SqlStore) -> None:
    store.create_model("fraud", description="card fraud", tags={"team": "payments"})

    model = store.get_model("fraud")
    assert (model.description, model.tags, model.latest_version) == (
        "card fraud",
        {"team": "payments"},
        0,
    )


@pytest.mark.parametrize("first", ["create_model", "register"])
def test_create_model_twice_is_a_conflict(store: SqlStore, first: str) -> None:
    if first == "create_model":
        store.create_model("fraud")
    else:
        register_versions(store, "fraud", 1)
    before = snapshot(store)

    with pytest.raises(Conflict):
        store.create_model("fraud", description="again")

    assert snapshot(store) == before


@pytest.mark.parametrize(("name", "version"), [("fraud", 2), ("fraud", 99), ("nosuch", 1)], ids=str)
def test_missing_version_is_not_found(store: SqlStore, name: str, version: int) -> None:
    register_versions(store, "fraud", 1)

    with pytest.raises(NotFound):
        store.get_version(name, version)


def test_list_versions_is_newest_first_and_limited(store: SqlStore) -> None:
    register_versions(store, "fraud", 5)

    assert [v.version for v in store.list_versions("fraud", limit=2)] == [5, 4]


# ---------------------------------------------------------------- round trip


def test_registration_metadata_round_trips_exactly(
    store: SqlStore, artifact_for: ArtifactFor, full_meta: MetaFor
) -> None:
    meta = VersionCreate.parse(full_meta(description="first cut", idempotency_key="run-1"))
    ref = artifact_for(b"model bytes", format="skops")
    before = datetime.now(UTC)

    registered = store.register("fraud", ref, meta)

    after = datetime.now(UTC)
    stored = store.get_version("fraud", 1)
    assert stored == registered
    assert stored == store.list_versions("fraud")[0]
    assert stored.artifact == ref
    assert stored.signature == meta.signature
    assert stored.metrics == {"auc": 0.912, "f1": 0.79, "latency_p99_ms": 3.1}
    assert stored.params == meta.params
    assert stored.tags == meta.tags
    assert stored.lineage == meta.lineage
    assert stored.environment == meta.environment
    assert (stored.run_id, stored.idempotency_key, stored.description) == (
        "prefect-flow-run-id",
        "run-1",
        "first cut",
    )
    assert (stored.stage, stored.aliases) == (Stage.NONE, ())
    assert stored.created_by == "tester"
    assert before <= stored.created_at <= after
    assert stored.created_at.tzinfo is not None


def test_signature_keeps_feature_order(store: SqlStore, full_meta: MetaFor) -> None:
    names = ["zeta", "amount", "merchant_category", "alpha", "hour"]
    signature = {"features": [{"name": n, "dtype": "float64"} for n in names]}
    store.register("fraud", artifact(b"x"), VersionCreate.parse(full_meta(signature=signature)))

    stored = store.get_version("fraud", 1).signature

    assert stored is not None
    assert [f.name for f in stored.features] == names


def test_lineage_dates_come_back_as_dates(store: SqlStore, full_meta: MetaFor) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate.parse(full_meta()))

    dataset = store.get_version("fraud", 1).lineage.datasets[0]

    assert dataset.date_range == (date(2026, 10, 1), date(2026, 10, 31))
    assert (dataset.rows, dataset.fingerprint) == (120000, "sha256:" + "ab" * 32)


@pytest.mark.parametrize(
    "value",
    [200, -3, 2**53 + 1, 0.1, 1.0, 1e-20, True, False, None, "adam", "", "1.5"],
    ids=repr,
)
def test_param_values_keep_their_json_type(store: SqlStore, value: Any) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate.parse({"params": {"p": value}}))

    stored = store.get_version("fraud", 1).params["p"]

    assert (type(stored), stored) == (type(value), value)


def test_large_float_params_stay_floats(store: SqlStore) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate.parse({"params": {"C": 1e16}}))

    stored = store.get_version("fraud", 1).params["C"]

    assert (type(stored), stored) == (float, 1e16)


def test_integer_metrics_come_back_as_floats(store: SqlStore) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate.parse({"metrics": {"n": 3}}))

    stored = store.get_version("fraud", 1).metrics["n"]

    assert (type(stored), stored) == (float, 3.0)


def test_created_by_is_the_registering_actor(make_store: Callable[..., SqlStore]) -> None:
    alice = make_store(actor="alice@laptop")

    alice.register("fraud", artifact(b"x"), VersionCreate())

    assert make_store().get_version("fraud", 1).created_by == "alice@laptop"


# ---------------------------------------------------------------- immutability


def test_update_version_changes_only_tags_and_description(
    store: SqlStore, full_meta: MetaFor
) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate.parse(full_meta()))
    original = store.get_version("fraud", 1)

    store.update_version("fraud", 1, tags={"team": "risk", "use_case": None, "new": "yes"})
    updated = store.update_version("fraud", 1, description="retrained on November data")

    assert updated.tags == {"team": "risk", "new": "yes"}
    assert updated.description == "retrained on November data"
    untouched = {"tags", "description"}
    assert updated.model_dump(exclude=untouched) == original.model_dump(exclude=untouched)
    assert store.get_version("fraud", 1) == updated


def test_update_version_records_tag_and_description_events(store: SqlStore) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate.parse({"tags": {"team": "a"}}))
    seq = store.events()[-1].seq

    store.update_version("fraud", 1, tags={"team": "b"}, description="note")

    changes = [(e.kind, e.subject, e.from_value, e.to_value) for e in store.events(since=seq)]
    assert changes == [("tags", "team", "a", "b"), ("description", None, None, "note")]


def test_no_store_method_can_rewrite_registration_metadata() -> None:
    immutable = {"artifact", "meta", "metrics", "params", "signature", "lineage", "environment"}
    writers = {
        name
        for name, method in inspect.getmembers(RegistryStore, inspect.isfunction)
        if immutable & set(inspect.signature(method).parameters)
    }

    assert writers == {"register"}
    assert set(inspect.signature(RegistryStore.update_version).parameters) == {
        "self",
        "name",
        "version",
        "tags",
        "description",
    }


def test_update_version_refuses_metadata_keywords(store: SqlStore) -> None:
    register_versions(store, "fraud", 1, metrics={"auc": 0.9})

    with pytest.raises(TypeError):
        store.update_version("fraud", 1, metrics={"auc": 1.0})  # type: ignore[call-arg]

    assert store.get_version("fraud", 1).metrics == {"auc": 0.9}


def test_returned_versions_are_frozen(store: SqlStore) -> None:
    (version,) = register_versions(store, "fraud", 1, metrics={"auc": 0.9})

    with pytest.raises(ValidationError):
        version.metrics = {"auc": 1.0}  # type: ignore[misc]
    version.metrics["auc"] = 1.0  # a caller mutating its copy

    assert store.get_version("fraud", 1).metrics == {"auc": 0.9}


@pytest.mark.parametrize("tags", [{"bad key": "x"}, {"": "x"}], ids=str)
def test_update_version_rejects_bad_tag_keys(store: SqlStore, tags: dict[str, str]) -> None:
    register_versions(store, "fraud", 1)
    before = snapshot(store)

    with pytest.raises(InvalidInput):
        store.update_version("fraud", 1, tags=tags)

    assert snapshot(store) == before


# ---------------------------------------------------------------- idempotency


def test_replayed_idempotency_key_returns_the_same_version_without_an_event(
    store: SqlStore, full_meta: MetaFor
) -> None:
    meta = VersionCreate.parse(full_meta(idempotency_key="outbox-7"))
    first = store.register("fraud", artifact(b"x"), meta)
    before = snapshot(store)

    replay = store.register("fraud", artifact(b"x"), meta)

    assert replay == first
    assert snapshot(store) == before


def test_replay_keeps_the_first_metadata(store: SqlStore) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate(idempotency_key="k", metrics={"a": 1}))

    replay = store.register(
        "fraud", artifact(b"x"), VersionCreate(idempotency_key="k", metrics={"a": 2})
    )

    assert (replay.version, replay.metrics) == (1, {"a": 1.0})


def test_replay_with_another_artifact_is_a_conflict(store: SqlStore) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate(idempotency_key="k"))
    before = snapshot(store)

    with pytest.raises(Conflict, match="different artifact"):
        store.register("fraud", artifact(b"other bytes"), VersionCreate(idempotency_key="k"))

    assert snapshot(store) == before


def test_idempotency_keys_are_per_model(store: SqlStore) -> None:
    store.register("fraud", artifact(b"x"), VersionCreate(idempotency_key="k"))

    other = store.register("churn", artifact(b"y"), VersionCreate(idempotency_key="k"))

    assert (other.name, other.version) == ("churn", 1)


def test_registration_without_a_key_is_never_deduplicated(store: SqlStore) -> None:
    first = store.register("fraud", artifact(b"x"), VersionCreate())

    second = store.register("fraud", artifact(b"x"), VersionCreate())

    assert (first.version, second.version) == (1, 2)
