"""Fixtures of the store suite only: the shared pool of worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import workers
from .support import ProcessPool


@pytest.fixture(scope="session")
def processes() -> Iterator[ProcessPool]:
    pool = ProcessPool(8)
    pool.run_together(workers.warm, [()] * pool.size)  # every worker imports the registry
    yield pool
    pool.close()
