"""The project's main job: the release pipeline on the embedded defaults, no server.

Everything lives under ``.modelreg/`` in the current folder: the SQLite registry,
the artifacts, three local "regions", the outbox, and Prefect's own home (an
ephemeral API server starts for the runs and stops at the end). The story:

0. the fraud team sets fraud-detector's release policy in the registry;
1. retrain on the data as of 2026-10-01: v1 is released to Production;
2. retrain as of 2026-11-01: v2 passes every gate and replaces v1;
3. retrain as of 2026-12-01 with a deliberately degraded model: the staging gate
   refuses it (the refusal is in the model's history);
4. app releases: fraud-service 1.0.0 sends what the model takes and follows
   Production; fraud-service 2.0.0 sends a feature the model was never trained on,
   and binding it is refused, naming the feature;
5. an on-call rollback to the previous good version, with a reason;
6. what serves in Production now, and the model's history.

Prefect's own console logging is turned down to warnings: what happened is
printed here as one line per run, and the runs' reports are Prefect artifacts.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from registry import GateRefused, Settings
from registry.config import local_prefect, quiet_third_party_telemetry
from registry.models import Feature
from registry.release.policy import ReleasePolicy

MODEL = "fraud-detector"
MARKER = ".main-job"  # this folder was made by the main job: safe to start it over
RUNS: list[tuple[str, date, dict[str, Any]]] = [
    ("retrain", date(2026, 10, 1), {}),
    ("retrain", date(2026, 11, 1), {}),
    ("retrain (degraded model)", date(2026, 12, 1), {"degrade": True}),
]
ROWS = 20_000
POLICY = Path(__file__).resolve().parent / "policies" / "fraud-detector.yaml"
NEW_FEATURE = "device_risk_score"  # what fraud-service 2.0.0 starts sending


def prepare(home: Path) -> None:
    """A fresh ``.modelreg`` (only ever removing one this job made) and a quiet Prefect."""
    if home.exists():
        if not (home / MARKER).exists():
            sys.exit(
                f"{home}/ holds a registry this job did not create; run the main job in "
                "another folder (or set MODELREG_HOME to an empty one)"
            )
        shutil.rmtree(home)
    (home / "prefect").mkdir(parents=True)
    (home / MARKER).write_text("created by python -m flows.main\n")
    quiet_third_party_telemetry()
    local_prefect(home / "prefect")
    # Great Expectations sets this module's logger to INFO when it is imported (and then
    # announces a temporary docs folder on every validation): a filter survives that.
    logging.getLogger("great_expectations.data_context.types.base").addFilter(
        lambda record: record.levelno >= logging.WARNING
    )


def describe(state: Any) -> str:
    message = state.message or state.name
    return f"{state.name}: {message}" if state.name not in ("Completed",) else message


def set_policy(settings: Settings) -> None:
    policy = ReleasePolicy.from_text(POLICY.read_text(), source=str(POLICY.name))
    with settings.connect() as store:
        record = store.set_policy(MODEL, policy, reason="the fraud team's release policy")
    rules = ", ".join(str(rule) for rule in policy.staging)
    print(f"policy: {MODEL} policy v{record.version} set (staging: {rules})")


def app_releases(settings: Settings) -> None:
    """fraud-service 1.0.0 follows Production; 2.0.0 adds a feature the model lacks."""
    with settings.connect() as store:
        signature = store.get_version(MODEL, store.get_model(MODEL).production or 1).signature
        assert signature is not None
        store.create_app_release("fraud-service", "1.0.0", signature)
        store.bind_app_release("fraud-service", "1.0.0", MODEL, follow="production")
        print(f"release: fraud-service 1.0.0 follows {MODEL}@production")
        extra = Feature(name=NEW_FEATURE, dtype="float64")
        newer = signature.model_copy(update={"features": [*signature.features, extra]})
        store.create_app_release("fraud-service", "2.0.0", newer)
        try:
            store.bind_app_release("fraud-service", "2.0.0", MODEL, follow="production")
        except GateRefused as refused:
            print(f"release: fraud-service 2.0.0 refused: {refused.reasons[0]}")


def run(settings: Settings) -> None:
    from flows.retrain import retrain_flow
    from flows.rollback import rollback_flow

    started = time.perf_counter()
    set_policy(settings)
    for label, as_of, params in RUNS:
        t0 = time.perf_counter()
        state = retrain_flow(model=MODEL, as_of=as_of, rows=ROWS, params=params, return_state=True)
        print(f"{label} as of {as_of}: {describe(state)} ({time.perf_counter() - t0:.1f}s)")
    app_releases(settings)
    t0 = time.perf_counter()
    state = rollback_flow(
        reason="on-call: false positives up 4x after the release", model=MODEL, return_state=True
    )
    print(f"rollback: {describe(state)} ({time.perf_counter() - t0:.1f}s)")
    print(f"pipeline runs took {time.perf_counter() - started:.1f}s", flush=True)


def show() -> None:
    for command in (["models"], ["history", MODEL]):
        print(f"\n$ modelreg {' '.join(command)}", flush=True)
        subprocess.run([sys.executable, "-m", "registry.cli.main", *command], check=True)


def main() -> None:
    settings = Settings.from_env()
    prepare(settings.home)
    run(settings)
    show()


if __name__ == "__main__":
    main()
    sys.exit(0)
