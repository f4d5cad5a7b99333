"""Read-side queries: the event feed, history, point-in-time, search and lineage."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, select, union_all

from registry.errors import InvalidInput
from registry.models import (
    DEFAULT_SEARCH_LIMIT,
    MAX_PAGE,
    Event,
    LineageHit,
    ModelVersion,
    Stage,
    check_event_kinds,
    check_event_page,
    check_limit,
    check_model_name,
    check_offset,
    check_search_page,
)
from registry.release.transitions import serving_after
from registry.store.sql.common import EVENT_COLUMNS, event_from_row, load_versions, require_model
from registry.store.sql.engine import Database
from registry.store.sql.live import why_live
from registry.store.sql.pointers import production_timeline
from registry.store.sql.schema import (
    datasets_table,
    event_counter_table,
    events_table,
    models_table,
    versions_table,
)
from registry.store.sql.schema_access import tokens_table
from registry.store.sql.subject_index import chunks

_COMMIT_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
MAX_EVENTS = MAX_PAGE
# The counter row, not max(seq): one primary-key read. It moves in the transaction
# that appends the event, so a reader sees it move exactly when the event commits.
_LATEST_SEQ = select(event_counter_table.c.seq).where(event_counter_table.c.id == 1)
_FEED_MARKS = select(
    _LATEST_SEQ.scalar_subquery(),
    select(func.count(tokens_table.c.revoked_at)).scalar_subquery(),
)


class QueriesMixin:
    db: Database

    def events(
        self,
        *,
        since: int = 0,
        limit: int = 1000,
        model: str | None = None,
        kinds: Sequence[str] | None = None,
        before: int | None = None,
        newest: bool = False,
    ) -> list[Event]:
        with self.db.read() as conn:
            model_id = None if model is None else _model_id(conn, check_model_name(model))
            query = events_query(since, limit, model, kinds, before, newest, model_id=model_id)
            found = [event_from_row(r) for r in conn.execute(query)]
        return found[::-1] if newest else found

    def latest_seq(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(_LATEST_SEQ).scalar() or 0)

    def feed_marks(self) -> tuple[int, int]:
        """The newest sequence number and the number of revoked tokens, in one read: what
        a server's feed follower polls (the second tells it to forget cached tokens)."""
        with self.db.read() as conn:
            row = conn.execute(_FEED_MARKS).one()
        return int(row[0] or 0), int(row[1] or 0)

    def history(self, name: str, *, since: int = 0, limit: int = 1000) -> list[Event]:
        check_model_name(name)
        check_event_page(since, limit, None)
        with self.db.read() as conn:
            model_id = require_model(conn, name)
            rows = conn.execute(
                select(*EVENT_COLUMNS)
                .where(events_table.c.model_id == model_id, events_table.c.seq > since)
                .order_by(events_table.c.seq)
                .limit(limit)
            )
            return [event_from_row(r) for r in rows]

    def production_at(self, name: str, at: datetime) -> int | None:
        check_model_name(name)
        if at.tzinfo is None:
            raise InvalidInput("the time must include a timezone (or be given as UTC)")
        with self.db.read() as conn:
            model_id = require_model(conn, name)
            last_seq = conn.execute(
                select(events_table.c.seq)
                .where(events_table.c.model_id == model_id, events_table.c.at <= at)
                .order_by(events_table.c.seq.desc())
                .limit(1)
            ).scalar()
            if last_seq is None:
                return None
            timeline = production_timeline(conn, model_id)
        return serving_after([c for c in timeline if c.seq <= last_seq])

    def search(
        self, filter_text: str = "", *, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersion]:
        check_search_page(limit, offset)
        statement = _compiled_search(filter_text, limit)
        if offset:
            statement = statement.offset(offset)
        with self.db.read() as conn:
            ids = list(conn.execute(statement).scalars())
            return load_versions(conn, ids)

    def lineage_impact(
        self,
        *,
        dataset: str | None = None,
        pipeline: str | None = None,
        commit: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[LineageHit]:
        check_limit(limit)
        check_offset(offset)
        given = [x for x in (dataset, pipeline, commit) if x is not None]
        if len(given) != 1:
            raise InvalidInput("give exactly one of dataset, pipeline or commit")
        v, m, d = versions_table, models_table, datasets_table
        condition: ColumnElement[bool]
        if dataset is not None:
            condition = v.c.id.in_(select(d.c.version_id).where(_dataset_condition(dataset)))
        elif pipeline is not None:
            condition = v.c.feature_pipeline == pipeline
        else:
            assert commit is not None
            if not _COMMIT_RE.match(commit):
                raise InvalidInput(f"invalid commit {commit!r}: expected 4-64 hex digits")
            condition = v.c.code_commit.startswith(commit.lower(), autoescape=True)
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    v.c.id,
                    v.c.model_id,
                    v.c.version,
                    v.c.stage,
                    v.c.feature_pipeline,
                    v.c.code_commit,
                    v.c.created_at,
                    m.c.name,
                )
                .join(m, m.c.id == v.c.model_id)
                .where(condition)
                .order_by(m.c.name, v.c.version)
            ).all()
            why = why_live(conn, {r.id: r for r in rows})
            # Already by name and version: a stable sort puts the live ones first, and
            # only the page asked for has its datasets read.
            rows = sorted(rows, key=lambda r: r.id not in why)[offset : offset + limit]
            datasets: dict[int, list[str]] = {}
            for batch in chunks(r.id for r in rows):
                for r in conn.execute(
                    select(d.c.version_id, d.c.name, d.c.version).where(d.c.version_id.in_(batch))
                ):
                    datasets.setdefault(r.version_id, []).append(f"{r.name}@{r.version}")
        return [
            LineageHit(
                name=r.name,
                version=r.version,
                stage=Stage(r.stage),
                in_production=r.stage == Stage.PRODUCTION.value,
                datasets=tuple(sorted(datasets.get(r.id, []))),
                feature_pipeline=r.feature_pipeline,
                code_commit=r.code_commit,
                created_at=r.created_at,
                live=r.id in why,
                why_live=tuple(why.get(r.id, ())),
            )
            for r in rows
        ]


