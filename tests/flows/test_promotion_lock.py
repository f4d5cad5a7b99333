"""The model's promotion lock, which the promote and rollback tasks hold around a flip:
one holder per model at a time, on both backends.

(It belongs with ``registry/release/lock.py`` in ``tests/release/``; it lives here
until that folder takes it, as the flows are its only callers.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from registry import LockTimeout
from registry.release.lock import promotion_lock


def hold_and_try(url: str) -> None:
    """While one holder has the lock, a second one times out; afterwards it gets it."""
    with promotion_lock(url, "fraud-detector"), ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(_take, url, "fraud-detector", 0.3)
        with pytest.raises(LockTimeout, match="fraud-detector"):
            second.result()
        assert pool.submit(_take, url, "other-model", 0.3).result() is True
    assert _take(url, "fraud-detector", 0.3) is True


def _take(url: str, name: str, timeout: float) -> bool:
    with promotion_lock(url, name, timeout=timeout):
        return True


def test_the_promotion_lock_is_one_at_a_time_per_model_on_sqlite(tmp_path: Path) -> None:
    hold_and_try(f"sqlite:///{tmp_path}/registry.db")


@pytest.mark.postgres
def test_the_promotion_lock_is_one_at_a_time_per_model_on_postgres(
    postgres_server_url: str,
) -> None:
    hold_and_try(postgres_server_url)
