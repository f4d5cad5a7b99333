"""Release records: replica rows per region, and the append-only check log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import InvalidInput, NotFound
from registry.models import check_model_name, check_version
from registry.release_models import (
    Check,
    Replica,
    ReplicaState,
    check_kind,
    check_region,
    check_regions,
    check_sha256,
    check_size,
    json_evidence,
    one_line,
)
from registry.store.sql.common import require_model, utcnow
from registry.store.sql.engine import Database
from registry.store.sql.schema import versions_table
from registry.store.sql.schema_release import checks_table, replicas_table

_REPLICA_COLUMNS = (
    replicas_table.c.region,
    replicas_table.c.state,
    replicas_table.c.uri,
    replicas_table.c.sha256,
    replicas_table.c.size,
    replicas_table.c.verified_at,
    replicas_table.c.error,
    replicas_table.c.updated_at,
)
_CHECK_COLUMNS = (
    checks_table.c.kind,
    checks_table.c.region,
    checks_table.c.passed,
    checks_table.c.evidence,
    checks_table.c.recorded_at,
    checks_table.c.recorded_by,
)


@dataclass(frozen=True)
class _Version:
    id: int
    sha256: str
    size: int


def _find_version(conn: Connection, name: str, version: int) -> _Version:
    check_model_name(name)
    check_version(version)
    model_id = require_model(conn, name)
    v = versions_table
    row = conn.execute(
        select(v.c.id, v.c.sha256, v.c.size).where(v.c.model_id == model_id, v.c.version == version)
    ).first()
    if row is None:
        raise NotFound(f"version {version} of model {name!r} not found")
    return _Version(row.id, row.sha256, row.size)


def _state(state: ReplicaState | str) -> ReplicaState:
    try:
        return ReplicaState(state)
    except ValueError:
        choices = ", ".join(s.value for s in ReplicaState)
        raise InvalidInput(f"unknown replica state {state!r}; expected one of {choices}") from None


def _replica(row: Row[Any, *tuple[Any, ...]]) -> Replica:
    return Replica(**row._asdict())


def _check(row: Row[Any, *tuple[Any, ...]]) -> Check:
    return Check(**row._asdict())


class ReleaseMixin:
    db: Database
    actor: str

    # ------------------------------------------------------------ replicas

    def record_replica(
        self,
        name: str,
        version: int,
        region: str,
        state: ReplicaState,
        *,
        uri: str | None = None,
        sha256: str | None = None,
        size: int | None = None,
        error: str | None = None,
    ) -> Replica:
        state = _state(state)
        check_region(region)
        check_sha256(sha256)
        check_size(size)
        if state is ReplicaState.VERIFIED and (sha256 is None or size is None):
            raise InvalidInput("a verified replica needs the sha256 and size it was verified with")
        now = utcnow()
        values: dict[str, Any] = {
            "region": region,
            "state": state.value,
            "uri": uri,
            "sha256": sha256,
            "size": size,
            "verified_at": now if state is ReplicaState.VERIFIED else None,
            "error": one_line(error),
            "updated_at": now,
        }
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        with self.db.write() as conn:
            found = _find_version(conn, name, version)
            statement = dialect_insert(replicas_table).values(version_id=found.id, **values)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["version_id", "region"],
                    set_={key: statement.excluded[key] for key in values if key != "region"},
                )
            )
        return Replica(**values)

    def replicas(self, name: str, version: int) -> list[Replica]:
        with self.db.read() as conn:
            found = _find_version(conn, name, version)
            rows = conn.execute(
                select(*_REPLICA_COLUMNS)
                .where(replicas_table.c.version_id == found.id)
                .order_by(replicas_table.c.region)
            )
            return [_replica(r) for r in rows]

    def ready_in_regions(self, name: str, version: int, regions: Sequence[str]) -> list[str]:
        wanted = check_regions(regions)
        with self.db.read() as conn:
            found = _find_version(conn, name, version)
            ready = set(
                conn.execute(
                    select(replicas_table.c.region).where(
                        replicas_table.c.version_id == found.id,
                        replicas_table.c.region.in_(wanted),
                        replicas_table.c.state == ReplicaState.VERIFIED.value,
                        replicas_table.c.sha256 == found.sha256,
                        replicas_table.c.size == found.size,
                    )
                ).scalars()
            )
        return [region for region in wanted if region not in ready]

    # ------------------------------------------------------------ checks

    def record_check(
        self,
        name: str,
        version: int,
        kind: str,
        *,
        region: str | None = None,
        passed: bool,
        evidence: Mapping[str, Any],
    ) -> Check:
        check_kind(kind)
        if kind == "approval":
            raise InvalidInput("approvals are recorded with approve(), by the approver")
        if region is not None:
            check_region(region)
        if not isinstance(passed, bool):
            raise InvalidInput(f"passed must be true or false, got {passed!r}")
        values: dict[str, Any] = {
            "kind": kind,
            "region": region,
            "passed": passed,
            "evidence": json_evidence(evidence),
            "recorded_at": utcnow(),
            "recorded_by": self.actor,
        }
        with self.db.write() as conn:
            found = _find_version(conn, name, version)
            conn.execute(insert(checks_table).values(version_id=found.id, **values))
        return Check(**values)

    def checks(self, name: str, version: int, kind: str | None = None) -> list[Check]:
        if kind is not None:
            check_kind(kind)
        with self.db.read() as conn:
            found = _find_version(conn, name, version)
            query = select(*_CHECK_COLUMNS).where(checks_table.c.version_id == found.id)
            if kind is not None:
                query = query.where(checks_table.c.kind == kind)
            return [_check(r) for r in conn.execute(query.order_by(checks_table.c.id))]

    def latest_checks(self, name: str, version: int, kind: str) -> dict[str | None, Check]:
        latest: dict[str | None, Check] = {}
        for check in self.checks(name, version, kind):  # oldest first: the newest wins
            latest[check.region] = check
        return latest
