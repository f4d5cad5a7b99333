"""prefect.yaml: every deployment loads its flow, and its parameters fit the flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
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


def test_the_four_deployments_are_declared() -> None:
    assert {d["entrypoint"].split(":")[1] for d in deployments()} == {
        "retrain_flow",
        "promote_flow",
        "rollback_flow",
        "drain_flow",
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
