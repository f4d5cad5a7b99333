"""The consistency check (``registry.consistency``, ``modelreg check``): a registry after
a realistic workload passes it, and each invariant fires when a copy of that registry is
corrupted directly with SQL (the only way to break them: the store keeps every one), on
SQLite and PostgreSQL. The copies are restores of one backup of the healthy registry.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from store.support import artifact

from registry.backup import backup, restore
from registry.consistency import INVARIANTS, ConsistencyReport, check
from registry.errors import InvalidInput
from registry.models import VersionCreate
from registry.retention_models import CollectedArtifact
from registry.store.sql import SqlStore
from registry.store.sql.engine import normalise_url

from .test_backup import MODEL, OTHER, build_world, registry_urls
from .test_backup_cli import modelreg

__all__ = ["registry_urls"]  # the fixture, shared with test_backup

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SCRATCH, RENAMED = "scratch", "team/renamed"


def workload(store: SqlStore) -> None:
    """``build_world`` (registrations, releases through the gates, a rollback, aliases,
    a policy, an app release binding, tokens, webhooks), then deletions (and gc's record
    of the bytes it removed, on the tombstone) and a rename."""
    build_world(store)
    for data in (b"scratch-1", b"scratch-2"):
        store.register(SCRATCH, artifact(data), VersionCreate.parse({"metrics": {"auc": 0.5}}))
    store.delete_version(SCRATCH, 1)
    store.delete_model(SCRATCH)  # a tombstone, and the name is free again
    gone = artifact(b"scratch-1")  # what gc then logs on the tombstone
    store.record_collection(
        [CollectedArtifact(sha256=gone.sha256, size=gone.size, store="artifacts")],
        reason="gc",
    )
    store.register(SCRATCH, artifact(b"scratch-again"), VersionCreate())
    store.register("team/old-name", artifact(b"renamed-1"), VersionCreate())
    store.rename_model("team/old-name", RENAMED)
    store.set_aliases(OTHER, {"candidate": 1}, reason="first")
    store.update_version(OTHER, 1, tags={"reviewed": "yes"})


@dataclass(frozen=True)
class Healthy:
    backend: str
    url: str
    path: Path  # a backup of it: every test corrupts its own restored copy


@pytest.fixture(scope="module", params=BACKENDS)
def healthy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Healthy]:
    backend = str(request.param)
    folder = tmp_path_factory.mktemp("consistency")
    database = None
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'healthy.db'}"
    else:
        database = request.getfixturevalue("postgres_database")
        url = database.create_schema("consistency")
    with SqlStore(url, actor="builder") as store:
        workload(store)
    backup(url, folder / "healthy.backup")
    yield Healthy(backend, url, folder / "healthy.backup")
    if database is not None:
        database.drop_schema(url)


@pytest.fixture
def copy_url(healthy: Healthy, registry_urls: Callable[[str], str]) -> str:
    url = registry_urls(healthy.backend)
    restore(healthy.path, url)
    return url


def tamper(url: str, statement: str) -> None:
    """Run SQL on the database as a person with a shell would: no store, no foreign key
    enforcement (SQLite's is off on a plain connection; PostgreSQL's triggers are
    skipped in replica mode)."""
    engine = sa.create_engine(normalise_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.execute(
                sa.text(statement),
                {"model": MODEL, "other": OTHER, "sha": uuid.uuid4().hex * 2},
            )
    finally:
        engine.dispose()


FRAUD = "(SELECT id FROM registered_model WHERE name = :model)"
FRAUD_V = f"model_id = {FRAUD} AND version = "
LAST_FRAUD_EVENT = f"(SELECT max(seq) FROM event WHERE model_id = {FRAUD})"

# invariant, SQL that breaks it, a piece of the line that must name the damage
CORRUPTIONS = [
    ("event-seq", "DELETE FROM event WHERE seq = 7", "gaps"),
    ("event-seq", "UPDATE event_counter SET seq = seq + 3", "event counter is at"),
    (
        "foreign-keys",
        "UPDATE model_version SET model_id = 9999 WHERE id = (SELECT max(id) FROM model_version)",
        "model_version.model_id points at no registered_model.id (e.g. 9999)",
    ),
    (
        "foreign-keys",
        "UPDATE event SET model_id = 9999 WHERE seq = (SELECT max(seq) FROM event)",
        "event.model_id points at no registered_model.id",
    ),
    (
        "foreign-keys",
        "UPDATE version_check SET version_id = 9999 WHERE id = (SELECT min(id) FROM version_check)",
        "version_check.version_id points at no model_version.id",
    ),
    (
        "foreign-keys",
        "UPDATE version_replica SET version_id = version_id + 9999",
        "version_replica.version_id points at no model_version.id",
    ),
    (
        "foreign-keys",
        "UPDATE app_binding SET version_id = 9999",
        "app_binding.version_id points at no model_version.id",
    ),
    (
        "model-log",
        f"UPDATE event SET model_name = 'someone-else' WHERE seq = {LAST_FRAUD_EVENT}",
        "names it 'someone-else'",
    ),
    (
        "model-log",
        f"UPDATE event SET at = (SELECT min(at) FROM event) WHERE seq = {LAST_FRAUD_EVENT}",
        "is dated before event",
    ),
    (
        "generation",
        "UPDATE registered_model SET generation = generation + 1 WHERE name = :model",
        "but its newest event has",
    ),
    (
        "version-numbers",
        "UPDATE registered_model SET last_version = last_version + 1 WHERE name = :model",
        "last version is 5",
    ),
    (
        "version-numbers",
        f"UPDATE model_version SET sha256 = :sha WHERE {FRAUD_V} 1",
        "v1 holds other bytes than it was registered with",
    ),
    (
        "stages",
        f"UPDATE model_version SET stage = 'Staging' WHERE {FRAUD_V} 1",
        "v1 is Staging, the log replays it to Archived",
    ),
    (
        "stages",
        f"UPDATE model_version SET stage = 'Production' WHERE {FRAUD_V} 1",
        "2 versions in Production: [1, 2]",
    ),
    (
        "stages",
        f"UPDATE model_version SET served_generation = NULL WHERE {FRAUD_V} 1",
        "v1's rollback index",
    ),
    (
        "aliases",
        "UPDATE model_alias SET version_id = (SELECT id FROM model_version WHERE "
        f"{FRAUD_V} 1) WHERE alias = 'challenger'",
        "alias 'challenger' points at v1, the log at v4",
    ),
    (
        "production",
        f"UPDATE model_version SET stage = 'Archived' WHERE model_id = {FRAUD} "
        "AND stage = 'Production'",
        "Production is nothing, its timeline ends on v2",
    ),
    (
        "rollback-target",
        f"UPDATE model_version SET rolled_back = false WHERE {FRAUD_V} 3",
        "a rollback would go to v3, the log says v1",
    ),
    (
        "artifacts",
        f"UPDATE model_version SET sha256 = 'not-a-sha256' WHERE {FRAUD_V} 2",
        "'not-a-sha256' is not 64 lowercase hex digits",
    ),
    (
        "attributes",
        "DELETE FROM version_attribute WHERE kind = 'metric' AND key = 'auc' AND version_id = "
        f"(SELECT id FROM model_version WHERE {FRAUD_V} 2)",
        "fraud v2: the search rows do not mirror",
    ),
    ("policies", "UPDATE release_policy SET version = 2", "policy versions are [2]"),
    (
        "bindings",
        "UPDATE app_binding SET version_id = (SELECT id FROM model_version WHERE model_id = "
        "(SELECT id FROM registered_model WHERE name = :other) AND version = 1)",
        "binds fraud to a version of payments/churn",
    ),
    (
        "tombstones",
        "UPDATE registered_model SET name = 'scratch-back' WHERE name LIKE '~deleted/%'",
        "was deleted but is named 'scratch-back'",
    ),
    (
        "tokens",
        "UPDATE api_token SET token_hash = 'mrt_' || substr(token_hash, 1, 43) WHERE name = 'ci'",
        "token 'ci' stores its secret",
    ),
    ("webhooks", 'UPDATE webhook SET "cursor" = 1000000', "cursor 1000000 is past"),
    ("schema", "UPDATE alembic_version SET version_num = '0001'", "the schema is at '0001'"),
]


def case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}:{case[2][:40]}"


# ---------------------------------------------------------------- healthy


def test_a_registry_after_a_realistic_workload_is_consistent(healthy: Healthy) -> None:
    report = check(healthy.url)

    assert report.violations == ()
    assert report.ok
    assert report.summary == (
        f"consistent: {report.models} models, {report.versions} versions, {report.events} events"
    )
    # fraud, payments/churn, scratch (again) and team/renamed; the tombstone is not a model
    assert report.models == 4
    assert report.versions == 4 + 1 + 1 + 1
    with SqlStore(healthy.url, actor="reader") as store:
        assert report.events == store.latest_seq() > 30
        assert check(store) == report  # a store or its URL
        collected = [e for e in store.events(limit=10_000) if e.kind == "artifact.collected"]
        assert len(collected) == 1  # logged on the tombstone, under its name
        assert re.fullmatch(rf"~deleted/\d+/{SCRATCH}", collected[0].model)


def test_a_restored_copy_is_as_consistent_as_its_source(healthy: Healthy, copy_url: str) -> None:
    assert check(copy_url) == check(healthy.url)


def test_the_check_changes_nothing(copy_url: str) -> None:
    with SqlStore(copy_url, actor="reader") as store:
        before = (store.events(limit=10_000), store.list_models(), store.latest_seq())
        check(copy_url)
        tamper(copy_url, f"UPDATE model_version SET stage = 'Staging' WHERE {FRAUD_V} 1")
        assert not check(copy_url).ok
        check(copy_url)
        after = (store.events(limit=10_000), store.list_models(), store.latest_seq())
    assert after[0] == before[0] and after[2] == before[2]


def test_a_server_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="reads a database"):
        check("http://127.0.0.1:9")


# ---------------------------------------------------------------- each invariant fires


@pytest.mark.parametrize(
    ("invariant", "statement", "named"), CORRUPTIONS, ids=map(case_id, CORRUPTIONS)
)
def test_each_invariant_fires_on_a_corrupted_copy(
    copy_url: str, invariant: str, statement: str, named: str
) -> None:
    assert check(copy_url).ok  # the copy starts healthy

    tamper(copy_url, statement)
    report = check(copy_url)

    assert not report.ok
    assert invariant in report.invariants(), report.violations
    lines = [v.message for v in report.violations if v.invariant == invariant]
    assert any(named in line for line in lines), lines
    assert all("\n" not in str(v) for v in report.violations)


def test_every_invariant_has_a_corruption_case() -> None:
    assert set(INVARIANTS) == {case[0] for case in CORRUPTIONS}


# ---------------------------------------------------------------- the CLI


def test_modelreg_check_exits_0_with_the_counts(copy_url: str, tmp_path: Path) -> None:
    result = modelreg("--registry", copy_url, "check", home=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{check(copy_url).summary}\n"
    assert result.stdout.startswith("consistent: 4 models, 7 versions, ")
    assert result.stderr == ""


def test_modelreg_check_prints_one_line_per_violation_and_exits_1(
    copy_url: str, tmp_path: Path
) -> None:
    tamper(copy_url, f"UPDATE model_version SET stage = 'Production' WHERE {FRAUD_V} 1")
    expected = check(copy_url)

    result = modelreg("--registry", copy_url, "check", home=tmp_path)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [str(v) for v in expected.violations]
    assert result.stderr.splitlines() == [f"error: {expected.summary}"]
    assert expected.summary.startswith("inconsistent: ")


def test_modelreg_check_json(copy_url: str, tmp_path: Path) -> None:
    tamper(copy_url, 'UPDATE webhook SET "cursor" = 1000000')

    result = modelreg("--registry", copy_url, "check", "--json", home=tmp_path)

    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["consistent"] is False
    assert body == check(copy_url).to_dict()
    assert {v["invariant"] for v in body["violations"]} == {"webhooks"}


def test_modelreg_check_refuses_a_server_url_with_exit_2(tmp_path: Path) -> None:
    result = modelreg("--registry", "http://127.0.0.1:9", "check", home=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: the consistency check reads a database: give sqlite:///… or postgresql://…"
    ]


def test_modelreg_restore_runs_the_check(
    healthy: Healthy, registry_urls: Callable[[str], str], tmp_path: Path
) -> None:
    target = registry_urls(healthy.backend)

    result = modelreg("restore", str(healthy.path), "--registry", target, home=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("restored ")
    assert lines[1] == f"the restored registry is {check(target).summary}"


def test_modelreg_restore_of_an_inconsistent_backup_says_so_and_exits_1(
    copy_url: str, registry_urls: Callable[[str], str], healthy: Healthy, tmp_path: Path
) -> None:
    tamper(copy_url, f"UPDATE model_version SET stage = 'Staging' WHERE {FRAUD_V} 1")
    damaged = tmp_path / "damaged.backup"
    backup(copy_url, damaged)
    target = registry_urls(healthy.backend)

    result = modelreg("restore", str(damaged), "--registry", target, home=tmp_path)

    assert result.returncode == 1
    report: ConsistencyReport = check(target)
    assert result.stdout.splitlines()[1:] == [str(v) for v in report.violations]
    assert result.stderr.splitlines() == [f"error: the restored registry is {report.summary}"]
    assert "stages" in report.invariants()
