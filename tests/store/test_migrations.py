"""Schema management: Alembic creates the schema the SQLModel tables declare, once."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import registry.store.migrations
from registry.errors import GateRefused
from registry.models import Stage, VersionCreate
from registry.release_models import ReplicaState
from registry.store.sql import SqlStore
from registry.store.sql.engine import SCHEMA_HEAD, Database, normalise_url
from registry.store.sql.schema import event_counter_table, metadata

from . import workers
from .support import ProcessPool, artifact, register_versions


def _alembic_head() -> str | None:
    scripts = ScriptDirectory(str(Path(registry.store.migrations.__file__).parent))
    return scripts.get_current_head()


def _revision(url: str) -> str | None:
    database = Database(url)
    try:
        return database.schema_revision()
    finally:
        database.dispose()


def test_the_store_expects_the_newest_migration() -> None:
    assert _alembic_head() == SCHEMA_HEAD


def test_a_fresh_database_is_migrated_to_head(fresh_url: str) -> None:
    assert _revision(fresh_url) is None

    SqlStore(fresh_url, actor="tester").close()

    assert _revision(fresh_url) == _alembic_head()


def test_a_fresh_database_starts_the_event_log_at_zero(fresh_url: str) -> None:
    with SqlStore(fresh_url, actor="tester") as store:
        with store.db.read() as conn:
            counter = [tuple(row) for row in conn.execute(sa.select(event_counter_table))]
        store.register("fraud", artifact(b"x"), VersionCreate())

        assert counter == [(1, 0)]
        assert [e.seq for e in store.events()] == [1, 2]


def test_the_migrated_schema_matches_the_declared_tables(fresh_url: str) -> None:
    SqlStore(fresh_url, actor="tester").close()
    engine = sa.create_engine(normalise_url(fresh_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()

    assert diff == []


def test_opening_a_migrated_store_again_does_not_migrate(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqlStore(fresh_url, actor="tester") as store:
        register_versions(store, "fraud", 2)

    def fail() -> None:
        raise AssertionError("the schema was migrated a second time")

    monkeypatch.setattr(Database, "_upgrade", lambda self: fail())
    with SqlStore(fresh_url, actor="tester") as again:
        assert [v.version for v in again.list_versions("fraud")] == [2, 1]


def test_a_store_opened_without_migrate_leaves_a_fresh_database_alone(fresh_url: str) -> None:
    SqlStore(fresh_url, actor="tester", migrate=False).close()

    assert _revision(fresh_url) is None


def test_opening_waits_for_a_writer_holding_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """What a second process sees while the first creates the file: a held lock."""
    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    release.start()
    try:
        with SqlStore(f"sqlite:///{path}", actor="tester") as store:
            store.register("fraud", artifact(b"x"), VersionCreate())
    finally:
        release.join()
        holder.close()

    assert _revision(f"sqlite:///{path}") == _alembic_head()


def test_processes_opening_a_fresh_database_at_once_all_succeed(
    fresh_url: str, backend: str, processes: ProcessPool
) -> None:
    openers = 3

    reports = processes.run_together(workers.open_and_register, [(fresh_url,)] * openers)

    assert [kind for kind, _ in reports] == ["ok"] * openers, reports
    assert sorted(version for _, version in reports) == list(range(1, openers + 1))
    assert _revision(fresh_url) == _alembic_head()


# ---------------------------------------------------------------- upgrading old data

T0 = datetime(2026, 11, 1, 2, 14, tzinfo=UTC)
SHA1, SHA2 = "a" * 64, "b" * 64
SIGNATURE = {"features": [{"name": "amount", "dtype": "float64"}], "preprocessing_version": "fe-2"}
LINEAGE = {
    "datasets": [
        {
            "name": "transactions",
            "version": "2026-10",
            "fingerprint": "sha256:ab",
            "rows": 1200,
            "date_range": ["2026-10-01", "2026-10-31"],
        }
    ],
    "feature_pipeline": "fe-2",
    "code": {"commit": "9f1c2ab"},
}

# Every table of revision 0003 with the rows a registry of that time would hold: fraud
# v1 served and was archived, v2 serves, champion → v2, v2 replicated to one region.
# Values are (column → (value, PostgreSQL type to cast a text parameter to, or None)).
OLD_ROWS: dict[str, list[dict[str, Any]]] = {
    "registered_model": [
        {
            "id": 1,
            "name": "fraud",
            "description": "card fraud",
            "generation": 5,
            "last_version": 2,
            "created_at": T0,
            "updated_at": T0 + timedelta(minutes=9),
        }
    ],
    "model_tag": [{"model_id": 1, "key": "team", "value": "payments"}],
    "model_version": [
        {
            "id": vid,
            "model_id": 1,
            "version": vid,
            "stage": stage,
            "artifact_uri": f"file:///artifacts/{sha}",
            "sha256": sha,
            "size": 100 + vid,
            "format": "skops",
            "signature": SIGNATURE,
            "metrics": {"auc": auc},
            "params": {"depth": vid},
            "tags": {"team": "payments"},
            "lineage": LINEAGE,
            "environment": {"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
            "run_id": f"run-{vid}",
            "idempotency_key": f"key-{vid}",
            "description": f"v{vid}",
            "feature_pipeline": "fe-2",
            "code_commit": "9f1c2ab",
            "served_generation": served,
            "rolled_back": False,
            "created_by": "alice",
            "created_at": T0 + timedelta(minutes=vid),
        }
        for vid, stage, sha, auc, served in [
            (1, "Archived", SHA1, 0.91, 2),
            (2, "Production", SHA2, 0.93, 4),
        ]
    ],
    "model_alias": [{"model_id": 1, "alias": "champion", "version_id": 2}],
    "version_attribute": [
        {"version_id": 1, "kind": "metric", "key": "auc", "text": None, "num": 0.91},
        {"version_id": 1, "kind": "tag", "key": "team", "text": "payments", "num": None},
        {"version_id": 2, "kind": "metric", "key": "auc", "text": None, "num": 0.93},
        {"version_id": 2, "kind": "param", "key": "depth", "text": None, "num": 2.0},
        {"version_id": 2, "kind": "tag", "key": "team", "text": "payments", "num": None},
    ],
    "version_dataset": [
        {
            "version_id": vid,
            "name": "transactions",
            "version": "2026-10",
            "fingerprint": "sha256:ab",
            "rows": 1200,
            "date_start": date(2026, 10, 1),
            "date_end": date(2026, 10, 31),
        }
        for vid in (1, 2)
    ],
    "event": [
        {
            "seq": seq,
            "at": T0 + timedelta(minutes=seq),
            "model_id": 1,
            "model_name": "fraud",
            "version": version,
            "kind": kind,
            "subject": subject,
            "from_value": old,
            "to_value": new,
            "actor": "alice",
            "reason": reason,
            "generation": generation,
        }
        for seq, version, kind, subject, old, new, reason, generation in [
            (1, None, "model.created", None, None, None, None, 0),
            (2, 1, "version.registered", None, None, SHA1, None, 0),
            (3, 2, "version.registered", None, None, SHA2, None, 0),
            (4, 1, "stage", "stage", "None", "Staging", None, 1),
            (5, 1, "stage", "stage", "Staging", "Production", "first", 2),
            (6, 2, "stage", "stage", "None", "Staging", None, 3),
            (7, 1, "stage", "stage", "Production", "Archived", "better", 4),
            (8, 2, "stage", "stage", "Staging", "Production", "better", 4),
            (9, 2, "alias", "champion", None, "2", "pin", 5),
        ]
    ],
    "event_counter": [{"id": 1, "seq": 9}],
    "version_replica": [
        {
            "version_id": 2,
            "region": "us-east",
            "state": "verified",
            "uri": f"file:///regions/us-east/{SHA2}",
            "sha256": SHA2,
            "size": 102,
            "verified_at": T0 + timedelta(minutes=8),
            "error": None,
            "updated_at": T0 + timedelta(minutes=8),
        },
        {
            "version_id": 2,
            "region": "eu-west",
            "state": "failed",
            "uri": None,
            "sha256": None,
            "size": None,
            "verified_at": None,
            "error": "timeout",
            "updated_at": T0 + timedelta(minutes=8),
        },
    ],
    "version_check": [
        {
            "id": 1,
            "version_id": 2,
            "kind": "health",
            "region": "us-east",
            "passed": True,
            "evidence": {"latency_ms": 3.5},
            "recorded_at": T0 + timedelta(minutes=8),
            "recorded_by": "release-bot",
        },
        {
            "id": 2,
            "version_id": 2,
            "kind": "canary",
            "region": None,
            "passed": True,
            "evidence": {"decision": "non-inferior", "baseline_version": 1},
            "recorded_at": T0 + timedelta(minutes=8),
            "recorded_by": "release-bot",
        },
    ],
}
JSON_COLUMNS = {
    *("signature", "metrics", "params", "tags", "lineage", "environment", "evidence"),
    *("document", "schema_doc", "details"),  # 0004's
}
# The primary key of each table, to read its rows in a stable order.
ORDER = {
    "registered_model": "id",
    "model_tag": "model_id, key",
    "model_version": "id",
    "model_alias": "model_id, alias",
    "version_attribute": "version_id, kind, key",
    "version_dataset": "version_id, name, version",
    "event": "seq",
    "event_counter": "id",
    "version_replica": "version_id, region",
    "version_check": "id",
    "release_policy": "id",
    "app_release": "id",
    "app_binding": "release_id, model_id",
}


def _migrate_to(url: str, revision: str) -> str:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(registry.store.migrations.__file__).parent))
    engine = sa.create_engine(normalise_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def at_0003(fresh_url: str) -> str:
    """A registry database at revision 0003 (the schema before the release contract)."""
    return _migrate_to(fresh_url, "0003")


def _insert_old_rows(url: str, tables: dict[str, list[dict[str, Any]]] = OLD_ROWS) -> None:
    engine = sa.create_engine(normalise_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            conn.execute(sa.text("DELETE FROM event_counter"))  # 0001 seeds it with seq 0
            for table, rows in tables.items():
                for row in rows:
                    columns = ", ".join(row)
                    values = ", ".join(
                        f"CAST(:{c} AS JSON)" if postgres and c in JSON_COLUMNS else f":{c}"
                        for c in row
                    )
                    params = {
                        c: json.dumps(v) if c in JSON_COLUMNS else _sql_value(v, postgres)
                        for c, v in row.items()
                    }
                    conn.execute(
                        sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), params
                    )
            if postgres:  # as if the store had inserted them: the id sequences moved on
                serial = ("registered_model", "model_version", "version_check", *SERIAL_0004)
                for table in (t for t in serial if t in tables):
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
    finally:
        engine.dispose()


def _sql_value(value: Any, postgres: bool) -> Any:
    """Datetimes as each backend's store wrote them: naive UTC text on SQLite."""
    if isinstance(value, datetime) and not postgres:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


