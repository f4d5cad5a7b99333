"""Data subjects: dataset versions' subject manifests, the subject index, erasure requests.

A subject key is the HMAC of a data subject's id (``registry.subjects``); the store
never sees the id. Recording a manifest diffs its keys against the dataset's newest
set (one blob) and updates the interval index (``schema_subjects``); a lineage query
follows key -> spans -> dataset versions -> model versions (``version_dataset``) ->
whether each serves now. The rules an erasure request sets (the gate, the retrain
that closes it) are in ``subject_index``, read by the rest of the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import Conflict, InvalidInput, NotFound
from registry.models import (
    ArtifactRef,
    ErasureItem,
    ErasureRequest,
    EventDetails,
    Origin,
    Stage,
    SubjectDataset,
    SubjectHit,
    SubjectLineage,
    SubjectManifest,
    check_dataset_version,
    check_erasure_request_id,
    check_id_page,
    check_model_name,
    check_subject_key,
    check_version,
    validation_message,
)
from registry.store.sql.common import LockedModel, append_event, lock_model, require_model, utcnow
from registry.store.sql.engine import Database
from registry.store.sql.facts import check_reason
from registry.store.sql.live import why_live
from registry.store.sql.schema import datasets_table, models_table, versions_table
from registry.store.sql.schema_subjects import (
    KEY_BYTES,
    erasure_items_table,
    erasure_requests_table,
    subject_datasets_table,
    subject_manifests_table,
    subject_spans_table,
)
from registry.store.sql.subject_index import (
    JUSTIFIED,
    OPEN,
    chunks,
    indexed_datasets,
    prefix,
    requests_holding,
    subject_versions,
)

_sd, _sm, _ss = subject_datasets_table, subject_manifests_table, subject_spans_table
_er, _ei = erasure_requests_table, erasure_items_table
_v, _m, _vd = versions_table, models_table, datasets_table
_MANIFEST_COLUMNS = (
    _sd.c.name.label("dataset"),
    _sm.c.version,
    _sm.c.sha256,
    _sm.c.uri,
    _sm.c.subjects,
    _sm.c.recorded_at,
    _sm.c.recorded_by,
)


class SubjectsMixin:
    db: Database
    actor: str
    origin: Origin | None

    # ------------------------------------------------------------ manifests

    def record_subject_manifest(
        self, dataset: str, version: str, manifest: ArtifactRef, subjects: Sequence[str]
    ) -> SubjectManifest:
        dataset, version = check_dataset_version(dataset, version)
        manifest = _artifact(manifest)
        keys, count = _sorted_prefixes(subjects)
        with self.db.write() as conn:
            dataset_id, ordinal, head = self._dataset_head(conn, dataset)
            stored = conn.execute(
                select(*_MANIFEST_COLUMNS)
                .join(_sd, _sd.c.id == _sm.c.dataset_id)
                .where(_sm.c.dataset_id == dataset_id, _sm.c.version == version)
            ).first()
            if stored is not None:
                if stored.sha256 != manifest.sha256:
                    raise Conflict(
                        f"dataset {dataset}@{version} already has a subject manifest "
                        f"(sha256 {stored.sha256[:12]}…): a dataset version's subjects "
                        "do not change"
                    )
                return SubjectManifest.model_validate(stored._asdict())
            ordinal += 1
            _update_spans(conn, dataset_id, ordinal, head, keys)
            now = utcnow()
            conn.execute(
                insert(_sm).values(
                    dataset_id=dataset_id,
                    version=version,
                    ordinal=ordinal,
                    uri=manifest.uri,
                    sha256=manifest.sha256,
                    size=manifest.size,
                    format=manifest.format,
                    subjects=count,
                    recorded_at=now,
                    recorded_by=self.actor,
                )
            )
            conn.execute(
                update(_sd).where(_sd.c.id == dataset_id).values(manifests=ordinal, head=keys)
            )
        return SubjectManifest(
            dataset=dataset,
            version=version,
            sha256=manifest.sha256,
            uri=manifest.uri,
            subjects=count,
            recorded_at=now,
            recorded_by=self.actor,
        )

    def _dataset_head(self, conn: Connection, dataset: str) -> tuple[int, int, bytes]:
        """The dataset's row, created if absent and locked: (id, newest ordinal, keys)."""
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        conn.execute(
            dialect_insert(_sd)
            .values(name=dataset, manifests=0, head=b"")
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = select(_sd.c.id, _sd.c.manifests, _sd.c.head).where(_sd.c.name == dataset)
        if self.db.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).one()
        return int(row.id), int(row.manifests), bytes(row.head)

    def subject_manifest(self, dataset: str, version: str) -> SubjectManifest:
        dataset, version = check_dataset_version(dataset, version)
        with self.db.read() as conn:
            row = conn.execute(
                select(*_MANIFEST_COLUMNS)
                .join(_sd, _sd.c.id == _sm.c.dataset_id)
                .where(_sd.c.name == dataset, _sm.c.version == version)
            ).first()
        if row is None:
            raise NotFound(f"dataset {dataset}@{version} has no subject manifest")
        return SubjectManifest.model_validate(row._asdict())

    # ------------------------------------------------------------ lineage

    def subject_lineage(self, subject: str) -> SubjectLineage:
        key = check_subject_key(subject)
        with self.db.read() as conn:
            datasets, hits = _lineage(conn, prefix(key))
        return SubjectLineage(subject=key, datasets=datasets, versions=hits)

    # ------------------------------------------------------------ erasure

    def request_erasure(self, subject: str, *, reason: str) -> ErasureRequest:
        key = check_subject_key(subject)
        reason = check_reason(reason, "an erasure request")
        with self.db.write() as conn:
            _, candidates = _lineage(conn, prefix(key))
            # Lock every affected model (in name order), then read what serves: a
            # promotion racing this request either commits first and is seen here, or
            # waits and meets the request in its gate.
            models = {h.name: lock_model(conn, h.name) for h in sorted(candidates, key=_by_name)}
            _, hits = _lineage(conn, prefix(key))
            now = utcnow()
            request_id = int(
                conn.execute(
                    insert(_er)
                    .values(
                        subject=key,
                        subject_prefix=prefix(key),
                        reason=reason,
                        requested_by=self.actor,
                        requested_at=now,
                    )
                    .returning(_er.c.id)
                ).scalar_one()
            )
            live = [h for h in hits if h.live]
            if live:
                conn.execute(
                    insert(_ei),
                    [
                        {
                            "request_id": request_id,
                            "model_id": models[h.name].id,
                            "version": h.version,
                            "state": OPEN,
                        }
                        for h in live
                    ],
                )
            self._erasure_events(conn, models, live, request_id, key, now)
            return _requests(conn, [request_id])[0]

    def _erasure_events(
        self,
        conn: Connection,
        models: dict[str, LockedModel],
        live: list[SubjectHit],
        request_id: int,
        key: str,
        now: Any,
    ) -> None:
        """One ``erasure.requested`` per affected model: the request, the subject's key
        and the flagged versions, nothing else about the subject (not the reason)."""
        by_model: dict[str, list[SubjectHit]] = defaultdict(list)
        for hit in live:
            by_model[hit.name].append(hit)
        for name, flagged in sorted(by_model.items()):
            model = models[name]
            append_event(
                conn,
                model,
                kind="erasure.requested",
                actor=self.actor,
                origin=self.origin,
                generation=model.generation,
                subject=f"erasure #{request_id}",
                from_value=key,
                to_value=", ".join(f"v{h.version}" for h in flagged),
                at=now,
                details=EventDetails(
                    reasons=tuple(
                        f"v{h.version} retrain required ({', '.join(h.why_live)})" for h in flagged
                    )
                ),
            )

    def justify_erasure(
        self, request_id: int, name: str, version: int, *, reason: str
    ) -> ErasureRequest:
        request_id = check_erasure_request_id(request_id)
        check_model_name(name)
        check_version(version)
        reason = check_reason(reason, "a justification")
        with self.db.write() as conn:
            model = lock_model(conn, name)
            if conn.execute(select(_er.c.id).where(_er.c.id == request_id)).first() is None:
                raise NotFound(f"erasure request #{request_id} not found")
            item = _ei.c.request_id == request_id, _ei.c.model_id == model.id
            row = conn.execute(select(_ei.c.state).where(*item, _ei.c.version == version)).first()
            if row is not None and row.state == JUSTIFIED:
                return _requests(conn, [request_id])[0]
            closed = {
                "state": JUSTIFIED,
                "justification": reason,
                "closed_at": utcnow(),
                "closed_by": self.actor,
            }
            if row is not None:
                conn.execute(update(_ei).where(*item, _ei.c.version == version).values(**closed))
            else:
                self._require_concerned(conn, model, version, request_id)
                conn.execute(
                    insert(_ei).values(
                        request_id=request_id, model_id=model.id, version=version, **closed
                    )
                )
            append_event(
                conn,
                model,
                kind="erasure.justified",
                actor=self.actor,
                origin=self.origin,
                generation=model.generation,
                version=version,
                subject=f"erasure #{request_id}",
                to_value=JUSTIFIED,
                reason=reason,
            )
            return _requests(conn, [request_id])[0]

    @staticmethod
    def _require_concerned(
        conn: Connection, model: LockedModel, version: int, request_id: int
    ) -> None:
        """A version the request did not flag can be justified only if its data holds the
        subject (so that it may be promoted later)."""
        vid = conn.execute(
            select(_v.c.id).where(_v.c.model_id == model.id, _v.c.version == version)
        ).scalar()
        if vid is None:
            raise NotFound(f"version {version} of model {model.name!r} not found")
        if request_id not in requests_holding(conn, indexed_datasets(conn, int(vid))):
            raise NotFound(
                f"erasure request #{request_id} does not concern {model.name} v{version}: "
                "it was not trained on data of the request's subject"
            )

    def erasures(
        self,
        *,
        open_only: bool = False,
        model: str | None = None,
        limit: int = 1000,
        after: int = 0,
    ) -> list[ErasureRequest]:
        check_id_page(limit, after)
        shown: list[ErasureRequest] = []
        with self.db.read() as conn:
            ids = select(_er.c.id).order_by(_er.c.id).limit(limit)
            if model is not None:
                check_model_name(model)
                model_id = require_model(conn, model)
                ids = ids.where(
                    _er.c.id.in_(select(_ei.c.request_id).where(_ei.c.model_id == model_id))
                )
            # ``open`` is decided from the items, so a page of ids may hold closed ones:
            # read on until the page is full of the requests asked for (or they end).
            while len(shown) < limit:
                found = list(conn.execute(ids.where(_er.c.id > after)).scalars())
                for request in _requests(conn, found):
                    mine = request
                    if model is not None:
                        items = tuple(i for i in request.items if i.name == model)
                        mine = request.model_copy(update={"items": items})
                    if mine.open or not open_only:
                        shown.append(mine)
                if len(found) < limit:
                    break
                after = found[-1]
        return shown[:limit]