def events_query(
    since: int,
    limit: int,
    model: str | None,
    kinds: Sequence[str] | None,
    before: int | None,
    newest: bool,
    *,
    model_id: int | None = None,
) -> Select[Any]:
    """One page of the log: the oldest ``limit`` events in the range, or with ``newest``
    the newest ``limit`` (in descending order: the caller turns them round).

    A model that exists now is followed by its id, so its events under earlier names
    count (model_id, seq / model_id, kind, seq: migrations 0001 and 0009); a name no
    model holds now matches the events written under it (model_name, …: 0008). Each
    shape reads one index in order and stops at ``limit`` rows; the whole log reads the
    primary key. With ``kinds``,
    each kind's page is read on its own, from (model_name, kind, seq) or (kind, seq),
    and the pages merged: an IN list over one index would have to read and sort every
    matching event (sixty stage changes among 100,000 registrations, or the reverse).
    """
    check_event_page(since, limit, before)
    e = events_table
    order = e.c.seq.desc() if newest else e.c.seq
    where = [e.c.seq > since]
    if before is not None:
        where.append(e.c.seq < before)
    if model_id is not None:  # the model itself, under every name it had
        where.append(e.c.model_id == model_id)
    elif model is not None:  # a name no model holds now: the events written under it
        where.append(e.c.model_name == check_model_name(model))
    query = select(*EVENT_COLUMNS)
    if kinds is None:
        return query.where(*where).order_by(order).limit(limit)
    pages = [
        select(e.c.seq).where(*where, e.c.kind == kind).order_by(order).limit(limit).subquery()
        for kind in check_event_kinds(kinds)
    ]
    seqs = union_all(*(select(page.c.seq) for page in pages))
    return query.where(e.c.seq.in_(seqs)).order_by(order).limit(limit)


def _model_id(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(models_table.c.id).where(models_table.c.name == name)).scalar()
    return None if found is None else int(found)


@lru_cache(maxsize=256)
def _compiled_search(filter_text: str, limit: int | None) -> Select[int]:
    """The statement for a filter: parsed and built once per distinct text (its
    literals are bound parameters inside it, so equal text means equal statement)."""
    from registry.search import search_statement

    statement = search_statement(filter_text, default_limit=DEFAULT_SEARCH_LIMIT)
    return statement if limit is None else statement.limit(limit)


def _dataset_condition(spec: str):  # type: ignore[no-untyped-def]
    """``name``, ``name@version``, or ``name@low..high`` (inclusive, either end open)."""
    d = datasets_table
    name, _, version = spec.partition("@")
    if not name or len(spec) > 600:
        raise InvalidInput(
            f"invalid dataset {spec!r}: expected NAME, NAME@VERSION or NAME@LOW..HIGH"
        )
    if not version:
        return d.c.name == name
    if ".." not in version:
        return and_(d.c.name == name, d.c.version == version)
    low, _, high = version.partition("..")
    if not low and not high:
        raise InvalidInput(f"invalid dataset range {spec!r}: give at least one end")
    clauses = [d.c.name == name]
    if low:
        clauses.append(d.c.version >= low)
    if high:
        clauses.append(d.c.version <= high)
    return and_(*clauses)
