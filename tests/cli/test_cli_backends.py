"""The on-call flows, on SQLite and on PostgreSQL (``MODELREG_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_harness import MODEL, Harness


@pytest.fixture
def registry_url(backend_url: str) -> str:
    return backend_url


def _moment() -> str:
    """Now, as ``history --at`` takes it, strictly between the changes around it."""
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    return moment


def test_the_2am_flow_rolls_back_and_history_knows_what_served(reg: Harness) -> None:
    before_any = _moment()
    for _ in range(3):
        reg.register()
    served = {}
    for version in (1, 2, 3):
        reg.promote(version)
        served[version] = _moment()
    assert reg.json("models")[0]["production"] == 3

    change = reg.json("rollback", MODEL, "--reason", "auc dropped at 02:00")

    assert change["events"][0]["to_value"] == "2"
    (model,) = reg.json("models")
    assert model["production"] == 2
    assert model["last_event"]["kind"] == "rollback"
    assert reg.json("show", MODEL, "3")["stage"] == "Archived"
    for version, moment in served.items():
        assert reg.json("history", MODEL, "--at", moment)["production"] == version
    assert reg.json("history", MODEL, "--at", before_any)["production"] is None
    assert reg.json("history", MODEL, "--at", _moment())["production"] == 2


def test_history_records_the_rollback_with_its_reason_and_actor(reg: Harness) -> None:
    for version in (1, 2):
        reg.register()
        reg.promote(version)
    reg.json("rollback", MODEL, "--reason", "latency spike")
    last = reg.json("history", MODEL)["events"][-1]
    assert (last["kind"], last["from_value"], last["to_value"]) == ("rollback", "2", "1")
    assert (last["reason"], last["actor"]) == ("latency spike", "oncall@test")


def test_stale_generation_is_refused_and_changes_nothing(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.promote(1)
    reg.json("promote", MODEL, "2", "--stage", "Staging")
    before = reg.snapshot()
    reg.fail("promote", MODEL, "2", "--expect-generation", "1", code=4)
    assert reg.snapshot() == before


def test_promote_with_the_current_generation_bumps_it_by_one(reg: Harness) -> None:
    reg.register()
    reg.json("promote", MODEL, "1", "--stage", "Staging")
    reg.make_releasable(1)
    generation = reg.json("models")[0]["generation"]
    change = reg.json(
        "promote", MODEL, "1", "--expect-generation", str(generation), "--reason", "ship"
    )
    assert change["generation"] == generation + 1


def test_search_lineage_and_diff_agree_on_the_production_version(reg: Harness) -> None:
    reg.register()
    reg.register(changes={"metrics": {"auc": 0.95}})
    reg.promote(2)
    found = reg.json("search", "stage = 'Production'")
    hits = reg.json("lineage", "impact", "--dataset", "transactions@2026-11-01")
    diff = reg.json("diff", MODEL, "1", "production")
    assert [v["version"] for v in found] == [2]
    assert [h["version"] for h in hits if h["in_production"]] == [2]
    assert diff["b"]["version"] == 2


def test_events_feed_follows_every_change_in_order(reg: Harness) -> None:
    reg.register()
    reg.promote(1)
    reg.json("alias", "set", MODEL, "champion", "1")
    events = reg.json("events")
    assert [e["kind"] for e in events] == [
        "model.created",
        "version.registered",
        "stage",
        "stage",
        "alias",
    ]
    assert reg.json("events", "--since", str(events[2]["seq"])) == events[3:]


def test_a_refusal_is_history_and_the_break_glass_is_marked(reg: Harness) -> None:
    reg.register()
    reg.json("promote", MODEL, "1", "--stage", "Staging")
    message = reg.fail("promote", MODEL, "1", code=4)
    assert "no canary result" in message
    reg.json("promote", MODEL, "1", "--force", "--reason", "incident 7")
    kinds = [(e["kind"], e["details"]["forced"]) for e in reg.json("history", MODEL)["events"][-2:]]
    assert kinds == [("refused", False), ("stage", True)]


def test_a_binding_with_skew_is_refused(reg: Harness, tmp_path: Path) -> None:
    reg.register()
    schema = tmp_path / "schema.json"
    schema.write_text('{"features": [{"name": "amount", "dtype": "float64"}]}')
    reg.json("release", "create", "fraud-service", "2.0.0", "--schema", str(schema))
    args = ["release", "bind", "fraud-service", "2.0.0", "--model", MODEL, "--version", "1"]
    assert "missing merchant_category" in reg.fail(*args, code=4)
    assert reg.json("history", MODEL)["events"][-1]["details"]["gate"] == "binding"
