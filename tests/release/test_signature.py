"""Signature compatibility between a model and the schema the serving code publishes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from registry.models import Signature
from registry.pipeline.data import expected_signature
from registry.release.signature import compatibility_problems


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
