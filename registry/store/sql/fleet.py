"""Fleet heartbeats: each resolver's one row, upserted by its id; read for ``modelreg fleet``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import InvalidInput
from registry.models import Heartbeat, check_model_name, check_name_page
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

    def fleet(
        self, name: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[Heartbeat]:
        check_name_page(limit, after, "a resolver id")
        query = select(*_COLUMNS).order_by(*_ORDER).limit(limit)
        if name is not None:
            check_model_name(name)
            query = query.where(heartbeats_table.c.model == name)
        with self.db.read() as conn:
            if after is not None:
                # The cursor names a row; the page goes on after that row's place in
                # the order (a resolver's model, ref and region do not change).
                last = conn.execute(select(*_ORDER).where(_ORDER[-1] == after)).first()
                if last is None:
                    raise InvalidInput(f"after: no resolver {after!r} has reported")
                query = query.where(tuple_(*_ORDER) > tuple_(*last))
            return [Heartbeat.model_validate(row._asdict()) for row in conn.execute(query)]
