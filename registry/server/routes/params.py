"""What the route modules share: bounded path and query values, and the request body base.

The checks here are the server's edge, not the domain's: the domain models already
validate names, metrics and policies. What they leave open is what a database driver
would refuse with an error the API cannot name (an integer past 64 bits, a version past
the ``INTEGER`` column, a NUL in a string PostgreSQL stores as text, an unpaired
surrogate), which would otherwise surface as a 500.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from registry.errors import InvalidInput

INT32_MAX = 2**31 - 1  # versions, generations and counts live in INTEGER columns
INT64_MAX = 2**63 - 1
MAX_LIMIT = 1_000_000
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")

VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="A version number")]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
VersionNumber = Annotated[int, Field(ge=1, le=INT32_MAX)]


def storable(value: Any) -> Any:
    """Refuse, with ``ValueError``, JSON no database column would take back as written.

    Iterative, so a deeply nested document (which JSON allows) cannot exhaust the stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE_RE.search(item):
                raise ValueError("strings may not hold NUL characters or unpaired surrogates")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not -INT64_MAX <= item <= INT64_MAX:
                raise ValueError(f"the integer {item} does not fit in 64 bits")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return value


StoredText = Annotated[str, AfterValidator(storable)]
TextQuery = Annotated[StoredText | None, Query()]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
# The cursors of the lists: the last name (or id, or sequence number) of the page before.
AfterName = Annotated[
    StoredText | None, Query(description="The cursor: the last key of the page before")
]
SinceQuery = Annotated[
    int, Query(ge=0, le=INT64_MAX, description="The cursor: events after this sequence number")
]
AfterId = Annotated[
    int, Query(ge=0, le=INT64_MAX, description="The cursor: the last id of the page before")
]


class Body(BaseModel):
    """A request body: unknown fields are refused, and so is unstorable JSON."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return storable(data)


def ref_of(text: str) -> str | int:
    """A ref from a path: a version number (bounded, ASCII digits only) or a pointer name."""
    if text.isdigit():
        if not text.isascii() or len(text) > 10 or not 1 <= int(text) <= INT32_MAX:
            raise InvalidInput(f"invalid version {text!r}: expected a whole number >= 1")
        return int(text)
    try:
        storable(text)
    except ValueError as exc:
        raise InvalidInput(f"invalid ref: {exc}") from exc
    return text


def many(items: Sequence[BaseModel]) -> list[BaseModel]:
    """A list of domain objects as ``reply`` takes it (its ``list[BaseModel]`` is invariant)."""
    return list(items)
