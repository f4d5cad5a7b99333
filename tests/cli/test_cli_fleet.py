"""``modelreg fleet``: is the whole fleet on one version? On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cli_harness import MODEL, Harness

from registry.models import Heartbeat


@pytest.fixture
def registry_url(backend_url: str) -> str:
    return backend_url


class Fleet:
    """Resolvers reporting to the harness's registry, as the resolver library does."""

    def __init__(self, reg: Harness) -> None:
        self.reg = reg
        self.count = 0

    def report(
        self, version: int | None, *, count: int = 1, ago: float = 0, **changes: Any
    ) -> None:
        now = datetime.now(UTC)
        with self.reg.store() as store:
            generation = store.get_model(MODEL).generation
            for _ in range(count):
                self.count += 1
                values: dict[str, Any] = {
                    "resolver_id": f"host-{self.count}:{1000 + self.count}/{MODEL}@production",
                    "model": MODEL,
                    "ref": f"{MODEL}@production",
                    "region": "us-east",
                    "host": f"host-{self.count}",
                    "pid": 1000 + self.count,
                    "version": version,
                    "generation": generation,
                    "seq": store.latest_seq(),
                    "started_at": now - timedelta(hours=1),
                    "seen_at": now - timedelta(seconds=ago),
                }
                store.heartbeat(Heartbeat(**{**values, **changes}))


@pytest.fixture
def fleet(reg: Harness) -> Fleet:
    """fraud-detector v1 served, then v2 promoted over it."""
    for version in (1, 2):
        reg.register()
        reg.promote(version)
    return Fleet(reg)


def _lines(reg: Harness, *args: str) -> list[str]:
    result = reg.run("fleet", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def _model_generation(reg: Harness) -> int:
    with reg.store() as store:
        return store.get_model(MODEL).generation


def test_a_fleet_on_one_version_says_so_first(reg: Harness, fleet: Fleet) -> None:
    fleet.report(2, count=3)

    lines = _lines(reg)

    assert lines[0] == (
        f"{MODEL}@production: 3 resolvers, all on v2 (generation {_model_generation(reg)})"
    )
    rows = [line.split() for line in lines if line.startswith(MODEL + " ")]
    assert [row[3:] for row in rows] == [
        ["host-1:1001", "v2", str(_model_generation(reg)), "0", "ok"],
        ["host-2:1002", "v2", str(_model_generation(reg)), "0", "ok"],
        ["host-3:1003", "v2", str(_model_generation(reg)), "0", "ok"],
    ]


def test_a_split_fleet_counts_each_version(reg: Harness, fleet: Fleet) -> None:
    fleet.report(2, count=3)
    fleet.report(1, count=1, generation=1)

    assert _lines(reg)[0] == f"{MODEL}@production: 4 resolvers, split: v2 x3, v1 x1"


def test_resolvers_on_several_generations_of_one_version(reg: Harness, fleet: Fleet) -> None:
    generation = _model_generation(reg)
    fleet.report(2)
    fleet.report(2, generation=generation - 1)

    assert _lines(reg)[0] == (
        f"{MODEL}@production: 2 resolvers, all on v2 (generations {generation - 1}-{generation})"
    )


def test_behind_is_how_many_events_a_resolver_has_not_seen(reg: Harness, fleet: Fleet) -> None:
    with reg.store() as store:
        latest = store.latest_seq()
    fleet.report(2, seq=latest - 3)

    (row,) = reg.json("fleet")["resolvers"]

    assert (row["seq"], row["behind"]) == (latest - 3, 3)


def test_a_degraded_resolver_says_why(reg: Harness, fleet: Fleet) -> None:
    fleet.report(2, count=2)
    fleet.report(1, degraded=True, reason="eu-west lacks v2's bytes")

    lines = _lines(reg)

    assert lines[0] == f"{MODEL}@production: 3 resolvers, split: v2 x2, v1 x1; 1 degraded"
    assert any(line.endswith("DEGRADED: eu-west lacks v2's bytes") for line in lines)


def test_a_stale_resolver_is_shown_but_not_counted(reg: Harness, fleet: Fleet) -> None:
    fleet.report(2, count=2)
    fleet.report(1, ago=40)

    lines = _lines(reg)

    assert lines[0].startswith(f"{MODEL}@production: 2 resolvers, all on v2 (generation ")
    assert lines[0].endswith("; 1 stale, not counted")
    assert any("v1" in line and "STALE: last seen 4" in line for line in lines[1:])


def test_stale_after_sets_how_long_silence_is_tolerated(reg: Harness, fleet: Fleet) -> None:
    fleet.report(1, ago=40)

    assert _lines(reg)[0] == f"{MODEL}@production: no live resolvers (1 stale)"
    assert _lines(reg, "--stale-after", "60")[0].startswith(
        f"{MODEL}@production: 1 resolver, all on v1"
    )


def test_an_app_release_ref_is_its_own_line(reg: Harness, fleet: Fleet) -> None:
    fleet.report(2)
    fleet.report(2, ref="app=fraud-service,release=1.0.0", region="eu-west")

    lines = _lines(reg)

    assert lines[0].startswith(f"{MODEL} (app=fraud-service,release=1.0.0): 1 resolver, all on v2")
    assert lines[1].startswith(f"{MODEL}@production: 1 resolver, all on v2")


def test_a_resolver_with_nothing_loaded(reg: Harness, fleet: Fleet) -> None:
    fleet.report(None, generation=None, degraded=True, reason="registry unreachable")

    lines = _lines(reg)

    assert lines[0] == f"{MODEL}@production: 1 resolver, none serving a version yet; 1 degraded"


def test_json_answers_the_same_question(reg: Harness, fleet: Fleet) -> None:
    fleet.report(2, count=2)
    fleet.report(1, generation=1, degraded=True, reason="slow download")
    fleet.report(1, ago=60)

    data = reg.json("fleet", MODEL)

    (ref,) = data["refs"]
    assert ref == {
        "model": MODEL,
        "ref": f"{MODEL}@production",
        "resolvers": 3,
        "versions": [{"version": 2, "resolvers": 2}, {"version": 1, "resolvers": 1}],
        "all_on": None,
        "degraded": 1,
        "stale": 1,
        "summary": f"{MODEL}@production: 3 resolvers, split: v2 x2, v1 x1; 1 degraded; "
        "1 stale, not counted",
    }
    assert [r["status"] for r in data["resolvers"]] == ["ok", "ok", "degraded", "stale"]
    assert data["latest_seq"] == data["resolvers"][0]["seq"]
    assert data["stale_after"] == 15


def test_one_models_fleet(reg: Harness, fleet: Fleet) -> None:
    fleet.report(2)
    fleet.report(3, model="churn", ref="churn@production")

    assert [r["model"] for r in reg.json("fleet", "churn")["refs"]] == ["churn"]
    assert [r["model"] for r in reg.json("fleet")["refs"]] == ["churn", MODEL]


def test_no_resolvers_reported_yet(reg: Harness) -> None:
    assert _lines(reg) == ["no resolvers have reported (they send a heartbeat every few seconds)"]
    assert reg.json("fleet") == {"latest_seq": 0, "stale_after": 15, "refs": [], "resolvers": []}


def test_a_bad_name_is_a_usage_error(reg: Harness) -> None:
    assert "invalid model name" in reg.fail("fleet", "Not A Name", code=2)


def test_stale_after_must_be_positive(reg: Harness) -> None:
    result = reg.run("fleet", "--stale-after", "0")

    assert result.exit_code == 2
