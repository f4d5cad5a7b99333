"""Shared fixtures: a registry store on every backend, and registration helpers.

``store`` runs each test on SQLite (a fresh file) and on PostgreSQL (one database
per session at ``MODELREG_TEST_POSTGRES_URL``, emptied between tests); ``module_store``
is one store per test module and backend, for tests that only read. Without that
variable the PostgreSQL cases skip, except under ``CI=true`` where they fail.
Light on purpose: no Prefect, no scikit-learn.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from registry.models import ArtifactRef
from registry.store.sql import SqlStore
from registry.store.sql.schema import event_counter_table, metadata

# The warm agent (registry/cli/agent.py) is off for the suite: a test's `modelreg`
# process runs in-process and leaves no process behind. tests/cli/test_agent.py turns
# it on, in a private folder per test, and checks the two ways answer alike.
os.environ["MODELREG_AGENT"] = "off"
# The processes the tests start (CLI, servers, health workers) import the registry
# afresh; with PYTHONDONTWRITEBYTECODE in the environment each would compile its sources
# again. Let the first compile them, as an installed package is.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

POSTGRES_ENV = "MODELREG_TEST_POSTGRES_URL"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

# The registration metadata of DESIGN.md, with every optional part filled in.
_FULL_META: dict[str, Any] = {
    "metrics": {"auc": 0.912, "f1": 0.79, "latency_p99_ms": 3.1},
    "params": {"n_estimators": 200, "learning_rate": 0.1},
    "tags": {"team": "payments", "use_case": "fraud"},
    "signature": {
        "features": [
            {"name": "amount", "dtype": "float64"},
            {"name": "merchant_category", "dtype": "category"},
        ],
        "target": {"name": "is_fraud", "dtype": "int64"},
        "preprocessing_version": "fe-2.3",
    },
    "lineage": {
        "datasets": [
            {
                "name": "transactions",
                "version": "2026-11-01",
                "fingerprint": "sha256:" + "ab" * 32,
                "rows": 120000,
                "date_range": ["2026-10-01", "2026-10-31"],
            }
        ],
        "feature_pipeline": "fe-2.3",
        "code": {
            "repository": "git@example.com:payments/fraud.git",
            "commit": "9f1c2ab",
            "branch": "main",
        },
    },
    "environment": {"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
    "run_id": "prefect-flow-run-id",
}


def artifact_for(data: bytes, *, format: str = "skops") -> ArtifactRef:
    """The content-addressed reference a local artifact store would give ``data``."""
    digest = hashlib.sha256(data).hexdigest()
    return ArtifactRef(
        uri=f"file:///artifacts/{digest[:2]}/{digest}",
        sha256=digest,
        size=len(data),
        format=format,
    )


def full_meta(**overrides: Any) -> dict[str, Any]:
    """A fresh copy of DESIGN.md's meta.json; keyword arguments replace top-level keys."""
    meta = copy.deepcopy(_FULL_META)
    meta.update(overrides)
    return meta


@pytest.fixture(name="artifact_for")
def _artifact_for() -> Callable[..., ArtifactRef]:
    return artifact_for


@pytest.fixture(name="full_meta")
def _full_meta() -> Callable[..., dict[str, Any]]:
    return full_meta


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The server URL, or a skip (a failure under CI=true) when it is not configured."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{POSTGRES_ENV} is required when CI=true (the PostgreSQL suite must run)")
    pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}, e.g. postgresql://postgres@127.0.0.1/test")


class PostgresServer:
    """Creates and drops throwaway databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url).set(drivername="postgresql+psycopg")
        self.admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def create_database(self, prefix: str = "modelreg_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            # Commits skip the WAL flush: only crash durability changes (visibility and
            # locking do not), and a throwaway database does not need it. 3x faster.
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server(postgres_server_url: str) -> Iterator[PostgresServer]:
    server = PostgresServer(postgres_server_url)
    yield server
    server.close()


class PostgresDatabase:
    """The session's migrated database, emptied in place between tests.

    Emptied with DELETE and sequence restarts rather than TRUNCATE: the end state is the
    same (no rows, identities from 1, event counter at 0), but TRUNCATE swaps every
    table's files and measured 150-220 ms per test on a busy server against 10-30 ms.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        SqlStore(url, actor="conftest").close()  # migrate once
        self.engine = sa.create_engine(url, pool_size=1)
        self._schemas: dict[str, str] = {}  # URL → schema name
        with self.engine.connect() as conn:
            self._sequences = list(
                conn.execute(
                    sa.text(
                        "SELECT sequence_name FROM information_schema.sequences"
                        " WHERE sequence_schema = current_schema()"
                    )
                ).scalars()
            )
        # The whole reset as one batch: one round trip per test instead of one per
        # table and sequence (~35 statements).
        quote = self.engine.dialect.identifier_preparer.quote
        self._reset_sql = "; ".join(
            [
                *(
                    f"DELETE FROM {quote(table.name)}"
                    for table in reversed(metadata.sorted_tables)
                    if table is not event_counter_table
                ),
                *(f"ALTER SEQUENCE {quote(sequence)} RESTART" for sequence in self._sequences),
                f"UPDATE {quote(event_counter_table.name)} SET seq = 0",
            ]
        )

    def create_schema(self, prefix: str) -> str:
        """A URL whose connections see only a new, empty schema of this database: a fresh
        registry for the store (all its objects live in one schema), for milliseconds
        where CREATE DATABASE costs about a second on a busy server."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        url = make_url(self.url).update_query_dict({"options": f"-csearch_path={name}"})
        rendered = url.render_as_string(hide_password=False)
        self._schemas[rendered] = name
        return rendered

    def drop_schema(self, url: str) -> None:
        name = self._schemas.pop(url)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')

    def reset(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._reset_sql)

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Iterator[PostgresDatabase]:
    url = postgres_server.create_database()
    database = PostgresDatabase(url)
    yield database
    database.close()
    postgres_server.drop_database(url)


# ---------------------------------------------------------------- stores


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file: copying it is faster than migrating per test."""
    path = tmp_path_factory.mktemp("template") / "reg.db"
    SqlStore(f"sqlite:///{path}", actor="conftest").close()
    return path


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty registry database on ``backend``."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "reg.db")
        return f"sqlite:///{tmp_path}/reg.db"
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    database.reset()
    return database.url


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database the registry has never touched: a new SQLite file, or on PostgreSQL a
    new empty schema that the URL's connections use (see ``create_schema``)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    url = database.create_schema("fresh")
    yield url
    database.drop_schema(url)


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A registry of its own for one test module (a file, or a PostgreSQL schema): build
    state once, then let many tests read it (or check that they changed nothing)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("module") / "reg.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    url = database.create_schema("module")
    yield url
    database.drop_schema(url)


@pytest.fixture(scope="module")
def module_store(module_store_url: str) -> Iterator[SqlStore]:
    with SqlStore(module_store_url, actor="tester") as store:
        yield store


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., SqlStore]]:
    """Open more stores on the test database (closed at teardown)."""
    opened: list[SqlStore] = []

    def make(actor: str = "tester") -> SqlStore:
        opened.append(SqlStore(store_url, actor=actor))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., SqlStore]) -> SqlStore:
    return make_store()