# ---------------------------------------------------------------- validation


def _artifact(manifest: Any) -> ArtifactRef:
    if isinstance(manifest, ArtifactRef):
        return manifest
    try:
        return ArtifactRef.model_validate(manifest)
    except ValidationError as exc:
        raise InvalidInput(f"invalid manifest artifact: {validation_message(exc)}") from exc


def _sorted_prefixes(subjects: Any) -> tuple[bytes, int]:
    """The keys' index prefixes, sorted and distinct, as one blob; and how many
    distinct keys there are."""
    if isinstance(subjects, str | bytes) or not isinstance(subjects, Sequence | set | frozenset):
        raise InvalidInput("subjects must be a list of subject keys")
    distinct = {check_subject_key(key) for key in subjects}
    prefixes = sorted({bytes.fromhex(key[: 2 * KEY_BYTES]) for key in distinct})
    return b"".join(prefixes), len(distinct)


# ---------------------------------------------------------------- the index


def _split(blob: bytes) -> set[bytes]:
    return {blob[i : i + KEY_BYTES] for i in range(0, len(blob), KEY_BYTES)}


def _update_spans(
    conn: Connection, dataset_id: int, ordinal: int, head: bytes, keys: bytes
) -> None:
    """Version ``ordinal`` holds ``keys``; the one before it held ``head``: close the
    spans of the subjects that left, open one for each that arrived."""
    before, after = _split(head), _split(keys)
    left, arrived = sorted(before - after), sorted(after - before)
    if left:
        conn.execute(
            update(_ss)
            .where(
                _ss.c.subject == bindparam("s"),
                _ss.c.dataset_id == dataset_id,
                _ss.c.last_ordinal.is_(None),
            )
            .values(last_ordinal=ordinal - 1),
            [{"s": key} for key in left],
        )
    if arrived:
        conn.execute(
            insert(_ss),
            [
                {"subject": key, "dataset_id": dataset_id, "first_ordinal": ordinal}
                for key in arrived
            ],
        )


