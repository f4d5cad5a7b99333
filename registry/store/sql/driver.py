"""Hot-path statements run straight on the SQLite driver, inside the same transaction.

A registration is six small statements; through SQLAlchemy each costs ~20 µs of
Python around ~3 µs of SQLite (statement cache lookup, parameter processing,
result set-up), which together with the commit capped registrations well below
the throughput the store is meant to reach. ``execute`` compiles each Core
statement once for SQLite (named parameters, only the columns given) and runs it
on the DBAPI connection SQLAlchemy already holds, so transactions, locking and
error translation stay as they are. Values are converted exactly as the column
types would store them (``UTCDateTime``: naive UTC text; ``JSON``: JSON text (compact);
``Date``: ISO text), and a test reads rows written this way back through the Core
path. On PostgreSQL the statement simply goes through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

_SQLITE = sqlite.dialect(paramstyle="named")
# Keyed on the statement object itself, weakly: an ``id()`` can be handed to a new
# statement once the old one dies, which would then run the old one's SQL.
_ByKeys = dict[tuple[str, ...], tuple[str, dict[str, Any]]]
_COMPILED: weakref.WeakKeyDictionary[Executable, _ByKeys] = weakref.WeakKeyDictionary()

Params = Mapping[str, Any]


def execute(
    conn: Connection, statement: Executable, params: Params | Sequence[Params] | None = None
) -> list[tuple[Any, ...]]:
    """Run ``statement`` with one parameter set (its rows) or a list of them (no rows)."""
    many: list[Params] | None = None if params is None or isinstance(params, Mapping) else [*params]
    single: Params = params if isinstance(params, Mapping) else {}
    if conn.dialect.name != "sqlite":
        result = conn.execute(statement, many if many is not None else dict(single))
        return [tuple(row) for row in result] if result.returns_rows else []
    sql, constants = _sql(statement, tuple(many[0] if many else single))
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    try:
        if many is not None:
            raw.executemany(sql, [_values(p, constants) for p in many])
            return []
        return raw.execute(sql, _values(single, constants)).fetchall()
    except sqlite3.Error as exc:
        # The SQLAlchemy class SQLAlchemy itself would pick (IntegrityError, OperationalError,
        # DatabaseError, ...), with the sqlite3 error and its error code as ``orig``.
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc


def _sql(statement: Executable, keys: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The SQL for these parameter names, and the values of the literals the
    statement binds itself (``last_version + 1``, ``id = 1``)."""
    by_keys = _COMPILED.get(statement)
    if by_keys is None:
        by_keys = _COMPILED[statement] = {}
    found = by_keys.get(keys)
    if found is None:
        compiled = statement.compile(dialect=_SQLITE, column_keys=list(keys))  # type: ignore[attr-defined]
        unbound = [k for k, v in compiled.params.items() if k not in keys and v is None]
        if unbound:  # a column default SQLAlchemy would fill in: give it explicitly
            raise ValueError(f"no value for {', '.join(unbound)} in {statement}")
        constants = {k: _value(v) for k, v in compiled.params.items() if k not in keys}
        found = by_keys[keys] = (str(compiled), constants)
    return found


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _values(params: Params, constants: dict[str, Any]) -> Params:
    """``params`` as sqlite3 takes them; the same mapping when nothing needs converting."""
    if not constants and all(type(v) in _PLAIN for v in params.values()):
        return params
    values = {key: _value(value) for key, value in params.items()}
    values.update(constants)
    return values


def _value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry store")
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        # pydantic-core's serializer: the same JSON document as json.dumps, written
        # compactly and several times faster (values here are validated: no NaN).
        return to_json(value).decode()
    raise TypeError(f"no SQLite conversion for {type(value).__name__}")
