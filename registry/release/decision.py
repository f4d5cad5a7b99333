"""``Decision``: what every pure release decision returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

E = TypeVar("E")


@dataclass(frozen=True)
class Decision(Generic[E]):
    """``ok`` when ``reasons`` is empty; ``evidence`` holds the facts it was decided on."""

    ok: bool
    reasons: tuple[str, ...]
    evidence: E

    @classmethod
    def of(cls, reasons: list[str] | tuple[str, ...], evidence: E) -> Decision[E]:
        return cls(not reasons, tuple(reasons), evidence)
