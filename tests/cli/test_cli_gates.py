"""The release gates through the CLI door: refusals, break-glass, protected aliases, history."""

from __future__ import annotations

import re

import pytest
from cli_harness import MODEL, Harness
from release_facts import replicate_everywhere

from registry.models import Origin
from registry.store.sql import SqlStore

GATE_PROBLEMS = (
    "replica not verified in us-east (no replica), eu-west (no replica), ap-south (no replica)",
    "no health check in us-east, eu-west, ap-south",
    "no canary result",
)


def _out(reg: Harness, *args: str) -> str:
    result = reg.run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _line(text: str, fragment: str) -> str:
    (line,) = [line for line in text.splitlines() if fragment in line]
    return line


@pytest.fixture
def staged(reg: Harness) -> Harness:
    """A new user's registry: one version, in Staging, never replicated."""
    reg.register()
    reg.json("promote", MODEL, "1", "--stage", "Staging", "--reason", "s")
    return reg


def test_promoting_an_unreplicated_version_lists_every_unmet_gate_and_exits_4(
    staged: Harness,
) -> None:
    message = staged.fail("promote", MODEL, "1", "--stage", "Production", "--reason", "p", code=4)
    assert message.startswith(f"error: promotion gate refused {MODEL} v1 to Production: ")
    for problem in GATE_PROBLEMS:
        assert problem in message
    assert staged.json("show", MODEL, "1")["stage"] == "Staging"


def test_history_shows_the_refusal_with_its_reasons(staged: Harness) -> None:
    staged.fail("promote", MODEL, "1", "--reason", "p", code=4)
    line = _line(_out(staged, "history", MODEL), "REFUSED")
    assert "REFUSED v1 -> Production (promotion gate): replica not verified" in line
    assert "; no health check in us-east, eu-west, ap-south; no canary result" in line
    refused = staged.json("history", MODEL)["events"][-1]
    assert refused["kind"] == "refused"
    assert refused["details"]["gate"] == "promotion"
    assert list(refused["details"]["reasons"]) == list(GATE_PROBLEMS)
    assert refused["reason"] == "p"


def test_force_with_a_reason_promotes_and_history_marks_it_forced(staged: Harness) -> None:
    change = staged.json("promote", MODEL, "1", "--force", "--reason", "incident 42")
    (event,) = change["events"]
    assert event["details"]["forced"] is True
    assert {"replicas", "health", "canary"} <= set(event["details"]["skipped"])
    assert staged.json("models")[0]["production"] == 1
    line = _line(_out(staged, "history", MODEL), "FORCED")
    assert re.search(r"version 1: Staging -> Production FORCED \(skipped .*replicas, health", line)
    assert "incident 42" in line


def test_force_without_a_reason_is_a_usage_error_and_changes_nothing(staged: Harness) -> None:
    before = staged.snapshot()
    assert "reason" in staged.fail("promote", MODEL, "1", "--force", code=2)
    assert staged.snapshot() == before


def test_human_promote_output_says_forced(staged: Harness) -> None:
    out = _out(staged, "promote", MODEL, "1", "--force", "--reason", "now")
    assert f"{MODEL}: version 1: Staging -> Production FORCED (skipped" in out


def test_a_version_with_the_gate_facts_promotes_without_force(staged: Harness) -> None:
    staged.make_releasable(1)
    (event,) = staged.json("promote", MODEL, "1")["events"]
    assert event["details"]["forced"] is False


@pytest.mark.parametrize("alias", ["production", "champion"])
def test_a_protected_alias_obeys_the_same_gate(staged: Harness, alias: str) -> None:
    message = staged.fail("alias", "set", MODEL, alias, "1", code=4)
    for problem in GATE_PROBLEMS:
        assert problem in message
    assert "REFUSED v1 -> " in _out(staged, "history", MODEL)
    assert "reason" in staged.fail("alias", "set", MODEL, alias, "1", "--force", code=2)
    staged.json("alias", "set", MODEL, alias, "1", "--force", "--reason", "break glass")
    assert "FORCED" in _line(_out(staged, "history", MODEL), "break glass")


