"""tasks/common.py: retry only what may go away, with real Prefect states."""

from __future__ import annotations

import pytest
from prefect.states import Completed, Failed

from registry import (
    ArtifactUnavailable,
    ChecksumMismatch,
    Conflict,
    GateRefused,
    InvalidInput,
    LockTimeout,
    NotFound,
    RegistryUnavailable,
    ReleaseCheckFailed,
    StorageError,
)
from tasks import registration, release, training
from tasks.common import transient_only


@pytest.mark.parametrize(
    "error",
    [
        RegistryUnavailable("registry down"),
        ArtifactUnavailable("artifact store unreachable"),
        LockTimeout("another promotion held the lock for 600s"),
    ],
    ids=type,
)
def test_a_transient_error_is_retried(error: Exception) -> None:
    assert transient_only(release.promote, None, Failed(data=error)) is True


@pytest.mark.parametrize(
    "error",
    [
        GateRefused("promotion gate refused", ("no canary result",)),
        InvalidInput("invalid metric name"),
        ReleaseCheckFailed("health check failed in eu-west"),
        Conflict("stale generation"),
        NotFound("no such version"),
        ChecksumMismatch("sha256 differs"),
        StorageError("disk full"),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_an_error_that_fails_the_same_way_again_is_not_retried(error: Exception) -> None:
    assert transient_only(release.promote, None, Failed(data=error)) is False


def test_a_completed_state_is_not_retried() -> None:
    assert transient_only(release.promote, None, Completed(data=3)) is False


@pytest.mark.parametrize(
    "task",
    [
        release.read_policy,
        release.stage,
        release.canary,
        release.approval_status,
        release.promote,
        release.refuse_promotion,
        release.rollback,
        training.evaluate,
        registration.upload,
    ],
    ids=lambda t: t.name,
)
def test_tasks_that_retry_retry_only_on_transient_errors(task: object) -> None:
    assert task.retries > 0  # type: ignore[attr-defined]
    assert task.retry_condition_fn is transient_only  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "task", [registration.register, release.replicate, release.health], ids=lambda t: t.name
)
def test_steps_that_retry_inside_have_no_task_retries_on_top(task: object) -> None:
    assert task.retries == 0  # type: ignore[attr-defined]
