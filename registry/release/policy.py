"""The release policy: what a model must show before it may serve.

Kept and versioned in the registry (``policy set`` appends a new version; old ones
stay readable), read by the gates inside the transaction that flips a pointer,
never taken from a caller's parameters. A model without a policy gets
``ReleasePolicy()``, the default documented on each field.

A policy file (YAML or JSON) looks like::

    required: [replicas, health, canary, signature]   # the gates Production needs
    staging:                                          # None -> Staging metric rules
      - auc >= 0.75
      - auc >= production.auc - 0.01                  # no regression against Production
      - latency_p99_ms <= 25
    regions: [us-east, eu-west, ap-south]
    protected_aliases: [production, champion]
    canary: {alpha: 0.05, margin: 0.01, min_samples: 2000}
    approvals: {required: 1, timeout_s: 3600}
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from registry.errors import InvalidInput
from registry.models import ALIAS_RE, KEY_RE, validation_message

DEFAULT_REGIONS = ("us-east", "eu-west", "ap-south")
REGION_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_RULES = 64


class Gate(StrEnum):
    """A gate the policy can require before Production (or a protected alias) moves."""

    REPLICAS = "replicas"  # bytes verified (size and sha256 read back) in every region
    HEALTH = "health"  # the latest health check of every region passed
    CANARY = "canary"  # the latest canary passed, against the current Production version
    SIGNATURE = "signature"  # compatible with every app release that follows Production
    APPROVAL = "approval"  # enough approvals from people other than the registrant


DEFAULT_GATES = (Gate.REPLICAS, Gate.HEALTH, Gate.CANARY, Gate.SIGNATURE)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A metric name; inside ``production.NAME`` a '-' that starts a number ends the name, so
# ``production.auc-0.01`` is the metric auc minus 0.01 (not a metric named "auc-0.01").
_NAME = r"[A-Za-z_](?:[A-Za-z0-9_.]|-(?![\d.]))*"
_BASELINE_RE = re.compile(_NAME)
_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.\-]*)\s*(?P<op>>=|<=)\s*"
    rf"(?:(?P<number>[-+]?{_NUMBER})"
    rf"|production\.(?P<baseline>{_NAME})(?:\s*(?P<sign>[-+])\s*(?P<offset>{_NUMBER}))?)\s*$"
)


def _number(value: float) -> str:
    """Every digit of ``value`` (``repr``), without a trailing ``.0``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class MetricRule(_Frozen):
    """``metric >= 0.75``, ``metric <= 25`` or ``metric >= production.metric - 0.01``."""

    metric: str
    op: str  # ">=" or "<="
    threshold: float | None = None  # an absolute bound, or
    baseline: str | None = None  # production's value of this metric, plus ``offset``
    offset: float = 0.0

    @classmethod
    def parse(cls, text: str) -> MetricRule:
        if not isinstance(text, str):
            raise ValueError(f"a metric rule is a string like 'auc >= 0.75', got {text!r}")
        match = _RULE_RE.match(text)
        if match is None:
            raise ValueError(
                f"cannot read metric rule {text!r}: expected 'METRIC >= NUMBER', "
                "'METRIC <= NUMBER' or 'METRIC >= production.METRIC - NUMBER'"
            )
        metric, op = match["metric"], match["op"]
        if not KEY_RE.fullmatch(metric):
            raise ValueError(f"invalid metric name {metric!r} in rule {text!r}")
        if match["number"] is not None:
            threshold = float(match["number"])
            if not math.isfinite(threshold):
                raise ValueError(f"rule {text!r} needs a finite number")
            return cls(metric=metric, op=op, threshold=threshold)
        offset = float(match["offset"] or 0.0)
        if not math.isfinite(offset):
            raise ValueError(f"rule {text!r} needs a finite offset")
        return cls(
            metric=metric,
            op=op,
            baseline=match["baseline"],
            offset=-offset if match["sign"] == "-" else offset,
        )

    @model_validator(mode="after")
    def _well_formed(self) -> MetricRule:
        # Rules built in code (or read from a stored document) obey what ``parse`` checks.
        if self.op not in (">=", "<="):
            raise ValueError(f"a metric rule compares with >= or <=, not {self.op!r}")
        for name in (self.metric, self.baseline):
            if name is not None and not KEY_RE.fullmatch(name):
                raise ValueError(f"invalid metric name {name!r} in a rule")
        if self.baseline is not None and not _BASELINE_RE.fullmatch(self.baseline):
            raise ValueError(
                f"production.{self.baseline}: a relative rule cannot name a metric with '-' "
                "before a digit (it reads as an offset)"
            )
        if (self.threshold is None) == (self.baseline is None):
            raise ValueError("a metric rule needs either a number or production.METRIC")
        for number in (self.threshold, self.offset):
            if number is not None and not math.isfinite(number):
                raise ValueError("a metric rule needs finite numbers")
        return self

    def __str__(self) -> str:
        if self.baseline is None:
            assert self.threshold is not None
            return f"{self.metric} {self.op} {_number(self.threshold)}"
        if self.offset == 0:
            return f"{self.metric} {self.op} production.{self.baseline}"
        sign = "-" if self.offset < 0 else "+"
        return (
            f"{self.metric} {self.op} production.{self.baseline} {sign} {_number(abs(self.offset))}"
        )


