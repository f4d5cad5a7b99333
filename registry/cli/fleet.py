"""``modelreg fleet``: which version every running resolver serves, and whether they agree.

The first lines answer "is the whole fleet on v7?", one per model and ref; then a row
per resolver. A resolver not heard from for ``--stale-after`` seconds is shown as
STALE and left out of the first line's count: one that exited leaves its last
heartbeat behind, and it would otherwise split the fleet for ever.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.models import Heartbeat


@click.command()
@click.argument("name", required=False)
@click.option(
    "--stale-after",
    type=click.FloatRange(min=0, min_open=True),
    default=15,
    show_default=True,
    metavar="SECONDS",
    help="A resolver not heard from for this long is STALE (and not counted).",
)
@json_option
@pass_state
def fleet(state: CliState, name: str | None, stale_after: float) -> None:
    """Which version every running resolver serves, and whether the fleet agrees.

    NAME limits it to one model. First one line per model and ref, e.g.
    'fraud-detector@production: 200 resolvers, all on v7 (generation 12)' or
    '… split: v7 x150, v6 x50'; then one row per resolver: region, host:pid,
    what it serves, how many events it is behind the log, and ok, DEGRADED (why)
    or STALE (last seen how long ago; stale ones are not counted in the first line).
    """
    from datetime import UTC

    from registry.store.pages import every

    store = state.store()
    # A fleet's summary needs every resolver: read in pages, held in full.
    beats = list(every(lambda n, after: store.fleet(name, limit=n, after=after), _id, None))
    latest = store.latest_seq()
    now = datetime.now(UTC)
    resolvers = [Resolver.of(beat, latest, now, stale_after) for beat in beats]
    groups = group(resolvers)
    if state.json:
        from registry.cli.render import emit_json

        emit_json(
            {
                "latest_seq": latest,
                "stale_after": stale_after,
                "refs": [g.as_json() for g in groups],
                "resolvers": [r.as_json() for r in resolvers],
            }
        )
        return
    if not groups:
        whose = f" of {name}" if name else ""
        click.echo(f"no resolvers{whose} have reported (they send a heartbeat every few seconds)")
        return
    for g in groups:
        click.echo(g.summary())
    click.echo()
    _print_rows(resolvers)


def _id(beat: Heartbeat) -> str | None:
    return beat.resolver_id


@dataclass(frozen=True)
class Resolver:
    """One heartbeat as the fleet view reads it, at ``now``."""

    beat: Heartbeat
    behind: int  # events of the log it has not seen
    seen_ago: float  # seconds since its last beat
    stale: bool

    @classmethod
    def of(cls, beat: Heartbeat, latest: int, now: datetime, stale_after: float) -> Resolver:
        ago = max((now - beat.seen_at).total_seconds(), 0.0)  # a fast clock is not "ago"
        return cls(beat, max(latest - beat.seq, 0), ago, ago >= stale_after)

    @property
    def status(self) -> str:
        if self.stale:
            return f"STALE: last seen {int(self.seen_ago)}s ago"
        if self.beat.degraded:
            return f"DEGRADED: {self.beat.reason or 'no reason given'}"
        return "ok"

    def as_json(self) -> dict[str, Any]:
        status = "stale" if self.stale else "degraded" if self.beat.degraded else "ok"
        return {
            **self.beat.model_dump(mode="json"),
            "behind": self.behind,
            "seen_ago_s": round(self.seen_ago, 3),
            "status": status,
        }


@dataclass(frozen=True)
class Group:
    """The resolvers of one model and ref: do the live ones serve one version?"""

    model: str
    ref: str
    live: tuple[Resolver, ...]
    stale: int

    @property
    def versions(self) -> list[tuple[int | None, int]]:
        """(version, resolvers serving it), most served first (newest first on a tie)."""
        counts = Counter(r.beat.version for r in self.live)
        return sorted(counts.items(), key=lambda vc: (-vc[1], -(vc[0] or 0)))

    @property
    def all_on(self) -> int | None:
        versions = self.versions
        return versions[0][0] if len(versions) == 1 else None

    @property
    def degraded(self) -> int:
        return sum(r.beat.degraded for r in self.live)

    def summary(self) -> str:
        label = self.ref if self.ref.startswith(f"{self.model}@") else f"{self.model} ({self.ref})"
        live = len(self.live)
        if not live:
            text = f"no live resolvers ({self.stale} stale)"
        else:
            text = f"{live} resolver{'s' if live != 1 else ''}, {self._agreement()}"
            if self.degraded:
                text += f"; {self.degraded} degraded"
            if self.stale:
                text += f"; {self.stale} stale, not counted"
        return f"{label}: {text}"

    def _agreement(self) -> str:
        versions = self.versions
        if len(versions) > 1:
            return "split: " + ", ".join(f"{_v(v)} x{n}" for v, n in versions)
        if versions[0][0] is None:
            return "none serving a version yet"
        generations = sorted(
            {r.beat.generation for r in self.live if r.beat.generation is not None}
        )
        if not generations:
            return f"all on {_v(versions[0][0])}"
        low, high = generations[0], generations[-1]
        span = f"generation {low}" if low == high else f"generations {low}-{high}"
        return f"all on {_v(versions[0][0])} ({span})"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "ref": self.ref,
            "resolvers": len(self.live),
            "versions": [{"version": v, "resolvers": n} for v, n in self.versions],
            "all_on": self.all_on,
            "degraded": self.degraded,
            "stale": self.stale,
            "summary": self.summary(),
        }


def group(resolvers: list[Resolver]) -> list[Group]:
    """One group per (model, ref), in the fleet's order (sorted by model, then ref)."""
    by_ref: dict[tuple[str, str], list[Resolver]] = {}
    for r in resolvers:
        by_ref.setdefault((r.beat.model, r.beat.ref), []).append(r)
    return [
        Group(model, ref, tuple(r for r in members if not r.stale), sum(r.stale for r in members))
        for (model, ref), members in by_ref.items()
    ]


def _v(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def _print_rows(resolvers: list[Resolver]) -> None:
    from registry.cli.render import NONE, print_table

    print_table(
        ["model", "ref", "region", "host:pid", "version", "generation", "behind", "status"],
        (
            [
                r.beat.model,
                r.beat.ref,
                r.beat.region,
                f"{r.beat.host}:{r.beat.pid}",
                NONE if r.beat.version is None else f"v{r.beat.version}",
                NONE if r.beat.generation is None else str(r.beat.generation),
                str(r.behind),
                r.status,
            ]
            for r in resolvers
        ),
        empty="no resolvers have reported",
    )
