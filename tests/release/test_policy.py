"""The release policy: reading metric rules and policy files, refusing bad ones in one
line, writing a policy back out, and what a policy requires."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import InvalidInput
from registry.release.policy import (
    ApprovalRule,
    ApprovalStatus,
    CanaryParams,
    Gate,
    MetricRule,
    ReleasePolicy,
)

# The example of the module's docstring, as a user would write it.
EXAMPLE_YAML = """\
required: [replicas, health, canary, signature]   # the gates Production needs
staging:                                          # None -> Staging metric rules
  - auc >= 0.75
  - auc >= production.auc - 0.01                  # no regression against Production
  - latency_p99_ms <= 25
regions: [us-east, eu-west]
protected_aliases: [production, champion, shadow]
canary: {alpha: 0.01, margin: 0.02, min_samples: 500}
approvals: {required: 2, timeout_s: 600}
"""
EXAMPLE = ReleasePolicy(
    required=(Gate.REPLICAS, Gate.HEALTH, Gate.CANARY, Gate.SIGNATURE),
    staging=(
        MetricRule(metric="auc", op=">=", threshold=0.75),
        MetricRule(metric="auc", op=">=", baseline="auc", offset=-0.01),
        MetricRule(metric="latency_p99_ms", op="<=", threshold=25.0),
    ),
    regions=("us-east", "eu-west"),
    protected_aliases=("production", "champion", "shadow"),
    canary=CanaryParams(alpha=0.01, margin=0.02, min_samples=500),
    approvals=ApprovalRule(required=2, timeout_s=600.0),
)


def _refusal(data: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        ReleasePolicy.parse(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- metric rules


def _floor(metric: str, op: str, threshold: float) -> MetricRule:
    return MetricRule(metric=metric, op=op, threshold=threshold)


def _relative(metric: str, op: str, baseline: str, offset: float = 0.0) -> MetricRule:
    return MetricRule(metric=metric, op=op, baseline=baseline, offset=offset)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("auc >= 0.75", _floor("auc", ">=", 0.75)),
        ("auc>=0.75", _floor("auc", ">=", 0.75)),
        ("  latency_p99_ms <= 25  ", _floor("latency_p99_ms", "<=", 25.0)),
        ("latency_p99_ms<=25", _floor("latency_p99_ms", "<=", 25.0)),
        ("auc >= .5", _floor("auc", ">=", 0.5)),
        ("auc >= 1.", _floor("auc", ">=", 1.0)),
        ("drift <= 1e-3", _floor("drift", "<=", 0.001)),
        ("rows >= 2.5E+3", _floor("rows", ">=", 2500.0)),
        ("delta >= -0.1", _floor("delta", ">=", -0.1)),
        ("delta >= +3", _floor("delta", ">=", 3.0)),
        ("auc.country.US >= 0.7", _floor("auc.country.US", ">=", 0.7)),
        ("auc >= production.auc", _relative("auc", ">=", "auc")),
        ("auc >= production.auc - 0.01", _relative("auc", ">=", "auc", -0.01)),
        ("auc >= production.auc + 0.01", _relative("auc", ">=", "auc", 0.01)),
        ("auc >= production.auc -0.01", _relative("auc", ">=", "auc", -0.01)),
        ("auc>=production.auc - 1e-2", _relative("auc", ">=", "auc", -0.01)),
        ("auc >= production.auc_floor", _relative("auc", ">=", "auc_floor")),
        (
            "latency_p99_ms <= production.latency_p99_ms + 5",
            _relative("latency_p99_ms", "<=", "latency_p99_ms", 5.0),
        ),
    ],
)
def test_a_metric_rule_is_read(text: str, rule: MetricRule) -> None:
    assert MetricRule.parse(text) == rule


@pytest.mark.parametrize("text", ["auc >= production.auc-0.01", "auc>=production.auc-0.01"])
def test_a_relative_rule_without_spaces_keeps_its_offset(text: str) -> None:
    assert MetricRule.parse(text) == _relative("auc", ">=", "auc", -0.01)


REFUSED_RULES = [
    "auc > 0.75",
    "auc == 0.75",
    "auc = 0.75",
    "auc >=",
    ">= 0.75",
    "",
    "auc >= nan",
    "auc >= inf",
    "auc >= 1e400",
    "auc >= 0.75 or so",
    "auc >= 0,75",
    "1auc >= 0.5",
    "auc >= production.",
    "auc >= staging.auc",
    "auc >= production.auc * 2",
    "auc >= production.auc - - 0.01",
    "auc >= production.auc - 1e400",
    "auc <= 0.9 >= 0.1",
    "x" * 129 + " >= 1",
]


@pytest.mark.parametrize("text", REFUSED_RULES, ids=range(len(REFUSED_RULES)))
def test_a_policy_with_an_unreadable_rule_is_refused_naming_it(text: str) -> None:
    message = _refusal({"staging": ["auc >= 0.75", text]})

    assert message.startswith("invalid policy: staging: ")
    assert repr(text) in message


@pytest.mark.parametrize("text", REFUSED_RULES, ids=range(len(REFUSED_RULES)))
def test_metric_rule_parse_refuses_naming_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match="rule") as caught:
        MetricRule.parse(text)

    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("value", [0.75, None, ["auc >= 0.75"]], ids=repr)
def test_a_rule_that_is_not_a_string_is_refused(value: Any) -> None:
    _refusal({"staging": [value]})


@pytest.mark.parametrize(
    "rule",
    [
        {"metric": "auc", "op": "==", "threshold": 0.75},
        {"metric": "auc", "op": ">="},
        {"metric": "auc", "op": ">=", "threshold": float("nan")},
        {"metric": "not a key", "op": ">=", "threshold": 0.75},
    ],
    ids=["bad-op", "no-bound", "nan", "bad-metric"],
)
def test_a_rule_given_as_a_mapping_is_validated_like_text(rule: dict[str, Any]) -> None:
    _refusal({"staging": [rule]})


@pytest.mark.parametrize(
    "text",
    [
        "auc >= 0.75",
        "latency_p99_ms <= 25",
        "auc >= production.auc",
        "auc >= production.auc - 0.01",
        "auc >= production.auc + 0.01",
        "drift <= 0.001",
    ],
)
def test_a_rule_reads_back_from_its_text(text: str) -> None:
    rule = MetricRule.parse(text)

    assert str(rule) == text
    assert MetricRule.parse(str(rule)) == rule


# ---------------------------------------------------------------- policy files


def test_a_yaml_policy_file_is_read() -> None:
    assert ReleasePolicy.from_text(EXAMPLE_YAML) == EXAMPLE


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
def test_a_json_policy_file_is_read(indent: int | None) -> None:
    text = json.dumps(yaml.safe_load(EXAMPLE_YAML), indent=indent)

    assert ReleasePolicy.from_text(text) == EXAMPLE


def test_a_tab_indented_json_policy_file_is_read() -> None:
    text = json.dumps(yaml.safe_load(EXAMPLE_YAML), indent="\t")

    assert ReleasePolicy.from_text(text) == EXAMPLE


@pytest.mark.parametrize("text", ["", "\n", "# nothing set yet\n", "{}"], ids=repr)
def test_an_empty_policy_file_is_the_default_policy(text: str) -> None:
    assert ReleasePolicy.from_text(text) == ReleasePolicy()


def test_the_default_policy() -> None:
    policy = ReleasePolicy()

    assert policy.required == (Gate.REPLICAS, Gate.HEALTH, Gate.CANARY, Gate.SIGNATURE)
    assert policy.staging == ()
    assert policy.regions == ("us-east", "eu-west", "ap-south")
    assert policy.protected_aliases == ("production", "champion")
    assert policy.canary == CanaryParams(alpha=0.05, margin=0.01, min_samples=2000)
    assert policy.approvals == ApprovalRule(required=0, timeout_s=3600.0)


@pytest.mark.parametrize(
    "text",
    ["required: [replicas\n  canary: ]\n", "staging:\n  - auc >= 0.75\n - x\n", "a: b: c\n"],
    ids=["flow", "indent", "mapping"],
)
def test_invalid_yaml_is_one_line_naming_the_file(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ReleasePolicy.from_text(text, source="fraud.yaml")

    message = str(caught.value)
    assert message.startswith("fraud.yaml is not valid YAML: ")
    assert "\n" not in message


@pytest.mark.parametrize("text", ["- replicas\n- canary\n", "just words\n", "42\n"])
def test_a_policy_file_must_be_a_mapping(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^fraud.yaml must be a mapping"):
        ReleasePolicy.from_text(text, source="fraud.yaml")


def test_a_refused_policy_file_is_one_line_naming_the_file() -> None:
    with pytest.raises(InvalidInput) as caught:
        ReleasePolicy.from_text("required: [replicas, canaries]\n", source="fraud.yaml")

    message = str(caught.value)
    assert message.startswith("invalid fraud.yaml: required: ")
    assert "unknown gate 'canaries'" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"thresholds": {"min_auc": 0.5}}, "thresholds: Extra inputs are not permitted"),
        ({"required": ["replicas", "canaries"]}, "unknown gate 'canaries'"),
        ({"required": ["Replicas"]}, "unknown gate 'Replicas'"),
        ({"required": "replicas"}, "required must be a list of gates"),
        ({"required": ["canary", "health", "canary"]}, "required names a gate twice"),
        ({"regions": ["us-east", "eu-west", "us-east"]}, "regions names a region twice"),
        ({"regions": []}, "regions must be a non-empty list"),
        ({"regions": "us-east"}, "regions must be a non-empty list"),
        ({"regions": ["US-East"]}, "invalid region 'US-East'"),
        ({"regions": ["us_east"]}, "invalid region 'us_east'"),
        ({"regions": ["-east"]}, "invalid region '-east'"),
        ({"regions": ["a" * 65]}, "invalid region"),
        ({"regions": [3]}, "invalid region 3"),
        ({"protected_aliases": ["Production"]}, "invalid alias 'Production'"),
        ({"protected_aliases": ["prod alias"]}, "invalid alias 'prod alias'"),
        ({"protected_aliases": "production"}, "protected_aliases must be a list"),
        ({"staging": "auc >= 0.75"}, "staging must be a list"),
        ({"staging": ["auc >= 0.5"] * 65}, "at most 64 staging rules"),
        ({"canary": {"alpha": 0}}, "canary.alpha"),
        ({"canary": {"alpha": 1}}, "canary.alpha"),
        ({"canary": {"alpha": 1.5}}, "canary.alpha"),
        ({"canary": {"margin": 1}}, "canary.margin"),
        ({"canary": {"margin": -0.01}}, "canary.margin"),
        ({"canary": {"min_samples": 0}}, "canary.min_samples"),
        ({"canary": {"alhpa": 0.1}}, "canary.alhpa: Extra inputs"),
        ({"approvals": {"required": 11}}, "approvals.required"),
        ({"approvals": {"required": -1}}, "approvals.required"),
        ({"approvals": {"timeout_s": 0}}, "approvals.timeout_s"),
    ],
)
def test_an_invalid_policy_is_refused_in_one_line(data: dict[str, Any], words: str) -> None:
    message = _refusal(data)

    assert message.startswith("invalid policy: ")
    assert words in message


@pytest.mark.parametrize("item", [["replicas"], {"gate": "replicas"}], ids=["list", "mapping"])
def test_a_gate_that_is_not_a_name_is_refused(item: Any) -> None:
    _refusal({"required": ["canary", item]})


@pytest.mark.parametrize(
    "data",
    [
        {"required": []},
        {"canary": {"alpha": 0.5, "margin": 0.0, "min_samples": 1}},
        {"approvals": {"required": 10, "timeout_s": 7 * 24 * 3600}},
        {"regions": ["a", "a" * 64, "eu-west-2"]},
        {"required": ["approval"]},
    ],
    ids=["no-gates", "canary-bounds", "approval-bounds", "region-names", "approval-gate"],
)
def test_the_bounds_themselves_are_accepted(data: dict[str, Any]) -> None:
    assert ReleasePolicy.parse(data) == ReleasePolicy.model_validate(data)


def test_parse_returns_a_policy_as_is() -> None:
    assert ReleasePolicy.parse(EXAMPLE) is EXAMPLE


def test_a_repeated_protected_alias_is_kept_once() -> None:
    policy = ReleasePolicy.parse({"protected_aliases": ["champion", "production", "champion"]})

    assert policy.protected_aliases == ("champion", "production")


# ---------------------------------------------------------------- writing a policy back


def _metric_names() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)


def _numbers(min_value: int = -999_999) -> st.SearchStrategy[float]:
    # Numbers as people write them in a policy: at most six significant digits.
    return st.builds(
        lambda n, k: n / 10**k,
        st.integers(min_value=min_value, max_value=999_999),
        st.integers(min_value=0, max_value=8),
    )


def _baseline_names() -> st.SearchStrategy[str]:
    # In ``production.NAME - 0.1`` a '-' before a digit starts the offset, so a relative
    # rule cannot name such a metric (the policy refuses it; see the test below).
    return _metric_names().filter(lambda name: re.search(r"-[\d.]", name) is None)


def _rules() -> st.SearchStrategy[MetricRule]:
    ops = st.sampled_from([">=", "<="])
    absolute = st.builds(_floor, _metric_names(), ops, _numbers())
    relative = st.builds(_relative, _metric_names(), ops, _baseline_names(), _numbers())
    return absolute | relative


_NAME = r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?"

POLICIES = st.builds(
    ReleasePolicy,
    required=st.lists(st.sampled_from(list(Gate)), unique=True).map(tuple),
    staging=st.lists(_rules(), max_size=6).map(tuple),
    regions=st.lists(st.from_regex(_NAME, fullmatch=True), min_size=1, max_size=4, unique=True).map(
        tuple
    ),
    protected_aliases=st.lists(st.from_regex(_NAME, fullmatch=True), max_size=3, unique=True).map(
        tuple
    ),
    canary=st.builds(
        CanaryParams,
        alpha=st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True),
        margin=st.floats(min_value=0, max_value=1, exclude_max=True),
        min_samples=st.integers(min_value=1, max_value=100_000_000),
    ),
    approvals=st.builds(
        ApprovalRule,
        required=st.integers(min_value=0, max_value=10),
        timeout_s=st.floats(min_value=0, max_value=7 * 24 * 3600.0, exclude_min=True),
    ),
)


@given(POLICIES)
def test_a_policy_document_reads_back_to_the_same_policy(policy: ReleasePolicy) -> None:
    document = policy.to_document()

    assert ReleasePolicy.parse(document) == policy
    assert ReleasePolicy.from_text(json.dumps(document)) == policy
    assert ReleasePolicy.from_text(yaml.safe_dump(document)) == policy


@pytest.mark.parametrize(
    "text",
    ["auc >= 0.7555555", "rows >= 1234567", "auc >= production.auc - 0.0012345678"],
)
def test_a_policy_document_keeps_every_digit_of_a_rule(text: str) -> None:
    policy = ReleasePolicy.parse({"staging": [text]})

    assert ReleasePolicy.parse(policy.to_document()) == policy


def test_the_document_is_plain_json() -> None:
    document = EXAMPLE.to_document()

    assert json.loads(json.dumps(document)) == document
    assert document["required"] == ["replicas", "health", "canary", "signature"]
    assert document["staging"] == [
        "auc >= 0.75",
        "auc >= production.auc - 0.01",
        "latency_p99_ms <= 25",
    ]


# ---------------------------------------------------------------- what a policy asks for


@pytest.mark.parametrize(
    ("rules", "metrics"),
    [
        ([], ()),
        (["auc >= 0.75"], ("auc",)),
        (
            [
                "recall >= 0.2",
                "auc >= production.auc - 0.01",
                "auc >= 0.75",
                "latency_p99_ms <= production.p99_ms + 1",
                "recall >= production.recall",
            ],
            ("recall", "auc", "latency_p99_ms", "p99_ms"),
        ),
    ],
    ids=["none", "one", "in-order-once"],
)
def test_key_metrics_are_the_rules_metrics_in_order(
    rules: list[str], metrics: tuple[str, ...]
) -> None:
    assert ReleasePolicy.parse({"staging": rules}).key_metrics == metrics


@pytest.mark.parametrize(
    ("data", "required"),
    [
        ({}, {Gate.REPLICAS, Gate.HEALTH, Gate.CANARY, Gate.SIGNATURE}),
        ({"required": []}, set()),
        ({"required": [], "approvals": {"required": 1}}, {Gate.APPROVAL}),
        ({"required": ["canary"], "approvals": {"required": 3}}, {Gate.CANARY, Gate.APPROVAL}),
        ({"required": ["approval"], "approvals": {"required": 0}}, {Gate.APPROVAL}),
    ],
    ids=["default", "none", "approval-count", "canary-and-count", "approval-gate"],
)
def test_requires_names_the_gates_a_promotion_must_pass(
    data: dict[str, Any], required: set[Gate]
) -> None:
    policy = ReleasePolicy.parse(data)

    assert {g for g in Gate if policy.requires(g)} == required


def test_is_protected_follows_the_policys_aliases() -> None:
    assert EXAMPLE.is_protected("shadow")
    assert EXAMPLE.is_protected("production")
    assert not EXAMPLE.is_protected("candidate")


@pytest.mark.parametrize(
    ("needed", "approvers", "missing"),
    [(0, (), 0), (1, (), 1), (2, ("bob",), 1), (2, ("bob", "carol"), 0), (1, ("bob", "eve"), 0)],
)
def test_approval_status_counts_the_missing_approvals(
    needed: int, approvers: tuple[str, ...], missing: int
) -> None:
    status = ApprovalStatus(needed=needed, approvers=approvers, registrant="alice", timeout_s=60)

    assert status.missing == missing


def test_a_relative_rule_cannot_name_a_metric_with_a_dash_before_a_digit() -> None:
    with pytest.raises(ValueError, match="before a digit"):
        MetricRule(metric="auc", op=">=", baseline="auc-0")
