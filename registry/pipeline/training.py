"""Training: a scikit-learn pipeline with its preprocessing, saved as a trusted skops file.

The model is ``FixedThresholdClassifier(Pipeline(ColumnTransformer, classifier))``:
numeric features are standardised and, where the risk is not linear in them,
also one-hot encoded into quantile bins; hour, weekday and the categorical
features are one-hot encoded (unknown values ignored). The decision threshold
follows an alert budget: it flags the riskiest ``alert_rate`` share of the
training transactions (2 % by default, what a review team can look at), and is
stored in the model, so ``predict`` means the same everywhere the file is loaded.
A budget is far steadier across retrains than an F1-optimal threshold, whose
flat optimum on a few hundred frauds swings the error rate the canary compares. Every type in
the file is in ``registry.modelio.DEFAULT_TRUSTED`` or trusted by skops itself.
"""

from __future__ import annotations

import hashlib
import os
import platform
import uuid
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from registry.errors import InvalidInput
from registry.modelio import save_model
from registry.pipeline import data
from registry.release.health_worker import frame_from_records, to_records

SCALED = ["amount", "account_age_days", "txn_count_24h", "distance_km", "card_present"]
BINNED = ["amount", "account_age_days", "distance_km"]
ONE_HOT = ["hour", "day_of_week", "merchant_category", "country", "device"]
GOLDEN_ROWS = 32
PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "skops")

DEFAULT_PARAMS: dict[str, Any] = {
    "classifier": "logreg",  # or "hgb" (HistGradientBoostingClassifier)
    "C": 1.0,
    "max_iter": None,  # None: 1000 for logreg, 100 boosting rounds for hgb
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "n_bins": 10,
    "alert_rate": 0.02,  # share of transactions flagged: sets the decision threshold
    "threshold": None,  # an explicit decision threshold instead of the alert budget
    "degrade": False,  # True: train on shuffled labels (a deliberately useless model)
}


@dataclass(frozen=True)
class TrainingResult:
    """What a training run knows; every field is JSON-able."""

    model_path: str
    params: dict[str, Any]
    signature: dict[str, Any]
    environment: dict[str, Any]
    golden: dict[str, Any]
    sha256: str = ""
    size: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_model(
    train_df: pd.DataFrame, params: dict[str, Any], *, seed: int, out_dir: Path
) -> TrainingResult:
    """Fit the pipeline on ``train_df`` and save it under ``out_dir`` as ``model-<sha12>.skops``.

    ``params`` override ``DEFAULT_PARAMS`` (unknown keys are refused); the result
    records the effective params, the signature, the environment and a golden
    batch (inputs and the probabilities this model gives them) for health checks.
    """
    effective = _params(params, seed)
    features = data.feature_names()
    target = data.TARGET[0]
    _check_frame(train_df, [*features, target])
    frame = train_df.reset_index(drop=True)
    labels = frame[target].to_numpy().astype(np.int64)
    if effective["degrade"]:
        labels = np.random.default_rng(seed).permutation(labels)

    # One BLAS/OpenMP thread: these fits are small, and on a busy two-core machine
    # (Prefect, other tasks) multi-threaded BLAS made them ten times slower.
    with threadpool_limits(limits=1):
        pipeline = _pipeline(effective, seed).fit(frame[features], labels)
        scores = pipeline.predict_proba(frame[features])[:, 1]
        threshold = effective["threshold"]
        if threshold is None:
            threshold = float(np.quantile(scores, 1.0 - float(effective["alert_rate"])))
        effective["threshold"] = round(float(threshold), 6)
        model = FixedThresholdClassifier(
            FrozenEstimator(pipeline),
            threshold=effective["threshold"],
            response_method="predict_proba",
        ).fit(frame[features], labels)  # fitting a frozen pipeline only records the classes

    path = _save(model, Path(out_dir))
    digest, size = _digest(path)
    metrics = {
        "train_rows": float(len(frame)),
        "train_positives": float(labels.sum()),
        "train_flag_rate": float(np.mean(scores >= effective["threshold"])),
    }
    return TrainingResult(
        model_path=str(path),
        params=effective,
        signature=data.expected_signature(),
        environment=environment(),
        golden=_golden(model, frame, seed),
        sha256=digest,
        size=size,
        metrics=metrics,
    )


