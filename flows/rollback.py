"""The rollback flow: one compare-and-swap pointer flip back to the previous good
version (or a named one that once served), with a reason, under the model's lock.
The store refuses a target whose bytes are not verified in every region."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from flows.retrain import DEFAULT_MODEL
from registry import RegistryError, Settings
from tasks.release import rollback
from tasks.report import artifact_key, emit_model_event


@flow(name="rollback")
def rollback_flow(reason: str, model: str = DEFAULT_MODEL, to: int | None = None) -> State[Any]:
    """Put the previous Production version of ``model`` back (or version ``to``, if it
    once served), and archive the current one. ``reason`` is required: it goes in the
    audit log and the ``model.rolled-back`` event."""
    settings = Settings.from_env()
    future = rollback.submit(settings, model, to, reason)
    future.wait()
    key = artifact_key("rollback", model)
    if not future.state.is_completed():
        error = future.state.result(raise_on_failure=False)
        message = f"{model}: rollback refused: {error}"
        create_markdown_artifact(key=key, markdown=f"# Rollback of {model}\n\n{message}\n")
        if isinstance(error, RegistryError):
            return Failed(name="Refused", message=message, data=error)
        return Failed(message=message, data=error)
    result = future.result()
    message = f"{model}: rolled back v{result.from_version} -> v{result.to_version} ({reason})"
    create_markdown_artifact(
        key=key,
        markdown=(
            f"# Rollback of {model}\n\n| | version |\n| --- | ---: |\n"
            f"| was in Production | v{result.from_version} |\n"
            f"| now in Production | v{result.to_version} |\n\nReason: {reason}\n"
        ),
        description=message,
    )
    emit_model_event(
        "model.rolled-back",
        model,
        {"from": result.from_version, "to": result.to_version, "reason": reason},
    )
    return Completed(message=message, data=result)


if __name__ == "__main__":
    import sys

    rollback_flow(" ".join(sys.argv[1:]) or "manual rollback")
