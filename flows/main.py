"""The project's main job, on the embedded defaults (``.modelreg/`` in this folder).

Until the Prefect release pipeline lands, it walks the registry through an on-call
story: register three versions of ``fraud-detector``, promote them one after
another, roll back the last one, then show what serves and the full history
with the same ``modelreg`` commands an engineer would type.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import registry
from registry import Stage

MODEL = "fraud-detector"


def _meta(version_date: str, auc: float, commit: str) -> dict[str, object]:
    return {
        "metrics": {"auc": auc, "f1": round(auc - 0.12, 3), "latency_p99_ms": 3.1},
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
            "datasets": [{"name": "transactions", "version": version_date, "rows": 120_000}],
            "feature_pipeline": "fe-2.3",
            "code": {"repository": "git@example.com:payments/fraud.git", "commit": commit},
        },
        "environment": {"python": sys.version.split()[0]},
    }


def run(settings: registry.Settings) -> None:
    store = registry.connect(settings=settings)
    artifacts = registry.open_artifacts(settings)
    workdir = settings.home / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    releases = [("2026-09-01", 0.901, "1a2b3c4"), ("2026-10-01", 0.912, "5d6e7f8"),
                ("2026-11-01", 0.915, "9f1c2ab")]
    try:
        for date, auc, commit in releases:
            model_file = workdir / f"model-{date}.json"
            model_file.write_text(json.dumps({"trained_on": date, "weights": [auc, 1 - auc]}))
            version = registry.register_file(
                store, artifacts, MODEL, model_file, _meta(date, auc, commit), format="json"
            ).version
            store.transition(MODEL, version, Stage.STAGING, reason=f"trained on {date}")
            generation = store.get_model(MODEL).generation
            store.transition(MODEL, version, Stage.PRODUCTION, expected_generation=generation,
                             reason=f"auc {auc}")
            print(f"registered and promoted {MODEL} v{version} (auc {auc})")
        change = store.rollback(MODEL, reason="on-call: false positives up 4x after release")
        print(f"rolled back {MODEL}: v{change.events[0].from_value} -> v{change.events[0].to_value}")
    finally:
        store.close()
    for command in (["models"], ["history", MODEL]):
        print(f"\n$ modelreg {' '.join(command)}", flush=True)
        subprocess.run([sys.executable, "-m", "registry.cli.main", *command], check=True)


if __name__ == "__main__":
    run(registry.Settings.from_env())
    sys.exit(0)
