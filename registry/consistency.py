"""A full consistency check of one registry database: every invariant the store keeps.

``check(store_or_url)`` reads the whole registry in one snapshot (``REPEATABLE READ,
READ ONLY`` on PostgreSQL; one read transaction on SQLite, which WAL keeps at its
first read), so it runs while writers write and changes nothing. It returns a
``ConsistencyReport`` listing every violated invariant in one line each.

Each check below is one named invariant of ``registry/store/sql``:

- ``event-seq``: events are numbered 1..N with no gap, and the counter is N (the
  counter moves in the transaction that appends the event, so no number is lost);
- ``foreign-keys``: every reference between tables holds (SQLite enforces them only
  on connections that ask);
- ``model-log``: each model's log starts with ``model.created`` at generation 0, its
  events carry its name as renames left it, and their times never go backwards;
- ``generation``: the model's generation is its newest event's, generations only
  grow, and every step is a pointer move (stage, alias or rollback) of the log;
- ``version-numbers``: registrations are numbered 1..last_version, each with its
  sha256, and the versions held are the registered ones not deleted since;
- ``stages``: each version's stage is the stage the log replays it to (stage moves,
  rollbacks), the log's moves start where the previous left, at most one version is
  in Production, and the rollback index (served_generation, rolled_back) agrees;
- ``aliases``: each alias points at the version the alias events replay to;
- ``production``: the Production version is the one the Production timeline (what
  ``production_at`` replays) ends on;
- ``rollback-target``: the target the store picks from its index is the one the
  full log gives, exists, and is not the current version;
- ``artifacts``, ``attributes``, ``policies``, ``bindings``, ``tombstones``,
  ``tokens``, ``webhooks``: sha256s are 64 hex, search rows mirror the version
  documents, policy versions are 1..N, a binding's version is its model's,
  deleted models are tombstones with nothing left, tokens keep hashes, webhook
  cursors and deliveries point at events.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby, pairwise
from typing import Any

from sqlalchemy import Connection, ForeignKey, func, select
from sqlalchemy.exc import SQLAlchemyError

from registry.auth import TOKEN_PREFIX
from registry.errors import InvalidInput
from registry.models import Stage, VersionCreate
from registry.release.transitions import choose_rollback_target, serving_after
from registry.store.sql import SqlStore
from registry.store.sql.engine import SCHEMA_HEAD, translate
from registry.store.sql.lifecycle import TOMBSTONE
from registry.store.sql.pointers import production_timeline, rollback_candidates
from registry.store.sql.schema import (
    aliases_table,
    attributes_table,
    event_counter_table,
    events_table,
    metadata,
    model_tags_table,
    models_table,
    versions_table,
)
from registry.store.sql.schema_access import deliveries_table, tokens_table, webhooks_table
from registry.store.sql.schema_contract import bindings_table, policies_table
from registry.store.sql.versions import _attribute_rows

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
POINTER_KINDS = frozenset({"stage", "alias", "rollback"})
# Every invariant's name, as violations carry it.
INVARIANTS = (
    "schema",
    "event-seq",
    "foreign-keys",
    "model-log",
    "generation",
    "version-numbers",
    "stages",
    "aliases",
    "production",
    "rollback-target",
    "artifacts",
    "attributes",
    "policies",
    "bindings",
    "tombstones",
    "tokens",
    "webhooks",
)
SHOWN_PER_INVARIANT = 50  # a badly damaged database must not print a million lines


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.message}"


@dataclass(frozen=True)
class ConsistencyReport:
    """What the check read, and every invariant it found broken (empty: consistent)."""

    models: int
    versions: int
    events: int
    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def summary(self) -> str:
        counts = f"{self.models} models, {self.versions} versions, {self.events} events"
        if self.ok:
            return f"consistent: {counts}"
        return f"inconsistent: {len(self.violations)} violations in {counts}"

    def invariants(self) -> set[str]:
        """The names of the broken invariants."""
        return {v.invariant for v in self.violations}

    def to_dict(self) -> dict[str, Any]:
        return {
            "consistent": self.ok,
            "models": self.models,
            "versions": self.versions,
            "events": self.events,
            "violations": [
                {"invariant": v.invariant, "message": v.message} for v in self.violations
            ],
        }


def check(target: SqlStore | str) -> ConsistencyReport:
    """Check the registry database of ``target`` (a ``SqlStore`` or its URL)."""
    if isinstance(target, str):
        if target.startswith(("http://", "https://")):
            raise InvalidInput(
                "the consistency check reads a database: give sqlite:///… or postgresql://…"
            )
        store = SqlStore(target, actor="modelreg-check", migrate=False)
        try:
            return check(store)
        finally:
            store.close()
    revision = target.db.schema_revision()
    if revision != SCHEMA_HEAD:
        problem = Violation("schema", f"the schema is at {revision!r}, not {SCHEMA_HEAD!r}")
        return ConsistencyReport(0, 0, 0, (problem,))
    with _snapshot(target) as conn:
        facts = _Facts.read(conn)
        found = _Found()
        for invariant in GLOBAL_CHECKS:
            invariant(conn, facts, found)
        for model_id, events in groupby(_events_by_model(conn), key=lambda e: e.model_id):
            _check_model(conn, facts, model_id, list(events), found)
        for model_id in set(facts.models) - found.logged:
            found.add("model-log", f"{facts.label(model_id)}: has no events")
    live = sum(1 for m in facts.models.values() if not m.name.startswith("~"))
    return ConsistencyReport(live, len(facts.versions), facts.event_count, found.violations())


# ---------------------------------------------------------------- reading


@contextmanager
def _snapshot(store: SqlStore) -> Iterator[Connection]:
    """One read-only snapshot of the whole database."""
    try:
        with store.db.engine.connect() as opened:
            conn = opened
            if store.db.dialect == "postgresql":
                conn = opened.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            with conn.begin():
                yield conn
    except SQLAlchemyError as exc:
        raise translate(exc) from exc


@dataclass(frozen=True)
class _Model:
    id: int
    name: str
    generation: int
    last_version: int


@dataclass(frozen=True)
class _Version:
    id: int
    model_id: int
    version: int
    stage: str
    sha256: str
    served_generation: int | None
    rolled_back: bool


@dataclass
class _Facts:
    """The rows the checks compare with the log (the log itself is streamed per model)."""

    models: dict[int, _Model]
    versions: dict[int, _Version]  # by row id
    aliases: dict[int, dict[str, int]]  # model id -> alias -> version row id
    event_count: int
    counter: int

    @classmethod
    def read(cls, conn: Connection) -> _Facts:
        m, v, a = models_table, versions_table, aliases_table
        models = {
            r.id: _Model(r.id, r.name, r.generation, r.last_version)
            for r in conn.execute(select(m.c.id, m.c.name, m.c.generation, m.c.last_version))
        }
        versions = {
            r.id: _Version(
                r.id,
                r.model_id,
                r.version,
                r.stage,
                r.sha256,
                r.served_generation,
                bool(r.rolled_back),
            )
            for r in conn.execute(
                select(
                    v.c.id,
                    v.c.model_id,
                    v.c.version,
                    v.c.stage,
                    v.c.sha256,
                    v.c.served_generation,
                    v.c.rolled_back,
                )
            )
        }
        aliases: dict[int, dict[str, int]] = defaultdict(dict)
        for r in conn.execute(select(a.c.model_id, a.c.alias, a.c.version_id)):
            aliases[r.model_id][r.alias] = r.version_id
        count = conn.execute(select(func.count()).select_from(events_table)).scalar() or 0
        counter = conn.execute(
            select(event_counter_table.c.seq).where(event_counter_table.c.id == 1)
        ).scalar()
        return cls(models, versions, dict(aliases), int(count), int(counter or 0))

    def label(self, model_id: int) -> str:
        model = self.models.get(model_id)
        return model.name if model is not None else f"model id {model_id}"

    def versions_of(self, model_id: int) -> dict[int, _Version]:
        return self.by_model.get(model_id, {})

    def __post_init__(self) -> None:
        # version number -> version, per model: read once, not once per model
        self.by_model: dict[int, dict[int, _Version]] = defaultdict(dict)
        for version in self.versions.values():
            self.by_model[version.model_id][version.version] = version


@dataclass
class _Found:
    """Violations as they are found, at most ``SHOWN_PER_INVARIANT`` lines of each."""

    found: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    logged: set[int] = field(default_factory=set)  # models whose events were read

    def add(self, invariant: str, message: str) -> None:
        assert invariant in INVARIANTS, invariant
        self.counts[invariant] += 1
        if self.counts[invariant] <= SHOWN_PER_INVARIANT:
            self.found[invariant].append(message)

    def violations(self) -> tuple[Violation, ...]:
        out = []
        for invariant, messages in self.found.items():
            out += [Violation(invariant, m) for m in messages]
            hidden = self.counts[invariant] - len(messages)
            if hidden:
                out.append(Violation(invariant, f"… and {hidden} more"))
        return tuple(out)


def _events_by_model(conn: Connection) -> Iterator[Any]:
    e = events_table
    columns = (
        e.c.seq,
        e.c.at,
        e.c.model_id,
        e.c.model_name,
        e.c.version,
        e.c.kind,
        e.c.subject,
        e.c.from_value,
        e.c.to_value,
        e.c.generation,
    )
    query = select(*columns).order_by(e.c.model_id, e.c.seq)
    yield from conn.execute(query.execution_options(yield_per=1000))


# ---------------------------------------------------------------- whole-database checks

Check = Callable[[Connection, _Facts, _Found], None]


def check_event_seq(conn: Connection, facts: _Facts, found: _Found) -> None:
    """Events are 1..N without a gap or a repeat, and the counter is N."""
    low, high = conn.execute(
        select(func.min(events_table.c.seq), func.max(events_table.c.seq))
    ).one()
    high = int(high or 0)
    if facts.event_count and (low != 1 or high != facts.event_count):
        missing = high - facts.event_count
        found.add(
            "event-seq",
            f"the event log has gaps: {facts.event_count} events numbered {low}..{high} "
            f"({missing} numbers missing)",
        )
    if facts.counter != high:
        found.add(
            "event-seq",
            f"the event counter is at {facts.counter} but the newest event is {high}",
        )


def check_foreign_keys(conn: Connection, facts: _Facts, found: _Found) -> None:
    """Every declared reference between tables points at a row (all tables, new ones too)."""
    for table in metadata.sorted_tables:
        for key in sorted(table.foreign_keys, key=lambda k: k.parent.name):
            _check_reference(conn, key, found)


def _check_reference(conn: Connection, key: ForeignKey, found: _Found) -> None:
    child, parent = key.parent, key.column
    orphan = (
        select(child)
        .where(child.is_not(None), child.not_in(select(parent).where(parent.is_not(None))))
        .distinct()
        .order_by(child)
    )
    missing = list(conn.execute(orphan.limit(5)).scalars())
    if missing:
        shown = ", ".join(str(x) for x in missing)
        found.add(
            "foreign-keys",
            f"{child.table.name}.{child.name} points at no {parent.table.name}.{parent.name} "
            f"(e.g. {shown})",
        )


def check_artifacts(conn: Connection, facts: _Facts, found: _Found) -> None:
    for version in facts.versions.values():
        if not _SHA256.match(version.sha256 or ""):
            found.add(
                "artifacts",
                f"{facts.label(version.model_id)} v{version.version}: artifact sha256 "
                f"{version.sha256!r} is not 64 lowercase hex digits",
            )


def check_attributes(conn: Connection, facts: _Facts, found: _Found) -> None:
    """The rows search indexes mirror each version's metrics, params and tags."""
    v, a = versions_table, attributes_table
    held: dict[int, set[tuple[Any, ...]]] = defaultdict(set)
    for h in conn.execute(select(a.c.version_id, a.c.kind, a.c.key, a.c.text, a.c.num)):
        held[h.version_id].add((h.kind, h.key, h.text, h.num))
    for r in conn.execute(select(v.c.id, v.c.metrics, v.c.params, v.c.tags)):
        version = facts.versions[r.id]
        where = f"{facts.label(version.model_id)} v{version.version}"
        try:
            meta = VersionCreate.parse(
                {"metrics": r.metrics or {}, "params": r.params or {}, "tags": r.tags or {}}
            )
        except (InvalidInput, ValueError) as exc:
            found.add("attributes", f"{where}: its metrics, params or tags do not parse: {exc}")
            continue
        expected = {(x["kind"], x["key"], x["text"], x["num"]) for x in _attribute_rows(meta)}
        if held.get(r.id, set()) != expected:
            found.add(
                "attributes",
                f"{where}: the search rows do not mirror its metrics, params and tags",
            )


