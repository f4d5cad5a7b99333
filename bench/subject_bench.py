"""Subject lineage benchmark: ``subject_lineage`` at 10,000 dataset versions x 100,000
subjects each, on SQLite (and PostgreSQL for reference).

The shape (issue #12 item 3): ``--datasets`` datasets (10) x ``--versions`` versions
each (1,000) = 10,000 dataset versions, every one holding ``--subjects`` subjects
(100,000): 1e9 (subject, dataset version) memberships. Dataset versions of one
dataset are snapshots: each drops ``--churn`` (1 %) of the previous version's
subjects and adds as many new ones, so the store's interval index (a span per run
of versions a subject is in) stays near 10 x (100,000 + 999 x 1,000) ~ 11 M spans.

Built through the real ``SqlStore.record_subject_manifest``, one call per dataset
version with its full 100,000-key list, in recording order. Two shortcuts, neither
of which the store can tell: the keys are random 64-hex strings (not HMACs of 1e9
ids: the store only ever sees keys), and each manifest's ``ArtifactRef`` is computed
(a sha256 of the dataset version's name, the size the file would have) instead of
writing 10,000 files of 6.5 MB: the store never reads the artifact.

Then ``--model-versions`` model versions (3,000, across ``--models`` models) are
registered, each trained on one or two random dataset versions, and the newest of
each model is promoted to Production (an ungated policy) and every tenth model's
previous version gets the protected alias ``champion``: the query's joins to
model versions and its live flags have real rows to read.

Measured: build time and rate (manifests/s, keys/s), then ``subject_lineage`` for
``--queries`` (200) subjects drawn at random from every subject that was ever in a
dataset version: p50, p95, max (target p50 and p95 < 100 ms), and what an answer
held on average (dataset versions, model versions).

Usage::

    python bench/subject_bench.py [--backends sqlite,postgres] [--quick]
        [--datasets 10 --versions 1000 --subjects 100000 ...] [--keep DIR]

Writes ``subject_bench.json`` and ``subject_bench.md`` into ``bench/results/`` (or
``--out``). ``--quick`` is a 10 x 20 x 10,000 smoke run, not the target shape.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import Report, Target, fmt, loadavg, log, machine_info, percentile, verdict

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from registry.models import ArtifactRef, Stage, VersionCreate  # noqa: E402
from registry.release.policy import ReleasePolicy  # noqa: E402
from registry.store.sql import SqlStore  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results"
PG_ADMIN_URL = os.environ.get("MODELREG_BENCH_PG", "postgresql://postgres@127.0.0.1/postgres")
QUERY_TARGET = Target("<", 100.0)
MANIFEST_LINE = 65  # 64 hex digits and a newline
UNGATED = ReleasePolicy(required=())


@dataclass(frozen=True)
class Plan:
    datasets: int
    versions: int
    subjects: int
    churn: float
    models: int
    model_versions: int
    queries: int
    seed: int
    quick: bool
    store_manifests: int  # how many go through record_subject_manifest on the target shape

    @property
    def dataset_versions(self) -> int:
        return self.datasets * self.versions

    @property
    def changed(self) -> int:
        """Subjects dropped (and as many added) from one dataset version to the next."""
        return max(1, round(self.subjects * self.churn))


# ---------------------------------------------------------------- building


def new_key(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def manifest_ref(dataset: str, version: str, subjects: int) -> ArtifactRef:
    """What the manifest's reference would be, without writing the 6.5 MB file."""
    digest = hashlib.sha256(f"subject-manifest:{dataset}@{version}".encode()).hexdigest()
    return ArtifactRef(
        uri=f"s3://bench-artifacts/sha256/{digest[:2]}/{digest}",
        sha256=digest,
        size=MANIFEST_LINE * subjects + 60,
        format="subject-manifest",
    )


def version_name(index: int) -> str:
    return f"v{index:05d}"


POOL_EVERY = 50  # every 50th key ever recorded is a query candidate: 11 M keys are 1.2 GB
Snapshot = tuple[int, int, list[str], list[tuple[int, str]]]


