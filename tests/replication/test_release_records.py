"""Contract A: replica rows and the check log, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any

import pytest

from registry.errors import InvalidInput, NotFound
from registry.models import ArtifactRef, VersionCreate
from registry.release_models import ReplicaState
from registry.store.base import RegistryStore

MODEL = "fraud-detector"


def _register(store: RegistryStore, data: bytes = b"model-bytes") -> ArtifactRef:
    digest = hashlib.sha256(data).hexdigest()
    ref = ArtifactRef(uri=f"file:///a/{digest}", sha256=digest, size=len(data))
    store.register(MODEL, ref, VersionCreate())
    return ref


def _verified(store: RegistryStore, ref: ArtifactRef, region: str, version: int = 1) -> None:
    store.record_replica(
        MODEL,
        version,
        region,
        ReplicaState.VERIFIED,
        uri=f"file:///{region}/x",
        sha256=ref.sha256,
        size=ref.size,
    )


# ---------------------------------------------------------------- replicas


def test_one_replica_row_per_region_sorted_by_region(store: RegistryStore) -> None:
    ref = _register(store)
    for region in ("us-east", "ap-south", "eu-west"):
        store.record_replica(MODEL, 1, region, ReplicaState.PENDING, uri=f"file:///{region}")
    _verified(store, ref, "us-east")

    replicas = store.replicas(MODEL, 1)

    assert [(r.region, r.state) for r in replicas] == [
        ("ap-south", ReplicaState.PENDING),
        ("eu-west", ReplicaState.PENDING),
        ("us-east", ReplicaState.VERIFIED),
    ]


def test_verified_stamps_the_time_and_checksum_and_a_later_state_clears_the_time(
    store: RegistryStore,
) -> None:
    ref = _register(store)
    _verified(store, ref, "eu-west")
    [verified] = store.replicas(MODEL, 1)
    failed = store.record_replica(MODEL, 1, "eu-west", "failed", error="corrupt")

    assert verified.verified_at is not None
    assert verified.verified_at.tzinfo is not None
    assert (verified.sha256, verified.size, verified.error) == (ref.sha256, ref.size, None)
    assert store.replicas(MODEL, 1) == [failed]
    assert (failed.state, failed.verified_at, failed.error) == (
        ReplicaState.FAILED,
        None,
        "corrupt",
    )


def test_record_replica_returns_what_replicas_reads_back(store: RegistryStore) -> None:
    ref = _register(store)
    recorded = store.record_replica(
        MODEL, 1, "us-east", ReplicaState.VERIFIED, uri="s3://b/k", sha256=ref.sha256, size=1
    )

    assert store.replicas(MODEL, 1) == [recorded]


def test_errors_are_kept_as_one_bounded_line(store: RegistryStore) -> None:
    _register(store)
    store.record_replica(MODEL, 1, "us-east", "failed", error="first\n  second\tthird" + "x" * 5000)

    [replica] = store.replicas(MODEL, 1)

    assert replica.error is not None
    assert replica.error.startswith("first second third")
    assert "\n" not in replica.error
    assert len(replica.error) <= 2000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state": "verified"},  # no checksum
        {"state": "verified", "sha256": "ab" * 32},  # no size
        {"state": "done"},
        {"state": "pending", "sha256": "not-hex"},
        {"state": "pending", "size": -1},
        {"state": "pending", "region": "../etc"},
        {"state": "pending", "region": "US East"},
    ],
)
def test_bad_replica_input_is_refused_and_changes_nothing(
    store: RegistryStore, kwargs: dict[str, Any]
) -> None:
    _register(store)
    kwargs = dict(kwargs)  # the parameter is shared by every backend's run
    region = kwargs.pop("region", "us-east")
    state = kwargs.pop("state")

    with pytest.raises(InvalidInput):
        store.record_replica(MODEL, 1, region, state, **kwargs)
    assert store.replicas(MODEL, 1) == []


def test_ready_in_regions_lists_what_is_not_verified_with_the_registered_bytes(
    store: RegistryStore,
) -> None:
    ref = _register(store)
    _verified(store, ref, "us-east")
    store.record_replica(MODEL, 1, "eu-west", ReplicaState.PENDING)
    store.record_replica(MODEL, 1, "ap-south", ReplicaState.FAILED, error="down")
    store.record_replica(
        MODEL, 1, "sa-east", ReplicaState.VERIFIED, sha256="0" * 64, size=ref.size
    )  # verified, but other bytes

    regions = ["us-east", "eu-west", "ap-south", "sa-east", "af-south"]
    assert store.ready_in_regions(MODEL, 1, regions) == regions[1:]
    assert store.ready_in_regions(MODEL, 1, ["us-east"]) == []


def test_ready_everywhere_is_an_empty_list(store: RegistryStore) -> None:
    ref = _register(store)
    for region in ("us-east", "eu-west"):
        _verified(store, ref, region)

    assert store.ready_in_regions(MODEL, 1, ("eu-west", "us-east")) == []


@pytest.mark.parametrize("regions", [[], "us-east", ["us-east", "../x"]])
def test_ready_in_regions_refuses_no_regions_or_bad_names(
    store: RegistryStore, regions: Any
) -> None:
    _register(store)

    with pytest.raises(InvalidInput):
        store.ready_in_regions(MODEL, 1, regions)


def test_replicas_belong_to_one_version(store: RegistryStore) -> None:
    first = _register(store, b"one")
    _register(store, b"two")
    _verified(store, first, "us-east", version=1)

    assert store.replicas(MODEL, 2) == []
    assert store.ready_in_regions(MODEL, 2, ["us-east"]) == ["us-east"]


CALLS: list[tuple[str, Callable[[RegistryStore, str, int], Any]]] = [
    ("record_replica", lambda s, n, v: s.record_replica(n, v, "us-east", "pending")),
    ("replicas", lambda s, n, v: s.replicas(n, v)),
    ("ready_in_regions", lambda s, n, v: s.ready_in_regions(n, v, ["us-east"])),
    ("record_check", lambda s, n, v: s.record_check(n, v, "health", passed=True, evidence={})),
    ("checks", lambda s, n, v: s.checks(n, v)),
    ("latest_checks", lambda s, n, v: s.latest_checks(n, v, "health")),
]


@pytest.mark.parametrize(("method", "call"), CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize(("name", "version"), [("no-such-model", 1), (MODEL, 2)])
def test_an_unknown_model_or_version_is_not_found(
    store: RegistryStore,
    method: str,
    call: Callable[[RegistryStore, str, int], Any],
    name: str,
    version: int,
) -> None:
    _register(store)

    with pytest.raises(NotFound):
        call(store, name, version)


# ---------------------------------------------------------------- checks


def test_checks_are_appended_and_read_oldest_first(store: RegistryStore) -> None:
    _register(store)
    store.record_check(MODEL, 1, "health", region="us-east", passed=False, evidence={"n": 1})
    store.record_check(MODEL, 1, "canary", passed=True, evidence={"p_value": 0.01})
    store.record_check(MODEL, 1, "health", region="us-east", passed=True, evidence={"n": 2})

    assert [(c.kind, c.evidence) for c in store.checks(MODEL, 1)] == [
        ("health", {"n": 1}),
        ("canary", {"p_value": 0.01}),
        ("health", {"n": 2}),
    ]
    assert [c.evidence["n"] for c in store.checks(MODEL, 1, "health")] == [1, 2]


def test_latest_checks_keeps_the_newest_per_region(store: RegistryStore) -> None:
    _register(store)
    for region, passed in [("us-east", False), ("eu-west", True), ("us-east", True)]:
        store.record_check(MODEL, 1, "health", region=region, passed=passed, evidence={})
    store.record_check(MODEL, 1, "canary", passed=False, evidence={"decision": "worse"})
    store.record_check(MODEL, 1, "canary", passed=True, evidence={"decision": "ok"})

    health = store.latest_checks(MODEL, 1, "health")
    canary = store.latest_checks(MODEL, 1, "canary")

    assert {region: c.passed for region, c in health.items()} == {"us-east": True, "eu-west": True}
    assert list(canary) == [None]
    assert canary[None].evidence == {"decision": "ok"}
    assert store.latest_checks(MODEL, 1, "promotion") == {}


def test_a_check_records_who_and_when(make_store: Callable[..., RegistryStore]) -> None:
    store = make_store(actor="release-bot")
    _register(store)

    check = store.record_check(MODEL, 1, "promotion", passed=False, evidence={"reasons": ["x"]})

    assert check.recorded_by == "release-bot"
    assert check.recorded_at.tzinfo is not None
    assert store.checks(MODEL, 1) == [check]


def test_evidence_reads_back_exactly(store: RegistryStore) -> None:
    _register(store)
    evidence = {
        "statistic": -2.326347874040841,
        "p_value": 1e-16,
        "n": 12345678901,
        "passed": True,
        "note": "ünïcode",
        "nested": {"auc.country.US": 0.91, "list": [1, 2.5, None, "x"]},
        "tuple": (1, 2),
    }

    store.record_check(MODEL, 1, "evaluation", passed=True, evidence=evidence)

    [check] = store.checks(MODEL, 1)
    assert check.evidence == {**evidence, "tuple": [1, 2]}


@pytest.mark.parametrize(
    "evidence",
    [
        {"auc": math.nan},
        {"nested": {"latency": math.inf}},
        {"values": [1.0, -math.inf]},
        {1: "int key"},
        {"when": object()},
        {"raw": b"bytes"},
        ["not", "a", "mapping"],
    ],
)
def test_evidence_that_is_not_finite_json_is_refused(store: RegistryStore, evidence: Any) -> None:
    _register(store)

    with pytest.raises(InvalidInput):
        store.record_check(MODEL, 1, "canary", passed=True, evidence=evidence)
    assert store.checks(MODEL, 1) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "Health"},
        {"kind": ""},
        {"kind": "x" * 33},
        {"kind": "health", "region": "../us-east"},
        {"kind": "health", "passed": "yes"},
    ],
)
def test_bad_check_input_is_refused(store: RegistryStore, kwargs: dict[str, Any]) -> None:
    _register(store)
    kwargs = dict(kwargs)
    kind = kwargs.pop("kind")
    kwargs.setdefault("passed", True)

    with pytest.raises(InvalidInput):
        store.record_check(MODEL, 1, kind, evidence={}, **kwargs)
    assert store.checks(MODEL, 1) == []