def check_policies(conn: Connection, facts: _Facts, found: _Found) -> None:
    """Each model's policy versions are 1..N (append-only, one at a time)."""
    p = policies_table
    numbers: dict[int, list[int]] = defaultdict(list)
    for r in conn.execute(select(p.c.model_id, p.c.version).order_by(p.c.model_id, p.c.version)):
        numbers[r.model_id].append(r.version)
    for model_id, held in numbers.items():
        if held != list(range(1, len(held) + 1)):
            found.add("policies", f"{facts.label(model_id)}: policy versions are {held}")


def check_bindings(conn: Connection, facts: _Facts, found: _Found) -> None:
    """A pinned binding pins a version of the model it binds."""
    b = bindings_table
    for r in conn.execute(select(b.c.release_id, b.c.model_id, b.c.version_id)):
        version = facts.versions.get(r.version_id) if r.version_id is not None else None
        if version is not None and version.model_id != r.model_id:
            found.add(
                "bindings",
                f"app release id {r.release_id} binds {facts.label(r.model_id)} to a version "
                f"of {facts.label(version.model_id)}",
            )


def check_tombstones(conn: Connection, facts: _Facts, found: _Found) -> None:
    """A deleted model is ``~deleted/ID/NAME`` and keeps nothing but its log."""
    deleted = {
        r.model_id: r.from_value
        for r in conn.execute(
            select(events_table.c.model_id, events_table.c.from_value).where(
                events_table.c.kind == "model.deleted"
            )
        )
    }
    tagged = set(conn.execute(select(model_tags_table.c.model_id).distinct()).scalars())
    with_versions = {v.model_id for v in facts.versions.values()}
    for model in facts.models.values():
        tombstoned = model.name.startswith("~")
        if model.id in deleted:
            expected = f"{TOMBSTONE}{model.id}/{deleted[model.id]}"
            if model.name != expected:
                found.add(
                    "tombstones", f"model id {model.id} was deleted but is named {model.name!r}"
                )
            left = [
                what
                for what, holds in (
                    ("versions", model.id in with_versions),
                    ("aliases", model.id in facts.aliases),
                    ("tags", model.id in tagged),
                )
                if holds
            ]
            if left:
                found.add("tombstones", f"{model.name}: deleted but keeps {', '.join(left)}")
        elif tombstoned:
            found.add("tombstones", f"{model.name!r} is a tombstone name with no model.deleted")


