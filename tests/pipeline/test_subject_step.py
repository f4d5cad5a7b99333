"""The pipeline's subject step (``steps.record_subjects``) on a real SQLite registry:
recorded, absent without a subject column, noted while the registry is down and
recorded once it is back."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from registry.config import Settings
from registry.errors import NotFound
from registry.pipeline import data, steps
from registry.store.sql import SqlStore
from registry.subjects import PENDING_FOLDER, deliver_pending, load_secret, subject_key

AS_OF = date(2026, 10, 1)


def settings_at(home: Path, url: str | None = None) -> Settings:
    return Settings(
        home=home,
        registry_url=url or f"sqlite:///{home}/registry.db",
        artifact_root=str(home / "artifacts"),
        actor="pipeline@test",
    )


def down_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/registry?connect_timeout=2"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_at(tmp_path / "home")


def test_the_generated_data_has_a_subject_column_that_is_not_a_feature() -> None:
    frame = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 30), rows=500, seed=1)
    assert frame[data.SUBJECT].str.fullmatch(r"cust-\d{6}").all()
    assert data.SUBJECT not in data.feature_names()


def test_the_data_sets_subjects_are_recorded(settings: Settings) -> None:
    dataset = steps.load(settings, AS_OF, rows=2_000, seed=0)
    recorded = steps.record_subjects(settings, dataset)
    frame = pd.read_parquet(dataset.path)
    assert recorded.status == "recorded"
    assert recorded.subjects == frame[data.SUBJECT].nunique()
    with SqlStore(settings.registry_url, actor="t") as store:
        manifest = store.subject_manifest("transactions", AS_OF.isoformat())
        key = subject_key(load_secret(settings), str(frame[data.SUBJECT].iloc[0]))
        lineage = store.subject_lineage(key)
    assert recorded.manifest is not None and manifest.sha256 == recorded.manifest.sha256
    assert [(d.dataset, d.version) for d in lineage.datasets] == [("transactions", "2026-10-01")]


def test_data_without_a_subject_column_records_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "transactions-2026-10-01.csv"
    frame = data.generate_transactions(date(2026, 9, 1), date(2026, 9, 30), rows=200, seed=1)
    frame.drop(columns=[data.SUBJECT]).to_csv(path, index=False)
    dataset = steps.load(settings, AS_OF, rows=0, seed=0, data_path=str(path))
    assert steps.record_subjects(settings, dataset).status == "absent"
    with SqlStore(settings.registry_url, actor="t") as store, pytest.raises(NotFound):
        store.subject_manifest("transactions", "2026-10-01")


def test_a_registry_down_notes_the_manifest_and_it_is_recorded_later(tmp_path: Path) -> None:
    home = tmp_path / "home"
    down = settings_at(home, down_url())
    dataset = steps.load(down, AS_OF, rows=2_000, seed=0)
    pending = steps.record_subjects(down, dataset)
    assert pending.status == "pending" and pending.manifest is not None
    [note] = (home / PENDING_FOLDER).glob("*.json")
    assert deliver_pending(down) == 0 and note.exists()  # still down: kept

    back = settings_at(home)
    assert deliver_pending(back) == 1
    assert not note.exists()
    with SqlStore(back.registry_url, actor="t") as store:
        manifest = store.subject_manifest("transactions", AS_OF.isoformat())
    assert manifest.sha256 == pending.manifest.sha256
    assert manifest.subjects == pending.subjects
    assert deliver_pending(back) == 0
