"""The rollback flow: one compare-and-swap pointer flip back to the previous good
version (or a named one that once served), with a reason, under the model's lock."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from flows.retrain import DEFAULT_MODEL
from registry import RegistryError
from registry.gates import promotion_lock
from tasks.common import RETRY_DELAYS, transient_only
from tasks.report import artifact_key, emit_model_event
from tasks.settings import RunSettings


@task(
    name="rollback",
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
)
def rollback(settings: RunSettings, model: str, to: int | None, reason: str) -> dict[str, Any]:
    with promotion_lock(settings.registry_url, model):  # never during a promotion
        store = settings.connect()
        try:
            before = store.get_model(model).production
            change = store.rollback(model, to=to, reason=reason)
            after = store.get_model(model).production
        finally:
            store.close()
    return {
        "model": model,
        "from": before,
        "to": after,
        "generation": change.generation,
        "reason": reason,
    }


@flow(name="rollback")
def rollback_flow(reason: str, model: str = DEFAULT_MODEL, to: int | None = None) -> State[Any]:
    """Put the previous Production version of ``model`` back (or version ``to``, if it
    once served), and archive the current one. ``reason`` is required: it goes in the
    audit log and the ``model.rolled-back`` event."""
    settings = RunSettings.from_env()
    future = rollback.submit(settings, model, to, reason)
    future.wait()
    if not future.state.is_completed():
        error = future.state.result(raise_on_failure=False)
        message = f"{model}: rollback refused: {error}"
        create_markdown_artifact(
            key=artifact_key("rollback", model), markdown=f"# Rollback of {model}\n\n{message}\n"
        )
        if isinstance(error, RegistryError):
            return Failed(name="Refused", message=message, data=error)
        return Failed(message=message, data=error)
    result = future.result()
    message = f"{model}: rolled back v{result['from']} -> v{result['to']} ({reason})"
    create_markdown_artifact(
        key=artifact_key("rollback", model),
        markdown=(
            f"# Rollback of {model}\n\n| | version |\n| --- | ---: |\n"
            f"| was in Production | v{result['from']} |\n| now in Production | v{result['to']} |"
            f"\n\nReason: {reason}\n"
        ),
        description=message,
    )
    emit_model_event(
        "model.rolled-back", model, {"from": result["from"], "to": result["to"], "reason": reason}
    )
    return Completed(message=message, data=result)


if __name__ == "__main__":
    import sys

    rollback_flow(" ".join(sys.argv[1:]) or "manual rollback")
