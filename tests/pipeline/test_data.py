"""The generator, dated files, loading with lineage, and the time-based split."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from registry.errors import InvalidInput
from registry.models import DatasetRef
from registry.pipeline import data


def test_generator_is_deterministic_for_the_same_arguments() -> None:
    first = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 10), rows=2_000, seed=1)
    second = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 10), rows=2_000, seed=1)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(
    "other",
    [
        {"seed": 2, "start": date(2026, 9, 1)},
        {"seed": 1, "start": date(2026, 9, 2)},
    ],
    ids=["seed", "dates"],
)
def test_generator_draws_differ_by_seed_and_dates(other: dict[str, object]) -> None:
    base = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 10), rows=2_000, seed=1)
    start = other["start"]
    assert isinstance(start, date)
    changed = data.generate_transactions(
        start, date(2026, 9, 10), rows=2_000, seed=int(str(other["seed"]))
    )
    assert not np.array_equal(base["amount"].to_numpy(), changed["amount"].to_numpy())


def test_generated_columns_follow_the_signature(month: pd.DataFrame) -> None:
    signature = data.expected_signature()
    for feature in signature["features"]:
        assert str(month[feature["name"]].dtype) == feature["dtype"], feature
    assert str(month[data.TARGET[0]].dtype) == data.TARGET[1]
    assert signature["preprocessing_version"] == data.PREPROCESSING_VERSION
    assert month[data.ID].is_unique


def test_generated_data_is_realistic(month: pd.DataFrame) -> None:
    fraud = month[data.TARGET[0]]
    assert 0.015 <= fraud.mean() <= 0.025  # imbalanced, near the requested 2 %
    timestamps = month[data.TIMESTAMP]
    assert timestamps.is_monotonic_increasing
    assert timestamps.min() >= pd.Timestamp("2026-09-01")
    assert timestamps.max() < pd.Timestamp("2026-10-01")
    assert (month["hour"] == timestamps.dt.hour).all()
    for name, (low, high) in data.RANGES.items():
        assert month[name].between(low, high).all(), name
    night = month["hour"] <= 5
    assert night.mean() < 0.1  # quiet nights
    assert fraud[night].mean() > 2 * fraud[~night].mean()  # but riskier
    assert fraud[month["card_present"] == 0].mean() > 2 * fraud[month["card_present"] == 1].mean()
    medians = month.groupby("merchant_category", observed=True)["amount"].median()
    assert medians["jewelry"] > 5 * medians["grocery"]
    assert set(month["country"].unique()) >= {"US", "GB", "DE", "NG"}


def test_drift_shifts_inputs_and_keeps_the_fraud_rate() -> None:
    args = (date(2026, 9, 1), date(2026, 9, 30))
    calm = data.generate_transactions(*args, rows=10_000, seed=4)
    drifted = data.generate_transactions(*args, rows=10_000, seed=4, drift=1.0)
    assert drifted["amount"].median() > 1.3 * calm["amount"].median()
    assert (drifted["device"] == "mobile").mean() > (calm["device"] == "mobile").mean()
    assert abs(drifted[data.TARGET[0]].mean() - 0.02) < 0.006


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rows": 0},
        {"fraud_rate": 0.0},
        {"fraud_rate": 0.7},
        {"drift": 1.5},
        {"start": date(2026, 10, 1)},
    ],
)
def test_generator_refuses_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"start": date(2026, 9, 1), "end": date(2026, 9, 30), "rows": 10}
    args.update(kwargs)
    with pytest.raises(InvalidInput):
        data.generate_transactions(seed=0, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_written_file_loads_back_with_types_and_lineage(tmp_path: Path, fmt: str) -> None:
    frame = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 30), rows=1_000, seed=2)
    path = data.write_dataset(frame, tmp_path / "data", as_of=date(2026, 10, 1), fmt=fmt)
    assert path == tmp_path / "data" / f"transactions-2026-10-01.{fmt}"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left

    loaded, lineage = data.load_dataset(path)

    for name, dtype in data.FEATURES:
        assert str(loaded[name].dtype) == dtype, name
    assert pd.api.types.is_datetime64_any_dtype(loaded[data.TIMESTAMP])
    pd.testing.assert_series_equal(loaded["amount"], frame["amount"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert lineage == {
        "name": "transactions",
        "version": "2026-10-01",
        "fingerprint": f"sha256:{digest}",
        "rows": 1_000,
        "date_range": ["2026-09-01", "2026-09-30"],
    }
    assert DatasetRef.model_validate(lineage).rows == 1_000


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_fingerprint_follows_the_bytes(tmp_path: Path, fmt: str) -> None:
    frame = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 30), rows=500, seed=2)
    as_of = date(2026, 10, 1)
    same = [
        data.load_dataset(data.write_dataset(frame, tmp_path / d, as_of=as_of, fmt=fmt))[1]
        for d in ("a", "b")
    ]
    assert same[0]["fingerprint"] == same[1]["fingerprint"]

    changed = frame.copy()
    changed.loc[10, "amount"] += 0.01
    path = data.write_dataset(changed, tmp_path / "c", as_of=as_of, fmt=fmt)
    assert data.load_dataset(path)[1]["fingerprint"] != same[0]["fingerprint"]


def test_a_users_own_csv_is_named_by_its_file(tmp_path: Path) -> None:
    frame = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 3), rows=200, seed=2)
    path = tmp_path / "my_export.csv"
    frame.drop(columns=[data.TIMESTAMP]).to_csv(path, index=False)

    loaded, lineage = data.load_dataset(path)

    assert lineage["name"] == "my_export"
    assert lineage["version"] == lineage["fingerprint"][7:19]
    assert lineage["date_range"] is None
    assert str(loaded["country"].dtype) == "category"
    assert data.load_dataset(path, name="payments")[1]["name"] == "payments"


def test_ensure_dataset_generates_once_then_keeps_the_file(tmp_path: Path) -> None:
    path = data.ensure_dataset(tmp_path, date(2026, 10, 1), rows=300, seed=5)
    before = path.read_bytes()
    os.utime(path, (0, 0))

    again = data.ensure_dataset(tmp_path, date(2026, 10, 1), rows=999, seed=6)

    assert again == path
    assert path.read_bytes() == before
    assert path.stat().st_mtime == 0
    lineage = data.load_dataset(path)[1]
    assert lineage["date_range"] == ["2026-09-01", "2026-09-30"]
    assert lineage["rows"] == 300


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("data.json", b"{}", "expected .csv or .parquet"),
        ("missing.csv", None, "not found"),
        ("broken.parquet", b"not parquet at all", "could not read dataset"),
    ],
)
def test_load_refuses_what_it_cannot_read(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        data.load_dataset(path)


def test_split_holds_out_the_latest_rows(month: pd.DataFrame) -> None:
    shuffled = month.sample(frac=1.0, random_state=0)
    train, holdout = data.split(shuffled, holdout_fraction=0.25)
    assert len(train) + len(holdout) == len(month)
    assert len(holdout) == len(month) // 4
    assert train[data.TIMESTAMP].max() <= holdout[data.TIMESTAMP].min()
    again = data.split(shuffled, holdout_fraction=0.25)
    pd.testing.assert_frame_equal(holdout, again[1])


def test_split_refuses_degenerate_input(month: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput):
        data.split(month, holdout_fraction=1.0)
    with pytest.raises(InvalidInput):
        data.split(month.head(1))
