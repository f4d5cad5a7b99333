"""Training: a trusted skops pipeline with its signature, params, environment and golden batch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import skops.io

from registry.errors import InvalidInput
from registry.modelio import DEFAULT_TRUSTED, load_model
from registry.models import VersionCreate
from registry.pipeline import data
from registry.pipeline.training import TrainingResult, train_model
from registry.release.health_worker import frame_from_records


def test_result_records_signature_params_and_environment(good: TrainingResult) -> None:
    assert good.signature == data.expected_signature()
    assert [f["name"] for f in good.signature["features"]] == data.feature_names()
    assert good.params["classifier"] == "logreg"
    assert good.params["degrade"] is False
    assert good.params["seed"] == 3
    assert 0.0 < good.params["threshold"] < 1.0
    assert good.environment["packages"]["scikit-learn"].startswith("1.")
    assert good.environment["python"].count(".") == 2
    assert good.metrics["train_rows"] == 16_000
    assert good.metrics["train_flag_rate"] == pytest.approx(0.02, abs=0.002)


def test_result_is_json_and_registration_metadata(good: TrainingResult) -> None:
    as_json = json.loads(json.dumps(good.to_dict()))
    meta = VersionCreate.parse(
        {
            "params": as_json["params"],
            "signature": as_json["signature"],
            "environment": as_json["environment"],
            "metrics": as_json["metrics"],
        }
    )
    assert meta.signature is not None
    assert meta.signature.preprocessing_version == data.PREPROCESSING_VERSION


def test_model_file_is_content_named_and_loads_with_the_default_allow_list(
    good: TrainingResult,
) -> None:
    path = Path(good.model_path)
    content = path.read_bytes()
    assert good.sha256 == hashlib.sha256(content).hexdigest()
    assert good.size == len(content)
    assert path.name == f"model-{good.sha256[:12]}.skops"
    assert set(skops.io.get_untrusted_types(file=path)) <= set(DEFAULT_TRUSTED)
    model = load_model(path, sha256=good.sha256, size=good.size)
    assert list(model.feature_names_in_) == data.feature_names()


def test_golden_batch_reproduces_in_this_process(good: TrainingResult) -> None:
    golden = good.golden
    assert len(golden["inputs"]) == len(golden["predictions"]) == 32
    assert max(golden["predictions"]) > 10 * min(golden["predictions"])  # risky and safe rows
    model = load_model(good.model_path, sha256=good.sha256, size=good.size)
    batch = frame_from_records(golden["inputs"], golden["features"])
    again = model.predict_proba(batch)[:, 1]
    assert max(abs(a - b) for a, b in zip(again, golden["predictions"], strict=True)) <= 1e-12


def test_degraded_model_is_marked_in_its_params(degraded: TrainingResult) -> None:
    assert degraded.params["degrade"] is True
    assert degraded.sha256 != ""


def test_boosted_trees_are_trusted_too(
    splits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    small = splits[0].head(4_000)
    result = train_model(small, {"classifier": "hgb", "max_iter": 20}, seed=0, out_dir=tmp_path)
    assert result.params["max_iter"] == 20
    load_model(result.model_path, sha256=result.sha256, size=result.size)


def test_explicit_threshold_overrides_the_alert_budget(
    train: Callable[..., TrainingResult],
) -> None:
    result = train(threshold=0.001)
    assert result.params["threshold"] == 0.001
    assert result.metrics["train_flag_rate"] > 0.5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"learning_rat": 0.1}, "unknown training params learning_rat"),
        ({"classifier": "svm"}, "unknown classifier"),
        ({"alert_rate": 0.0}, "alert_rate"),
    ],
)
def test_bad_params_are_refused(
    splits: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    params: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match=message):
        train_model(splits[0], params, seed=0, out_dir=tmp_path)


def test_training_data_needs_every_column_and_both_classes(
    splits: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train = splits[0]
    with pytest.raises(InvalidInput, match="lacks columns country"):
        train_model(train.drop(columns=["country"]), {}, seed=0, out_dir=tmp_path)
    only_legit = train[train[data.TARGET[0]] == 0]
    with pytest.raises(InvalidInput, match="both 0 and 1"):
        train_model(only_legit, {}, seed=0, out_dir=tmp_path)
