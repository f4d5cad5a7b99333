"""``modelreg serve`` over real HTTP: a subprocess, a real registry, real models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from serving_harness import MODEL, Registry, Server, wait_until

from registry.cli.main import cli
from registry.pipeline.training import TrainingResult

FOLLOW_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, train: Callable[..., TrainingResult]
) -> Iterator[Server]:
    """One server on v1 for the tests that change nothing in the registry."""
    registry = Registry(tmp_path_factory.mktemp("served"))
    registry.release(registry.register(train()))
    server = Server(registry, [MODEL]).wait_up()
    yield server
    assert server.stop() == 0, server.output()


def ready(server: Server) -> dict[str, Any]:
    response = server.client.get("/readyz")
    body: dict[str, Any] = response.json()
    assert response.status_code == (200 if body["version"] is not None else 503)
    return body


def metric(server: Server, name: str) -> float:
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample of {name}")


def wait_for_version(server: Server, version: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def serves() -> bool:
        seen.update(ready(server))
        return seen["version"] == version

    wait_until(serves, FOLLOW_TIMEOUT_S, f"/readyz to report v{version} (last: {seen})")
    return seen


# ---------------------------------------------------------------- one server, read only


def test_healthz_answers(server: Server) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok"}


def test_predict_returns_one_prediction_per_row(server: Server, rows: list[dict[str, Any]]) -> None:
    response = server.client.post("/predict", json={"rows": rows})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == (MODEL, 1)
    assert len(body["predictions"]) == len(rows)
    assert set(body["predictions"]) <= {0, 1}


@pytest.mark.parametrize(
    ("change", "named", "kind"),
    [
        pytest.param(lambda r: r.pop("distance_km"), "distance_km", "missing", id="missing"),
        pytest.param(
            lambda r: r.update(merchant_risk=0.3), "merchant_risk", "extra_forbidden", id="extra"
        ),
        pytest.param(lambda r: r.update(hour="11"), "hour", "int_type", id="mistyped"),
        pytest.param(lambda r: r.update(hour=11.5), "hour", "int_type", id="float-for-int"),
        pytest.param(lambda r: r.update(amount=True), "amount", "float_type", id="bool-for-float"),
        pytest.param(lambda r: r.update(country=None), "country", "string_type", id="null"),
    ],
)
def test_bad_feature_is_422_naming_it(
    server: Server, rows: list[dict[str, Any]], change: Any, named: str, kind: str
) -> None:
    bad = [dict(row) for row in rows]
    change(bad[1])

    response = server.client.post("/predict", json={"rows": bad})

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", "rows", 1, named], kind)]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"rows": []}', id="no-rows"),
        pytest.param(b'{"rows": [3]}', id="row-not-an-object"),
        pytest.param(b'{"rows": [], "limit": 3}', id="extra-top-level-key"),
    ],
)
def test_malformed_request_is_422(server: Server, body: bytes) -> None:
    response = server.client.post(
        "/predict", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_readyz_reports_version_generation_and_lag(server: Server) -> None:
    body = ready(server)

    assert body["ready"] is True
    assert (body["ref"], body["version"], body["source"]) == (f"{MODEL}@production", 1, "registry")
    assert body["generation"] >= 1
    assert (body["behind"], body["degraded"], body["reason"]) == (0, False, None)


def test_metrics_count_predictions_and_errors(server: Server, rows: list[dict[str, Any]]) -> None:
    ref = f'ref="{MODEL}@production"'
    predicted = metric(server, "modelreg_predictions_total")
    errors = metric(server, "modelreg_prediction_errors_total")

    server.client.post("/predict", json={"rows": rows})
    server.client.post("/predict", json={"rows": [{}]})

    text = server.client.get("/metrics").text
    assert metric(server, "modelreg_predictions_total") == predicted + len(rows)
    assert metric(server, "modelreg_prediction_errors_total") == errors + 1
    assert f"modelreg_serving_version{{{ref}}} 1" in text
    assert f"modelreg_degraded{{{ref}}} 0" in text
    assert f"modelreg_events_behind{{{ref}}} 0" in text
    assert "# TYPE modelreg_swaps_total counter" in text
    assert f"modelreg_swap_failures_total{{{ref}}} 0" in text


# ---------------------------------------------------------------- following the registry


def test_promotion_is_followed(
    released: Registry, serve: Callable[..., Server], train: Callable[..., TrainingResult]
) -> None:
    server = serve()
    before = ready(server)
    swaps = metric(server, "modelreg_swaps_total")

    released.release(released.register(train(C=0.05)))

    after = wait_for_version(server, 2)
    assert after["generation"] > before["generation"]
    assert metric(server, "modelreg_swaps_total") == swaps + 1


def test_rollback_is_followed(
    released: Registry,
    serve: Callable[..., Server],
    train: Callable[..., TrainingResult],
    rows: list[dict[str, Any]],
) -> None:
    released.release(released.register(train(C=0.05)))
    server = serve()
    assert ready(server)["version"] == 2

    released.rollback()

    wait_for_version(server, 1)
    assert server.client.post("/predict", json={"rows": rows}).json()["version"] == 1


def test_fixed_version_stays_put(
    released: Registry, serve: Callable[..., Server], train: Callable[..., TrainingResult]
) -> None:
    server = serve("--version", "1")
    released.release(released.register(train(C=0.05)))

    with released.store() as store:
        assert store.get_model(MODEL).production == 2
    # The follower saw the promotion (nothing is left behind) and kept v1.
    wait_until(lambda: ready(server)["behind"] == 0, FOLLOW_TIMEOUT_S, "the follower")
    assert ready(server)["version"] == 1


def test_schema_refuses_a_mismatched_model(
    released: Registry,
    serve: Callable[..., Server],
    small_model: tuple[Path, dict[str, Any]],
    signature: Any,
    tmp_path: Path,
) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(signature.model_dump(mode="json")))
    server = serve("--schema", str(schema))

    path, small_signature = small_model
    released.release(released.register_file(path, small_signature))

    seen: dict[str, Any] = {}
    wait_until(
        lambda: seen.update(ready(server)) or seen["degraded"], FOLLOW_TIMEOUT_S, "a refusal"
    )
    assert seen["version"] == 1
    assert "skew" in seen["reason"]
    assert metric(server, "modelreg_swap_failures_total") >= 1
    assert metric(server, "modelreg_degraded") == 1


# ---------------------------------------------------------------- without the registry


def _move_away(registry: Registry) -> None:
    """The registry's database is gone (its WAL files too): new connections fail."""
    gone = registry.root / "gone"
    gone.mkdir()
    for path in registry.root.glob("registry.db*"):
        shutil.move(path, gone / path.name)
    registry.db.write_text("this is not a database\n")


def test_registry_gone_predict_still_answers(
    released: Registry, serve: Callable[..., Server], rows: list[dict[str, Any]]
) -> None:
    server = serve()

    _move_away(released)

    for _ in range(10):
        response = server.client.post("/predict", json={"rows": rows})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1
    assert ready(server)["version"] == 1


def test_cold_start_without_registry_serves_from_disk(
    released: Registry, serve: Callable[..., Server], rows: list[dict[str, Any]]
) -> None:
    assert serve().stop() == 0
    _move_away(released)

    server = serve()

    body = ready(server)
    assert (body["version"], body["source"], body["degraded"]) == (1, "disk", True)
    assert "not a database" in body["reason"]
    assert server.client.post("/predict", json={"rows": rows}).status_code == 200


# ---------------------------------------------------------------- usage


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alias", "champion", "--version", "2"], "give one of"),
        (["--app", "fraud-service"], "--app and --release go together"),
        ([], "Missing option '--region'"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, registry: Registry) -> None:
    region = [] if not args else ["--region", "eu-west"]
    result = CliRunner(env=registry.env).invoke(cli, ["serve", MODEL, *args, *region])

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
