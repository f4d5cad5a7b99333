"""What every task shares: the retry rule, the cache policy, and the run as an origin."""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE

from registry import TRANSIENT_ERRORS
from registry.models import Origin

# Cache on the business inputs (and the task's code), never on the flow run: a
# re-run of a failed or crashed run finds what already succeeded and skips it.
BY_INPUTS = INPUTS + TASK_SOURCE

# Jitter is written into the delays: Prefect's retry_jitter_factor does nothing for tasks.
RETRY_DELAYS = [1.0, 3.7, 9.1]


def transient_only(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a task only when its error may go away: the registry or the artifact store
    unreachable, or another promotion holding the model's lock. Anything else (bad
    input, a refused gate, a failed check, a bug) fails the same way next time.

    A plain function on purpose: Prefect silently ignores a partial or a callable object.
    """
    try:
        state.result()
    except TRANSIENT_ERRORS:
        return True
    except Exception:
        return False
    return False


def run_origin() -> Origin | None:
    """The flow run (and deployment) this task runs in, for the registry's event log."""
    from prefect.runtime import deployment, flow_run

    run_id = flow_run.id
    if not run_id:
        return None
    flow = flow_run.flow_name
    deployed = deployment.name
    return Origin(
        flow=flow,
        run_id=str(run_id),
        run_name=flow_run.name,
        deployment=f"{flow}/{deployed}" if deployed else None,
        url=flow_run.ui_url,  # None unless the Prefect UI's URL is known (PREFECT_UI_URL)
    )
