"""Great Expectations validation derived from the signature: passes and readable failures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from registry.errors import InvalidInput
from registry.pipeline import data
from registry.pipeline.validation import (
    DataValidationFailed,
    ValidationReport,
    build_suite,
    validate_frame,
)

SIGNATURE = data.expected_signature()


@pytest.fixture(scope="module")
def sample(month: pd.DataFrame) -> pd.DataFrame:
    return month.head(3_000).copy()


def test_good_data_passes(sample: pd.DataFrame) -> None:
    report = validate_frame(sample, SIGNATURE)
    assert report.success, report.failures
    assert report.failures == []
    assert report.statistics["rows"] == 3_000
    assert report.statistics["failures"] == 0
    assert 0 < report.statistics["positive_rate"] < 0.1
    assert "passed" in report.to_markdown()


def test_data_read_back_from_csv_passes(tmp_path: Path) -> None:
    frame = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 5), rows=500, seed=1)
    path = data.write_dataset(frame, tmp_path, as_of=date(2026, 9, 6), fmt="csv")
    report = validate_frame(data.load_dataset(path)[0], SIGNATURE)
    assert report.success, report.failures


def _drop_country(frame: pd.DataFrame) -> None:
    del frame["country"]


def _amount_as_text(frame: pd.DataFrame) -> None:
    frame["amount"] = frame["amount"].astype(str)


def _null_distances(frame: pd.DataFrame) -> None:
    frame.loc[[3, 4, 5], "distance_km"] = np.nan


def _hour_out_of_range(frame: pd.DataFrame) -> None:
    frame.loc[7, "hour"] = 25


def _bad_labels(frame: pd.DataFrame) -> None:
    frame.loc[[1, 2], data.TARGET[0]] = [2, -1]


def _device_as_text(frame: pd.DataFrame) -> None:
    frame["device"] = frame["device"].astype(str)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_drop_country, ["column 'country' is missing"]),
        (_amount_as_text, ["column 'amount' has type str, expected float64"]),
        (
            _null_distances,
            [
                "column 'distance_km' has 3 nulls (0.10% of rows)",
            ],
        ),
        (_hour_out_of_range, ["column 'hour' has 1 values outside [0, 23] (e.g. 25)"]),
        (_bad_labels, ["column 'is_fraud' has 2 values not in {0, 1} (e.g. 2, -1)"]),
        (_device_as_text, ["column 'device' has type str, expected category"]),
    ],
    ids=["missing-column", "wrong-type", "nulls", "out-of-range", "bad-labels", "category-type"],
)
def test_bad_data_fails_with_one_readable_line_per_problem(
    sample: pd.DataFrame, damage: Callable[[pd.DataFrame], None], expected: list[str]
) -> None:
    frame = sample.copy()
    damage(frame)

    report = validate_frame(frame, SIGNATURE)

    assert not report.success
    assert report.failures == expected
    assert expected[0] in report.to_markdown()


def test_several_problems_are_reported_in_signature_order(sample: pd.DataFrame) -> None:
    frame = sample.copy()
    _bad_labels(frame)
    _drop_country(frame)
    _hour_out_of_range(frame)
    report = validate_frame(frame, SIGNATURE)
    assert [line.split("'")[1] for line in report.failures] == ["hour", "country", "is_fraud"]


def test_integer_column_with_nulls_reports_type_and_nulls(sample: pd.DataFrame) -> None:
    frame = sample.copy()
    frame["account_age_days"] = frame["account_age_days"].astype("float64")
    frame.loc[0, "account_age_days"] = np.nan
    report = validate_frame(frame, SIGNATURE)
    assert report.failures == [
        "column 'account_age_days' has type float64, expected int64",
        "column 'account_age_days' has 1 nulls (0.03% of rows)",
    ]


def test_an_empty_table_fails(sample: pd.DataFrame) -> None:
    report = validate_frame(sample.iloc[:0], SIGNATURE)
    assert report.failures == ["table has 0 rows, expected at least 1"]


def test_suite_covers_every_signature_column() -> None:
    suite = build_suite(SIGNATURE)
    columns = {e.column for e in suite.expectations if hasattr(e, "column")}
    assert columns == {f["name"] for f in SIGNATURE["features"]} | {data.TARGET[0]}


def test_malformed_signature_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="malformed signature"):
        build_suite({"features": [{"dtype": "int64"}]})


def test_data_validation_failed_carries_the_report() -> None:
    report = ValidationReport(success=False, failures=["a", "b"], statistics={})
    error = DataValidationFailed(report)
    assert isinstance(error, InvalidInput)
    assert str(error) == "data validation failed: a (+1 more)"
    assert error.report is report


def test_data_validation_failed_survives_pickling() -> None:
    """A failure raised on a Dask worker crosses a process boundary by pickle."""
    import pickle

    report = ValidationReport(success=False, failures=["column 'hour' is missing"])
    error = pickle.loads(pickle.dumps(DataValidationFailed(report)))
    assert isinstance(error, DataValidationFailed)
    assert str(error) == "data validation failed: column 'hour' is missing"
    assert error.report.failures == ["column 'hour' is missing"]
