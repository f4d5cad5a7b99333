"""prefect.yaml: every deployment loads its flow, and its parameters fit the flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from flow_helpers import MODEL, open_store
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]
# What the UI's run form (or ``--param``) must supply for the manual deployments.
FILLED_IN_BY_A_PERSON: dict[str, dict[str, Any]] = {
    "promote": {"version": 3},
    "rollback": {"reason": "on-call: false positives up"},
}


def deployments() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert config["pull"] == []  # run from the worker's folder, not the deploying machine's
    return list(config["deployments"])


def test_the_five_deployments_are_declared() -> None:
    assert {d["entrypoint"].split(":")[1] for d in deployments()} == {
        "retrain_flow",
        "promote_flow",
        "rollback_flow",
        "drain_flow",
        "backup_flow",
    }


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_a_deployment_loads_its_flow_with_its_parameters(deployment: dict[str, Any]) -> None:
    # A module path, not a file: a process worker runs each flow in a temporary folder,
    # where flows/retrain.py does not exist but the installed package does.
    assert not deployment["entrypoint"].split(":")[0].endswith(".py")
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    filled_in = FILLED_IN_BY_A_PERSON.get(flow.name, {})
    # Raises if a parameter does not fit the flow, or a required one is neither set nor
    # one that the person starting the run fills in.
    flow.validate_parameters({**(deployment.get("parameters") or {}), **filled_in})
    assert deployment["work_pool"]["name"] == "modelreg"


def test_retraining_is_scheduled_and_the_drain_runs_every_minute() -> None:
    by_flow = {d["entrypoint"].split(":")[1]: d for d in deployments()}
    assert by_flow["retrain_flow"]["schedules"][0]["cron"] == "0 3 * * *"
    assert by_flow["drain_flow"]["schedules"][0]["interval"] == 60


def test_the_backup_runs_nightly_keeping_fourteen_and_refuses_keeping_none() -> None:
    from prefect.exceptions import ParameterTypeError

    [backup] = [d for d in deployments() if d["entrypoint"] == "flows.backup:backup_flow"]
    assert backup["name"] == "nightly-backup"
    assert backup["schedules"] == [{"cron": "30 2 * * *", "timezone": "UTC"}]
    assert backup["parameters"] == {"keep": 14}
    assert backup["concurrency_limit"] == 1  # two backups never prune each other's shelf
    flow = load_flow_from_entrypoint(backup["entrypoint"])
    with pytest.raises(ParameterTypeError, match="greater than or equal to 1"):
        flow.validate_parameters({"keep": 0})


def test_a_run_from_a_deployment_records_the_deployment_that_moved_production(
    released_home: Path,
) -> None:
    """What a worker does for the on-call deployment's run, in this process."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.rollback import rollback_flow

    deployment_id = rollback_flow.to_deployment(name="on-call").apply()
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"reason": "on-call: paged from the UI", "model": MODEL}
        )
    state = run_flow(rollback_flow, flow_run=flow_run, return_type="state")
    assert state.is_completed(), state.message
    with open_store(released_home) as store:
        assert store.get_model(MODEL).production == 1
        [event] = [e for e in store.history(MODEL) if e.kind == "rollback"]
    origin = event.details.origin
    assert origin is not None
    assert (origin.flow, origin.run_id, origin.run_name) == (
        "rollback",
        str(flow_run.id),
        flow_run.name,
    )
    assert origin.deployment == "rollback/on-call"
    assert event.reason == "on-call: paged from the UI"
