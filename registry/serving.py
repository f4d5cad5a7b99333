"""The serving app: one resolver reference behind ``/predict``, with probes and metrics.

``create_app(resolver, ref)`` is a FastAPI app over a started ``Resolver``:

- ``POST /predict`` takes ``{"rows": [{feature: value, ...}, ...]}``. The request
  model is built from the signature of the version serving now (strict types,
  extra keys forbidden), once per served version, so a swap to a version with
  another signature changes what is accepted. Missing, extra and mistyped features
  are a 422 naming them; bad input never reaches the model as a null or a cast.
- ``GET /healthz`` is liveness; ``GET /readyz`` is 503 until something serves, then
  the version, generation, events behind, and degraded with its reason.
- ``GET /metrics`` is the Prometheus text format.

FastAPI is imported here only: ``registry.resolver`` stays light.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)
from starlette.concurrency import run_in_threadpool

from registry.errors import InvalidInput, NotFound
from registry.models import Signature
from registry.resolver import Resolver, ResolverStatus, Served, parse_ref

_STRICT = ConfigDict(extra="forbid", strict=True)


def create_app(resolver: Resolver, ref: str) -> FastAPI:
    """The serving app for ``ref`` (one of the references ``resolver`` serves)."""
    key = parse_ref(ref)
    if key not in {status.ref for status in resolver.status()}:
        raise InvalidInput(f"the resolver does not serve {ref!r}")
    app = FastAPI(title=f"modelreg serving {key}", docs_url=None, redoc_url=None)
    requests = RequestModels()
    counts: Counter[str] = Counter()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        status = _status_of(resolver, key)
        body = readiness(status)
        return JSONResponse(body, status_code=200 if status.version is not None else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        text = render_metrics(resolver.status(), key, counts)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            served = resolver.get(key)
        except NotFound as exc:
            counts["errors"] += 1
            return JSONResponse({"detail": str(exc)}, status_code=503)
        body = await request.body()
        try:
            rows = requests.model_for(served).model_validate_json(body).model_dump(by_alias=True)
        except ValidationError as exc:
            counts["errors"] += 1
            raise RequestValidationError(_located(exc.errors(include_url=False))) from exc
        except InvalidInput as exc:  # the served version has no signature to check by
            counts["errors"] += 1
            return JSONResponse({"detail": str(exc)}, status_code=503)
        try:
            predictions = await run_in_threadpool(served.predict, rows["rows"])
        except (InvalidInput, ValueError, TypeError) as exc:
            counts["errors"] += 1
            return JSONResponse({"detail": str(exc)}, status_code=422)
        counts["predictions"] += len(predictions)
        return JSONResponse(
            {
                "model": served.name,
                "version": served.version,
                "generation": served.generation,
                "predictions": predictions,
            }
        )

    return app


class RequestModels:
    """The ``/predict`` request model of each served version, built on first use.

    Keyed on (model, version): a version's signature never changes, and the key is
    identity the registry owns, not the address of a ``Served`` object.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[BaseModel]] = {}

    def model_for(self, served: Served) -> type[BaseModel]:
        key = (served.name, served.version)
        model = self._models.get(key)
        if model is None:
            if served.signature is None:
                raise InvalidInput(
                    f"{served.name} v{served.version} has no signature to check rows by"
                )
            model = request_model(served.signature, f"{served.name}-v{served.version}")
            self._models[key] = model
        return model


def request_model(signature: Signature, label: str) -> type[BaseModel]:
    """``{"rows": [row, ...]}`` where a row has exactly ``signature``'s features.

    Fields are named ``f0``, ``f1``, … with the feature name as alias: a feature may
    be called anything (``model_config``, ``class``, ``a-b``) without clashing.
    """
    fields: dict[str, Any] = {
        f"f{i}": (_python_type(feature.dtype), Field(alias=feature.name))
        for i, feature in enumerate(signature.features)
    }
    row = create_model(f"Row[{label}]", __config__=_STRICT, **fields)
    return create_model(
        f"PredictRequest[{label}]",
        __config__=_STRICT,
        rows=(list[row], Field(min_length=1)),
    )


def _python_type(dtype: str) -> Any:
    if dtype == "bool":
        return StrictBool
    if dtype.startswith(("int", "uint")):
        return StrictInt
    if dtype.startswith("float"):
        return StrictFloat  # takes an int too: JSON may write 3.0 as 3
    return StrictStr  # categories and strings; datetimes and durations as ISO text


def _located(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors as FastAPI reports body errors (``loc`` starts with ``body``)."""
    return [{**e, "loc": ("body", *e["loc"])} for e in errors]


def _status_of(resolver: Resolver, key: str) -> ResolverStatus:
    for status in resolver.status():
        if status.ref == key:
            return status
    raise InvalidInput(f"the resolver does not serve {key!r}")


def readiness(status: ResolverStatus) -> dict[str, Any]:
    return {
        "ready": status.version is not None,
        "ref": status.ref,
        "version": status.version,
        "generation": status.generation,
        "source": status.source,
        "behind": status.behind,
        "seq": status.seq,
        "degraded": status.degraded,
        "reason": status.reason,
    }


# ---------------------------------------------------------------- metrics

_HELP = {
    "modelreg_predictions_total": ("counter", "Rows predicted."),
    "modelreg_prediction_errors_total": ("counter", "Predict requests refused or failed."),
    "modelreg_swaps_total": ("counter", "Versions swapped in after start-up."),
    "modelreg_swap_failures_total": ("counter", "Swaps that failed (the old model kept serving)."),
    "modelreg_events_behind": ("gauge", "Events in the registry's log not applied yet."),
    "modelreg_degraded": ("gauge", "1 when the resolver is degraded, else 0."),
    "modelreg_serving_version": ("gauge", "The version serving now (absent until one serves)."),
}


def render_metrics(statuses: Iterable[ResolverStatus], key: str, counts: Counter[str]) -> str:
    """The Prometheus text exposition of the app's counters and the resolver's state."""
    samples: dict[str, list[tuple[str, int]]] = {name: [] for name in _HELP}
    samples["modelreg_predictions_total"].append((key, counts["predictions"]))
    samples["modelreg_prediction_errors_total"].append((key, counts["errors"]))
    for status in statuses:
        samples["modelreg_swaps_total"].append((status.ref, status.swaps))
        samples["modelreg_swap_failures_total"].append((status.ref, status.swap_failures))
        samples["modelreg_events_behind"].append((status.ref, status.behind))
        samples["modelreg_degraded"].append((status.ref, int(status.degraded)))
        if status.version is not None:
            samples["modelreg_serving_version"].append((status.ref, status.version))
    lines = []
    for name, (kind, text) in _HELP.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{ref="{_label(ref)}"}} {value}' for ref, value in samples[name]]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
