"""Data validation: a Great Expectations suite derived from a model signature.

For every feature and the target: the column exists, has the signature's dtype and
no nulls; known features stay within their domain limits (``data.RANGES``) or
allowed values (``data.ALLOWED``), and the label is 0 or 1. The result is a
``ValidationReport`` whose failures are one readable line each; nothing raises on
bad data (``DataValidationFailed`` is there for callers that want to stop).

GX runs in a fresh ephemeral context per validation, with analytics and progress
bars off; its import (seconds) happens at the first validation, not at import.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import Any

import pandas as pd

from registry.config import quiet_third_party_telemetry
from registry.errors import InvalidInput
from registry.pipeline import data


@cache
def _gx() -> Any:
    """Great Expectations, imported on first use with its telemetry off (it reads the
    setting at import, so the environment is set first, by ``registry.config``)."""
    quiet_third_party_telemetry()
    with warnings.catch_warnings():
        # GX 1.24 imports the stdlib's deprecated sre_constants/sre_parse; not ours to fix.
        warnings.filterwarnings(
            "ignore", message=r"module 'sre_\w+' is deprecated", category=DeprecationWarning
        )
        import great_expectations as gx
        from great_expectations import expectations
        from great_expectations.data_context.types.base import ProgressBarsConfig
    return SimpleNamespace(gx=gx, gxe=expectations, ProgressBarsConfig=ProgressBarsConfig)


# What GX reports as a pandas column's type for signature dtypes that differ in name.
_GX_TYPES = {"category": "CategoricalDtypeType", "string": "str"}
_EXAMPLES = 3


class DataValidationFailed(InvalidInput):
    """The data broke its expectations; ``report`` holds the details."""

    def __init__(self, report: ValidationReport) -> None:
        first = report.failures[0] if report.failures else "data validation failed"
        more = len(report.failures) - 1
        super().__init__(f"data validation failed: {first}" + (f" (+{more} more)" if more else ""))
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the report, so it survives pickling across a Dask worker boundary.
        return (type(self), (self.report,))


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    failures: list[str] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        verdict = "passed" if self.success else f"FAILED ({len(self.failures)} problems)"
        lines = [f"## Data validation {verdict}", "", "| statistic | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in self.statistics.items()]
        if self.failures:
            lines += ["", "### Failures", ""] + [f"- {failure}" for failure in self.failures]
        return "\n".join(lines) + "\n"


def build_suite(signature: dict[str, Any]) -> Any:
    """The expectation suite for data that models of ``signature`` train or score on."""
    gx, gxe = _gx().gx, _gx().gxe
    columns = _columns(signature)
    target = (signature.get("target") or {}).get("name")
    expectations: list[Any] = [gxe.ExpectTableRowCountToBeBetween(min_value=1)]
    for name, dtype in columns:
        expectations += [
            gxe.ExpectColumnToExist(column=name),
            gxe.ExpectColumnValuesToBeOfType(column=name, type_=_GX_TYPES.get(dtype, dtype)),
            gxe.ExpectColumnValuesToNotBeNull(column=name),
        ]
        if name in data.RANGES:
            low, high = data.RANGES[name]
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(column=name, min_value=low, max_value=high)
            )
        allowed = data.ALLOWED.get(name) or ((0, 1) if name == target else None)
        if allowed is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(allowed))
            )
    # Built whole (not with add_expectation, which needs an active data context).
    suite = gx.ExpectationSuite(name="modelreg-signature", expectations=expectations)
    return suite


def validate_frame(df: pd.DataFrame, signature: dict[str, Any]) -> ValidationReport:
    """Run the signature's suite on ``df``; failures come back as readable lines."""
    suite = build_suite(signature)
    context = _gx().gx.get_context(mode="ephemeral")
    context.variables.progress_bars = _gx().ProgressBarsConfig(globally=False)
    suite = context.suites.add(suite)
    batch = (
        context.data_sources.add_pandas("frame")
        .add_dataframe_asset("transactions")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": df})
    )
    result = batch.validate(suite)
    failures = _failures(result.results, dict(_columns(signature)))
    statistics = _statistics(df, signature, len(result.results), len(failures))
    return ValidationReport(success=bool(result.success), failures=failures, statistics=statistics)


