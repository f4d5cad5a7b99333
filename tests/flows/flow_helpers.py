"""Constants and helpers the flow tests share (conftest holds the fixtures)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from registry import Stage, VersionCreate

MODEL = "fraud-detector"
FIRST = date(2026, 10, 1)
SECOND = date(2026, 11, 1)
THIRD = date(2026, 12, 1)
ROWS = 12_000

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
        "MODELREG_USER": "flow-tests",
    }
    env.update(overrides)
    return env


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path, **overrides: str) -> Path:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in point_at(home, **overrides).items():
        monkeypatch.setenv(key, value)
    return home


def open_store(home: Path) -> Any:
    from registry.store.sql import SqlStore

    return SqlStore(f"sqlite:///{home}/registry.db", actor="flow-tests")


def register_staged(home: Path, *, artifact_of: int, golden_of: int) -> int:
    """A new staged version with one version's bytes and another's golden batch."""
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
        version = store.register(MODEL, source.artifact, meta).version
        store.transition(MODEL, version, Stage.STAGING, reason="test: staged by hand")
    return version
