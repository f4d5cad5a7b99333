"""Process entry points for the concurrency tests (importable by 'spawn' children).

Each call opens its own store, sleeps until a shared start time so that all the
processes begin together, and reports what happened instead of raising.
"""

from __future__ import annotations

import time
import traceback
import uuid
from typing import Any

from registry.errors import Conflict, GateRefused
from registry.models import Stage, VersionCreate
from registry.store.sql import SqlStore

from .support import artifact


def wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


def describe(exc: Exception) -> str:
    """The error and the registry line it came from, for the test's failure message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if exc.__cause__ is not None:
        frames += traceback.extract_tb(exc.__cause__.__traceback__)
    ours = [f for f in frames if "/registry/" in f.filename] or frames
    return f"{type(exc).__name__}: {exc} (from {ours[-1].filename}:{ours[-1].lineno})"


def register_many(url: str, name: str, count: int, start_at: float) -> tuple[str, Any]:
    """Register ``count`` versions; report the version numbers or the error."""
    try:
        with SqlStore(url, actor=f"registrant-{uuid.uuid4().hex[:6]}") as store:
            wait_until(start_at)
            numbers = [
                store.register(name, artifact(uuid.uuid4().bytes), VersionCreate()).version
                for _ in range(count)
            ]
        return ("ok", numbers)
    except Exception as exc:
        return ("error", describe(exc))


def open_and_register(url: str, start_at: float) -> tuple[str, Any]:
    """Open (and so migrate) a store at the same moment as others, then register once."""
    try:
        wait_until(start_at)
        with SqlStore(url, actor="opener") as store:
            version = store.register("fraud", artifact(uuid.uuid4().bytes), VersionCreate())
        return ("ok", version.version)
    except Exception as exc:
        return ("error", describe(exc))


def flip(
    url: str,
    name: str,
    first: int,
    staged: list[int],
    rounds: int,
    start_at: float,
) -> list[tuple[str, Any]]:
    """Alternate promoting this worker's own staged versions and rolling back, each time
    with the generation read just before.

    Rollbacks go to ``first`` (which every worker targets, so a stale caller may find it
    already serving) or to a version this worker promoted. Each call is legal in the
    state the worker read, so any refusal comes from a lost race and must be a
    ``Conflict``. Reports ``("ok", generation)``, ``("conflict", None)`` or
    ``("error", text)`` per call.
    """
    outcomes: list[tuple[str, Any]] = []
    try:
        with SqlStore(url, actor=f"flipper-{staged[0]}") as store:
            wait_until(start_at)
            pending, served = list(staged), [first]
            for round_ in range(rounds):
                model = store.get_model(name)
                back_to = [v for v in served if v != model.production]
                try:
                    if back_to and (round_ % 2 or not pending):
                        change = store.rollback(
                            name,
                            to=back_to[round_ // 2 % len(back_to)],
                            expected_generation=model.generation,
                            reason=f"flip {round_}",
                        )
                    else:
                        change = store.transition(
                            name,
                            pending[0],
                            Stage.PRODUCTION,
                            expected_generation=model.generation,
                            reason=f"flip {round_}",
                        )
                        served.append(pending.pop(0))
                    outcomes.append(("ok", change.generation))
                except Conflict:
                    outcomes.append(("conflict", None))
                except Exception as exc:
                    outcomes.append(("error", describe(exc)))
    except Exception as exc:
        outcomes.append(("error", describe(exc)))
    return outcomes


def promote_once(
    url: str, name: str, version: int, expected_generation: int | None, start_at: float
) -> tuple[str, Any]:
    """Promote one staged version through the gates; report ``("ok", generation)``,
    ``("conflict", text)``, ``("refused", reasons)`` or ``("error", text)``."""
    try:
        with SqlStore(url, actor=f"promoter-{version}") as store:
            wait_until(start_at)
            change = store.promote(
                name, version, expected_generation=expected_generation, reason="race"
            )
        return ("ok", change.generation)
    except Conflict as exc:
        return ("conflict", str(exc))
    except GateRefused as exc:
        return ("refused", list(exc.reasons))
    except Exception as exc:
        return ("error", describe(exc))


def warm(start_at: float) -> float:
    """Nothing: importing this module is the point (the pool pays it once, up front)."""
    wait_until(start_at)
    return time.time()