def _columns(signature: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        columns = [(f["name"], f["dtype"]) for f in signature["features"]]
        target = signature.get("target")
        if target:
            columns.append((target["name"], target["dtype"]))
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"malformed signature: {exc}") from exc
    return columns


def _failures(results: list[Any], dtypes: dict[str, str]) -> list[str]:
    """One line per problem, in signature order; a missing column yields one line only.

    GX does not keep suite order, and a mistyped column makes its range and set
    checks meaningless (or raise), so those are left out behind the type line.
    """
    failed = [r for r in results if not r.success]
    missing = {_column(r) for r in failed if _kind(r) == "expect_column_to_exist"}
    mistyped = {_column(r) for r in failed if _kind(r) == "expect_column_values_to_be_of_type"}
    order = {name: i for i, name in enumerate(dtypes)}
    lines: list[tuple[int, int, str]] = []
    for result in failed:
        kind, column = _kind(result), _column(result)
        if column in missing and kind != "expect_column_to_exist":
            continue
        if column in mistyped and kind in _VALUE_CHECKS:
            continue
        info = result.exception_info or {}
        if info.get("raised_exception"):
            message = str(info.get("exception_message", "")).splitlines()[:1]
            line = f"{kind} on {column!r} could not run: {''.join(message)}"
        else:
            line = _describe(kind, column, result.expectation_config.kwargs, result.result, dtypes)
        lines.append((order.get(column, -1), _KIND_ORDER.get(kind, 99), line))
    return [line for _, _, line in sorted(lines)]


_KIND_ORDER = {
    "expect_table_row_count_to_be_between": 0,
    "expect_column_to_exist": 1,
    "expect_column_values_to_be_of_type": 2,
    "expect_column_values_to_not_be_null": 3,
    "expect_column_values_to_be_between": 4,
    "expect_column_values_to_be_in_set": 5,
}
_VALUE_CHECKS = ("expect_column_values_to_be_between", "expect_column_values_to_be_in_set")


def _kind(result: Any) -> str:
    return str(result.expectation_config.type)


def _column(result: Any) -> Any:
    return result.expectation_config.kwargs.get("column")


def _describe(
    kind: str, column: str, kwargs: dict[str, Any], result: dict[str, Any], dtypes: dict[str, str]
) -> str:
    count = result.get("unexpected_count", 0)
    percent = result.get("unexpected_percent") or 0.0
    examples = ", ".join(repr(v) for v in (result.get("partial_unexpected_list") or [])[:_EXAMPLES])
    example_text = f" (e.g. {examples})" if examples else ""
    if kind == "expect_column_to_exist":
        return f"column {column!r} is missing"
    if kind == "expect_column_values_to_be_of_type":
        observed = result.get("observed_value", "unknown")
        return f"column {column!r} has type {observed}, expected {dtypes.get(column, '?')}"
    if kind == "expect_column_values_to_not_be_null":
        return f"column {column!r} has {count} nulls ({percent:.2f}% of rows)"
    if kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        return f"column {column!r} has {count} values outside [{low:g}, {high:g}]{example_text}"
    if kind == "expect_column_values_to_be_in_set":
        values = kwargs.get("value_set", ())
        allowed = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
        return f"column {column!r} has {count} values not in {{{allowed}}}{example_text}"
    if kind == "expect_table_row_count_to_be_between":
        return f"table has {result.get('observed_value', 0)} rows, expected at least 1"
    return f"{kind} failed on {column!r}"


def _statistics(
    df: pd.DataFrame, signature: dict[str, Any], checked: int, failed: int
) -> dict[str, Any]:
    statistics: dict[str, Any] = {
        "rows": len(df),
        "columns": len(df.columns),
        "expectations": checked,
        "failures": failed,
    }
    target = (signature.get("target") or {}).get("name")
    if target in df.columns and pd.api.types.is_numeric_dtype(df[target]) and len(df):
        rate = float(df[target].mean())
        if math.isfinite(rate):  # NaN for an all-null label column
            statistics["positive_rate"] = round(rate, 6)
    return statistics
