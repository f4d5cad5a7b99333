"""The health check's fresh process: load one model replica, predict the golden batch.

Run as ``python -m registry.release.health_worker`` with a JSON request on stdin
(``model_path``, ``sha256``, ``size``, ``golden``, ``latency_rounds``). It prints
one JSON line per stage on stdout: ``{"event": "loaded", "load_s": …}`` once the
model is verified and loaded, then ``{"event": "result", "predictions": […],
"latency_ms": […]}``, or ``{"event": "error", "error": "…"}`` and exit status 1.
Only the standard library is imported at module level: the parent measures the
start-up of exactly what a serving process would pay (skops, scikit-learn, pandas).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any


def to_records(frame: Any) -> list[dict[str, Any]]:
    """Rows of a DataFrame as JSON-able dicts (numpy scalars become Python numbers)."""
    records: list[dict[str, Any]] = frame.to_dict("records")
    return [
        {key: value.item() if hasattr(value, "item") else value for key, value in row.items()}
        for row in records
    ]


def frame_from_records(
    records: Sequence[Mapping[str, Any]], features: Sequence[Mapping[str, str]]
) -> Any:
    """The DataFrame a model expects from JSON rows: signature order and dtypes."""
    import pandas as pd

    names = [f["name"] for f in features]
    frame = pd.DataFrame.from_records(list(records), columns=names)
    return frame.astype({f["name"]: f["dtype"] for f in features})


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _p99_ms(model: Any, batch: Any, rounds: int) -> list[float]:
    timings = []
    rows = len(batch)
    for i in range(rounds):
        row = batch.iloc[[i % rows]]
        started = time.perf_counter()
        model.predict_proba(row)
        timings.append((time.perf_counter() - started) * 1000.0)
    return timings


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
        from registry.modelio import load_model

        started = time.perf_counter()
        model = load_model(request["model_path"], sha256=request["sha256"], size=request["size"])
        _emit("loaded", load_s=time.perf_counter() - started)
        golden = request["golden"]
        batch = frame_from_records(golden["inputs"], golden["features"])
        predictions = model.predict_proba(batch)[:, 1]
        timings = _p99_ms(model, batch, int(request.get("latency_rounds", 50)))
        _emit("result", predictions=[float(p) for p in predictions], latency_ms=timings)
        return 0
    except Exception as exc:  # the parent gets every failure as one line, never a traceback
        message = str(exc).splitlines()[0] if str(exc) else ""
        _emit("error", error=f"{type(exc).__name__}: {message}".rstrip(": "))
        return 1


if __name__ == "__main__":
    sys.exit(main())