def check_tokens(conn: Connection, facts: _Facts, found: _Found) -> None:
    """Tokens keep the sha256 of their secret, never the secret."""
    for r in conn.execute(select(tokens_table.c.name, tokens_table.c.token_hash)):
        if r.token_hash.startswith(TOKEN_PREFIX):
            found.add("tokens", f"token {r.name!r} stores its secret, not its hash")
        elif not _SHA256.match(r.token_hash):
            found.add("tokens", f"token {r.name!r}: its hash is not a sha256")


def check_webhooks(conn: Connection, facts: _Facts, found: _Found) -> None:
    """A webhook's cursor and its deliveries point at events that exist."""
    w, d = webhooks_table, deliveries_table
    for r in conn.execute(select(w.c.id, w.c.cursor).where(w.c.cursor > facts.counter)):
        found.add(
            "webhooks",
            f"webhook {r.id}: cursor {r.cursor} is past the newest event {facts.counter}",
        )
    ghosts = conn.execute(
        select(d.c.webhook_id, d.c.seq)
        .where(d.c.seq.not_in(select(events_table.c.seq)))
        .order_by(d.c.seq)
        .limit(5)
    ).all()
    for r in ghosts:
        found.add(
            "webhooks", f"webhook {r.webhook_id}: a delivery of event {r.seq}, which is not logged"
        )