def _params(params: dict[str, Any], seed: int) -> dict[str, Any]:
    unknown = sorted(set(params) - set(DEFAULT_PARAMS) - {"seed"})
    if unknown:
        raise InvalidInput(
            f"unknown training params {', '.join(unknown)}; known: {', '.join(DEFAULT_PARAMS)}"
        )
    effective = {**DEFAULT_PARAMS, **params, "seed": seed}
    if effective["classifier"] not in ("logreg", "hgb"):
        raise InvalidInput(
            f"unknown classifier {effective['classifier']!r}; expected logreg or hgb"
        )
    effective["degrade"] = bool(effective["degrade"])
    if not 0.0 < float(effective["alert_rate"]) < 1.0:
        raise InvalidInput(f"alert_rate must be in (0, 1), got {effective['alert_rate']}")
    if effective["max_iter"] is None:
        effective["max_iter"] = 100 if effective["classifier"] == "hgb" else 1000
    return effective


def _check_frame(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"training data lacks columns {', '.join(missing)}")
    if len(frame) < 50:
        raise InvalidInput(f"training data has {len(frame)} rows; at least 50 are needed")
    classes = set(frame[data.TARGET[0]].unique().tolist())
    if classes != {0, 1}:
        raise InvalidInput(f"training labels must contain both 0 and 1, got {sorted(classes)}")


def _pipeline(params: dict[str, Any], seed: int) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("scaled", StandardScaler(), SCALED),
            (
                "binned",
                KBinsDiscretizer(
                    n_bins=int(params["n_bins"]),
                    encode="onehot-dense",
                    strategy="quantile",
                    quantile_method="averaged_inverted_cdf",
                ),
                BINNED,
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ONE_HOT),
        ],
        verbose_feature_names_out=False,
    )
    classifier: Any
    if params["classifier"] == "hgb":
        classifier = HistGradientBoostingClassifier(
            max_iter=int(params["max_iter"]),
            learning_rate=float(params["learning_rate"]),
            max_leaf_nodes=int(params["max_leaf_nodes"]),
            early_stopping=False,
            random_state=seed,
        )
    else:
        # newton-cholesky: a few exact steps, about twice as fast as lbfgs on ~100 dense columns.
        classifier = LogisticRegression(
            C=float(params["C"]), max_iter=int(params["max_iter"]), solver="newton-cholesky"
        )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def _save(model: Any, out_dir: Path) -> Path:
    pending = out_dir / f".model-{uuid.uuid4().hex}.skops"
    save_model(model, pending)
    digest, _ = _digest(pending)
    final = out_dir / f"model-{digest[:12]}.skops"
    os.replace(pending, final)
    return final


def _digest(path: Path) -> tuple[str, int]:
    content = path.read_bytes()
    return hashlib.sha256(content).hexdigest(), len(content)


def _golden(model: Any, frame: pd.DataFrame, seed: int) -> dict[str, Any]:
    """A fixed batch of training rows (a quarter of them fraud) and this model's probabilities."""
    rng = np.random.default_rng(seed)
    target = frame[data.TARGET[0]].to_numpy()
    fraud = np.flatnonzero(target == 1)
    legit = np.flatnonzero(target == 0)
    n_fraud = min(len(fraud), GOLDEN_ROWS // 4)
    chosen = np.concatenate(
        [
            rng.choice(fraud, n_fraud, replace=False),
            rng.choice(legit, min(len(legit), GOLDEN_ROWS - n_fraud), replace=False),
        ]
    )
    chosen.sort()
    signature = data.expected_signature()
    records = to_records(frame.iloc[chosen][data.feature_names()])
    batch = frame_from_records(records, signature["features"])
    predictions = model.predict_proba(batch)[:, 1]
    return {
        "features": signature["features"],
        "inputs": records,
        "predictions": [float(p) for p in predictions],
    }


def environment() -> dict[str, Any]:
    """The Python and package versions a model was trained with."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "packages": packages}
