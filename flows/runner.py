"""The task runner is a setting: threads by default, a Dask cluster when one machine is
not enough (``MODELREG_TASK_RUNNER=dask``, and ``MODELREG_DASK_ADDRESS`` to join an
existing cluster instead of starting a local one)."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from registry.config import env_value

DEFAULT_THREADS = 8


def task_runner(kind: str | None = None, address: str | None = None) -> Any:
    kind = (kind or env_value("MODELREG_TASK_RUNNER") or "threads").lower()
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=DEFAULT_THREADS)
    if kind == "dask":
        from prefect_dask.task_runners import DaskTaskRunner

        address = address or env_value("MODELREG_DASK_ADDRESS")
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": 2, "threads_per_worker": 2, "dashboard_address": None}
        )
    raise ValueError(f"unknown task runner {kind!r}: use threads or dask")
