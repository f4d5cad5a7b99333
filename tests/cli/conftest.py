"""Fixtures for the CLI tests: a real registry per test, and a harness that runs ``modelreg``.

Every test gets its own SQLite registry and artifact folder under ``tmp_path``.
Tests that also run on PostgreSQL override ``registry_url`` with the
``backend_url`` fixture. On the server at ``MODELREG_TEST_POSTGRES_URL`` a
database is created and migrated once per session; each test gets a copy of
it, and all of them are dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_harness import Harness
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def registry_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def reg(registry_url: str, tmp_path: Path) -> Harness:
    return Harness(registry_url, tmp_path)


@pytest.fixture
def artifacts_root(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the maintenance database of the test server."""
    server = os.environ.get("MODELREG_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true requires MODELREG_TEST_POSTGRES_URL for the PostgreSQL tests")
        pytest.skip("PostgreSQL tests need MODELREG_TEST_POSTGRES_URL (not set)")
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(server).set(drivername="postgresql+psycopg", database="postgres")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This session's database, migrated by ``modelreg init`` and then left untouched:
    each test gets a copy of it (``CREATE DATABASE … TEMPLATE``)."""
    name = f"modelreg_cli_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _created(pg_admin, name) as url:
        Harness(url, tmp_path_factory.mktemp("pg-template")).json("init")
        yield name


@pytest.fixture
def postgresql_url(pg_admin: Engine, pg_template: str) -> Iterator[str]:
    """A fresh, migrated, empty registry database for one test."""
    name = f"{pg_template}_{uuid.uuid4().hex[:6]}"
    with _created(pg_admin, name, template=pg_template) as url:
        yield url


@contextmanager
def _created(server: Engine, name: str, template: str | None = None) -> Iterator[str]:
    from sqlalchemy import text

    copy = f' TEMPLATE "{template}"' if template else ""
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield server.url.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest) -> str:
    """The registry URL on each backend; use it to override ``registry_url``."""
    return str(request.getfixturevalue(f"{request.param}_url"))
