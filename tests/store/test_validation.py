"""Bad input is refused with InvalidInput before anything is stored."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from registry.errors import InvalidInput
from registry.models import Stage, VersionCreate
from registry.store.sql import SqlStore

from .support import Snapshot, artifact, register_versions, snapshot

MetaFor = Callable[..., dict[str, Any]]

BAD_NAMES = [
    "Fraud",
    "fraud detector",
    "../x",
    "",
    "a" * 200,
    "a//b",
    "-fraud",
    "fraud-",
    "a/b/c",
    "/fraud",
    "fraud/",
    "fraud_detector",
    pytest.param("fraud\n", id="trailing-newline"),
]


@dataclass(frozen=True)
class Seeded:
    store: SqlStore
    state: Snapshot

    def unchanged(self) -> bool:
        return snapshot(self.store) == self.state


@pytest.fixture(scope="module")
def seeded(module_store: SqlStore) -> Seeded:
    """One registry for the module, with a model that has stages and an alias; no test
    here may change it, and each checks that it did not."""
    register_versions(module_store, "existing", 2)
    module_store.transition("existing", 1, Stage.STAGING)
    module_store.set_aliases("existing", {"stable": 1})
    return Seeded(module_store, snapshot(module_store))


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_register_refuses_a_bad_model_name(seeded: Seeded, name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid model name"):
        seeded.store.register(name, artifact(b"x"), VersionCreate())

    assert seeded.unchanged()


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_create_model_refuses_a_bad_model_name(seeded: Seeded, name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid model name"):
        seeded.store.create_model(name)

    assert seeded.unchanged()


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_model("../x"),
        lambda s: s.get_version("A", 1),
        lambda s: s.list_versions("a//b"),
        lambda s: s.history("-x"),
        lambda s: s.transition("Bad Name", 1, Stage.STAGING),
        lambda s: s.rollback("../x", reason="r"),
        lambda s: s.set_aliases("x y", {"a": 1}),
        lambda s: s.events(model="../x"),
    ],
    ids=[
        "get_model",
        "get_version",
        "list_versions",
        "history",
        "transition",
        "rollback",
        "set_aliases",
        "events",
    ],
)
def test_every_call_checks_the_model_name(
    seeded: Seeded, call: Callable[[SqlStore], object]
) -> None:
    with pytest.raises(InvalidInput, match="invalid model name"):
        call(seeded.store)


@pytest.mark.parametrize("version", [0, -1, True, 1.5, "1"], ids=repr)
def test_bad_version_numbers_are_invalid_input(seeded: Seeded, version: Any) -> None:
    with pytest.raises(InvalidInput, match="invalid version"):
        seeded.store.transition("existing", version, Stage.STAGING)

    assert seeded.unchanged()


def _features(*names: str, dtype: str = "float64") -> dict[str, Any]:
    return {"features": [{"name": n, "dtype": dtype} for n in names]}


def _dataset(**fields: Any) -> dict[str, Any]:
    return {"datasets": [{"name": "transactions", "version": "v1", **fields}]}


BAD_META: dict[str, dict[str, Any]] = {
    "nan metric": {"metrics": {"auc": math.nan}},
    "inf metric": {"metrics": {"auc": math.inf}},
    "-inf metric": {"metrics": {"auc": -math.inf}},
    "bool metric": {"metrics": {"auc": True}},
    "string metric": {"metrics": {"auc": "0.9"}},
    "null metric": {"metrics": {"auc": None}},
    "metric key with a space": {"metrics": {"my auc": 0.9}},
    "nan param": {"params": {"lr": math.nan}},
    "nested param": {"params": {"grid": [1, 2]}},
    "unknown top-level key": {"metricz": {"auc": 0.9}},
    "unknown signature key": {"signature": {**_features("a"), "extra": 1}},
    "unknown dataset key": {"lineage": _dataset(owner="me")},
    "bad dtype": {"signature": _features("amount", dtype="float65")},
    "duplicate feature": {"signature": _features("amount", "hour", "amount")},
    "no features": {"signature": {"features": []}},
    "commit not hex": {"lineage": {"code": {"commit": "xyz1234"}}},
    "commit too short": {"lineage": {"code": {"commit": "9f1"}}},
    "commit with a suffix": {"lineage": {"code": {"commit": "9f1c2ab; drop"}}},
    "date_range reversed": {"lineage": _dataset(date_range=["2026-10-31", "2026-10-01"])},
    "date_range not a date": {"lineage": _dataset(date_range=["yesterday", "2026-10-01"])},
    "negative rows": {"lineage": _dataset(rows=-1)},
    "empty run_id": {"run_id": ""},
    "metrics not a mapping": {"metrics": [0.9]},
}


@pytest.mark.parametrize("meta", BAD_META.values(), ids=BAD_META.keys())
def test_register_refuses_bad_metadata(seeded: Seeded, meta: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="invalid metadata"):
        seeded.store.register("existing", artifact(b"x"), meta)  # type: ignore[arg-type]

    assert seeded.unchanged()


def test_register_refuses_metadata_that_is_not_a_mapping(seeded: Seeded) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        seeded.store.register("existing", artifact(b"x"), ["metrics"])  # type: ignore[arg-type]

    assert seeded.unchanged()


def test_the_full_design_metadata_is_valid(store: SqlStore, full_meta: MetaFor) -> None:
    version = store.register("fraud", artifact(b"x"), full_meta())  # type: ignore[arg-type]

    assert version.version == 1


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        # Setting ``production`` is a promotion (test_gates_aliases), alone and to a version.
        ("production", "production alias is the Production stage: set it alone"),
        ("staging", "reserved"),
        ("archived", "reserved"),
        ("none", "reserved"),
        ("latest", "reserved"),
        ("Champion", "invalid alias"),
        ("two words", "invalid alias"),
        ("", "invalid alias"),
        ("a/b", "invalid alias"),
        pytest.param("champion\n", "invalid alias", id="newline"),
    ],
)
def test_set_aliases_refuses_bad_and_reserved_aliases(
    seeded: Seeded, alias: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        seeded.store.set_aliases("existing", {"challenger": 2, alias: 2})

    assert seeded.unchanged()


def test_set_aliases_needs_at_least_one_move(seeded: Seeded) -> None:
    with pytest.raises(InvalidInput):
        seeded.store.set_aliases("existing", {})
