"""Human approval: with a policy that asks for it, a release pauses at promote
(Prefect's wait-for-input) until someone other than the registrant approves, and is
refused at the policy's timeout otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flow_helpers import (
    ACTOR,
    MODEL,
    ROWS,
    THIRD,
    fraud_policy,
    history,
    production,
    refusals,
    register_staged,
    set_policy,
    wait_for,
)

from flows.promote import promote_flow
from flows.retrain import retrain_flow
from registry import Event

pytestmark = pytest.mark.slow

# Long enough for the test to see the first pause, resume it, and see the second before
# the deadline (several seconds on a busy machine); every second of it is waited out.
APPROVAL_TIMEOUT_S = 15


@pytest.fixture
def background() -> Iterator[Callable[..., Future[Any]]]:
    """Start a flow run in a thread of its own (the test plays the approver)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit


def require_approval(home: Path, timeout_s: float) -> None:
    approvals = {"required": 1, "timeout_s": timeout_s}
    set_policy(home, fraud_policy(approvals=approvals), reason="test: a person signs off")


def requested(home: Path, version: int) -> Event:
    """The run's ``approval requested`` event, once it is in the history."""

    def find() -> Event | None:
        return next(
            (
                e
                for e in history(home)
                if e.kind == "approval" and e.subject == "requested" and e.version == version
            ),
            None,
        )

    event: Event = wait_for(f"v{version}'s approval request", find, timeout=240)
    return event


def paused_run_id(home: Path, version: int, attempt: int = 1) -> UUID:
    """The waiting run's id (from its request's origin), once it is paused for input."""
    from prefect.client.orchestration import get_client

    origin = requested(home, version).details.origin
    assert origin is not None and origin.run_id is not None
    run_id = UUID(origin.run_id)

    def paused() -> bool:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
        return bool(
            state is not None
            and state.is_paused()
            and state.state_details.pause_key == f"approval-{version}-{attempt}"
        )

    wait_for(f"run {run_id} paused (attempt {attempt})", paused, timeout=60)
    return run_id


def resume(run_id: UUID, approver: str, reason: str) -> None:
    """What the Prefect UI's Resume button does with the form filled in."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(run_id, run_input={"approver": approver, "reason": reason})


def test_a_retrain_waits_at_promote_until_someone_approves(
    released_home: Path, background: Callable[..., Future[Any]]
) -> None:
    require_approval(released_home, timeout_s=60)
    run = background(retrain_flow, model=MODEL, as_of=THIRD, rows=ROWS, return_state=True)
    run_id = paused_run_id(released_home, 3)
    assert not run.done() and production(released_home) == 2  # waiting, not promoted
    resume(run_id, "alice", "looks good")
    state = run.result(timeout=120)
    assert state.is_completed(), state.message
    assert production(released_home) == 3
    events = history(released_home)
    [approval] = [e for e in events if e.kind == "approval" and e.subject == "approval"]
    assert (approval.actor, approval.reason, approval.version) == ("alice", "looks good", 3)
    assert approval.details.origin is not None
    assert approval.details.origin.run_id == str(run_id)
    flip = next(e for e in events if e.version == 3 and e.to_value == "Production")
    assert flip.seq > approval.seq


def test_the_registrants_own_approval_does_not_count_and_the_timeout_refuses(
    released_home: Path, background: Callable[..., Future[Any]]
) -> None:
    """One run covers both ways of getting no approval: the registrant's own resume is
    not one (the run pauses again), and at the policy's timeout the promotion is
    refused with the reason, as every refused release is. (A pause that times out
    without any resume is the same path: the second pause here is one.)"""
    require_approval(released_home, timeout_s=APPROVAL_TIMEOUT_S)
    candidate = register_staged(released_home, artifact_of=2, golden_of=2)
    run = background(promote_flow, version=candidate, model=MODEL, return_state=True)
    run_id = paused_run_id(released_home, candidate)
    resume(run_id, ACTOR, "I trained it, I vouch for it")
    # It keeps waiting: paused again for a second answer.
    assert paused_run_id(released_home, candidate, attempt=2) == run_id
    assert not run.done()
    state = run.result(timeout=120)
    assert production(released_home) == 2
    [refusal] = refusals(released_home, candidate)
    missing = (
        f"no approval within {APPROVAL_TIMEOUT_S}s: needs 1 from someone other than {ACTOR},"
        " has 0 (none)"
    )
    assert refusal.details.reasons[0] == missing
    assert any("approval" in r for r in refusal.details.reasons[1:])  # the gate agrees
    assert requested(released_home, candidate).details.origin is not None
    assert not [e for e in history(released_home) if e.subject == "approval"]
    # The run ends as every refused release does, with the reason.
    assert state.is_failed() and state.name == "Refused", state.message
    assert missing in state.message


def test_an_approval_from_the_cli_lets_the_waiting_run_promote(
    released_home: Path,
    background: Callable[..., Future[Any]],
    prefect_server: dict[str, str],
) -> None:
    require_approval(released_home, timeout_s=600)  # resumed by the command, not the timeout
    candidate = register_staged(released_home, artifact_of=2, golden_of=2)
    run = background(promote_flow, version=candidate, model=MODEL, return_state=True)
    paused_run_id(released_home, candidate)
    origin = requested(released_home, candidate).details.origin
    assert origin is not None
    command = ["approve", MODEL, str(candidate), "--reason", "ok"]
    approve = subprocess.run(
        [sys.executable, "-m", "registry.cli.main", *command],
        env={**os.environ, **prefect_server, "MODELREG_USER": "alice"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert approve.returncode == 0, approve.stderr
    assert f"resumed the release run waiting for it ({origin.run_name})" in approve.stdout
    state = run.result(timeout=60)
    assert state.is_completed(), state.message
    assert production(released_home) == candidate
    # Recorded once, by the command: the resumed run finds it there.
    [approval] = [e for e in history(released_home) if e.subject == "approval"]
    assert (approval.actor, approval.reason) == ("alice", "ok")
