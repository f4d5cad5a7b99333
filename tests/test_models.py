"""Domain schemas: name, alias and key validators, and one-line metadata errors."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from registry.errors import InvalidInput
from registry.models import (
    ArtifactRef,
    ModelVersion,
    Stage,
    VersionCreate,
    check_alias,
    check_key,
    check_model_name,
    check_version,
)

DESIGN_META: dict[str, Any] = {
    "metrics": {"auc": 0.912, "f1": 0.79, "latency_p99_ms": 3.1},
    "params": {"n_estimators": 200, "learning_rate": 0.1},
    "tags": {"team": "payments", "use_case": "fraud"},
    "signature": {
        "features": [
            {"name": "amount", "dtype": "float64"},
            {"name": "merchant_category", "dtype": "category"},
        ],
        "target": {"name": "is_fraud", "dtype": "int64"},
        "preprocessing_version": "fe-2.3",
    },
    "lineage": {
        "datasets": [
            {
                "name": "transactions",
                "version": "2026-11-01",
                "fingerprint": "sha256:abc",
                "rows": 120000,
                "date_range": ["2026-10-01", "2026-10-31"],
            }
        ],
        "feature_pipeline": "fe-2.3",
        "code": {"repository": "git@host:fraud.git", "commit": "9f1c2ab", "branch": "main"},
    },
    "environment": {"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
    "run_id": "prefect-flow-run-id",
    "idempotency_key": "key-1",
}


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["fraud", "fraud-detector", "f", "a1", "9", "payments/fraud-detector", "a" * 64, "a/b"],
)
def test_valid_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Fraud",
        "fraud detector",
        "../x",
        "a//b",
        "-fraud",
        "fraud-",
        "a" * 65,
        "a" * 200,
        "a/b/c",
        "/fraud",
        "fraud/",
        "fraud_detector",
        "fraud.v2",
        "fraüd",
        " fraud",
        pytest.param("fraud\n", id="trailing-newline"),
        None,
        42,
    ],
)
def test_invalid_model_names(name: Any) -> None:
    with pytest.raises(InvalidInput, match="invalid model name") as raised:
        check_model_name(name)

    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("alias", ["champion", "challenger-2", "v1", "a" * 64])
def test_valid_aliases(alias: str) -> None:
    assert check_alias(alias) == alias


@pytest.mark.parametrize(
    "alias",
    [
        "",
        "Champion",
        "a/b",
        "-x",
        "a" * 65,
        "two words",
        pytest.param("champion\n", id="trailing-newline"),
    ],
)
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(InvalidInput, match="invalid alias"):
        check_alias(alias)


@pytest.mark.parametrize("alias", ["production", "staging", "archived", "none", "latest"])
def test_stage_names_and_latest_are_reserved_aliases(alias: str) -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        check_alias(alias)


@pytest.mark.parametrize("key", ["auc", "_private", "latency.p99", "f1-macro", "A" * 128])
def test_valid_keys(key: str) -> None:
    assert check_key(key, "metric") == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "1st",
        "-x",
        ".x",
        "my auc",
        "a" * 129,
        "a'b",
        "a=b",
        pytest.param("auc\n", id="trailing-newline"),
    ],
)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(InvalidInput, match="invalid metric key"):
        check_key(key, "metric")


@pytest.mark.parametrize("version", [0, -1, True, 1.0, "1", None])
def test_invalid_version_numbers(version: Any) -> None:
    with pytest.raises(InvalidInput, match="invalid version"):
        check_version(version)


@pytest.mark.parametrize("text", ["Production", "production", " PRODUCTION ", "pRoDuCtIoN"])
def test_stage_parse_is_case_insensitive(text: str) -> None:
    assert Stage.parse(text) == Stage.PRODUCTION


def test_stage_parse_lists_the_choices() -> None:
    with pytest.raises(InvalidInput, match="None, Staging, Production, Archived"):
        Stage.parse("prod")


# ---------------------------------------------------------------- metadata


def test_the_design_metadata_parses() -> None:
    meta = VersionCreate.parse(copy.deepcopy(DESIGN_META))

    assert meta.signature is not None
    assert [f.name for f in meta.signature.features] == ["amount", "merchant_category"]
    assert meta.lineage.code is not None
    assert meta.lineage.code.commit == "9f1c2ab"


def test_empty_metadata_is_valid() -> None:
    assert VersionCreate.parse({}) == VersionCreate()


def test_parse_passes_a_version_create_through() -> None:
    meta = VersionCreate(metrics={"auc": 0.9})

    assert VersionCreate.parse(meta) is meta


def _with(path: str, value: Any) -> dict[str, Any]:
    """The design metadata with the value at a dotted path replaced (``[0]`` indexes)."""
    meta = copy.deepcopy(DESIGN_META)
    *parents, last = path.split(".")
    node: Any = meta
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return meta


BAD_META = {
    "nan metric": (_with("metrics.auc", math.nan), "metrics", "finite"),
    "inf metric": (_with("metrics.auc", math.inf), "metrics", "finite"),
    "bool metric": (_with("metrics.auc", True), "metrics", "must be a number"),
    "string metric": (_with("metrics.auc", "0.9"), "metrics", "must be a number"),
    "nan param": (_with("params.learning_rate", math.nan), "params", "finite"),
    "long param": (_with("params.solver", "x" * 5000), "params", "4096"),
    "unknown key": (_with("metricz", {}), "metricz", "Extra inputs"),
    "bad dtype": (_with("signature.features.0.dtype", "float65"), "dtype", "unknown dtype"),
    "duplicate feature": (
        _with("signature.features.1.name", "amount"),
        "features",
        "appears twice",
    ),
    "bad commit": (_with("lineage.code.commit", "xyz"), "commit", "pattern"),
    "reversed dates": (
        _with("lineage.datasets.0.date_range", ["2026-10-31", "2026-10-01"]),
        "date_range",
        "starts after it ends",
    ),
    "negative rows": (_with("lineage.datasets.0.rows", -1), "rows", "greater than"),
    "bad metric key": (_with("metrics", {"my auc": 1.0}), "", "invalid metric key"),
    "metric key with a newline": (_with("metrics", {"auc\n": 1.0}), "", "invalid metric key"),
}


@pytest.mark.parametrize(("meta", "where", "what"), BAD_META.values(), ids=BAD_META.keys())
def test_bad_metadata_is_one_line_saying_where(meta: dict[str, Any], where: str, what: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        VersionCreate.parse(meta)

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("invalid metadata: ")
    assert where in message
    assert what in message


def test_several_problems_are_counted_on_the_one_line() -> None:
    meta = _with("metrics", {"a": "x"}) | {"run_id": "", "unknown": 1}

    with pytest.raises(InvalidInput, match=r"\(\+\d+ more\)") as raised:
        VersionCreate.parse(meta)

    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("data", [[], "meta", None, 3])
def test_metadata_must_be_an_object(data: Any) -> None:
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        VersionCreate.parse(data)


def test_metadata_is_frozen() -> None:
    meta = VersionCreate.parse(copy.deepcopy(DESIGN_META))

    with pytest.raises(ValidationError):
        meta.run_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "fields",
    [{"sha256": "A" * 64}, {"sha256": "ab"}, {"size": -1}, {"uri": ""}],
    ids=str,
)
def test_artifact_refs_are_checked(fields: dict[str, Any]) -> None:
    good = {"uri": "file:///a", "sha256": "a" * 64, "size": 1}

    with pytest.raises(ValidationError):
        ArtifactRef(**(good | fields))


def test_model_versions_are_frozen() -> None:
    version = ModelVersion(
        name="fraud",
        version=1,
        stage=Stage.NONE,
        artifact=ArtifactRef(uri="file:///a", sha256="a" * 64, size=1),
        created_by="me",
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
    )

    with pytest.raises(ValidationError):
        version.stage = Stage.PRODUCTION  # type: ignore[misc]
