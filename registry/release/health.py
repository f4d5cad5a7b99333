"""Health check of one model replica, in a fresh process with a start-up budget.

``check_health`` starts ``python -m registry.release.health_worker``, which
verifies the file's sha256 and size before parsing it (``load_model``), loads it
with the trusted-types allow-list, predicts the golden batch recorded at training
time and times single-row predictions. The check passes when the worker was ready
within ``startup_budget_s`` (measured here, from spawn to "loaded"), and every
golden prediction matches within ``tolerance``. A failed check is a result, not
an exception: the evidence is worth recording.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, FiniteFloat

WORKER = "registry.release.health_worker"
# Once loaded, predicting a few dozen rows must not take longer than this.
RESULT_TIMEOUT_S = 60.0
_EXITED = "the worker exited without an answer"


class HealthEvidence(BaseModel):
    """One replica's health check; ``model_dump(mode="json")`` is what is stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    passed: bool
    startup_s: FiniteFloat | None  # spawn to "loaded"; None if not ready within the budget
    latency_p99_ms: FiniteFloat | None  # single-row predictions
    max_abs_diff: FiniteFloat | None  # against the golden predictions
    error: str | None = None
    replica_uri: str | None = None  # where the checked replica lives


def check_health(
    model_path: str | Path,
    sha256: str,
    size: int,
    golden: dict[str, Any],
    *,
    startup_budget_s: float = 30.0,
    tolerance: float = 1e-6,
    latency_rounds: int = 50,
    replica_uri: str | None = None,
) -> HealthEvidence:
    """Load the replica at ``model_path`` in a fresh process and check it (see module doc).

    ``replica_uri`` (where ``model_path`` was fetched from) is recorded with the evidence.
    """
    request = {
        "model_path": str(model_path),
        "sha256": sha256,
        "size": size,
        "golden": golden,
        "latency_rounds": latency_rounds,
    }
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process, lines), daemon=True)
        reader.start()
        try:
            _send(process, request)
            loaded = _next_event(lines, started + startup_budget_s)
            startup_s = time.perf_counter() - started
            if loaded is None:
                error = f"not ready within the {startup_budget_s:g}s budget"
                return _failed(error, replica_uri)
            if loaded.get("event") != "loaded":
                return _failed(_error_of(loaded, stderr), replica_uri, startup_s)
            outcome = _next_event(lines, time.perf_counter() + RESULT_TIMEOUT_S)
            if outcome is None or outcome.get("event") != "result":
                return _failed(_error_of(outcome, stderr), replica_uri, startup_s)
            return _judge(outcome, golden, startup_s, tolerance, replica_uri)
        finally:
            _stop(process, reader)


def _send(process: subprocess.Popen[str], request: dict[str, Any]) -> None:
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # the worker died at once; stdout says why
        process.stdin.write(json.dumps(request))
        process.stdin.close()


def _read_lines(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


def _next_event(lines: queue.Queue[str | None], deadline: float) -> dict[str, Any] | None:
    """The next JSON line before ``deadline``; None on timeout; an error event on EOF."""
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            return None
        if line is None:
            return {"event": "error", "error": _EXITED}
        try:
            event: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue  # stray output from a library; the protocol lines are JSON
        return event


def _error_of(event: dict[str, Any] | None, stderr: Any) -> str:
    if event is None:
        return f"no result within {RESULT_TIMEOUT_S:g}s after loading"
    if event.get("error") == _EXITED:  # died before it could answer: its stderr says why
        stderr.seek(0)
        last = [line.strip() for line in stderr.read().splitlines() if line.strip()][-1:]
        return f"{_EXITED}: {last[0]}" if last else _EXITED
    return str(event.get("error") or f"unexpected worker event {event.get('event')!r}")


def _failed(
    error: str,
    replica_uri: str | None,
    startup_s: float | None = None,
    latency_p99_ms: float | None = None,
    max_abs_diff: float | None = None,
) -> HealthEvidence:
    return HealthEvidence(
        passed=False,
        startup_s=startup_s,
        latency_p99_ms=latency_p99_ms,
        max_abs_diff=max_abs_diff,
        error=error,
        replica_uri=replica_uri,
    )


def _judge(
    outcome: dict[str, Any],
    golden: dict[str, Any],
    startup_s: float,
    tolerance: float,
    replica_uri: str | None,
) -> HealthEvidence:
    expected = [float(p) for p in golden["predictions"]]
    actual = [float(p) for p in outcome["predictions"]]
    timings = sorted(float(t) for t in outcome.get("latency_ms", []))
    p99 = timings[min(len(timings) - 1, math.ceil(0.99 * len(timings)) - 1)] if timings else None
    if len(actual) != len(expected):
        error = f"golden batch has {len(expected)} predictions, the model gave {len(actual)}"
        return _failed(error, replica_uri, startup_s, p99)
    # A NaN compares false with everything, so max() would skip it: count it as infinite.
    diffs = [_distance(a, e) for a, e in zip(actual, expected, strict=True)]
    max_diff = max(diffs, default=0.0)
    if not math.isfinite(max_diff) or max_diff > tolerance:
        worst = diffs.index(max_diff)
        error = f"golden prediction {worst} differs by {max_diff:.3g} (tolerance {tolerance:g})"
        return _failed(
            error, replica_uri, startup_s, p99, max_diff if math.isfinite(max_diff) else None
        )
    return HealthEvidence(
        passed=True,
        startup_s=startup_s,
        latency_p99_ms=p99,
        max_abs_diff=max_diff,
        replica_uri=replica_uri,
    )


def _distance(actual: float, expected: float) -> float:
    diff = abs(actual - expected)
    return diff if math.isfinite(diff) else math.inf


def _stop(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    reader.join(timeout=5)  # EOF follows the exit; close the pipe only after the reader is done
    for pipe in (process.stdin, process.stdout):
        if pipe is not None and not pipe.closed:
            with contextlib.suppress(BrokenPipeError):  # unsent input to a worker that is gone
                pipe.close()
