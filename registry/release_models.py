"""Release records: where a version's bytes are replicated, and the checks it passed.

Output shapes of the store's release methods, plus the checks applied to their
inputs at the edge (region names, check kinds, JSON evidence).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.errors import InvalidInput

REGION_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
CHECK_KIND_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_ERROR = 2000
MAX_EVIDENCE_BYTES = 1_000_000

# The kinds the release pipeline records; others are accepted if they are well formed.
CHECK_KINDS = ("health", "canary", "validation", "evaluation", "promotion")


class ReplicaState(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class Replica(_Output):
    """One version's copy in one region. ``verified_at`` is set only while verified."""

    region: str
    state: ReplicaState
    uri: str | None = None
    sha256: str | None = None
    size: int | None = None
    verified_at: datetime | None = None
    error: str | None = None
    updated_at: datetime


class Check(_Output):
    """One recorded check of a version (health, canary, validation, evaluation, promotion)."""

    kind: str
    region: str | None = None
    passed: bool
    evidence: dict[str, Any] = Field(default_factory=dict)
    recorded_at: datetime
    recorded_by: str


def check_region(region: str) -> str:
    if not isinstance(region, str) or not REGION_RE.fullmatch(region):
        raise InvalidInput(
            f"invalid region {region!r}: use lowercase letters, digits and '-' (1-64 chars)"
        )
    return region


def check_regions(regions: Sequence[str]) -> list[str]:
    """Region names in the order given, without repeats; at least one."""
    if isinstance(regions, str):
        raise InvalidInput("regions must be a list of names, not one string")
    names = list(dict.fromkeys(check_region(r) for r in regions))
    if not names:
        raise InvalidInput("no regions given")
    return names


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not CHECK_KIND_RE.fullmatch(kind):
        raise InvalidInput(
            f"invalid check kind {kind!r}: lowercase letters, digits, '-' or '_' "
            f"(at most 32 chars), e.g. {', '.join(CHECK_KINDS)}"
        )
    return kind


def check_sha256(sha256: str | None) -> str | None:
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256)):
        raise InvalidInput(f"invalid sha256 {sha256!r}: expected 64 lowercase hex digits")
    return sha256


def check_size(size: int | None) -> int | None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidInput(f"invalid size {size!r}: expected a whole number >= 0")
    return size


def one_line(error: str | None) -> str | None:
    """An error message as one line of bounded length (what the replica row keeps)."""
    if error is None:
        return None
    text = " ".join(error.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def json_evidence(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """``evidence`` as it will read back: a JSON object with string keys and finite numbers."""
    if not isinstance(evidence, Mapping):
        raise InvalidInput("check evidence must be a mapping")
    _check_json(evidence, "evidence")
    try:
        text = json.dumps(evidence, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"check evidence is not JSON: {exc}") from exc
    if len(text) > MAX_EVIDENCE_BYTES:
        raise InvalidInput(f"check evidence is larger than {MAX_EVIDENCE_BYTES} bytes of JSON")
    data: dict[str, Any] = json.loads(text)
    return data


def _check_json(value: Any, where: str) -> None:
    # json.dumps would turn int keys into strings without a word: refuse what would
    # not read back as written (tuples read back as lists), naming where it is.
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"check evidence key {key!r} at {where} is not a string")
            _check_json(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"check evidence {where} must be a finite number, got {value!r}")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise InvalidInput(
            f"check evidence {where} has a {type(value).__name__}, which is not JSON"
        )


# ---------------------------------------------------------------- the rollback plan


class PlanRegion(_Output):
    """The rollback target's replica in one region of the policy (``replica`` None: none
    recorded; ``stale``: verified bytes that are not the version's registered ones)."""

    region: str
    replica: str | None = None
    verified_at: datetime | None = None
    error: str | None = None


class PlanRelease(_Output):
    """One app release bound to the model, and whether it can take the rollback target.

    Only a release following ``production`` is handed the target; a pinned one, or one
    following an alias, keeps what it serves (compatible, and the reason says so)."""

    release: str  # app@release
    follow: str | None = None  # "production" or an alias; None when pinned
    pinned: int | None = None
    compatible: bool
    reason: str


class PlanCheck(_Output):
    """The target's latest check of one kind in one region (or model-wide)."""

    kind: str
    region: str | None = None
    passed: bool
    at: datetime


class RollbackPlan(_Output):
    """What ``rollback NAME`` would do now, decided by the code the rollback runs.

    ``safe`` is exactly "the rollback would go through": ``problems`` are the reasons it
    would be refused, word for word. ``warnings`` are what the rollback does not gate on
    but an on-call engineer should see first: a failed latest check of the target, or a
    release it cannot feed where the policy does not require the signature gate."""

    name: str
    current: int | None = None
    target: int | None = None
    why: str
    safe: bool
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    regions: tuple[PlanRegion, ...] = ()
    releases: tuple[PlanRelease, ...] = ()
    checks: tuple[PlanCheck, ...] = ()
    generation: int
