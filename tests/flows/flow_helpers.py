"""Constants and helpers the flow tests share (conftest holds the fixtures)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from registry import Event, Stage, VersionCreate
from registry.release.policy import ReleasePolicy

MODEL = "fraud-detector"
ACTOR = "flow-tests"  # MODELREG_USER of every flow run here: the registrant of what they make
FIRST = date(2026, 10, 1)
SECOND = date(2026, 11, 1)
THIRD = date(2026, 12, 1)
ROWS = 12_000
ROOT = Path(__file__).resolve().parents[2]
FRAUD_POLICY = ROOT / "flows" / "policies" / "fraud-detector.yaml"

ENV_KEYS = (
    "MODELREG_HOME",
    "MODELREG_URL",
    "MODELREG_ARTIFACTS",
    "MODELREG_REGIONS",
    "MODELREG_REGION_ROOTS",
    "MODELREG_USER",
    "MODELREG_TASK_RUNNER",
)


def point_at(home: Path, **overrides: str) -> dict[str, str]:
    """The MODELREG_* variables for a registry home (what a worker's environment holds)."""
    env = {
        "MODELREG_HOME": str(home),
        "MODELREG_URL": f"sqlite:///{home}/registry.db",
        "MODELREG_ARTIFACTS": str(home / "artifacts"),
        "MODELREG_USER": ACTOR,
    }
    env.update(overrides)
    return env


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path, **overrides: str) -> Path:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in point_at(home, **overrides).items():
        monkeypatch.setenv(key, value)
    return home


def open_store(home: Path, actor: str = ACTOR) -> Any:
    from registry.store.sql import SqlStore

    return SqlStore(f"sqlite:///{home}/registry.db", actor=actor)


def fraud_policy(**changes: Any) -> ReleasePolicy:
    """The fraud team's policy file (what the main job sets), with ``changes`` applied."""
    document = ReleasePolicy.from_text(FRAUD_POLICY.read_text()).to_document()
    return ReleasePolicy.parse({**document, **changes})


def set_policy(home: Path, policy: ReleasePolicy, reason: str = "test: the policy") -> None:
    with open_store(home) as store:
        store.set_policy(MODEL, policy, reason=reason)


def register_copy(home: Path, *, artifact_of: int, golden_of: int) -> int:
    """A new version (stage None) with one version's bytes and another's golden batch."""
    with open_store(home) as store:
        source, golden = store.get_version(MODEL, artifact_of), store.get_version(MODEL, golden_of)
        meta = VersionCreate.parse(
            {
                "metrics": source.metrics,
                "signature": source.signature.model_dump() if source.signature else None,
                "lineage": source.lineage.model_dump(mode="json"),
                "tags": {
                    k: v for k, v in golden.tags.items() if k in ("golden_sha256", "golden_size")
                },
            }
        )
        return store.register(MODEL, source.artifact, meta).version


def register_staged(home: Path, *, artifact_of: int, golden_of: int) -> int:
    """``register_copy``, then None -> Staging through the store's staging gate."""
    version = register_copy(home, artifact_of=artifact_of, golden_of=golden_of)
    with open_store(home) as store:
        store.transition(MODEL, version, Stage.STAGING, reason="test: staged by hand")
    return version


def history(home: Path) -> list[Event]:
    with open_store(home) as store:
        return list(store.history(MODEL))


def refusals(home: Path, version: int) -> list[Event]:
    """The ``refused`` events of ``version``, oldest first."""
    return [e for e in history(home) if e.kind == "refused" and e.version == version]


def refusal_reasons(home: Path, version: int) -> list[str]:
    """Every reason of the version's refusals (a refused release records at least one)."""
    found = refusals(home, version)
    assert found, f"no refusal of v{version} in the history"
    return [reason for event in found for reason in event.details.reasons]


def production(home: Path) -> int | None:
    with open_store(home) as store:
        return store.get_model(MODEL).production


def flow_run(state: Any) -> Any:
    """The flow run a final state belongs to, read from the Prefect API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id)


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 120) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value
