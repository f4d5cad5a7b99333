"""Signature compatibility between a model and the schema the serving code publishes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from registry.models import Feature, Signature
from registry.pipeline.data import expected_signature
from registry.release.signature import Retyped, SkewReport, compatibility_problems, skew


def _changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    schema = copy.deepcopy(expected_signature())
    change(schema)
    return schema


def _add(schema: dict[str, Any]) -> None:
    schema["features"].append({"name": "merchant_risk", "dtype": "float64"})


def _remove(schema: dict[str, Any]) -> None:
    schema["features"] = [f for f in schema["features"] if f["name"] != "distance_km"]


def _retype(schema: dict[str, Any]) -> None:
    schema["features"][0]["dtype"] = "float32"


def _reorder(schema: dict[str, Any]) -> None:
    features = schema["features"]
    features[1], features[2] = features[2], features[1]


def _target(schema: dict[str, Any]) -> None:
    schema["target"] = {"name": "is_fraud", "dtype": "bool"}


def _preprocessing(schema: dict[str, Any]) -> None:
    schema["preprocessing_version"] = "fe-2"


def test_identical_schemas_are_compatible() -> None:
    assert compatibility_problems(expected_signature(), expected_signature()) == []


def test_serving_schema_without_target_or_preprocessing_is_compatible() -> None:
    schema = {"features": expected_signature()["features"]}
    assert compatibility_problems(expected_signature(), schema) == []


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        (_add, ["feature 'merchant_risk' is sent by serving but unknown to the model"]),
        (
            _remove,
            ["feature 'distance_km' is required by the model but not in the serving schema"],
        ),
        (_retype, ["feature 'amount' is float64 in the model but float32 in serving"]),
        (
            _reorder,
            [
                "feature order differs at position 1: the model expects 'hour', "
                "serving sends 'day_of_week'"
            ],
        ),
        (_target, ["target is is_fraud (int64) in the model but is_fraud (bool) in serving"]),
        (_preprocessing, ["preprocessing version is fe-1 in the model but fe-2 in serving"]),
    ],
    ids=["added", "removed", "retyped", "reordered", "target", "preprocessing"],
)
def test_each_difference_is_one_problem(
    change: Callable[[dict[str, Any]], None], problems: list[str]
) -> None:
    assert compatibility_problems(expected_signature(), _changed(change)) == problems


def test_several_differences_are_all_reported() -> None:
    def everything(schema: dict[str, Any]) -> None:
        for change in (_add, _remove, _retype, _reorder, _preprocessing):
            change(schema)

    problems = compatibility_problems(expected_signature(), _changed(everything))
    assert len(problems) == 5


def test_pydantic_signatures_are_accepted() -> None:
    signature = Signature.model_validate(expected_signature())
    assert compatibility_problems(signature.model_dump(), expected_signature()) == []
    assert compatibility_problems(signature, signature) == []
    assert compatibility_problems(signature, _changed(_retype)) == [
        "feature 'amount' is float64 in the model but float32 in serving"
    ]


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"features": []}, "serving schema is malformed: features"),
        ({"features": [{"name": "a", "dtype": "decimal"}]}, "serving schema is malformed"),
        ([1, 2], "serving schema is not a JSON object"),
    ],
)
def test_malformed_schema_is_a_problem_not_a_crash(schema: Any, problem: str) -> None:
    problems = compatibility_problems(expected_signature(), schema)
    assert len(problems) == 1 and problems[0].startswith(problem)


# The structured report


def _signature(
    *features: tuple[str, str], target: str | None = "is_fraud", preprocessing: str | None = None
) -> Signature:
    return Signature(
        features=[Feature(name=n, dtype=t) for n, t in features],
        target=None if target is None else Feature(name=target, dtype="int64"),
        preprocessing_version=preprocessing,
    )


MODEL = _signature(
    ("amount", "float64"),
    ("merchant_category", "category"),
    ("hour", "int64"),
    preprocessing="fe-2.3",
)


def test_identical_signatures_have_no_skew() -> None:
    report = skew(MODEL, MODEL)
    assert report.ok and report.lines() == [] and report.summary() == "compatible"
    assert report == SkewReport()


def test_the_report_names_each_kind_of_skew() -> None:
    serving = _signature(
        ("amount", "float32"), ("hour", "int64"), ("geo_lat", "float64"), preprocessing="fe-2.4"
    )

    report = skew(MODEL, serving)

    assert not report.ok
    assert report.missing == ("merchant_category",)
    assert report.extra == ("geo_lat",)
    assert report.retyped == (Retyped(name="amount", model="float64", serving="float32"),)
    assert report.order is None
    assert report.target is None
    assert report.preprocessing == ("fe-2.3", "fe-2.4")
    assert report.summary() == (
        "missing merchant_category (needed by the model, not sent); "
        "extra geo_lat (sent, unknown to the model); retyped amount (float64 -> float32); "
        "preprocessing fe-2.3 -> fe-2.4"
    )
    assert report.lines() == compatibility_problems(MODEL, serving)
    assert len(report.lines()) == 4


def test_order_is_the_first_position_among_shared_features() -> None:
    serving = _signature(("geo_lat", "float64"), ("hour", "int64"), ("amount", "float64"))

    report = skew(MODEL, serving)

    # Shared features: the model says amount, hour; serving says hour, amount.
    assert (report.order, report.order_names) == (0, ("amount", "hour"))
    assert "order at 0 (amount expected, hour sent)" in report.summary()


def test_a_different_target_is_skew_and_an_absent_one_is_not() -> None:
    relabelled = _signature(*((f.name, f.dtype) for f in MODEL.features), target="is_chargeback")
    unlabelled = _signature(*((f.name, f.dtype) for f in MODEL.features), target=None)

    assert skew(MODEL, relabelled).target == ("is_fraud (int64)", "is_chargeback (int64)")
    assert skew(MODEL, relabelled).summary() == "target is_fraud (int64) -> is_chargeback (int64)"
    assert skew(MODEL, unlabelled).ok


def test_an_unset_preprocessing_version_in_the_model_is_reported() -> None:
    unversioned = _signature(*((f.name, f.dtype) for f in MODEL.features))
    report = skew(unversioned, MODEL)
    assert report.preprocessing == (None, "fe-2.3")
    assert report.summary() == "preprocessing unset -> fe-2.3"


def test_several_missing_and_extra_features_keep_their_sides_order() -> None:
    serving = _signature(("zeta", "int64"), ("alpha", "int64"), ("hour", "int64"))
    report = skew(MODEL, serving)
    assert report.missing == ("amount", "merchant_category")
    assert report.extra == ("zeta", "alpha")
    assert report.summary().startswith(
        "missing amount, merchant_category (needed by the model, not sent); extra zeta, alpha"
    )


def test_the_report_is_frozen_json() -> None:
    report = skew(MODEL, _signature(("amount", "float32")))
    with pytest.raises(ValidationError):
        report.order = 3  # type: ignore[misc]
    assert SkewReport.model_validate_json(report.model_dump_json()) == report