def snapshots(plan: Plan, rng: random.Random, pool: list[str]) -> Iterator[Snapshot]:
    """(dataset index, version index, its keys, the (slot, key) pairs it dropped) in
    recording order; the list of keys is reused: copy what must outlive the step.
    Every ``POOL_EVERY``-th key to arrive joins ``pool`` (the query candidates)."""
    arrived = 0
    for d in range(plan.datasets):
        current = [new_key(rng) for _ in range(plan.subjects)]
        pool.extend(current[::POOL_EVERY])
        for v in range(plan.versions):
            dropped: list[tuple[int, str]] = []
            if v:
                for slot in rng.sample(range(plan.subjects), plan.changed):
                    dropped.append((slot, current[slot]))
                    current[slot] = new_key(rng)
                    arrived += 1
                    if arrived % POOL_EVERY == 0:
                        pool.append(current[slot])
            yield d, v, current, dropped


def dataset_name(index: int) -> str:
    return f"events-{index:02d}"


def build_through_store(
    store: SqlStore, plan: Plan, rng: random.Random, *, limit: int | None = None
) -> dict[str, Any]:
    """Record the manifests with ``record_subject_manifest``, one call per dataset
    version with its full key list (the first ``limit`` only, if given)."""
    pool: list[str] = []
    record_s: list[float] = []
    total = limit or plan.dataset_versions
    started = time.perf_counter()
    for d, v, current, _dropped in snapshots(plan, rng, pool):
        if len(record_s) == total:
            break
        dataset, version = dataset_name(d), version_name(v)
        ref = manifest_ref(dataset, version, plan.subjects)
        t0 = time.perf_counter()
        store.record_subject_manifest(dataset, version, ref, current)
        record_s.append(time.perf_counter() - t0)
        done = len(record_s)
        if done % 250 == 0 or done == total:
            elapsed = time.perf_counter() - started
            log(f"  {done:,}/{total:,} manifests through the store, {elapsed:,.0f} s")
    elapsed = time.perf_counter() - started
    ordered = sorted(record_s)
    return {
        "pool": pool,
        "store_manifests": len(record_s),
        "store_s": elapsed,
        "record_p50_ms": percentile(ordered, 0.5) * 1000,
        "record_p95_ms": percentile(ordered, 0.95) * 1000,
        "store_manifests_per_s": len(record_s) / elapsed,
        "store_keys_per_s": len(record_s) * plan.subjects / elapsed,
    }


def build_direct(store: SqlStore, plan: Plan, rng: random.Random) -> dict[str, Any]:
    """Write the rows ``record_subject_manifest`` would write for the same snapshots,
    straight into the index tables: the spans follow from which keys each version
    dropped (no set diff of 100,000 keys per version). ``equivalence`` proves that
    both builds leave the same rows."""
    from sqlalchemy import insert

    from registry.store.sql.schema_subjects import (
        KEY_BYTES,
        subject_datasets_table,
        subject_manifests_table,
    )

    def prefix(key: str) -> bytes:
        return bytes.fromhex(key[: 2 * KEY_BYTES])

    pool: list[str] = []
    started = time.perf_counter()
    spans: list[dict[str, Any]] = []
    manifests: list[dict[str, Any]] = []
    born: list[int] = []
    now = datetime.now(UTC)
    for d, v, current, dropped in snapshots(plan, rng, pool):
        ordinal = v + 1
        if v == 0:
            born = [1] * plan.subjects
        for slot, old in dropped:
            spans.append({"subject": prefix(old), "first_ordinal": born[slot], "last_ordinal": v})
            born[slot] = ordinal
        dataset, version = dataset_name(d), version_name(v)
        ref = manifest_ref(dataset, version, plan.subjects)
        manifests.append(
            {
                "version": version,
                "ordinal": ordinal,
                "uri": ref.uri,
                "sha256": ref.sha256,
                "size": ref.size,
                "format": ref.format,
                "subjects": plan.subjects,
                "recorded_at": now,
                "recorded_by": store.actor,
            }
        )
        if v < plan.versions - 1:
            continue
        spans += [
            {"subject": prefix(key), "first_ordinal": first, "last_ordinal": None}
            for key, first in zip(current, born, strict=True)
        ]
        head = b"".join(sorted({prefix(key) for key in current}))
        with store.db.write() as conn:
            dataset_id = conn.execute(
                insert(subject_datasets_table)
                .values(name=dataset, manifests=plan.versions, head=head)
                .returning(subject_datasets_table.c.id)
            ).scalar_one()
            conn.execute(
                insert(subject_manifests_table),
                [{**m, "dataset_id": dataset_id} for m in manifests],
            )
            spans.sort(key=lambda row: row["subject"])
            bulk_spans(conn, store.db.dialect, dataset_id, spans)
        log(
            f"  dataset {d + 1}/{plan.datasets}: {len(spans):,} spans, "
            f"{time.perf_counter() - started:,.0f} s"
        )
        spans, manifests = [], []
    return {"pool": pool, "direct_s": time.perf_counter() - started}


