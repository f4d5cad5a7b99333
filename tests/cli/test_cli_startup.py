"""What a ``modelreg`` read command loads before it answers (#13: < 0.5 s a command).

Start-up is most of a read command's time, so these pin what it must not pay for:
no Alembic on a registry whose schema is current, none of the pipeline's heavy
libraries. (The tables are SQLModel classes, the store's declared stack, so sqlmodel
and SQLAlchemy's ORM load; every query is Core.) And the cheap path must not skip
a migration that is due: a registry at an older revision is still upgraded by the
first command that opens it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import registry.store.migrations
from registry.store.sql import SqlStore
from registry.store.sql.engine import SCHEMA_HEAD, Database

MODEL = "fraud-detector"
# Never needed to read the registry: each costs from 0.1 s to several seconds to import.
NOT_ON_THE_READ_PATH = (
    "alembic",
    "prefect",
    "great_expectations",
    "sklearn",
    "pandas",
    "numpy",
    "boto3",
    "fastapi",
    "uvicorn",
    "registry.store.replicated",  # only with a read replica (--read-registry)
)
# Runs one command in-process (standalone_mode=False: click does not exit) and prints
# which of the modules above it loaded.
PROBE = (
    "import sys\n"
    "from registry.cli.main import cli\n"
    "code = cli.main(sys.argv[1:], prog_name='modelreg', standalone_mode=False)\n"
    "print('LOADED ' + ','.join(m for m in {names!r} if m in sys.modules), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    """A SQLite registry at the current schema, with one model."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = SqlStore(url, actor="test")
    try:
        store.create_model(MODEL)
    finally:
        store.close()
    return url


def _loaded_by(url: str, *args: str) -> list[str]:
    probe = PROBE.format(names=NOT_ON_THE_READ_PATH)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        env=_env(url),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    return [m for m in line.removeprefix("LOADED ").split(",") if m]


def _env(url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELREG_") or k == "MODELREG_AGENT"
    }
    env["MODELREG_URL"] = url
    return env


@pytest.mark.parametrize(
    "args",
    [
        ("models", "--json"),
        ("versions", MODEL),
        ("history", MODEL),
        ("events", "--limit", "5"),
        ("lineage", "impact", "--dataset", "transactions@2026-11-05"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_read_command_loads_no_orm_no_alembic_and_no_heavy_library(
    registry_url: str, args: tuple[str, ...]
) -> None:
    assert _loaded_by(registry_url, *args) == []


def _at_revision(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(registry.store.migrations.__file__).parent))
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def test_a_read_command_on_an_older_schema_still_migrates_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    _at_revision(url, "0007")  # before 0008's event indexes
    assert Database(url).schema_revision() == "0007"

    modelreg = Path(sys.executable).parent / "modelreg"
    done = subprocess.run(
        [str(modelreg), "events", "--limit", "5"],
        env=_env(url),
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert Database(url).schema_revision() == SCHEMA_HEAD
    with sqlite3.connect(path) as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"ix_event_name_seq", "ix_event_name_kind_seq", "ix_event_kind_seq"} <= indexes
