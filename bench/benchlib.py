"""What the benchmarks share: targets, the report rows they print and save, logging,
percentiles, and a row's verdict. The benchmarks run as scripts (``python bench/x.py``), so this is
imported as a sibling module."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    op: str  # ">=", "<=", "<", "=="
    bound: float
    note: str = ""

    def check(self, value: float | None) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return {
            ">=": value >= self.bound,
            "<=": value <= self.bound,
            "<": value < self.bound,
            "==": value == self.bound,
        }[self.op]

    def text(self) -> str:
        return f"{self.op} {self.bound:g}{self.note}"


@dataclass
class Report:
    """Figures of one backend, in print order, plus details and notes."""

    backend: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        workload: str,
        label: str,
        value: float | None,
        unit: str,
        target: Target | None = None,
    ) -> None:
        self.rows.append(
            {
                "workload": workload,
                "label": label,
                "value": value,
                "unit": unit,
                "target": target.text() if target else None,
                "pass": target.check(value) if target else None,
            }
        )

    def note(self, text: str) -> None:
        self.notes.append(text)
        log(f"[{self.backend}] note: {text}")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks of an ascending list."""
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def verdict(row: dict[str, Any]) -> str:
    if row["target"] is None:
        return ""
    return {True: "PASS", False: "FAIL", None: "TODO"}[row["pass"]]


def fmt(value: Any) -> str:
    """A table cell: thousands separators, three significant digits below 100."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "never"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def loadavg() -> list[float]:
    with contextlib.suppress(OSError):
        return [round(x, 2) for x in os.getloadavg()]
    return []


def machine_info() -> dict[str, Any]:
    """The machine and the code a run measured: CPU, cores, Python, the commit, and
    whether registry/ had uncommitted changes."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    status = subprocess.run(
        [*git, "status", "--porcelain", "--", "registry"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit or "unknown",
        "uncommitted_under_registry": len(status.splitlines()),
        "loadavg_at_start": loadavg(),
    }