def bulk_spans(conn: Any, dialect: str, dataset_id: int, spans: list[dict[str, Any]]) -> None:
    """Insert span rows through the driver (``executemany``; COPY on PostgreSQL), in
    the open transaction: SQLAlchemy's per-row work would be most of the build."""
    rows = [(r["subject"], dataset_id, r["first_ordinal"], r["last_ordinal"]) for r in spans]
    columns = "subject, dataset_id, first_ordinal, last_ordinal"
    cursor = conn.connection.driver_connection.cursor()
    if dialect == "postgresql":
        with cursor.copy(f"COPY subject_span ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cursor.executemany(f"INSERT INTO subject_span ({columns}) VALUES (?, ?, ?, ?)", rows)
    cursor.close()


def index_rows(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the subject index holds, in a comparable order (ids by name)."""
    from sqlalchemy import select

    from registry.store.sql import schema_subjects as schema

    sd, sm, ss = (
        schema.subject_datasets_table,
        schema.subject_manifests_table,
        schema.subject_spans_table,
    )
    with store.db.read() as conn:
        datasets = conn.execute(select(sd.c.name, sd.c.manifests, sd.c.head).order_by(sd.c.name))
        manifests = conn.execute(
            select(sd.c.name, sm.c.version, sm.c.ordinal, sm.c.sha256, sm.c.subjects)
            .join(sd, sd.c.id == sm.c.dataset_id)
            .order_by(sd.c.name, sm.c.ordinal)
        )
        spans = conn.execute(
            select(sd.c.name, ss.c.subject, ss.c.first_ordinal, ss.c.last_ordinal)
            .join(sd, sd.c.id == ss.c.dataset_id)
            .order_by(sd.c.name, ss.c.subject, ss.c.first_ordinal)
        )
        return {
            "datasets": [tuple(r) for r in datasets],
            "manifests": [tuple(r) for r in manifests],
            "spans": [tuple(r) for r in spans],
        }


def equivalence(url_a: str, url_b: str, plan: Plan) -> dict[str, Any]:
    """Build ``plan`` both ways (same seed) and compare every index row and 200 answers."""
    through, direct = SqlStore(url_a, actor="bench"), SqlStore(url_b, actor="bench")
    try:
        pool = build_through_store(through, plan, random.Random(plan.seed))["pool"]
        build_direct(direct, plan, random.Random(plan.seed))
        a, b = index_rows(through), index_rows(direct)
        same_rows = a == b
        keys = random.Random(1).sample(pool, min(200, len(pool)))
        same_answers = all(through.subject_lineage(k) == direct.subject_lineage(k) for k in keys)
    finally:
        through.close()
        direct.close()
    return {
        "shape": f"{plan.datasets} x {plan.versions} x {plan.subjects:,}",
        "spans": len(a["spans"]),
        "same_rows": same_rows,
        "same_answers": same_answers,
    }


def meta_for(datasets: list[tuple[str, str]], i: int) -> VersionCreate:
    return VersionCreate.parse(
        {
            "metrics": {"auc": 0.8 + (i % 100) / 1000},
            "lineage": {"datasets": [{"name": n, "version": v} for n, v in datasets]},
        }
    )


def build_models(store: SqlStore, plan: Plan, rng: random.Random) -> dict[str, Any]:
    """Model versions trained on random dataset versions; the newest of each model in
    Production, every tenth model's previous version under ``champion``."""
    started = time.perf_counter()
    per_model = max(1, plan.model_versions // plan.models)
    for m in range(plan.models):
        name = f"model-{m:03d}"
        store.set_policy(name, UNGATED, reason="bench: no gates")
        for i in range(per_model):
            trained_on = [
                (
                    dataset_name(rng.randrange(plan.datasets)),
                    version_name(rng.randrange(plan.versions)),
                )
                for _ in range(rng.choice((1, 2)))
            ]
            digest = hashlib.sha256(f"{name}#{i}".encode()).hexdigest()
            ref = ArtifactRef(uri=f"s3://bench/{digest}", sha256=digest, size=4096, format="skops")
            store.register(name, ref, meta_for(sorted(set(trained_on)), i))
        store.transition(name, per_model, Stage.STAGING)
        store.transition(name, per_model, Stage.PRODUCTION)
        if m % 10 == 0 and per_model > 1:
            store.set_aliases(name, {"champion": per_model - 1}, reason="bench")
    return {"models_s": time.perf_counter() - started, "registered": per_model * plan.models}


# ---------------------------------------------------------------- querying


def query(store: SqlStore, plan: Plan, ever: list[str], rng: random.Random) -> dict[str, Any]:
    chosen = rng.sample(ever, min(plan.queries, len(ever)))
    for key in chosen[:5]:  # warm the connection and the page cache a little
        store.subject_lineage(key)
    times: list[float] = []
    datasets: list[int] = []
    versions: list[int] = []
    live: list[int] = []
    for key in chosen:
        t0 = time.perf_counter()
        found = store.subject_lineage(key)
        times.append((time.perf_counter() - t0) * 1000)
        datasets.append(len(found.datasets))
        versions.append(len(found.versions))
        live.append(sum(h.live for h in found.versions))
    ordered = sorted(times)
    return {
        "queries": len(chosen),
        "p50_ms": percentile(ordered, 0.5),
        "p95_ms": percentile(ordered, 0.95),
        "max_ms": ordered[-1],
        "mean_datasets": sum(datasets) / len(datasets),
        "max_datasets": max(datasets),
        "mean_versions": sum(versions) / len(versions),
        "mean_live": sum(live) / len(live),
    }


# ---------------------------------------------------------------- one backend


def bench_backend(backend: str, url: str, prefix_url: str, plan: Plan) -> Report:
    """The store path's rate on the target shape (the first ``plan.store_manifests``
    manifests, in a database of their own), then the full index built directly, the
    model versions, and the queries."""
    report = Report(backend)
    log(f"[{backend}] {plan.store_manifests} manifests x {plan.subjects:,} keys through the store")
    with contextlib.closing(SqlStore(prefix_url, actor="bench@subjects")) as store:
        through = build_through_store(
            store, plan, random.Random(plan.seed), limit=plan.store_manifests
        )
    through.pop("pool")
    estimate_s = plan.dataset_versions / through["store_manifests_per_s"]
    rng = random.Random(plan.seed)
    with contextlib.closing(SqlStore(url, actor="bench@subjects")) as store:
        if plan.store_manifests >= plan.dataset_versions:
            log(f"[{backend}] the whole index through the store")
            built = build_through_store(store, plan, rng)
        else:
            log(f"[{backend}] the whole index: {plan.dataset_versions:,} manifests, direct rows")
            built = build_direct(store, plan, rng)
        pool = built.pop("pool")
        log(f"[{backend}] registering {plan.model_versions:,} model versions")
        models = build_models(store, plan, rng)
        log(f"[{backend}] {plan.queries} subject queries")
        answers = query(store, plan, pool, rng)
    report.details.update(through | built | models | answers | {"query_pool": len(pool)})
    report.add("build", "dataset versions with a manifest", plan.dataset_versions, "")
    report.add("build", "subjects per dataset version", plan.subjects, "")
    report.add(
        "build",
        f"record_subject_manifest p50 (first {through['store_manifests']} manifests)",
        through["record_p50_ms"],
        "ms",
    )
    report.add("build", "record_subject_manifest rate", through["store_manifests_per_s"], "/s")
    report.add("build", "subject keys/s through the store", through["store_keys_per_s"], "/s")
    report.add("build", "whole index through the store, estimated", estimate_s / 60, "min")
    if "direct_s" in built:
        report.add("build", "whole index as direct rows (what ran)", built["direct_s"], "s")
    else:
        report.add("build", "whole index through the store (what ran)", built["store_s"], "s")
    report.add("build", "model versions registered", models["registered"], "")
    report.add("query", "subject_lineage p50", answers["p50_ms"], "ms", QUERY_TARGET)
    report.add("query", "subject_lineage p95", answers["p95_ms"], "ms", QUERY_TARGET)
    report.add("query", "subject_lineage max", answers["max_ms"], "ms")
    report.add("query", "dataset versions per answer (mean)", answers["mean_datasets"], "")
    report.add("query", "model versions per answer (mean)", answers["mean_versions"], "")
    report.add("query", "live versions per answer (mean)", answers["mean_live"], "")
    size = database_size(url)
    if size is not None:
        report.add("build", "database size", size / 2**20, "MiB")
    return report


def database_size(url: str) -> int | None:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            row = conn.execute("select pg_database_size(current_database())").fetchone()
            return int(row[0]) if row else None
    return None


@contextlib.contextmanager
def sqlite_database(root: Path, name: str) -> Iterator[str]:
    yield f"sqlite:///{root}/{name}.db"


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"modelreg_bench_{os.getpid()}_subjects_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_unavailable(admin_url: str) -> str | None:
    try:
        import psycopg

        psycopg.connect(admin_url, connect_timeout=3).close()
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"{type(exc).__name__}: {exc}"
    return None


# ---------------------------------------------------------------- output


def print_table(report: Report) -> None:
    print(f"\n== {report.backend} ==")
    for row in report.rows:
        value = f"{fmt(row['value'])} {row['unit']}"
        target = row["target"] or ""
        print(f"{row['workload']:<6} {row['label']:<56} {value:>14}  {target:<8} {verdict(row)}")
    for text in report.notes:
        print(f"note: {text}")


def markdown(data: dict[str, Any]) -> str:
    m, plan = data["machine"], data["plan"]
    mode = " (--quick: reduced workload, not the target shape)" if plan["quick"] else ""
    lines = [
        f"# Subject lineage benchmark results{mode}",
        "",
        "Produced by `bench/subject_bench.py` (see its docstring for what is measured).",
        "",
        f"{m['date']} · git {m['git_commit']} ({m['uncommitted_under_registry']} uncommitted "
        f"file(s) under registry/) · {m['nproc']} CPUs ({m['cpu']}) · Python {m['python']} · "
        f"load average {m['loadavg_at_start']} at start, {m['loadavg_at_end']} at end",
        "",
        f"{plan['datasets']} datasets x {plan['versions']:,} versions = "
        f"{plan['datasets'] * plan['versions']:,} dataset versions x {plan['subjects']:,} subjects "
        f"each ({plan['churn']:.0%} churn per version); {plan['model_versions']:,} model versions "
        f"over {plan['models']} models; {plan['queries']} queries of random subjects.",
        "",
    ]
    eq = data.get("equivalence")
    if eq:
        lines += [
            f"Direct rows checked against `record_subject_manifest` at {eq['shape']} "
            f"({eq['spans']:,} spans): same rows {eq['same_rows']}, same answers "
            f"{eq['same_answers']} (on SQLite; PostgreSQL gets the same rows by COPY).",
            "",
        ]
    for backend, run in data["backends"].items():
        lines += [f"## {backend}", ""]
        if "skipped" in run["details"]:
            lines += [f"SKIPPED: {run['details']['skipped']}", ""]
            continue
        lines += [
            "| part | figure | value | target | verdict |",
            "| --- | --- | ---: | --- | --- |",
        ]
        for row in run["rows"]:
            lines.append(
                f"| {row['workload']} | {row['label']} | {fmt(row['value'])} {row['unit']} | "
                f"{row['target'] or ''} | {verdict(row)} |"
            )
        lines.append("")
        lines += [f"- {text}" for text in run["notes"]]
        lines.append("")
    return "\n".join(lines)


def write_results(
    out: Path, reports: list[Report], machine: dict[str, Any], plan: Plan, checked: dict[str, Any]
) -> None:
    data = {
        "plan": asdict(plan),
        "equivalence": checked,
        "machine": {**machine, "loadavg_at_end": loadavg()},
        "backends": {
            r.backend: {"rows": r.rows, "notes": r.notes, "details": r.details} for r in reports
        },
    }
    suffix = "-quick" if plan.quick else ""
    (out / f"subject_bench{suffix}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / f"subject_bench{suffix}.md").write_text(markdown(data) + "\n")
    log(f"wrote {out / f'subject_bench{suffix}.json'} and .md")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite", help="sqlite, postgres (comma-separated)")
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--versions", type=int, default=1000, help="versions per dataset")
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects per version")
    parser.add_argument("--churn", type=float, default=0.01, help="share replaced per version")
    parser.add_argument("--models", type=int, default=60)
    parser.add_argument("--model-versions", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--store-manifests",
        type=int,
        default=40,
        help="manifests timed through record_subject_manifest (>= all: build it all that way)",
    )
    parser.add_argument("--quick", action="store_true", help="10 x 20 x 10,000: a smoke run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--keep", type=Path, help="build the SQLite file here and keep it")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        args.versions, args.subjects, args.model_versions = 20, 10_000, 300
    return Plan(
        datasets=args.datasets,
        versions=args.versions,
        subjects=args.subjects,
        churn=args.churn,
        models=args.models,
        model_versions=args.model_versions,
        queries=args.queries,
        seed=args.seed,
        quick=args.quick,
        store_manifests=args.store_manifests,
    )


def database(backend: str, root: Path, name: str, admin_url: str) -> Any:
    if backend == "sqlite":
        return sqlite_database(root, name)
    return postgres_database(admin_url)


def check_equivalence(plan: Plan, root: Path) -> dict[str, Any]:
    """The direct build leaves exactly the rows the store writes: proven on a smaller
    shape with the same generator, before the target shape is built directly."""
    small = replace(
        plan,
        datasets=min(plan.datasets, 3),
        versions=min(plan.versions, 30),
        subjects=min(plan.subjects, 20_000),
    )
    log(f"equivalence: {small.datasets} x {small.versions} x {small.subjects:,}, both ways")
    with sqlite_database(root, "eq-store") as a, sqlite_database(root, "eq-direct") as b:
        result = equivalence(a, b, small)
    log(f"equivalence: {result}")
    if not (result["same_rows"] and result["same_answers"]):
        raise SystemExit("the direct build differs from record_subject_manifest's: not valid")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in backends:
        if name not in ("sqlite", "postgres"):
            raise SystemExit(f"unknown backend {name!r}: use sqlite or postgres")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    reports = []
    with tempfile.TemporaryDirectory(prefix="modelreg-subject-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        checked = check_equivalence(plan, Path(tmp))
        for name in backends:
            if name == "postgres" and (why := postgres_unavailable(args.pg_admin_url)):
                report = Report(name)
                report.details["skipped"] = why
            else:
                with (
                    database(name, root, "subjects", args.pg_admin_url) as url,
                    database(name, Path(tmp), "prefix", args.pg_admin_url) as prefix_url,
                ):
                    report = bench_backend(name, url, prefix_url, plan)
            print_table(report)
            reports.append(report)
            write_results(args.out, reports, machine, plan, checked)  # after each backend
    return 0


if __name__ == "__main__":
    sys.exit(main())
