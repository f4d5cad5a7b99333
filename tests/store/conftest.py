"""Fixtures of the store suite only: the shared pool of worker processes.

Booting eight spawned interpreters costs seconds, so the pool starts as soon as
collection shows that a selected test needs it, and boots while other tests run.
"""

from __future__ import annotations

import pytest

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
