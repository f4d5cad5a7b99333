"""``release create|bind|list|show``: app releases, and model-code skew refused at the door."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_harness import MODEL, Harness

APP = "fraud-service"

# What the model of ``cli_harness.BASE_META`` was trained on.
SCHEMA_1: dict[str, Any] = {
    "features": [
        {"name": "amount", "dtype": "float64"},
        {"name": "merchant_category", "dtype": "category"},
    ],
    "preprocessing_version": "fe-2.3",
}
# A model trained before merchant_category existed.
WITHOUT_MERCHANT: dict[str, Any] = {
    "signature": {
        "features": [{"name": "amount", "dtype": "float64"}],
        "preprocessing_version": "fe-2.3",
    }
}


def _schema(reg: Harness, schema: dict[str, Any] | str, name: str = "schema.json") -> str:
    path = reg.tmp_path / name
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return str(path)


def _out(reg: Harness, *args: str) -> str:
    result = reg.run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def released(reg: Harness) -> Harness:
    """fraud-service 1.0.0 sends what v1 of the model takes."""
    reg.register()
    reg.json("release", "create", APP, "1.0.0", "--schema", _schema(reg, SCHEMA_1))
    return reg


def test_release_create_returns_the_release_with_its_schema(reg: Harness) -> None:
    created = reg.json(
        "release", "create", APP, "1.0.0", "--schema", _schema(reg, SCHEMA_1),
        "--description", "the first one",
    )  # fmt: skip
    assert (created["app"], created["release"]) == (APP, "1.0.0")
    assert [f["name"] for f in created["feature_schema"]["features"]] == [
        "amount",
        "merchant_category",
    ]
    assert created["feature_schema"]["preprocessing_version"] == "fe-2.3"
    assert created["description"] == "the first one"
    assert (created["created_by"], created["bindings"]) == ("oncall@test", [])


def test_release_create_prints_what_it_declared(reg: Harness) -> None:
    out = _out(reg, "release", "create", APP, "1.0.0", "--schema", _schema(reg, SCHEMA_1))
    assert out.strip() == f"created {APP}@1.0.0 (2 features, fe-2.3)"


def test_a_release_is_created_once(released: Harness) -> None:
    message = released.fail(
        "release", "create", APP, "1.0.0", "--schema", _schema(released, SCHEMA_1), code=4
    )
    assert "exists" in message


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        pytest.param("{features: []", "not valid JSON", id="not JSON"),
        pytest.param("[1]", "JSON object", id="a list"),
        pytest.param({"features": []}, "features", id="no features"),
        pytest.param({"features": [{"name": "a", "dtype": "int"}]}, "dtype", id="unknown dtype"),
        pytest.param({"features": [{"name": "a"}]}, "dtype", id="no dtype"),
        pytest.param(
            {"features": [{"name": "a", "dtype": "int64"}] * 2}, "twice", id="repeated feature"
        ),
    ],
)
def test_an_invalid_schema_is_one_line_exit_2(
    reg: Harness, schema: dict[str, Any] | str, fragment: str
) -> None:
    message = reg.fail("release", "create", APP, "1.0.0", "--schema", _schema(reg, schema), code=2)
    assert fragment in message
    assert reg.json("release", "list") == []


def test_a_missing_schema_file_is_one_line_exit_2(reg: Harness) -> None:
    message = reg.fail("release", "create", APP, "1.0.0", "--schema", "nope.json", code=2)
    assert "nope.json" in message


def test_binding_a_matching_version_pins_it(released: Harness) -> None:
    bound = released.json("release", "bind", APP, "1.0.0", "--model", MODEL, "--version", "1")
    (binding,) = bound["bindings"]
    assert (binding["model"], binding["version"], binding["follow"]) == (MODEL, 1, None)
    assert binding["bound_by"] == "oncall@test"
    event = released.json("history", MODEL)["events"][-1]
    assert (event["kind"], event["subject"], event["to_value"]) == ("binding", f"{APP}@1.0.0", "v1")
    assert f"{APP}@1.0.0 pinned to {MODEL} v1" in _out(released, "history", MODEL)


def test_binding_a_version_without_merchant_category_is_refused_naming_it(
    released: Harness,
) -> None:
    released.register(changes=WITHOUT_MERCHANT)
    message = released.fail(
        "release", "bind", APP, "1.0.0", "--model", MODEL, "--version", "2", code=4
    )
    assert message.startswith("error: binding gate refused")
    assert "extra merchant_category" in message
    assert released.json("release", "show", APP, "1.0.0")["bindings"] == []
    refused = released.json("history", MODEL)["events"][-1]
    assert (refused["kind"], refused["details"]["gate"]) == ("refused", "binding")
    assert "REFUSED v2 -> fraud-service@1.0.0 (binding gate)" in _out(released, "history", MODEL)


def test_a_skew_refusal_names_missing_extra_and_retyped_features(released: Harness) -> None:
    released.register(
        changes={
            "signature": {
                "features": [
                    {"name": "amount", "dtype": "float32"},
                    {"name": "amount_zscore", "dtype": "float64"},
                ],
                "preprocessing_version": "fe-2.3",
            }
        }
    )
    message = released.fail(
        "release", "bind", APP, "1.0.0", "--model", MODEL, "--version", "2", code=4
    )
    assert "missing amount_zscore" in message
    assert "extra merchant_category" in message
    assert "retyped amount (float32 -> float64)" in message


def test_a_forced_binding_needs_a_reason_and_is_marked(released: Harness) -> None:
    released.register(changes=WITHOUT_MERCHANT)
    args = ["release", "bind", APP, "1.0.0", "--model", MODEL, "--version", "2", "--force"]
    assert "reason" in released.fail(*args, code=2)
    released.json(*args, "--reason", "hotfix")
    event = released.json("history", MODEL)["events"][-1]
    assert (event["kind"], event["details"]["forced"]) == ("binding", True)
    assert "FORCED (skipped signature)" in _out(released, "history", MODEL)


def test_following_production_refuses_a_promotion_that_would_skew(released: Harness) -> None:
    released.promote(1)
    bound = released.json(
        "release", "bind", APP, "1.0.0", "--model", MODEL, "--follow", "production"
    )
    assert bound["bindings"][0]["follow"] == "production"
    assert bound["bindings"][0]["version"] == 1
    released.register(changes=WITHOUT_MERCHANT)
    released.json("promote", MODEL, "2", "--stage", "Staging")
    released.make_releasable(2)
    message = released.fail("promote", MODEL, "2", code=4)
    assert f"model-code skew with {APP}@1.0.0 (follows production)" in message
    assert "extra merchant_category" in message
    assert released.json("models")[0]["production"] == 1


@pytest.mark.parametrize(
    "choice",
    [
        pytest.param([], id="neither"),
        pytest.param(["--version", "1", "--follow", "production"], id="both"),
    ],
)
def test_bind_takes_exactly_one_of_version_and_follow(released: Harness, choice: list[str]) -> None:
    message = released.fail("release", "bind", APP, "1.0.0", "--model", MODEL, *choice, code=2)
    assert "--version" in message and "--follow" in message


def test_binding_an_unknown_release_is_not_found(released: Harness) -> None:
    message = released.fail(
        "release", "bind", APP, "9.9.9", "--model", MODEL, "--version", "1", code=3
    )
    assert "9.9.9" in message


def test_release_list_and_show(released: Harness) -> None:
    released.json("release", "create", "churn-api", "3.1", "--schema", _schema(released, SCHEMA_1))
    released.json("release", "bind", APP, "1.0.0", "--model", MODEL, "--version", "1")
    listed = released.json("release", "list")
    assert [(r["app"], r["release"]) for r in listed] == [("churn-api", "3.1"), (APP, "1.0.0")]
    assert [r["release"] for r in released.json("release", "list", APP)] == ["1.0.0"]
    table = _out(released, "release", "list")
    assert f"{MODEL} v1 (pinned)" in table
    page = _out(released, "release", "show", APP, "1.0.0")
    for expected in ("feature schema", "1. amount", "2. merchant_category", "fe-2.3", "bindings"):
        assert expected in page
    assert f"{MODEL} v1 (pinned), bound " in page


def test_release_list_on_an_empty_registry_says_how_to_start(reg: Harness) -> None:
    assert "modelreg release create" in _out(reg, "release", "list")


def test_release_show_of_an_unknown_release_is_not_found(reg: Harness) -> None:
    assert "1.0.0" in reg.fail("release", "show", APP, "1.0.0", code=3)