def test_setting_the_production_alias_is_a_promotion(staged: Harness) -> None:
    staged.make_releasable(1)
    (event,) = staged.json("alias", "set", MODEL, "production", "1")["events"]
    assert (event["kind"], event["to_value"]) == ("stage", "Production")


def test_an_unprotected_alias_needs_no_gate(reg: Harness) -> None:
    reg.register()
    assert reg.json("alias", "set", MODEL, "challenger", "1")["events"][0]["to_value"] == "1"


def test_deleting_a_protected_alias_needs_force(staged: Harness) -> None:
    staged.json("alias", "set", MODEL, "champion", "1", "--force", "--reason", "x")
    assert "protected alias" in staged.fail("alias", "delete", MODEL, "champion", code=4)
    staged.json("alias", "delete", MODEL, "champion", "--force", "--reason", "retire it")
    assert staged.json("models")[0]["aliases"] == {}


@pytest.fixture
def unreplicated_previous(staged: Harness) -> Harness:
    """v1 was forced into Production without replicas; v2 serves now, legally."""
    staged.json("promote", MODEL, "1", "--force", "--reason", "first")
    staged.register()
    staged.promote(2)
    return staged


def test_rollback_to_a_version_missing_in_a_region_is_refused_naming_the_regions(
    unreplicated_previous: Harness,
) -> None:
    message = unreplicated_previous.fail("rollback", MODEL, "--reason", "bad", code=4)
    assert "v1 is not verified in us-east (no replica), eu-west (no replica), ap-south" in message
    assert unreplicated_previous.json("models")[0]["production"] == 2


def test_forced_rollback_is_marked_and_invalidates(unreplicated_previous: Harness) -> None:
    (event,) = unreplicated_previous.json("rollback", MODEL, "--reason", "bad", "--force")["events"]
    assert event["details"]["invalidate"] is True
    assert event["details"]["skipped"] == ["replicas", "signature"]
    line = _line(_out(unreplicated_previous, "history", MODEL), "rollback of Production")
    assert "version 2 -> 1 FORCED (skipped replicas, signature) (invalidate now)" in line


def test_rollback_to_a_replicated_version_needs_no_force(unreplicated_previous: Harness) -> None:
    with unreplicated_previous.store() as store:
        replicate_everywhere(store, MODEL, 1)
    (event,) = unreplicated_previous.json("rollback", MODEL, "--reason", "bad")["events"]
    assert event["details"]["forced"] is False


def test_history_names_the_flow_run_behind_a_change(reg: Harness) -> None:
    for version in (1, 2):
        reg.register()
        reg.promote(version)
    origin = Origin(
        flow="rollback",
        run_id="0d5e-run",
        run_name="crafty-fox",
        deployment="rollback/on-call",
        url="http://127.0.0.1:4200/runs/flow-run/0d5e-run",
    )
    with SqlStore(reg.url, actor="root@vm", origin=origin) as store:
        store.rollback(MODEL, reason="auc dropped")
    line = _line(_out(reg, "history", MODEL), "rollback of Production")
    assert "root@vm via deployment rollback/on-call (run crafty-fox)" in line
    assert "root@vm via deployment rollback/on-call" in _line(_out(reg, "events"), "rollback of")
    last = reg.json("history", MODEL)["events"][-1]
    assert last["actor"] == "root@vm"
    assert last["details"]["origin"] == origin.model_dump()


def test_events_render_refusals_like_history(staged: Harness) -> None:
    staged.fail("promote", MODEL, "1", code=4)
    assert "REFUSED v1 -> Production (promotion gate)" in _out(staged, "events")
    assert staged.json("events")[-1]["details"]["gate"] == "promotion"
