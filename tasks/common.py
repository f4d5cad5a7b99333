"""Retry and caching policy shared by the tasks."""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE

from registry import ArtifactUnavailable, RegistryError, RegistryUnavailable

# Cache on the business inputs (and the task's code), never on the flow run: a
# re-run of a failed or crashed run finds what already succeeded and skips it.
BY_INPUTS = INPUTS + TASK_SOURCE

# Jitter is written into the delays: Prefect's retry_jitter_factor does nothing for tasks.
RETRY_DELAYS = [1.0, 3.7, 9.1]


def transient_only(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a task only when its error may go away (an endpoint down, a lock held).

    A plain function on purpose: Prefect silently ignores a partial or a callable object.
    """
    try:
        state.result()
    except (RegistryUnavailable, ArtifactUnavailable, OSError, TimeoutError):
        return True
    except RegistryError:
        return False  # invalid input, refused gate, conflict: the same again next time
    except Exception:
        return True
    return False