class CanaryParams(_Frozen):
    """The canary's pre-declared test: declared before the replay, stored with the evidence."""

    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)  # one-sided significance level
    margin: float = Field(default=0.01, ge=0.0, lt=1.0)  # tolerated increase in error rate
    min_samples: int = Field(default=2000, ge=1, le=100_000_000)  # paired rows needed


class ApprovalRule(_Frozen):
    """Human sign-off on Staging -> Production: ``required`` approvals from people other
    than the version's registrant (0: none needed); a waiting flow gives up after
    ``timeout_s`` seconds and the promotion is refused."""

    required: int = Field(default=0, ge=0, le=10)
    timeout_s: float = Field(default=3600.0, gt=0.0, le=7 * 24 * 3600.0)


class ReleasePolicy(_Frozen):
    """One model's release policy (the defaults are the registry's default policy)."""

    required: tuple[Gate, ...] = DEFAULT_GATES
    staging: tuple[MetricRule, ...] = ()
    regions: tuple[str, ...] = DEFAULT_REGIONS
    protected_aliases: tuple[str, ...] = ("production", "champion")
    canary: CanaryParams = CanaryParams()
    approvals: ApprovalRule = ApprovalRule()
    # A version whose bytes the registry never read (an MLflow source it could only
    # record, ``format: external``) is kept out of Production and protected aliases
    # unless this says otherwise.
    allow_unverified: bool = False

    @field_validator("required", mode="before")
    @classmethod
    def _gates(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError("required must be a list of gates")
        known = ", ".join(g.value for g in Gate)
        for item in value:
            if not isinstance(item, str) or item not in {g.value for g in Gate}:
                raise ValueError(f"unknown gate {item!r}; the gates are {known}")
        if len(set(value)) != len(value):
            raise ValueError("required names a gate twice")
        return value

    @field_validator("staging", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError("staging must be a list of rules like 'auc >= 0.75'")
        if len(value) > MAX_RULES:
            raise ValueError(f"at most {MAX_RULES} staging rules")
        for rule in value:
            if not isinstance(rule, str | MetricRule):
                raise ValueError(f"a staging rule is a string like 'auc >= 0.75', got {rule!r}")
        return [MetricRule.parse(v) if isinstance(v, str) else v for v in value]

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise ValueError("regions must be a non-empty list of region names")
        for region in value:
            if not isinstance(region, str) or not REGION_RE.fullmatch(region):
                raise ValueError(
                    f"invalid region {region!r}: lowercase letters, digits and '-' (1-64 chars)"
                )
        if len(set(value)) != len(value):
            raise ValueError("regions names a region twice")
        return value

    @field_validator("protected_aliases", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError("protected_aliases must be a list of alias names")
        for alias in value:
            if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
                raise ValueError(f"invalid alias {alias!r} in protected_aliases")
        return tuple(dict.fromkeys(value))

    @property
    def key_metrics(self) -> tuple[str, ...]:
        """The metrics the staging rules name, in order: what ``versions`` shows."""
        names: list[str] = []
        for rule in self.staging:
            names += [rule.metric] + ([rule.baseline] if rule.baseline else [])
        return tuple(dict.fromkeys(names))

    def requires(self, gate: Gate) -> bool:
        return gate in self.required or (gate is Gate.APPROVAL and self.approvals.required > 0)

    def is_protected(self, alias: str) -> bool:
        return alias in self.protected_aliases

    def to_document(self) -> dict[str, Any]:
        """The policy as a JSON/YAML document that ``parse`` reads back to the same policy."""
        return {
            "required": [g.value for g in self.required],
            "staging": [str(r) for r in self.staging],
            "regions": list(self.regions),
            "protected_aliases": list(self.protected_aliases),
            "canary": self.canary.model_dump(),
            "approvals": self.approvals.model_dump(),
        } | ({"allow_unverified": True} if self.allow_unverified else {})

    @classmethod
    def parse(cls, data: Any, *, source: str = "policy") -> ReleasePolicy:
        """Validate a policy document; any problem is one ``InvalidInput`` line."""
        if isinstance(data, ReleasePolicy):
            return data
        if not isinstance(data, dict):
            raise InvalidInput(f"{source} must be a mapping (YAML or JSON object)")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"invalid {source}: {validation_message(exc)}") from exc

    @classmethod
    def from_text(cls, text: str, *, source: str = "policy") -> ReleasePolicy:
        """Read a YAML (or JSON) policy file's text."""
        import json

        import yaml

        if text.lstrip().startswith("{"):
            # JSON is YAML, except that YAML refuses tab indentation: read JSON as JSON.
            try:
                return cls.parse(json.loads(text), source=source)
            except json.JSONDecodeError:
                pass  # not JSON after all: YAML's error below says what is wrong
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = " ".join(str(exc).split())
            raise InvalidInput(f"{source} is not valid YAML: {first}") from exc
        return cls.parse(data if data is not None else {}, source=source)


class PolicyRecord(_Frozen):
    """One stored version of a model's policy."""

    model: str
    version: int  # 0: the default (nothing stored yet)
    policy: ReleasePolicy
    reason: str | None = None
    actor: str | None = None
    created_at: datetime | None = None  # None for the default


class ApprovalStatus(_Frozen):
    """Where a version stands against the approval rule of its model's policy."""

    needed: int  # 0: the policy asks for none
    approvers: tuple[str, ...]  # people who approved, the registrant left out
    registrant: str
    timeout_s: float

    @property
    def missing(self) -> int:
        return max(self.needed - len(self.approvers), 0)