GLOBAL_CHECKS: tuple[Check, ...] = (
    check_event_seq,
    check_foreign_keys,
    check_artifacts,
    check_attributes,
    check_policies,
    check_bindings,
    check_tombstones,
    check_tokens,
    check_webhooks,
)


# ---------------------------------------------------------------- per-model checks


@dataclass
class _Replay:
    """A model's pointers as its log leaves them."""

    stages: dict[int, str] = field(default_factory=dict)  # version -> stage
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version
    served: dict[int, int] = field(default_factory=dict)  # version -> generation it entered
    rolled_away: set[int] = field(default_factory=set)
    registered: list[int] = field(default_factory=list)
    sha256: dict[int, str | None] = field(default_factory=dict)


def _check_model(
    conn: Connection, facts: _Facts, model_id: int, events: Sequence[Any], found: _Found
) -> None:
    found.logged.add(model_id)
    model = facts.models.get(model_id)
    if model is None:
        return  # reported by foreign-keys
    label = model.name
    replay = _replay(label, events, found)
    _check_log(model, events, found)
    _check_generation(model, events, found)
    versions = facts.versions_of(model_id)
    _check_version_numbers(model, replay, versions, found)
    _check_stages(label, replay, versions, found)
    _check_aliases(label, replay, facts.aliases.get(model_id, {}), facts, found)
    _check_production(conn, label, model_id, versions, found)


