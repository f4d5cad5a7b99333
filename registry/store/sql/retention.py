"""Retention: what the versions reference in the artifact stores, and the log of what
``modelreg gc`` removed.

The store never touches bytes; it answers which digests must stay and why, and appends
one ``artifact.collected`` event per removal. A removal is logged on the model one of
whose versions was registered with the digest (the ``version.registered`` event names
it, so this holds after the version, or the whole model, was deleted); bytes no
registration ever named have no model to be logged on and are handed back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, select

from registry.errors import InvalidInput
from registry.models import Event, EventDetails, Stage
from registry.retention_models import (
    BOUND,
    LIVE_STAGES,
    SERVED,
    ArtifactReferences,
    ArtifactUse,
    CollectedArtifact,
    CollectionRecord,
)
from registry.store.sql.common import LockedModel, append_event
from registry.store.sql.engine import Database
from registry.store.sql.schema import aliases_table, events_table, models_table, versions_table
from registry.store.sql.schema_contract import bindings_table
from registry.store.sql.schema_subjects import subject_manifests_table

_v, _e, _m = versions_table, events_table, models_table
_CHUNK = 500  # digests per IN (...) list
MAX_ITEMS = 100_000
MAX_REASON = 500

Pair = tuple[int, int]  # (model id, version number)


class RetentionMixin:
    db: Database
    actor: str
    origin: Any

    def artifact_references(self) -> ArtifactReferences:
        with self.db.read() as conn:
            if conn.dialect.name == "postgresql":
                # One snapshot: a version registered between two of the reads below
                # would otherwise be missing from one and not the other.
                conn.execution_options(isolation_level="REPEATABLE READ")
            seq = conn.execute(select(_e.c.seq).order_by(_e.c.seq.desc()).limit(1)).scalar()
            served = _served_pairs(conn)
            registered = _registered_digests(conn, served)
            uses = _versions(conn, served)
            manifests = subject_manifest_digests(conn)
        return ArtifactReferences(
            versions=tuple(uses),
            served=tuple(sorted(set(registered.values()))),
            subject_manifests=tuple(sorted(manifests)),
            seq=int(seq or 0),
        )

    def record_collection(
        self, items: Sequence[CollectedArtifact], *, reason: str
    ) -> CollectionRecord:
        checked = _checked(items)
        reason = _reason(reason)
        if not checked:
            return CollectionRecord()
        events: list[Event] = []
        unattributed: list[CollectedArtifact] = []
        with self.db.write() as conn:
            owners = _owners(conn, {item.via or item.sha256 for item in checked})
            locked: dict[int, LockedModel] = {}
            for item in checked:
                owner = owners.get(item.via or item.sha256)
                if owner is None:
                    unattributed.append(item)
                    continue
                model_id, version = owner
                if model_id not in locked:
                    locked[model_id] = _lock(conn, model_id)
                events.append(self._collected(conn, locked[model_id], version, item, reason))
        return CollectionRecord(events=tuple(events), unattributed=tuple(unattributed))

    def _collected(
        self,
        conn: Connection,
        model: LockedModel,
        version: int,
        item: CollectedArtifact,
        reason: str,
    ) -> Event:
        return append_event(
            conn,
            model,
            kind="artifact.collected",
            actor=self.actor,
            origin=self.origin,
            generation=model.generation,
            version=version,
            subject=item.store,
            from_value=item.via,
            reason=reason,
            details=EventDetails(sha256=item.sha256, size=item.size),
        )


# ---------------------------------------------------------------- reads


def _served_pairs(conn: Connection) -> set[Pair]:
    """(model id, version) of every entry into Production the log records: a stage move
    there, or a rollback (whose ``to_value`` is the version put back)."""
    rows = conn.execute(
        select(_e.c.model_id, _e.c.kind, _e.c.version, _e.c.to_value).where(
            ((_e.c.kind == "stage") & (_e.c.to_value == Stage.PRODUCTION.value))
            | (_e.c.kind == "rollback")
        )
    )
    pairs: set[Pair] = set()
    for row in rows:
        number = row.version if row.kind == "stage" else _int(row.to_value)
        if number is not None:
            pairs.add((int(row.model_id), int(number)))
    return pairs


def _registered_digests(conn: Connection, pairs: set[Pair]) -> dict[Pair, str]:
    """The digest each of ``pairs`` was registered with (from its registration event)."""
    if not pairs:
        return {}
    rows = conn.execute(
        select(_e.c.model_id, _e.c.version, _e.c.to_value).where(
            _e.c.kind == "version.registered",
            _e.c.model_id.in_(sorted({model_id for model_id, _ in pairs})),
        )
    )
    found: dict[Pair, str] = {}
    for row in rows:
        pair = (int(row.model_id), int(row.version))
        if pair in pairs and row.to_value:
            found[pair] = str(row.to_value)
    return found


def _versions(conn: Connection, served: set[Pair]) -> list[ArtifactUse]:
    aliases: dict[int, list[str]] = {}
    for entry in conn.execute(select(aliases_table.c.version_id, aliases_table.c.alias)):
        aliases.setdefault(int(entry.version_id), []).append(str(entry.alias))
    bound = {
        int(vid)
        for (vid,) in conn.execute(
            select(bindings_table.c.version_id).where(bindings_table.c.version_id.is_not(None))
        )
    }
    rows = conn.execute(
        select(
            _v.c.id,
            _v.c.model_id,
            _m.c.name,
            _v.c.version,
            _v.c.stage,
            _v.c.sha256,
            _v.c.size,
            _v.c.format,
            _v.c.created_at,
            _v.c.served_generation,
        )
        .join(_m, _m.c.id == _v.c.model_id)
        .order_by(_m.c.name, _v.c.version)
    )
    uses = []
    for row in rows:
        stage = Stage(row.stage)
        why: list[str] = []
        if (row.model_id, row.version) in served or row.served_generation is not None:
            why.append(SERVED)
        if row.id in bound:
            why.append(BOUND)
        why.extend(f"alias {alias}" for alias in sorted(aliases.get(row.id, ())))
        if stage in LIVE_STAGES:
            why.append(f"stage {stage.value}")
        uses.append(
            ArtifactUse(
                model=row.name,
                version=row.version,
                sha256=row.sha256,
                size=row.size,
                format=row.format,
                stage=stage,
                created_at=row.created_at,
                protected=tuple(why),
            )
        )
    return uses


def subject_manifest_digests(conn: Connection) -> set[str]:
    """The digests of every dataset version's subject manifest (content-addressed too)."""
    rows = conn.execute(select(subject_manifests_table.c.sha256))
    return {str(sha) for (sha,) in rows if sha}


