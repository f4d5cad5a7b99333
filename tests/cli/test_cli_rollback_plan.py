"""``modelreg rollback NAME --dry-run``, the ``rollback`` column of ``models`` and the
rollback target of ``show NAME production`` (#13 item 0): the plan the rollback itself
would follow, exit 0 when safe and 4 when the rollback would be refused, changing
nothing."""

from __future__ import annotations

from cli_harness import MODEL, Harness
from release_facts import replicate_everywhere

from registry.cli.errors import CONFLICT, USAGE
from registry.release_models import ReplicaState


def serve(reg: Harness, count: int, *, name: str = MODEL) -> None:
    for _ in range(count):
        reg.promote(reg.register(name), name=name)


def unverify(reg: Harness, version: int, region: str = "eu-west") -> None:
    with reg.store() as store:
        store.record_replica(MODEL, version, region, ReplicaState.FAILED, error="disk full")


def test_a_safe_dry_run_names_the_target_and_why_and_exits_0(reg: Harness) -> None:
    serve(reg, 2)
    before = reg.snapshot()

    result = reg.run("rollback", MODEL, "--dry-run")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "target      v1" in out
    assert "SAFE: a rollback now restores v1" in out
    assert "v1 is the latest version to serve in Production before v2" in out
    assert "us-east" in out and "verified" in out
    assert "health us-east" in out and "passed" in out
    assert reg.snapshot() == before  # nothing changed, no event appended
    assert reg.json("rollback", MODEL, "--reason", "as planned")["events"][0]["to_value"] == "1"


def test_an_unsafe_dry_run_lists_every_problem_and_exits_4(reg: Harness) -> None:
    serve(reg, 2)
    unverify(reg, 1)
    before = reg.snapshot()

    result = reg.run("rollback", MODEL, "--dry-run")

    assert result.exit_code == CONFLICT, result.output
    assert "UNSAFE" in result.stdout
    assert "v1 is not verified in eu-west (failed: disk full): replicate it first" in result.stdout
    assert "eu-west   FAILED: disk full" in result.stdout
    assert reg.snapshot() == before
    refused = reg.fail("rollback", MODEL, "--reason", "anyway", code=CONFLICT)
    assert "v1 is not verified in eu-west (failed: disk full)" in refused


def test_the_dry_run_json_is_the_plan(reg: Harness) -> None:
    serve(reg, 3)

    plan = reg.json("rollback", MODEL, "--dry-run", "--to", "1", "--reason", "ignored")

    assert (plan["name"], plan["current"], plan["target"], plan["safe"]) == (MODEL, 3, 1, True)
    assert plan["problems"] == []
    assert [r["region"] for r in plan["regions"]] == ["us-east", "eu-west", "ap-south"]
    assert {c["kind"] for c in plan["checks"]} == {"health", "canary"}


def test_an_unsafe_dry_run_json_exits_4_with_the_plan(reg: Harness) -> None:
    reg.register()

    result = reg.run("rollback", MODEL, "--dry-run", "--json")

    assert result.exit_code == CONFLICT
    assert result.stderr == ""
    import json

    plan = json.loads(result.stdout)
    assert (plan["target"], plan["safe"]) == (None, False)
    assert plan["problems"] == ["no earlier Production version to roll back to"]


def test_nothing_to_roll_back_to_is_said_plainly(reg: Harness) -> None:
    serve(reg, 1)

    result = reg.run("rollback", MODEL, "--dry-run")

    assert result.exit_code == CONFLICT
    assert "none: nothing to roll back to" in result.stdout
    assert "- no earlier Production version to roll back to" in result.stdout


def test_a_rollback_without_dry_run_still_needs_a_reason(reg: Harness) -> None:
    serve(reg, 2)

    message = reg.fail("rollback", MODEL, code=USAGE)

    assert "--reason" in message
    assert reg.json("models")[0]["production"] == 2


def test_dry_run_refuses_force_and_expect_generation(reg: Harness) -> None:
    serve(reg, 2)

    for extra in (["--force"], ["--expect-generation", "1"]):
        message = reg.fail("rollback", MODEL, "--dry-run", *extra, code=USAGE)
        assert "--dry-run takes --to, --reason and --json" in message


def test_models_shows_each_rollback_target_safe_or_unsafe(reg: Harness) -> None:
    serve(reg, 2)
    serve(reg, 2, name="churn")
    with reg.store() as store:
        store.record_replica("churn", 1, "ap-south", ReplicaState.PENDING)
    reg.register("ads")

    table = reg.run("models")
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[2:]}

    assert "rollback" in table.stdout.splitlines()[0]
    assert "v1 safe" in rows[MODEL]
    assert "v1 UNSAFE" in rows["churn"]
    assert rows["ads"].split()[1:3] == ["-", "-"]  # no production, no rollback target
    found = {m["name"]: m["rollback"] for m in reg.json("models")}
    assert (found[MODEL]["target"], found[MODEL]["safe"]) == (1, True)
    assert found["churn"]["problems"] == [
        "v1 is not verified in ap-south (pending): replicate it first"
    ]
    assert (found["ads"]["target"], found["ads"]["safe"]) == (None, False)


def test_show_production_states_the_rollback_target(reg: Harness) -> None:
    serve(reg, 2)
    unverify(reg, 1, "us-east")

    out = reg.run("show", MODEL, "production").stdout
    shown = reg.json("show", MODEL, "production")

    assert "rollback target" in out
    assert "UNSAFE: a rollback now would be refused" in out
    assert "problem  v1 is not verified in us-east (failed: disk full)" in out
    assert (shown["rollback"]["target"], shown["rollback"]["safe"]) == (1, False)
    assert "rollback" not in reg.json("show", MODEL, "1")  # only Production has one
    assert "rollback target" not in reg.run("show", MODEL, "1").stdout
    with reg.store() as store:
        replicate_everywhere(store, MODEL, 1)
    assert "SAFE: a rollback now restores v1" in reg.run("show", MODEL, "production").stdout
