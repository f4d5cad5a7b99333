"""SQLite commits are synced (``synchronous=FULL``) unless a bulk import opts out."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.errors import InvalidInput
from registry.store.sql import SqlStore

FULL, NORMAL = 2, 1  # what PRAGMA synchronous reports


def _synchronous(url: str, synchronous: str | None = None) -> int:
    """``PRAGMA synchronous`` on the pooled connection a store opened on ``url`` writes with."""
    store = (
        SqlStore(url, actor="tester")
        if synchronous is None
        else SqlStore(url, actor="tester", synchronous=synchronous)
    )
    try:
        with store.db.write() as conn:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    finally:
        store.close()


def test_a_store_syncs_every_commit_by_default(tmp_path: Path) -> None:
    assert _synchronous(f"sqlite:///{tmp_path}/reg.db") == FULL


def test_a_bulk_import_may_opt_out_to_normal(tmp_path: Path) -> None:
    assert _synchronous(f"sqlite:///{tmp_path}/reg.db", synchronous="normal") == NORMAL


@pytest.mark.parametrize("value", ["off", "FULL", "extra", ""])
def test_other_synchronous_values_are_invalid_input(tmp_path: Path, value: str) -> None:
    with pytest.raises(InvalidInput, match="synchronous"):
        SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester", synchronous=value)
    assert not (tmp_path / "reg.db").exists()  # refused before anything was opened
