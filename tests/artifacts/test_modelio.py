"""The safe model format: skops files loaded only when checksummed and trusted."""

from __future__ import annotations

import functools
import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from registry.errors import ArtifactError, ChecksumMismatch
from registry.modelio import DEFAULT_TRUSTED, load_model, save_model

LOADED: list[str] = []  # Sneaky appends here if skops ever builds one


class Sneaky:
    """Stands in for code an attacker ships inside a model file."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        LOADED.append("Sneaky")
        self.__dict__.update(state)


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 120
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "age": rng.normal(size=n),
            "merchant": rng.choice(["food", "travel", "games"], size=n),
        }
    )
    frame.loc[5, "amount"] = np.nan
    target = (frame["age"] + rng.normal(scale=0.5, size=n) > 0).astype(int).to_numpy()
    return frame, target


def _pipeline(classifier: Any) -> Pipeline:
    numeric = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    features = ColumnTransformer(
        [("num", numeric, ["amount", "age"]), ("cat", categorical, ["merchant"])]
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def _digest(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _dump_untrusted(obj: Any, path: Path) -> Path:
    skops.io.dump(obj, path, compression=zipfile.ZIP_DEFLATED)
    return path


@pytest.mark.parametrize(
    "classifier",
    [
        LogisticRegression(),
        HistGradientBoostingClassifier(max_iter=10),
        RandomForestClassifier(n_estimators=5, random_state=0),
        DecisionTreeClassifier(random_state=0),
    ],
    ids=lambda c: type(c).__name__,
)
def test_saved_pipeline_loads_back_and_predicts_the_same(classifier: Any, tmp_path: Path) -> None:
    frame, target = _data()
    model = _pipeline(classifier).fit(frame, target)
    path = save_model(model, tmp_path / "model.skops")
    loaded = load_model(path, **_digest(path))
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))


def test_saved_file_is_compressed(tmp_path: Path) -> None:
    frame, target = _data()
    model = _pipeline(RandomForestClassifier(n_estimators=5, random_state=0)).fit(frame, target)
    path = save_model(model, tmp_path / "model.skops")
    with zipfile.ZipFile(path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (lambda: {"model": Sneaky()}, "Sneaky"),
        (lambda: {"model": functools.partial(print, "pwned")}, "functools.partial"),
    ],
    ids=["custom-class", "partial"],
)
def test_untrusted_types_are_refused_without_loading(
    payload: Any, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dump_untrusted(payload(), tmp_path / "evil.skops")
    LOADED.clear()

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("skops.io.loads must not run on an untrusted file")

    monkeypatch.setattr(skops.io, "loads", never)
    with pytest.raises(ArtifactError, match=re.escape(named)) as caught:
        load_model(path, **_digest(path))
    assert not isinstance(caught.value, ChecksumMismatch)
    assert LOADED == []


def test_trusting_some_types_is_not_trusting_all(tmp_path: Path) -> None:
    path = _dump_untrusted({"a": functools.partial(print, 1)}, tmp_path / "evil.skops")
    with pytest.raises(ArtifactError, match=r"builtins\.print"):
        load_model(path, **_digest(path), trusted=[*DEFAULT_TRUSTED, "functools.partial"])


@pytest.mark.parametrize("wrong", ["sha256", "size"])
def test_checksum_mismatch_is_refused_before_parsing(
    wrong: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, target = _data()
    path = save_model(_pipeline(LogisticRegression()).fit(frame, target), tmp_path / "m.skops")
    expected = _digest(path)
    expected[wrong] = "0" * 64 if wrong == "sha256" else expected["size"] + 1

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("skops must not parse a file with a wrong checksum")

    monkeypatch.setattr(skops.io, "get_untrusted_types", never)
    monkeypatch.setattr(skops.io, "loads", never)
    with pytest.raises(ChecksumMismatch):
        load_model(path, **expected)


def test_not_a_skops_file_is_an_artifact_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.skops"
    path.write_bytes(b"definitely not a zip file")
    with pytest.raises(ArtifactError, match="not a valid skops file"):
        load_model(path, **_digest(path))


def test_missing_file_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        load_model(tmp_path / "absent.skops", sha256="0" * 64, size=1)