# ---------------------------------------------------------------- lineage


def _by_name(hit: SubjectHit) -> tuple[str, int]:
    return hit.name, hit.version


def _lineage(
    conn: Connection, key_prefix: bytes
) -> tuple[tuple[SubjectDataset, ...], tuple[SubjectHit, ...]]:
    """The dataset versions holding the subject, and the model versions trained on them
    with what makes each live now: live first, then by name and version."""
    held = subject_versions(key_prefix).subquery()
    datasets = tuple(
        SubjectDataset(dataset=r.dataset, version=r.version)
        for r in conn.execute(
            select(held.c.dataset, held.c.version).order_by(held.c.dataset, held.c.ordinal)
        )
    )
    if not datasets:
        return (), ()
    rows = conn.execute(
        select(
            _v.c.id,
            _v.c.model_id,
            _m.c.name,
            _v.c.version,
            _v.c.stage,
            _v.c.feature_pipeline,
            _v.c.code_commit,
            _v.c.created_at,
            _vd.c.name.label("dataset"),
            _vd.c.version.label("dataset_version"),
        )
        .select_from(_vd)
        .join(held, and_(held.c.dataset == _vd.c.name, held.c.version == _vd.c.version))
        .join(_v, _v.c.id == _vd.c.version_id)
        .join(_m, _m.c.id == _v.c.model_id)
    ).all()
    versions: dict[int, Any] = {}
    used: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        versions[r.id] = r
        used[r.id].append(f"{r.dataset}@{r.dataset_version}")
    why = why_live(conn, versions)
    open_items = _open_items(conn, {r.model_id for r in versions.values()})
    hits = [
        SubjectHit(
            name=r.name,
            version=r.version,
            stage=Stage(r.stage),
            in_production=r.stage == Stage.PRODUCTION.value,
            datasets=tuple(sorted(used[vid])),
            feature_pipeline=r.feature_pipeline,
            code_commit=r.code_commit,
            created_at=r.created_at,
            live=bool(why.get(vid)),
            why_live=tuple(why.get(vid, ())),
            retrain_required=tuple(sorted(open_items.get((r.model_id, r.version), ()))),
        )
        for vid, r in versions.items()
    ]
    hits.sort(key=lambda h: (not h.live, h.name, h.version))
    return datasets, tuple(hits)