def _raw_rows(
    url: str, tables: dict[str, list[dict[str, Any]]] = OLD_ROWS
) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of ``tables`` (default: every 0003 table), as the driver returns it."""
    engine = sa.create_engine(normalise_url(url), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return {
                table: [
                    tuple(r)
                    for r in conn.execute(
                        sa.text(f"SELECT {', '.join(rows[0])} FROM {table} ORDER BY {ORDER[table]}")
                    )
                ]
                for table, rows in tables.items()
            }
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Upgraded:
    url: str
    before: dict[str, list[tuple[Any, ...]]]  # the raw rows at 0003
    store: SqlStore  # opened on it, so upgraded to head


@pytest.fixture
def upgraded(at_0003: str) -> Iterator[Upgraded]:
    """The 0003 database filled with OLD_ROWS, then opened by the store."""
    _insert_old_rows(at_0003)
    before = _raw_rows(at_0003)
    assert _revision(at_0003) == "0003"
    with SqlStore(at_0003, actor="tester") as store:
        yield Upgraded(at_0003, before, store)


def test_upgrading_from_0003_reaches_head(upgraded: Upgraded) -> None:
    assert _revision(upgraded.url) == _alembic_head()


def test_every_0003_row_survives_the_upgrade_unchanged(upgraded: Upgraded) -> None:
    after = _raw_rows(upgraded.url)

    assert {t: len(rows) for t, rows in after.items()} == {
        t: len(rows) for t, rows in OLD_ROWS.items()
    }
    assert after == upgraded.before


def test_old_events_read_back_with_empty_details(upgraded: Upgraded) -> None:
    store = upgraded.store

    history = store.history("fraud")

    assert [(e.seq, e.kind, e.version, e.from_value, e.to_value) for e in history] == [
        (r["seq"], r["kind"], r["version"], r["from_value"], r["to_value"])
        for r in OLD_ROWS["event"]
    ]
    assert [e.at for e in history] == [r["at"] for r in OLD_ROWS["event"]]
    assert all(e.details.empty for e in history)


def test_old_versions_read_back_as_registered(upgraded: Upgraded) -> None:
    store = upgraded.store

    v2 = store.get_version("fraud", 2)

    assert (v2.stage, v2.aliases, v2.metrics, v2.params) == (
        Stage.PRODUCTION,
        ("champion",),
        {"auc": 0.93},
        {"depth": 2},
    )
    assert v2.signature is not None and v2.signature.model_dump(exclude_none=True) == SIGNATURE
    assert (v2.artifact.sha256, v2.artifact.size, v2.created_by) == (SHA2, 102, "alice")
    assert v2.created_at == T0 + timedelta(minutes=2)
    assert [d.name for d in v2.lineage.datasets] == ["transactions"]
    model = store.get_model("fraud")
    assert (model.generation, model.production, model.aliases, model.tags) == (
        5,
        2,
        {"champion": 2},
        {"team": "payments"},
    )


def test_old_replicas_and_checks_read_back(upgraded: Upgraded) -> None:
    store = upgraded.store

    replicas = {r.region: (r.state, r.sha256, r.error) for r in store.replicas("fraud", 2)}
    checks = [(c.kind, c.region, c.passed, c.evidence) for c in store.checks("fraud", 2)]

    assert replicas == {
        "eu-west": (ReplicaState.FAILED, None, "timeout"),
        "us-east": (ReplicaState.VERIFIED, SHA2, None),
    }
    assert checks == [
        ("health", "us-east", True, {"latency_ms": 3.5}),
        ("canary", None, True, {"decision": "non-inferior", "baseline_version": 1}),
    ]


def test_old_rows_are_searchable_and_keep_their_lineage(upgraded: Upgraded) -> None:
    store = upgraded.store

    assert [v.version for v in store.search("metrics.auc > 0.92")] == [2]
    hits = store.lineage_impact(dataset="transactions@2026-10")
    assert sorted((h.version, h.in_production) for h in hits) == [(1, False), (2, True)]


def test_an_upgraded_registry_carries_on(upgraded: Upgraded) -> None:
    store = upgraded.store

    store.register("fraud", artifact(b"v3"), VersionCreate())
    with pytest.raises(GateRefused, match="v1 is not verified in us-east"):
        store.rollback("fraud", reason="back to v1")  # its served generation is read

    assert [e.seq for e in store.history("fraud")][-2:] == [10, 11]
    assert store.get_policy("fraud").version == 0


# ---------------------------------------------------------------- upgrading from 0004

# What revision 0004 added, on top of the 0003 rows: a policy, an app release bound to
# Production, and events with typed details (a forced promotion, a refusal).
ROWS_0004: dict[str, list[dict[str, Any]]] = {
    "release_policy": [
        {
            "id": 1,
            "model_id": 1,
            "version": 1,
            "document": {"required": ["replicas", "health"], "regions": ["us-east"]},
            "reason": "payments policy",
            "actor": "alice",
            "created_at": T0 + timedelta(minutes=10),
        }
    ],
    "app_release": [
        {
            "id": 1,
            "app": "fraud-service",
            "release": "1.0.0",
            "schema_doc": SIGNATURE,
            "description": None,
            "created_by": "bob",
            "created_at": T0 + timedelta(minutes=11),
        }
    ],
    "app_binding": [
        {
            "release_id": 1,
            "model_id": 1,
            "version_id": None,
            "follow": "production",
            "bound_by": "bob",
            "bound_at": T0 + timedelta(minutes=12),
        }
    ],
}
SERIAL_0004 = ("release_policy", "app_release")
EVENTS_0004 = [
    {
        **OLD_ROWS["event"][-1],
        "seq": seq,
        "kind": kind,
        "subject": subject,
        "to_value": to_value,
        "generation": 5,
        "details": details,
    }
    for seq, kind, subject, to_value, details in [
        (10, "policy", None, "1", None),
        (11, "binding", "fraud-service@1.0.0", "follow production", None),
        (12, "refused", "Production", None, {"gate": "promotion", "reasons": ["no canary"]}),
    ]
]
ALL_0004 = {
    **OLD_ROWS,
    "event": OLD_ROWS["event"] + EVENTS_0004,
    "event_counter": [{"id": 1, "seq": 12}],
    **ROWS_0004,
}


@pytest.fixture
def upgraded_0004(fresh_url: str) -> Iterator[Upgraded]:
    """A 0004 database holding rows of every table, then opened by the store."""
    _migrate_to(fresh_url, "0004")
    _insert_old_rows(fresh_url, ALL_0004)
    before = _raw_rows(fresh_url, ALL_0004)
    assert _revision(fresh_url) == "0004"
    with SqlStore(fresh_url, actor="tester") as store:
        yield Upgraded(fresh_url, before, store)


def test_upgrading_from_0004_reaches_head(upgraded_0004: Upgraded) -> None:
    assert _revision(upgraded_0004.url) == _alembic_head()


def test_every_0004_row_survives_the_upgrade_unchanged(upgraded_0004: Upgraded) -> None:
    after = _raw_rows(upgraded_0004.url, ALL_0004)

    assert {t: len(rows) for t, rows in after.items()} == {
        t: len(rows) for t, rows in ALL_0004.items()
    }
    assert after == upgraded_0004.before


def test_an_upgraded_registry_starts_with_no_heartbeats(upgraded_0004: Upgraded) -> None:
    store = upgraded_0004.store

    assert store.fleet() == []
    assert store.latest_seq() == 12
    assert store.resolve_app_release("fraud-service", "1.0.0") == ("fraud", 2)
    assert store.history("fraud")[-1].details.reasons == ("no canary",)


# ---------------------------------------------------------------- upgrading from 0005

# What revision 0005 added: one resolver's heartbeat.
ROWS_0005: dict[str, list[dict[str, Any]]] = {
    "resolver_heartbeat": [
        {
            "resolver_id": "web-1:4242:fraud@production",
            "model": "fraud",
            "ref": "production",
            "region": "us-east",
            "host": "web-1",
            "pid": 4242,
            "version": 2,
            "generation": 5,
            "seq": 12,
            "degraded": False,
            "reason": None,
            "started_at": T0 + timedelta(minutes=20),
            "seen_at": T0 + timedelta(minutes=21),
        }
    ],
}
ORDER["resolver_heartbeat"] = "resolver_id"
ALL_0005 = {**ALL_0004, **ROWS_0005}


@pytest.fixture
def upgraded_0005(fresh_url: str) -> Iterator[Upgraded]:
    """A 0005 database holding rows of every table, then opened by the store."""
    _migrate_to(fresh_url, "0005")
    _insert_old_rows(fresh_url, ALL_0005)
    before = _raw_rows(fresh_url, ALL_0005)
    assert _revision(fresh_url) == "0005"
    with SqlStore(fresh_url, actor="tester") as store:
        yield Upgraded(fresh_url, before, store)


def test_upgrading_from_0005_reaches_head(upgraded_0005: Upgraded) -> None:
    assert _revision(upgraded_0005.url) == _alembic_head()


def test_every_0005_row_survives_the_upgrade_unchanged(upgraded_0005: Upgraded) -> None:
    after = _raw_rows(upgraded_0005.url, ALL_0005)

    assert {t: len(rows) for t, rows in after.items()} == {
        t: len(rows) for t, rows in ALL_0005.items()
    }
    assert after == upgraded_0005.before


def test_an_upgraded_registry_has_no_tokens_and_takes_new_ones(upgraded_0005: Upgraded) -> None:
    from registry.auth import Role

    store = upgraded_0005.store
    assert store.list_tokens() == []

    made, secret = store.create_token("ci", Role.DEPLOYER, scopes=["payments/*"])

    assert store.authenticate(secret) == made
    assert [h.resolver_id for h in store.fleet()] == ["web-1:4242:fraud@production"]
    assert store.resolve_app_release("fraud-service", "1.0.0") == ("fraud", 2)