def _replay(label: str, events: Iterable[Any], found: _Found) -> _Replay:
    """Replay the log, reporting a move that does not start where the last one left."""
    state = _Replay()
    for e in events:
        if e.kind == "version.registered":
            state.registered.append(e.version)
            state.stages[e.version] = Stage.NONE.value
            state.sha256[e.version] = e.to_value
        elif e.kind == "version.deleted":
            state.stages.pop(e.version, None)
            state.aliases = {a: n for a, n in state.aliases.items() if n != e.version}
        elif e.kind == "model.deleted":
            state.stages.clear()
            state.aliases.clear()
        elif e.kind == "stage":
            if state.stages.get(e.version) != e.from_value:
                found.add(
                    "stages",
                    f"{label}: event {e.seq} moves v{e.version} from {e.from_value} but the "
                    f"log had it at {state.stages.get(e.version)}",
                )
            state.stages[e.version] = e.to_value
            if e.to_value == Stage.PRODUCTION.value:
                state.served[e.version] = e.generation
        elif e.kind == "rollback":
            target = int(e.to_value)
            if e.from_value:
                state.stages[int(e.from_value)] = Stage.ARCHIVED.value
                state.rolled_away.add(int(e.from_value))
            state.stages[target] = Stage.PRODUCTION.value
            state.served[target] = e.generation
        elif e.kind == "alias":
            if e.to_value is None:
                state.aliases.pop(e.subject, None)
            else:
                state.aliases[e.subject] = int(e.to_value)
    return state


def _check_log(model: _Model, events: Sequence[Any], found: _Found) -> None:
    """Starts with model.created; names follow renames (and the tombstone after a
    deletion: gc logs on it); times never go backwards."""
    first = events[0]
    if first.kind != "model.created" or first.generation != 0:
        found.add("model-log", f"{model.name}: the log starts with {first.kind} (seq {first.seq})")
    name, previous = first.model_name, first
    for e in events:
        if e.kind == "model.renamed":
            name = e.to_value
        if e.model_name != name:
            found.add(
                "model-log", f"{model.name}: event {e.seq} names it {e.model_name!r}, not {name!r}"
            )
        if e.kind == "model.deleted":
            name = f"{TOMBSTONE}{model.id}/{name}"
        if e.at < previous.at:
            found.add(
                "model-log",
                f"{model.name}: event {e.seq} is dated before event {previous.seq}",
            )
        previous = e
    if model.name != name:
        found.add("model-log", f"{model.name}: the log last names it {name!r}")


def _check_generation(model: _Model, events: Sequence[Any], found: _Found) -> None:
    """The generation only grows, each step a pointer move, up to the model's."""
    generations = [e.generation for e in events]
    if any(b < a for a, b in pairwise(generations)):
        found.add("generation", f"{model.name}: event generations go backwards")
    newest = max(generations)
    if model.generation != newest:
        found.add(
            "generation",
            f"{model.name}: generation {model.generation}, but its newest event has {newest}",
        )
    moved = {e.generation for e in events if e.kind in POINTER_KINDS}
    steps = set(range(1, newest + 1))
    if moved != steps:
        unexplained = sorted(steps - moved)[:5]
        found.add(
            "generation",
            f"{model.name}: generations without a pointer move in the log: {unexplained}",
        )