def _open_items(conn: Connection, model_ids: set[int]) -> dict[tuple[int, int], list[int]]:
    found: dict[tuple[int, int], list[int]] = defaultdict(list)
    for batch in chunks(sorted(model_ids)):
        for r in conn.execute(
            select(_ei.c.model_id, _ei.c.version, _ei.c.request_id).where(
                _ei.c.model_id.in_(batch), _ei.c.state == OPEN
            )
        ):
            found[r.model_id, r.version].append(int(r.request_id))
    return found


def _requests(conn: Connection, ids: list[int]) -> list[ErasureRequest]:
    """Erasure requests with their items, in the order of ``ids``."""
    items: dict[int, list[ErasureItem]] = defaultdict(list)
    heads: dict[int, Any] = {}
    for batch in chunks(ids):
        for r in conn.execute(select(_er).where(_er.c.id.in_(batch))):
            heads[r.id] = r
        for i in conn.execute(
            select(_ei, _m.c.name)
            .join(_m, _m.c.id == _ei.c.model_id)
            .where(_ei.c.request_id.in_(batch))
            .order_by(_m.c.name, _ei.c.version)
        ):
            items[i.request_id].append(
                ErasureItem(
                    request_id=i.request_id,
                    name=i.name,
                    version=i.version,
                    state=i.state,
                    closed_by_version=i.closed_by_version,
                    justification=i.justification,
                    closed_at=i.closed_at,
                    closed_by=i.closed_by,
                )
            )
    return [
        ErasureRequest(
            id=heads[i].id,
            subject=heads[i].subject,
            reason=heads[i].reason,
            requested_by=heads[i].requested_by,
            requested_at=heads[i].requested_at,
            items=tuple(items[i]),
        )
        for i in ids
        if i in heads
    ]
