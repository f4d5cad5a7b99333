"""Fixtures of the store suite only: the shared pool of worker processes, and the
``http`` variant of the contract tests (``HttpStore`` against a real server).

Booting eight spawned interpreters costs seconds, so the pool starts as soon as
collection shows that a selected test needs it, and boots while other tests run.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from server.conftest import ServerProcess

from registry.auth import TOKEN_NAME_RE, Role
from registry.store.base import RegistryStore
from registry.store.http import HttpStore
from registry.store.sql import SqlStore
from registry.store.sql.schema import event_counter_table, metadata

from . import workers
from .support import ProcessPool

POOL_SIZE = 8
_POOL = pytest.StashKey[ProcessPool]()


@pytest.hookimpl(trylast=True)  # after -k / -m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    under_xdist = hasattr(config, "workerinput")  # a worker may never run these tests
    if not under_xdist and any("processes" in getattr(item, "fixturenames", ()) for item in items):
        config.stash[_POOL] = ProcessPool(POOL_SIZE, warm=workers.warm)


def pytest_sessionfinish(session: pytest.Session) -> None:
    pool = session.config.stash.get(_POOL, None)
    if pool is not None:
        pool.close()


@pytest.fixture(scope="session")
def processes(pytestconfig: pytest.Config) -> ProcessPool:
    if _POOL not in pytestconfig.stash:
        pytestconfig.stash[_POOL] = ProcessPool(POOL_SIZE, warm=workers.warm)
    return pytestconfig.stash[_POOL].ready()


# ---------------------------------------------------------------- the http variant
#
# The contract tests of these modules run a third time, through ``HttpStore`` against a
# real ``modelreg server`` (one per module, over SQLite; emptied between tests).
# Only tests that reach the store through ``store`` / ``make_store`` get the variant:
# one that opens the database itself (``store_url``, worker processes, a module store)
# would look at another database than the server's.

# Between them these call every store method the suite uses (the rest, and the REST
# answers themselves, are covered in tests/server); the other contract modules add
# little over HTTP but their time.
HTTP_MODULES = frozenset(
    {
        "test_versions",
        "test_aliases",
        "test_resolve",
        "test_gates_promotion",
        "test_gates_rollback",
        "test_approvals",
        "test_app_releases",
        "test_events",
        "test_lineage",
        "test_fleet",
        "test_list_cursors",
        "test_lifecycle",
        "test_subjects",
        "test_rollback_plan",
        "test_event_pages",
        "test_list_pages",
    }
)
# Every store test needs ``store_url`` through ``make_store``; only asking for it by
# name (or for the others) means opening the database directly.
_OWN_DATABASE = frozenset({"fresh_url", "processes", "module_store", "module_store_url"})
# The server primes its event feed at the log's newest sequence number; started above
# every number a test will reach, the feed never serves events from memory, so emptying
# the database under it cannot leave it holding events of an earlier test.
_FEED_FLOOR = 2**62


@pytest.hookimpl(tryfirst=True)  # a mark, before pytest parametrizes ``backend`` itself
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    used = set(metafunc.fixturenames)
    asked = set(inspect.signature(metafunc.function).parameters)
    if (
        module not in HTTP_MODULES
        or not {"store", "make_store"} & used
        or _OWN_DATABASE & used
        or "store_url" in asked
    ):
        return
    variants = pytest.mark.parametrize(
        ("backend", "via"),
        [
            pytest.param("sqlite", "sql", id="sqlite"),
            pytest.param("postgres", "sql", id="postgres", marks=pytest.mark.postgres),
            pytest.param("sqlite", "http", id="http"),
        ],
    )
    metafunc.definition.add_marker(variants)


@pytest.fixture
def via() -> str:
    """How the tests reach the store: ``sql`` (a ``SqlStore``) or ``http`` (``HttpStore``)."""
    return "sql"


class HttpRegistry:
    """A server over one SQLite registry, and a token per actor the tests act as."""

    def __init__(self, server: ServerProcess, db_url: str) -> None:
        self.server = server
        self.db_url = db_url
        self.tokens: dict[str, str] = {}

    def secret(self, actor: str) -> str:
        if actor not in self.tokens:
            with SqlStore(self.db_url, actor="conftest") as db:
                self.tokens[actor] = db.create_token(actor, Role.ADMIN)[1]
        return self.tokens[actor]

    def empty(self) -> None:
        """No models, versions, events or webhooks; the tokens stay."""
        engine = sa.create_engine(self.db_url, poolclass=sa.NullPool)
        try:
            with engine.begin() as conn:
                for table in reversed(metadata.sorted_tables):
                    if table.name != "api_token" and table is not event_counter_table:
                        conn.execute(table.delete())
                conn.execute(sa.update(event_counter_table).values(seq=0))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def http_registry(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[HttpRegistry]:
    folder = tmp_path_factory.mktemp("http-store")
    shutil.copyfile(sqlite_template, folder / "reg.db")
    db_url = f"sqlite:///{folder}/reg.db"
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.update(event_counter_table).values(seq=_FEED_FLOOR))
    engine.dispose()
    server = ServerProcess(db_url, folder / "server.log", args=["--no-webhooks"]).start()
    try:
        yield HttpRegistry(server, db_url)
    finally:
        server.stop()


@pytest.fixture
def make_store(
    make_store: Callable[..., RegistryStore], via: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., RegistryStore]]:
    if via != "http":
        yield make_store
        return
    registry: HttpRegistry = request.getfixturevalue("http_registry")
    registry.empty()
    opened: list[HttpStore] = []

    def make(actor: str = "tester") -> HttpStore:
        if not TOKEN_NAME_RE.fullmatch(actor):
            pytest.skip(f"over HTTP the actor is a token's name, which {actor!r} cannot be")
        opened.append(HttpStore(registry.server.url, token=registry.secret(actor)))
        return opened[-1]

    yield make
    for store in opened:
        store.close()
