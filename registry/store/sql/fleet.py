"""Fleet heartbeats: each resolver's one row, upserted by its id; read for ``modelreg fleet``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import InvalidInput
from registry.models import Heartbeat, check_model_name
from registry.store.sql.engine import Database
from registry.store.sql.schema_fleet import heartbeats_table

_COLUMNS = tuple(heartbeats_table.c[name] for name in Heartbeat.model_fields)
_ORDER = (
    heartbeats_table.c.model,
    heartbeats_table.c.ref,
    heartbeats_table.c.region,
    heartbeats_table.c.resolver_id,
)


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(heartbeats_table)
    return statement.on_conflict_do_update(
        index_elements=["resolver_id"],
        set_={c.name: statement.excluded[c.name] for c in _COLUMNS if c.name != "resolver_id"},
    )


_UPSERTS = {dialect: _upsert(dialect) for dialect in ("sqlite", "postgresql")}


class FleetMixin:
    db: Database

    def heartbeat(self, beat: Heartbeat) -> None:
        if not isinstance(beat, Heartbeat):
            raise InvalidInput(f"a heartbeat must be a Heartbeat, got {type(beat).__name__}")
        with self.db.write() as conn:
            conn.execute(_UPSERTS[self.db.dialect], beat.model_dump())

    def fleet(self, name: str | None = None) -> list[Heartbeat]:
        query = select(*_COLUMNS).order_by(*_ORDER)
        if name is not None:
            check_model_name(name)
            query = query.where(heartbeats_table.c.model == name)
        with self.db.read() as conn:
            return [Heartbeat.model_validate(row._asdict()) for row in conn.execute(query)]
