"""Tasks called through ``.fn()``: their logic against a real SQLite registry, with no
flow run and no Prefect server (a flow run's origin is then None)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from task_helpers import MODEL, REGISTRANT

from registry import ArtifactRef, Settings, VersionCreate
from registry.store.sql import SqlStore

# Before Prefect is imported anywhere in this process.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    """A registry home of its own (a migrated SQLite file), acting as the registrant."""
    home = tmp_path / "modelreg"
    home.mkdir()
    shutil.copyfile(sqlite_template, home / "registry.db")
    return Settings(
        home=home,
        registry_url=f"sqlite:///{home}/registry.db",
        artifact_root=str(home / "artifacts"),
        actor=REGISTRANT,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[SqlStore]:
    with SqlStore(settings.registry_url, actor=settings.actor) as opened:
        yield opened


@pytest.fixture
def registered(
    store: SqlStore,
    artifact_for: Callable[..., ArtifactRef],
    full_meta: Callable[..., dict[str, Any]],
) -> int:
    """One registered version (stage None, auc 0.912) of MODEL, by REGISTRANT."""
    meta = VersionCreate.parse(full_meta(idempotency_key=None, run_id=None))
    return store.register(MODEL, artifact_for(b"a model's bytes"), meta).version