def _owners(conn: Connection, digests: set[str]) -> dict[str, Pair]:
    """Digest -> (model id, version) of its newest registration, for those registered."""
    newest: dict[str, tuple[int, Pair]] = {}
    for chunk in _chunks(sorted(digests)):
        rows = conn.execute(
            select(_e.c.seq, _e.c.model_id, _e.c.version, _e.c.to_value).where(
                _e.c.kind == "version.registered", _e.c.to_value.in_(chunk)
            )
        )
        for row in rows:
            digest = str(row.to_value)
            if digest not in newest or row.seq > newest[digest][0]:
                newest[digest] = (int(row.seq), (int(row.model_id), int(row.version)))
    return {digest: pair for digest, (_seq, pair) in newest.items()}


def _lock(conn: Connection, model_id: int) -> LockedModel:
    row = conn.execute(
        select(_m.c.name, _m.c.generation).where(_m.c.id == model_id).with_for_update()
    ).one()
    return LockedModel(model_id, str(row.name), int(row.generation))


# ---------------------------------------------------------------- input checks


def _checked(items: Sequence[CollectedArtifact]) -> list[CollectedArtifact]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InvalidInput("record_collection takes a list of CollectedArtifact")
    if len(items) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} collected artifacts per call")
    checked = []
    for item in items:
        if not isinstance(item, CollectedArtifact):
            raise InvalidInput(f"a collected artifact must be a CollectedArtifact, got {item!r}")
        checked.append(item)
    return checked


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a collection needs a reason")
    return " ".join(reason.split())[:MAX_REASON]


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
