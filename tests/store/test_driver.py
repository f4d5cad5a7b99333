"""The SQLite fast path stores values exactly as SQLAlchemy's column types would.

``registry.store.sql.driver`` runs the registration statements straight on the
sqlite3 connection and converts values itself; if it drifted from the column
types' own bind processing, rows written by it would compare or read back
differently from rows written through Core.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError, OperationalError

from registry.store.sql import driver
from registry.store.sql.engine import Database
from registry.store.sql.schema import datasets_table, events_table, versions_table

SAMPLES: list[tuple[Any, Any]] = [
    (versions_table.c.created_at, datetime(2026, 11, 22, 15, 51, 50, 123456, tzinfo=UTC)),
    (versions_table.c.created_at, datetime(2026, 11, 22, 15, 51, 50, tzinfo=UTC)),
    (
        versions_table.c.created_at,
        datetime(2026, 11, 22, 17, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
    ),
    (events_table.c.at, datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)),
    (versions_table.c.signature, {"features": [{"name": "amount", "dtype": "float64"}]}),
    (versions_table.c.metrics, {"auc": 0.30000000000000004, "big": 1e16}),
    (versions_table.c.params, {"n": 200, "lr": 0.1, "on": True, "none": None, "s": "é"}),
    (versions_table.c.tags, {}),
    (datasets_table.c.date_start, date(2026, 10, 1)),
    (versions_table.c.size, 2**40),
    (versions_table.c.sha256, "ab" * 32),
    (datasets_table.c.rows, None),
]


@pytest.mark.parametrize(("column", "value"), SAMPLES, ids=lambda x: getattr(x, "name", None))
def test_driver_values_match_the_column_types_bind_processing(column: Any, value: Any) -> None:
    dialect = sqlite.dialect()
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    expected = processor(value) if processor is not None else value
    stored = driver._value(value)
    if isinstance(value, dict):  # the same JSON document; the driver writes it compactly
        assert json.loads(stored) == json.loads(expected) == value
    else:
        assert stored == expected


def test_driver_refuses_a_naive_datetime_as_the_column_type_does() -> None:
    with pytest.raises(ValueError, match="naive"):
        driver._value(datetime(2026, 1, 1))


def test_each_statement_runs_its_own_sql_even_when_ids_are_reused(tmp_path: Path) -> None:
    """Throwaway statements die and CPython hands their ids to the next ones: a cache
    keyed on ``id()`` ran the first statement's SQL for nearly all of these."""
    database = Database(f"sqlite:///{tmp_path}/reg.db")
    try:
        with database.read() as conn:
            answers = [
                driver.execute(conn, sa.select(sa.literal_column(str(i)))) for i in range(200)
            ]
    finally:
        database.dispose()

    assert answers == [[(i,)] for i in range(200)]


def test_a_driver_error_keeps_the_sqlite3_error_and_its_code(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/reg.db")
    try:
        with pytest.raises(DBAPIError) as raised, database.engine.connect() as conn:
            driver.execute(conn, sa.select(sa.literal_column("x")).select_from(sa.table("nope")))
    finally:
        database.dispose()

    assert isinstance(raised.value, OperationalError)
    assert isinstance(raised.value.orig, sqlite3.OperationalError)
    assert raised.value.orig.sqlite_errorname == "SQLITE_ERROR"
