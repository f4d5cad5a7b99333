"""The subject index as the other parts of the store read it, inside their transactions.

Two rules live here so that every door passes them: a registration may close open
erasure items (``close_by_retrain``, called in ``register``'s transaction), and a
version trained on data of a subject under erasure may not go where it would serve
(``erasure_problems``, read by the promotion, rollback and binding gates' facts).
Both read the interval index of ``schema_subjects``; neither imports the mixin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, literal_column, or_, select, tuple_, update

from registry.models import Origin
from registry.store.sql.common import LockedModel, append_event
from registry.store.sql.driver import execute
from registry.store.sql.schema import datasets_table
from registry.store.sql.schema_subjects import (
    KEY_BYTES,
    erasure_items_table,
    erasure_requests_table,
    subject_datasets_table,
    subject_manifests_table,
    subject_spans_table,
)

OPEN = "retrain required"
RETRAINED = "retrained"
JUSTIFIED = "justified"

_sd, _sm, _ss = subject_datasets_table, subject_manifests_table, subject_spans_table
_er, _ei, _vd = erasure_requests_table, erasure_items_table, datasets_table


def prefix(key: str) -> bytes:
    """The index's part of a (checked) subject key: its first 16 bytes."""
    return bytes.fromhex(key[: 2 * KEY_BYTES])


def covers(span: Any = _ss, ordinal: Any = _sm.c.ordinal) -> Any:
    """The span holds the dataset version with ``ordinal`` (same dataset joined by the caller)."""
    return and_(
        span.c.first_ordinal <= ordinal,
        or_(span.c.last_ordinal.is_(None), span.c.last_ordinal >= ordinal),
    )


def subject_versions(key_prefix: bytes) -> Any:
    """(dataset name, version, ordinal) of every dataset version holding the subject."""
    return (
        select(_sd.c.name.label("dataset"), _sm.c.version.label("version"), _sm.c.ordinal)
        .select_from(_ss)
        .join(_sm, and_(_sm.c.dataset_id == _ss.c.dataset_id, covers()))
        .join(_sd, _sd.c.id == _ss.c.dataset_id)
        .where(_ss.c.subject == key_prefix)
    )


# The dataset versions a model version was trained on that carry a manifest, as
# (dataset id, ordinal): what the gate and the retrain rule look the subject up in.
_INDEXED_DATASETS = (
    select(_sm.c.dataset_id, _sm.c.ordinal)
    .join(_sd, _sd.c.id == _sm.c.dataset_id)
    .join(_vd, and_(_vd.c.name == _sd.c.name, _vd.c.version == _sm.c.version))
    .where(_vd.c.version_id == bindparam("vid"))
)
# A literal, not a parameter: SQLite uses the partial index only for a term that
# matches its WHERE as written. Run on the registration's hot path (``driver``).
_OPEN_ITEMS = select(_ei.c.request_id, _ei.c.version).where(
    _ei.c.model_id == bindparam("model_id"),
    _ei.c.state == literal_column("'retrain required'"),
)
_JUSTIFIED = select(_ei.c.request_id).where(
    _ei.c.model_id == bindparam("model_id"),
    _ei.c.version == bindparam("version"),
    _ei.c.state == JUSTIFIED,
)


def requests_holding(conn: Connection, indexed: Sequence[tuple[int, int]]) -> set[int]:
    """Ids of the erasure requests whose subject is in one of these dataset versions."""
    found: set[int] = set()
    for dataset_id, ordinal in indexed:
        rows = conn.execute(
            select(_er.c.id)
            .join(_ss, _ss.c.subject == _er.c.subject_prefix)
            .where(_ss.c.dataset_id == dataset_id, covers(ordinal=ordinal))
        )
        found.update(int(r.id) for r in rows)
    return found


def indexed_datasets(conn: Connection, vid: int) -> list[tuple[int, int]]:
    return [
        (int(r.dataset_id), int(r.ordinal)) for r in conn.execute(_INDEXED_DATASETS, {"vid": vid})
    ]


def erasure_problems(
    conn: Connection, model_id: int, name: str, version: int, vid: int
) -> tuple[str, ...]:
    """Why the version may not serve: one line per erasure request whose subject is in
    its training data and which was not justified for it (empty: nothing stops it)."""
    if conn.execute(select(_er.c.id).limit(1)).first() is None:
        return ()  # no erasure was ever requested: one read of an empty table
    held = requests_holding(conn, indexed_datasets(conn, vid))
    if not held:
        return ()
    justified = {
        int(r.request_id)
        for r in conn.execute(_JUSTIFIED, {"model_id": model_id, "version": version})
    }
    return tuple(
        f"version {version} was trained on data of a subject under erasure request #{rid}: "
        f"retrain without the subject, or `modelreg erasure justify {rid} {name} {version} "
        "--reason …`"
        for rid in sorted(held - justified)
    )


def close_by_retrain(
    conn: Connection,
    model: LockedModel,
    number: int,
    datasets: Sequence[Mapping[str, Any]],
    *,
    actor: str,
    origin: Origin | None,
    at: datetime,
) -> None:
    """In a registration's transaction: the open erasure items of the model whose subject
    the new version's data does not hold become "retrained" by it. Only when every
    dataset it was trained on carries a manifest (otherwise nothing says the subject is
    absent). A model with no open item pays one read of a partial index."""
    open_items = execute(conn, _OPEN_ITEMS, {"model_id": model.id})
    if not open_items or not datasets:
        return
    wanted = {(str(d["name"]), str(d["version"])) for d in datasets}
    indexed = [
        (int(r.dataset_id), int(r.ordinal))
        for r in conn.execute(
            select(_sm.c.dataset_id, _sm.c.ordinal)
            .join(_sd, _sd.c.id == _sm.c.dataset_id)
            .where(tuple_(_sd.c.name, _sm.c.version).in_(sorted(wanted)))
        )
    ]
    if len(indexed) < len(wanted):
        return  # a dataset without a manifest: the subject may be in it
    held = requests_holding(conn, indexed)
    closed: dict[int, list[int]] = {}
    for request_id, version in open_items:
        if int(request_id) not in held:
            closed.setdefault(int(request_id), []).append(int(version))
    for request_id, versions in sorted(closed.items()):
        conn.execute(
            update(_ei)
            .where(
                _ei.c.request_id == request_id,
                _ei.c.model_id == model.id,
                _ei.c.state == OPEN,
            )
            .values(state=RETRAINED, closed_by_version=number, closed_at=at, closed_by=actor)
        )
        append_event(
            conn,
            model,
            kind="erasure.retrained",
            actor=actor,
            origin=origin,
            generation=model.generation,
            version=number,
            subject=f"erasure #{request_id}",
            from_value=", ".join(f"v{v}" for v in sorted(versions)),
            to_value=f"v{number}",
            at=at,
        )


def chunks(values: Iterable[Any], size: int = 500) -> Iterable[list[Any]]:
    """``values`` in lists of at most ``size``: IN lists stay under SQLite's variable limit."""
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