def _check_version_numbers(
    model: _Model, replay: _Replay, versions: Mapping[int, _Version], found: _Found
) -> None:
    """Registrations are 1..last_version; the versions held are those not deleted."""
    expected = list(range(1, model.last_version + 1))
    if replay.registered != expected:
        found.add(
            "version-numbers",
            f"{model.name}: registrations numbered {_span(replay.registered)}, "
            f"last version is {model.last_version}",
        )
    held, alive = set(versions), set(replay.stages)
    for number in sorted(held - alive):
        found.add("version-numbers", f"{model.name}: v{number} is held but not registered")
    for number in sorted(alive - held):
        found.add(
            "version-numbers", f"{model.name}: v{number} is registered, not deleted, not held"
        )
    for number in sorted(held & alive):
        if replay.sha256.get(number) != versions[number].sha256:
            found.add(
                "version-numbers",
                f"{model.name}: v{number} holds other bytes than it was registered with",
            )


def _check_stages(
    label: str, replay: _Replay, versions: Mapping[int, _Version], found: _Found
) -> None:
    production = sorted(n for n, v in versions.items() if v.stage == Stage.PRODUCTION.value)
    if len(production) > 1:
        found.add("stages", f"{label}: {len(production)} versions in Production: {production}")
    for number, version in sorted(versions.items()):
        replayed = replay.stages.get(number)
        if replayed is not None and version.stage != replayed:
            found.add(
                "stages",
                f"{label}: v{number} is {version.stage}, the log replays it to {replayed}",
            )
        served = replay.served.get(number)
        rolled = number in replay.rolled_away
        if (version.served_generation, version.rolled_back) != (served, rolled):
            found.add(
                "stages",
                f"{label}: v{number}'s rollback index says served at generation "
                f"{version.served_generation}, rolled back {version.rolled_back}; the log says "
                f"{served}, {rolled}",
            )


def _check_aliases(
    label: str,
    replay: _Replay,
    held: Mapping[str, int],
    facts: _Facts,
    found: _Found,
) -> None:
    pointed: dict[str, int | None] = {}
    for alias, row_id in held.items():
        version = facts.versions.get(row_id)
        pointed[alias] = version.version if version is not None else None
        if version is not None and facts.label(version.model_id) != label:
            found.add("aliases", f"{label}: alias {alias!r} points at a version of another model")
    for alias in sorted(set(pointed) | set(replay.aliases)):
        if pointed.get(alias) != replay.aliases.get(alias):
            found.add(
                "aliases",
                f"{label}: alias {alias!r} points at {_v(pointed.get(alias))}, the log at "
                f"{_v(replay.aliases.get(alias))}",
            )


def _check_production(
    conn: Connection, label: str, model_id: int, versions: Mapping[int, _Version], found: _Found
) -> None:
    """The Production pointer against the timeline ``production_at`` replays, and the
    rollback target of the store's index against the one the whole log gives."""
    current = max(
        (n for n, v in versions.items() if v.stage == Stage.PRODUCTION.value), default=None
    )
    timeline = production_timeline(conn, model_id)
    replayed = serving_after(timeline)
    if replayed != current:
        found.add(
            "production",
            f"{label}: Production is {_v(current)}, its timeline ends on {_v(replayed)}",
        )
    by_index = choose_rollback_target(rollback_candidates(conn, model_id, None), current, None)
    by_log = choose_rollback_target(timeline, current, None)
    target = by_index.evidence.target
    if target != by_log.evidence.target:
        found.add(
            "rollback-target",
            f"{label}: a rollback would go to {_v(target)}, the log says "
            f"{_v(by_log.evidence.target)}",
        )
    if target is not None and (target == current or target not in versions):
        found.add("rollback-target", f"{label}: the rollback target {_v(target)} cannot serve")


def _v(number: int | None) -> str:
    return "nothing" if number is None else f"v{number}"


def _span(numbers: Sequence[int]) -> str:
    if not numbers:
        return "none"
    return f"{numbers[0]}..{numbers[-1]} ({len(numbers)} of them)"
