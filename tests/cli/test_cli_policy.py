"""``policy show|set`` and ``approve``: the release policy kept in the registry, and sign-off."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import MODEL, Harness

POLICY = """\
required: [replicas, health, canary, signature]
staging:
  - auc >= 0.75
  - auc >= production.auc - 0.01
  - latency_p99_ms <= 25
regions: [us-east, eu-west, ap-south]
approvals: {required: 1, timeout_s: 600}
"""


def _file(reg: Harness, text: str, name: str = "policy.yaml") -> str:
    path = reg.tmp_path / name
    path.write_text(text)
    return str(path)


def _out(reg: Harness, *args: str) -> str:
    result = reg.run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def with_policy(reg: Harness) -> Harness:
    reg.register(changes={"metrics": {"auc": 0.9, "f1": 0.79, "latency_p99_ms": 3.1}})
    reg.json("policy", "set", MODEL, "--file", _file(reg, POLICY), "--reason", "Q4 rules")
    return reg


def test_a_model_without_a_policy_shows_the_default(reg: Harness) -> None:
    reg.register()
    shown = reg.json("policy", "show", MODEL)
    assert (shown["version"], shown["default"], shown["actor"]) == (0, True, None)
    assert shown["policy"]["required"] == ["replicas", "health", "canary", "signature"]
    assert "default policy" in _out(reg, "policy", "show", MODEL)


def test_policy_set_stores_version_1_with_its_actor_and_reason(with_policy: Harness) -> None:
    shown = with_policy.json("policy", "show", MODEL)
    assert (shown["version"], shown["actor"], shown["reason"]) == (1, "oncall@test", "Q4 rules")
    assert shown["policy"]["staging"] == [
        "auc >= 0.75",
        "auc >= production.auc - 0.01",
        "latency_p99_ms <= 25",
    ]
    assert shown["policy"]["approvals"] == {"required": 1, "timeout_s": 600.0}
    assert shown["key_metrics"] == ["auc", "latency_p99_ms"]


def test_policy_set_is_an_event_in_history(with_policy: Harness) -> None:
    event = with_policy.json("history", MODEL)["events"][-1]
    assert (event["kind"], event["to_value"], event["reason"]) == ("policy", "1", "Q4 rules")
    assert "policy version 1 set" in _out(with_policy, "history", MODEL)


def test_policy_show_prints_yaml_that_policy_set_reads_back(with_policy: Harness) -> None:
    text = _out(with_policy, "policy", "show", MODEL)
    assert text.startswith(f"# {MODEL}: policy version 1\n# set by oncall@test at ")
    assert "Q4 rules" in text.splitlines()[1]
    assert "- auc >= production.auc - 0.01\n" in text
    with_policy.json("policy", "set", MODEL, "--file", _file(with_policy, text, "again.yaml"),
                     "--reason", "same again")  # fmt: skip
    first, second = (with_policy.json("policy", "show", MODEL, "--version", n) for n in "12")
    assert first["policy"] == second["policy"]
    assert "policy version 1 -> 2" in _out(with_policy, "history", MODEL)


def test_old_policy_versions_stay_readable(with_policy: Harness) -> None:
    tighter = POLICY.replace("auc >= 0.75", "auc >= 0.85")
    with_policy.json(
        "policy", "set", MODEL, "--file", _file(with_policy, tighter), "--reason", "up"
    )
    assert with_policy.json("policy", "show", MODEL)["policy"]["staging"][0] == "auc >= 0.85"
    old = with_policy.json("policy", "show", MODEL, "--version", "1")
    assert old["policy"]["staging"][0] == "auc >= 0.75"
    assert with_policy.json("policy", "show", MODEL, "--version", "0")["default"] is True
    history = with_policy.json("policy", "show", MODEL, "--history")
    assert [(r["version"], r["reason"]) for r in history] == [(1, "Q4 rules"), (2, "up")]
    out = _out(with_policy, "policy", "show", MODEL, "--history")
    assert "Q4 rules" in out and "up" in out


def test_policy_set_creates_the_model_if_needed(reg: Harness) -> None:
    reg.json("policy", "set", "churn", "--file", _file(reg, POLICY), "--reason", "first")
    assert reg.json("policy", "show", "churn")["version"] == 1


def test_policy_set_reads_stdin(reg: Harness) -> None:
    result = reg.run("policy", "set", MODEL, "--file", "-", "--reason", "r", stdin=POLICY)
    assert result.exit_code == 0, result.output
    assert f"{MODEL}: policy version 1 set" in result.stdout


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("required: [replicas\n", "not valid YAML", id="not YAML"),
        pytest.param("- auc >= 0.75\n", "must be a mapping", id="a list"),
        pytest.param("required: [replicas, vibes]\n", "unknown gate 'vibes'", id="unknown gate"),
        pytest.param("staging: ['auc > 0.75']\n", "cannot read metric rule", id="bad rule"),
        pytest.param("regions: []\n", "regions", id="no regions"),
        pytest.param("canary: {alpha: 2}\n", "canary.alpha", id="alpha out of range"),
        pytest.param("colour: red\n", "colour", id="unknown key"),
    ],
)
def test_an_invalid_policy_file_is_one_line_exit_2_and_stores_nothing(
    with_policy: Harness, text: str, fragment: str
) -> None:
    before = with_policy.snapshot()
    message = with_policy.fail(
        "policy", "set", MODEL, "--file", _file(with_policy, text, "bad.yaml"), "--reason", "r",
        code=2,
    )  # fmt: skip
    assert fragment in message
    assert with_policy.snapshot() == before
    assert with_policy.json("policy", "show", MODEL)["version"] == 1


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("missing", "no such file"), ("directory", "directory"), ("binary", "UTF-8")],
)
def test_an_unreadable_policy_file_is_one_line_exit_2(
    reg: Harness, tmp_path: Path, kind: str, fragment: str
) -> None:
    reg.register()
    path = {"missing": tmp_path / "nope.yaml", "directory": tmp_path, "binary": tmp_path / "b"}
    path["binary"].write_bytes(b"\xff\xfe\x00")
    message = reg.fail("policy", "set", MODEL, "--file", str(path[kind]), "--reason", "r", code=2)
    assert fragment in message


def test_policy_set_needs_a_reason(reg: Harness) -> None:
    assert "--reason" in reg.fail("policy", "set", MODEL, "--file", _file(reg, POLICY), code=2)


def test_policy_of_an_unknown_model_or_version_is_not_found(with_policy: Harness) -> None:
    assert "spam" in with_policy.fail("policy", "show", "spam", code=3)
    assert "version 7" in with_policy.fail("policy", "show", MODEL, "--version", "7", code=3)


def test_the_staging_rules_of_the_policy_gate_promotion_to_staging(reg: Harness) -> None:
    reg.register()
    strict = "staging: ['auc >= 0.95']\n"
    reg.json("policy", "set", MODEL, "--file", _file(reg, strict), "--reason", "strict")
    message = reg.fail("promote", MODEL, "1", "--stage", "Staging", code=4)
    assert "staging gate refused" in message
    assert "auc 0.9000 is not >= 0.95" in message


# ---------------------------------------------------------------- approve


def test_the_registrants_own_approval_is_refused_with_exit_4(with_policy: Harness) -> None:
    with_policy.json("promote", MODEL, "1", "--stage", "Staging")
    before = with_policy.snapshot()
    assert "someone else" in with_policy.fail("approve", MODEL, "1", "--reason", "lgtm", code=4)
    assert with_policy.snapshot() == before


def test_promotion_waits_for_an_approval_from_someone_else(with_policy: Harness) -> None:
    with_policy.json("promote", MODEL, "1", "--stage", "Staging")
    with_policy.make_releasable(1)
    message = with_policy.fail("promote", MODEL, "1", code=4)
    assert "needs 1 approval(s) from someone other than the registrant (oncall@test)" in message

    approved = with_policy.json("approve", MODEL, "1", "--reason", "reviewed", user="alice@test")

    assert approved["approvers"] == ["alice@test"]
    assert approved["required"] == 1
    assert approved["approval"]["recorded_by"] == "alice@test"
    assert approved["approval"]["evidence"] == {"reason": "reviewed"}
    with_policy.json("promote", MODEL, "1")
    assert with_policy.json("models")[0]["production"] == 1


def test_an_approval_is_history_with_its_approver(with_policy: Harness) -> None:
    with_policy.json("promote", MODEL, "1", "--stage", "Staging")
    result = with_policy.run("approve", MODEL, "1", "--reason", "ok", user="bob@test")
    assert result.exit_code == 0, result.output
    assert f"{MODEL}: v1 approved by bob@test (approvals: 1 of 1 required; bob@test)" in (
        result.stdout
    )
    event = with_policy.json("history", MODEL)["events"][-1]
    assert (event["kind"], event["version"], event["actor"]) == ("approval", 1, "bob@test")
    assert "v1 approved" in _out(with_policy, "history", MODEL)


def test_approve_needs_a_reason(with_policy: Harness) -> None:
    assert "--reason" in with_policy.fail("approve", MODEL, "1", code=2, user="alice@test")


def test_an_approval_with_no_run_waiting_resumes_nothing(with_policy: Harness) -> None:
    with_policy.json("promote", MODEL, "1", "--stage", "Staging")

    approved = with_policy.json("approve", MODEL, "1", "--reason", "ok", user="alice@test")

    assert approved["resumed_run"] is None
