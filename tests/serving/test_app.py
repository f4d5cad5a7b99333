"""``create_app`` under uvicorn in a thread: what the request model and probes do as the
served version changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serving_harness import MODEL, REGION, Registry, ThreadServer, wait_until

from registry.errors import InvalidInput
from registry.pipeline.training import TrainingResult
from registry.resolver import Resolver
from registry.serving import create_app


@pytest.fixture
def resolver(registry: Registry, tmp_path: Path) -> Iterator[Callable[..., Resolver]]:
    opened: list[Resolver] = []

    def _open(ref: str = f"{MODEL}@production") -> Resolver:
        resolver = Resolver(
            registry.settings, REGION, [ref], cache_dir=tmp_path / "cache", poll_s=0.05
        )
        opened.append(resolver.start())
        return resolver

    yield _open
    for resolver in opened:
        resolver.close()


def test_request_model_follows_the_served_signature(
    released: Registry,
    resolver: Callable[..., Resolver],
    serve_app: Callable[[Any], ThreadServer],
    small_model: tuple[Path, dict[str, Any]],
    rows: list[dict[str, Any]],
) -> None:
    server = serve_app(create_app(resolver(), f"{MODEL}@production"))
    assert server.client.post("/predict", json={"rows": rows}).status_code == 200

    path, signature = small_model
    released.release(released.register_file(path, signature))
    wait_until(lambda: server.client.get("/readyz").json()["version"] == 2, 5, "the swap to v2")

    small_rows = [{"amount": row["amount"], "hour": row["hour"]} for row in rows]
    response = server.client.post("/predict", json={"rows": small_rows})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == len(rows)
    refused = server.client.post("/predict", json={"rows": rows})
    assert refused.status_code == 422
    extra = {e["loc"][-1] for e in refused.json()["detail"] if e["type"] == "extra_forbidden"}
    assert extra == set(rows[0]) - {"amount", "hour"}


def test_nothing_to_serve_is_503_and_not_ready(
    registry: Registry,
    train: Callable[..., TrainingResult],
    resolver: Callable[..., Resolver],
    serve_app: Callable[[Any], ThreadServer],
    rows: list[dict[str, Any]],
) -> None:
    registry.register(train())  # registered, never promoted: no Production to serve
    server = serve_app(create_app(resolver(), f"{MODEL}@production"))

    assert server.client.get("/healthz").status_code == 200
    ready = server.client.get("/readyz")
    assert ready.status_code == 503
    assert (ready.json()["ready"], ready.json()["version"]) == (False, None)
    predict = server.client.post("/predict", json={"rows": rows})
    assert predict.status_code == 503
    assert "nothing can be served" in predict.json()["detail"]
    metrics = server.client.get("/metrics").text
    assert "modelreg_serving_version{" not in metrics
    assert f'modelreg_prediction_errors_total{{ref="{MODEL}@production"}} 1' in metrics


def test_an_alias_is_served_by_its_normalised_ref(
    released: Registry,
    resolver: Callable[..., Resolver],
    serve_app: Callable[[Any], ThreadServer],
) -> None:
    server = serve_app(create_app(resolver(f"{MODEL}@Production"), f"{MODEL}@PRODUCTION"))

    assert server.client.get("/readyz").json()["ref"] == f"{MODEL}@production"


def test_app_for_a_ref_the_resolver_does_not_serve_is_refused(
    released: Registry, resolver: Callable[..., Resolver]
) -> None:
    with pytest.raises(InvalidInput, match="does not serve"):
        create_app(resolver(), f"{MODEL}@champion")


def test_metrics_are_prometheus_text(
    released: Registry,
    resolver: Callable[..., Resolver],
    serve_app: Callable[[Any], ThreadServer],
) -> None:
    response = serve_app(create_app(resolver(), f"{MODEL}@production")).client.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families: dict[str, str] = {}
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            families[name] = kind
        else:
            assert line.startswith("# HELP ") or line.split("{")[0] in families, line
    assert families == {
        "modelreg_predictions_total": "counter",
        "modelreg_prediction_errors_total": "counter",
        "modelreg_swaps_total": "counter",
        "modelreg_swap_failures_total": "counter",
        "modelreg_events_behind": "gauge",
        "modelreg_degraded": "gauge",
        "modelreg_serving_version": "gauge",
    }
