"""Registry benchmark: workloads W1-W5 and CLI wall time, on SQLite and PostgreSQL.

Runs the issue's "Performance" workloads through the public Python API
(``registry.connect(url)``), each against a fresh database, and compares every
figure with its target:

    W1   register N versions (5 metrics, 5 params, 3 tags, signature, lineage)
         with a precomputed ArtifactRef: versions/s            target >= 1,700/s
    W1b  ``registry.register_file`` with a distinct 4 KiB file each: versions/s
    W2   ``resolve(name, "production")``: p50/p95/p99 ms       target p50 <= 0.2 ms
    W3   search (tag, selective metric, combined): p50/p95    target p50 <= 2 / 20 ms
    W4   ungated promote/rollback flips on one model (policy ``required: []``: the
         stage rule, policy read, CAS, events): p50/p95 ms   target p50 <= 2 ms
    W4g  gated promote: the default policy's four gates read and the flip committed in
         one transaction, alternating with rollbacks: p50/p95 ms at 1k and 100k
                                                              target p50 <= 3 ms
    W5   8 processes flipping one model with expected_generation: zero lost
         updates, zero lock errors, conflicts reported as conflicts
    CLI  ``modelreg --help`` < 0.3 s, ``modelreg models --json`` < 1 s wall

On SQLite every workload runs with the registry's default ``synchronous=full`` (each
commit synced); W1 and W4 run a second time with ``synchronous=normal``, the opt-out
a bulk import may choose (``SqlStore(url, synchronous="normal")``), as extra rows.
W4g runs on the files that ``synchronous=normal`` W1 filled, under both settings.

Usage::

    python bench/registry_bench.py [--backends sqlite,postgres] [--sizes 1000,100000] [--quick]

Prints a table and writes ``registry-<backend>.json`` and ``registry.md`` into
``bench/results/`` (or ``--out``). See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib
import pydantic
import sqlalchemy
from benchlib import Report, Target, loadavg, log, percentile, verdict
from sqlalchemy import event

import registry
from registry import (
    ArtifactRef,
    Conflict,
    RegistryUnavailable,
    ReleasePolicy,
    Stage,
    VersionCreate,
)
from registry.release_models import ReplicaState
from registry.store.sql import SqlStore

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MODEL = "bench/fraud-detector"
FLIP_MODEL = "bench/flipper"
W5_MODEL = "bench/contended"
SEARCH_FILTERS = {
    "tag": "tags.team = 'team-7'",
    "metric": "metrics.auc > 0.999",
    "combined": "tags.team = 'team-7' and metrics.auc > 0.95",
}


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class Plan:
    """How much of each workload to run (the spec's numbers, or ``--quick``)."""

    sizes: tuple[int, ...]
    quick: bool
    w1b_files: int = 1000
    w2_resolves: int = 2000
    w3_iterations: int = 200
    w3_seconds_cap: float = 60.0  # per filter; fewer iterations when one is slow
    w4_flips: int = 1000
    w5_processes: int = 8
    w5_seconds: float = 5.0
    w1_budget_s: float = 300.0  # the largest W1 run stops here (and says so)
    cli_runs: int = 5

    @classmethod
    def make(cls, sizes: tuple[int, ...], quick: bool) -> Plan:
        if not quick:
            return cls(sizes=sizes, quick=False)
        return cls(
            sizes=sizes,
            quick=True,
            w1b_files=200,
            w2_resolves=500,
            w3_iterations=50,
            w3_seconds_cap=10.0,
            w4_flips=200,
            w5_seconds=2.0,
            w1_budget_s=60.0,
            cli_runs=3,
        )


# ---------------------------------------------------------------- measuring


def summary_ms(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    return {
        "n": len(ms),
        "p50": percentile(ms, 0.50),
        "p95": percentile(ms, 0.95),
        "p99": percentile(ms, 0.99),
        "mean": statistics.fmean(ms) if ms else math.nan,
        "min": ms[0] if ms else math.nan,
        "max": ms[-1] if ms else math.nan,
    }


def timed(fn: Callable[[], Any]) -> tuple[int, Any]:
    start = time.perf_counter_ns()
    result = fn()
    return time.perf_counter_ns() - start, result


_QUOTED = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


class StatementMeter:
    """Counts SQL statements and the time spent inside the driver's execute.

    Diagnostic only, run after the timed section (the listeners cost time). On
    SQLite the store runs its hot statements (events, register) straight on the
    sqlite3 connection, past SQLAlchemy's cursor events, so there the count comes
    from sqlite3's trace callback on every connection checked out meanwhile: it
    sees every statement, BEGIN and COMMIT included. The driver time covers only
    the statements that went through SQLAlchemy's cursor.
    """

    def __init__(self, store: Any) -> None:
        self.engine = store.db.engine
        self.count = 0
        self.db_ns = 0
        self.statements: Counter[str] = Counter()
        self.traced: list[sqlite3.Connection] = []
        self.sqlite = self.engine.dialect.name == "sqlite"
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        if self.sqlite:
            event.listen(self.engine, "checkout", self._checkout)

    def _record(self, statement: str) -> None:
        self.count += 1
        # sqlite3 traces the SQL with its values bound: put the placeholders back.
        shape = _NUMBER.sub("?", _QUOTED.sub("?", " ".join(statement.split())))
        self.statements[shape[:70]] += 1

    def _checkout(self, dbapi_conn: Any, *_args: Any) -> None:
        if dbapi_conn not in self.traced:
            dbapi_conn.set_trace_callback(self._record)
            self.traced.append(dbapi_conn)

    def _before(self, conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter_ns()

    def _after(self, conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        self.db_ns += time.perf_counter_ns() - conn.info.pop("bench_t0", time.perf_counter_ns())
        if not self.sqlite:
            self._record(statement)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        if self.sqlite:
            event.remove(self.engine, "checkout", self._checkout)
        for dbapi_conn in self.traced:
            with contextlib.suppress(sqlite3.Error):
                dbapi_conn.set_trace_callback(None)


def meter(store: Any, op: Callable[[int], Any], count: int) -> dict[str, Any] | None:
    """Statements per call, driver time and the rest (Python) for ``count`` calls."""
    if not hasattr(store, "db"):
        return None
    m = StatementMeter(store)
    try:
        start = time.perf_counter_ns()
        for i in range(count):
            op(i)
        total = time.perf_counter_ns() - start
    finally:
        m.close()
    return {
        "calls": count,
        "statements_per_call": m.count / count,
        "ms_per_call": total / count / 1e6,
        "driver_execute_ms_per_call": m.db_ns / count / 1e6,
        "other_ms_per_call": (total - m.db_ns) / count / 1e6,
        "statements": {s: n / count for s, n in m.statements.most_common(12)},
    }


# ---------------------------------------------------------------- data


def version_meta(i: int, rng: random.Random) -> dict[str, Any]:
    """Version ``i``'s meta.json: 5 metrics, 5 params, 3 tags, signature, lineage."""
    day = 1 + i % 28
    return {
        "metrics": {
            "auc": round(0.85 + 0.15 * rng.random(), 6),  # > 0.999 for about 0.7%
            "f1": round(0.6 + 0.3 * rng.random(), 6),
            "precision": round(0.6 + 0.3 * rng.random(), 6),
            "recall": round(0.6 + 0.3 * rng.random(), 6),
            "latency_p99_ms": round(1 + 4 * rng.random(), 3),
        },
        "params": {
            "n_estimators": 100 + i % 400,
            "learning_rate": 0.05 + (i % 10) / 100,
            "max_depth": 4 + i % 8,
            "criterion": ("gini", "entropy")[i % 2],
            "bootstrap": bool(i % 3),
        },
        "tags": {"team": f"team-{i % 10}", "use_case": "fraud", "owner": f"user-{i % 37}"},
        "signature": {
            "features": [
                {"name": "amount", "dtype": "float64"},
                {"name": "merchant_category", "dtype": "category"},
                {"name": "hour", "dtype": "int64"},
            ],
            "target": {"name": "is_fraud", "dtype": "int64"},
            "preprocessing_version": "fe-2.3",
        },
        "lineage": {
            "datasets": [
                {
                    "name": "transactions",
                    "version": f"2026-11-{day:02d}",
                    "fingerprint": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
                    "rows": 120_000 + i,
                    "date_range": ["2026-10-01", "2026-10-31"],
                }
            ],
            "feature_pipeline": "fe-2.3",
            "code": {"repository": "git@example/fraud.git", "commit": f"{i:07x}", "branch": "main"},
        },
        "environment": {"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
        "run_id": f"run-{i}",
    }


def artifact_ref(model: str, i: int) -> ArtifactRef:
    digest = hashlib.sha256(f"{model}#{i}".encode()).hexdigest()
    return ArtifactRef(
        uri=f"s3://bench-artifacts/sha256/{digest[:2]}/{digest}",
        sha256=digest,
        size=4096 + i,
        format="skops",
    )


def fill(store: Any, model: str, count: int, start: int = 0) -> None:
    """Register ``count`` versions as setup (untimed)."""
    rng = random.Random(f"{model}-{start}")
    for i in range(start, start + count):
        store.register(model, artifact_ref(model, i), VersionCreate.parse(version_meta(i, rng)))


# ---------------------------------------------------------------- release policy and facts

DEFAULT_POLICY = ReleasePolicy()  # replicas, health, canary, signature; three regions
UNGATED = ReleasePolicy(required=())


def ungated(store: Any, model: str) -> None:
    """Give ``model`` a policy that requires no gate (set once, before a workload).

    A move to Production then checks only the stage rule (the facts are still read).
    A rollback still needs its target verified in every region of the policy: that is
    the library's emergency-path rule, whatever the policy requires.
    """
    store.set_policy(model, UNGATED, reason="bench: no gates")


def replicate(store: Any, model: str, version: int) -> None:
    """Verified replicas of ``version`` in every region (what a rollback to it needs)."""
    artifact = store.get_version(model, version).artifact
    for region in DEFAULT_POLICY.regions:
        store.record_replica(
            model,
            version,
            region,
            ReplicaState.VERIFIED,
            uri=f"s3://bench-{region}/sha256/{artifact.sha256}",
            sha256=artifact.sha256,
            size=artifact.size,
        )


def record_release_facts(store: Any, model: str, version: int, baseline: int | None) -> None:
    """Everything the default policy's promotion gate reads: verified replicas and a
    passing health check in every region, and a passing canary against ``baseline``
    (the version in Production when ``version`` is promoted)."""
    replicate(store, model, version)
    for region in DEFAULT_POLICY.regions:
        store.record_check(model, version, "health", region=region, passed=True, evidence={})
    store.record_check(
        model,
        version,
        "canary",
        passed=True,
        evidence={"decision": "non-inferior", "baseline_version": baseline},
    )


# ---------------------------------------------------------------- backends


class Backend:
    name = ""

    def unavailable(self) -> str | None:
        return None

    def server_version(self) -> str:
        return ""

    @contextlib.contextmanager
    def database(self, label: str) -> Iterator[str]:
        raise NotImplementedError
        yield ""


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    @contextlib.contextmanager
    def database(self, label: str) -> Iterator[str]:
        folder = self.root / f"sqlite-{label}"
        folder.mkdir(parents=True)
        try:
            yield f"sqlite:///{folder}/registry.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=3)

    def unavailable(self) -> str | None:
        try:
            with self._admin() as conn:
                conn.execute("SELECT 1")
        except Exception as exc:  # any failure to reach the server means: skip
            return f"PostgreSQL at {self.admin_url} unreachable: {str(exc).splitlines()[0]}"
        return None

    def server_version(self) -> str:
        with self._admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
        return (
            f"PostgreSQL {row[0] if row else '?'} (synchronous_commit={sync[0] if sync else '?'})"
        )

    @contextlib.contextmanager
    def database(self, label: str) -> Iterator[str]:
        name = f"modelreg_bench_{os.getpid()}_{label}"
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def connect(url: str) -> Any:
    return registry.connect(url, settings=registry.Settings.from_env(environ={}, actor="bench"))


DEFAULT_SYNCHRONOUS = "full"
BULK_SYNCHRONOUS = "normal"  # the opt-out, measured on SQLite as extra W1/W4 rows


def sync_label(backend: str, synchronous: str = DEFAULT_SYNCHRONOUS) -> str:
    """The SQLite commit setting a W1/W4 row ran with (PostgreSQL has no such setting)."""
    if backend != "sqlite":
        return ""
    return f", synchronous={synchronous}"


# ---------------------------------------------------------------- W1


def w1_register(store: Any, n: int, budget_s: float) -> dict[str, Any]:
    """Register up to ``n`` versions of MODEL; the first few warm up, untimed."""
    warmup = min(200, max(20, n // 50))
    fill(store, MODEL, warmup)
    rng = random.Random("w1")
    chunk = 1000
    timed_ns = 0
    done = warmup
    chunks: list[dict[str, float]] = []
    while done < n and timed_ns / 1e9 < budget_s:
        size = min(chunk, n - done)
        refs = [artifact_ref(MODEL, i) for i in range(done, done + size)]
        metas = [version_meta(i, rng) for i in range(done, done + size)]
        start = time.perf_counter_ns()
        for ref, meta in zip(refs, metas, strict=True):
            store.register(MODEL, ref, VersionCreate.parse(meta))
        elapsed = time.perf_counter_ns() - start
        timed_ns += elapsed
        done += size
        chunks.append({"upto": done, "versions_per_s": size / (elapsed / 1e9)})
        if len(chunks) % 10 == 0 or done >= n:
            log(
                f"    W1 {done:,}/{n:,} registered, last chunk {chunks[-1]['versions_per_s']:.0f}/s"
            )
    timed_count = done - warmup
    return {
        "requested": n,
        "registered": done,
        "warmup_untimed": warmup,
        "timed": timed_count,
        "seconds": timed_ns / 1e9,
        "versions_per_s": timed_count / (timed_ns / 1e9) if timed_ns else math.nan,
        "ms_per_version": timed_ns / 1e6 / timed_count if timed_count else math.nan,
        "chunks": chunks,
        "truncated": done < n,
    }


def w1_parse_share(count: int = 500) -> float:
    """Milliseconds of ``VersionCreate.parse(dict)`` per version (client-side validation)."""
    rng = random.Random("parse")
    metas = [version_meta(i, rng) for i in range(count)]
    start = time.perf_counter_ns()
    for meta in metas:
        VersionCreate.parse(meta)
    return (time.perf_counter_ns() - start) / 1e6 / count


def w1b_register_files(url: str, workdir: Path, count: int) -> dict[str, Any]:
    """``registry.register_file`` with a distinct 4 KiB file per version."""
    files = workdir / "w1b-files"
    files.mkdir()
    rng = random.Random("w1b")
    warmup = 20
    paths = []
    for i in range(count + warmup):
        path = files / f"model-{i}.skops"
        path.write_bytes(rng.randbytes(4096))
        paths.append(path)
    settings = registry.Settings.from_env(
        environ={}, artifact_root=str(workdir / "w1b-artifacts"), actor="bench"
    )
    store = registry.connect(url, settings=settings)
    artifacts = registry.open_artifacts(settings)
    name = "bench/files"
    try:
        metas = [version_meta(i, rng) for i in range(count + warmup)]
        for path, meta in zip(paths[:warmup], metas[:warmup], strict=True):
            registry.register_file(store, artifacts, name, path, meta)
        samples = []
        for path, meta in zip(paths[warmup:], metas[warmup:], strict=True):
            ns, _ = timed(
                lambda p=path, m=meta: registry.register_file(store, artifacts, name, p, m)
            )
            samples.append(ns)
    finally:
        store.close()
        shutil.rmtree(files, ignore_errors=True)
        shutil.rmtree(workdir / "w1b-artifacts", ignore_errors=True)
    total = sum(samples)
    return {
        "versions": count,
        "versions_per_s": count / (total / 1e9),
        "latency_ms": summary_ms(samples),
    }


# ---------------------------------------------------------------- W2, W3


def promote_to_production(store: Any, model: str, version: int) -> None:
    """None -> Staging -> Production on a model whose policy is ``ungated`` (nothing
    to do if ``version`` is in Production already: W4g may have left it there)."""
    stage = store.get_version(model, version).stage
    if stage is Stage.PRODUCTION:
        return
    if stage is Stage.NONE:
        store.transition(model, version, Stage.STAGING)
    store.transition(model, version, Stage.PRODUCTION)


def w2_resolve(store: Any, count: int) -> dict[str, Any]:
    """Resolve ``production`` with the oldest version serving, then with the newest.

    Which version serves can matter: a plan that walks versions newest-first
    until it meets the Production one costs more the older that version is.
    """
    ungated(store, MODEL)
    promote_to_production(store, MODEL, 1)
    oldest = resolve_samples(store, count)
    meter_oldest = meter(store, lambda _i: store.resolve(MODEL, "production"), 500)
    promote_to_production(store, MODEL, store.resolve(MODEL, "latest"))
    newest = resolve_samples(store, count)
    return {
        "latency_ms": summary_ms(oldest),
        "latency_ms_newest_in_production": summary_ms(newest),
        "meter": meter_oldest,
    }


def resolve_samples(store: Any, count: int) -> list[int]:
    for _ in range(200):
        store.resolve(MODEL, "production")
    return [timed(lambda: store.resolve(MODEL, "production"))[0] for _ in range(count)]


def w3_search(store: Any, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in SEARCH_FILTERS.items():
        found = store.search(text)
        for _ in range(min(10, plan.w3_iterations)):
            store.search(text)
        samples: list[int] = []
        spent = 0
        while len(samples) < plan.w3_iterations and (spent / 1e9 < plan.w3_seconds_cap):
            ns, _ = timed(lambda t=text: store.search(t))
            samples.append(ns)
            spent += ns
        out[key] = {
            "filter": text,
            "results": len(found),
            "latency_ms": summary_ms(samples),
            "phases_ms": search_phases(store, text, max(5, min(50, len(samples)))),
            "meter": meter(store, lambda _i, t=text: store.search(t), 10),
        }
    return out


def search_phases(store: Any, text: str, count: int) -> dict[str, float] | None:
    """Median ms of: compiling the filter, running the id query, loading versions.

    Uses the SQL store's internals (diagnostic only): None if they moved.
    """
    try:
        from registry.search import search_statement
        from registry.store.sql.common import load_versions
    except ImportError:
        return None
    compile_ns, query_ns, load_ns = [], [], []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        statement = search_statement(text)
        t1 = time.perf_counter_ns()
        with store.db.read() as conn:
            ids = list(conn.execute(statement).scalars())
            t2 = time.perf_counter_ns()
            load_versions(conn, ids)
            t3 = time.perf_counter_ns()
        compile_ns.append(t1 - t0)
        query_ns.append(t2 - t1)
        load_ns.append(t3 - t2)
    return {
        "build_statement": statistics.median(compile_ns) / 1e6,
        "id_query": statistics.median(query_ns) / 1e6,
        "load_versions": statistics.median(load_ns) / 1e6,
    }


# ---------------------------------------------------------------- W4


def stage_versions(store: Any, model: str, first: int, last: int) -> None:
    for version in range(first, last + 1):
        store.transition(model, version, Stage.STAGING)


WARM_PAIRS, METER_PAIRS, COUNT_PAIRS = 10, 20, 5
EXTRA_PAIRS = WARM_PAIRS + METER_PAIRS + COUNT_PAIRS  # candidates used beyond the timed pairs


def w4_flips(store: Any, flips: int) -> dict[str, Any]:
    """The ungated flip: FLIP_MODEL's policy requires no gate, so a promote checks the
    stage rule, reads the policy and facts, compares-and-swaps and writes its events."""
    candidates = flips // 2 + EXTRA_PAIRS
    fill(store, FLIP_MODEL, candidates + 1)
    ungated(store, FLIP_MODEL)
    promote_to_production(store, FLIP_MODEL, 1)
    replicate(store, FLIP_MODEL, 1)  # every rollback returns to v1
    stage_versions(store, FLIP_MODEL, 2, candidates + 1)
    return flip_pairs(store, FLIP_MODEL, iter(range(2, candidates + 2)), flips)


def flip_pairs(store: Any, model: str, staged: Iterator[int], flips: int) -> dict[str, Any]:
    """Alternate: a Staging version to Production, then rollback; each call is a flip.

    ``staged`` yields ``flips // 2 + EXTRA_PAIRS`` Staging versions. Every rollback
    returns to the version that was in Production before the first promote.
    """
    pairs = flips // 2

    def promote() -> Any:
        return store.transition(model, next(staged), Stage.PRODUCTION, reason="bench")

    def rollback() -> Any:
        return store.rollback(model, reason="bench")

    for _ in range(WARM_PAIRS):
        promote()
        rollback()
    promote_ns, rollback_ns = [], []
    for _ in range(pairs):
        promote_ns.append(timed(promote)[0])
        rollback_ns.append(timed(rollback)[0])
    both = [x for pair in zip(promote_ns, rollback_ns, strict=True) for x in pair]
    tenth = max(1, pairs // 10)
    return {
        "flips": len(both),
        "latency_ms": summary_ms(both),
        "promote_ms": summary_ms(promote_ns),
        "rollback_ms": summary_ms(rollback_ns),
        "rollback_p50_first_tenth_ms": summary_ms(rollback_ns[:tenth])["p50"],
        "rollback_p50_last_tenth_ms": summary_ms(rollback_ns[-tenth:])["p50"],
        "meter": meter(store, lambda i: promote() if i % 2 == 0 else rollback(), 2 * METER_PAIRS),
        **count_statements(store, {"promote": promote, "rollback": rollback}, COUNT_PAIRS),
    }


def count_statements(
    store: Any, calls: dict[str, Callable[[], Any]], rounds: int
) -> dict[str, dict[str, Any]]:
    """Statements per call of each of ``calls`` (run in turn, ``rounds`` times), and which:
    ``meter_<name>`` entries. Diagnostic only, like ``meter``."""
    if not hasattr(store, "db"):
        return {}
    m = StatementMeter(store)
    totals = {name: 0 for name in calls}
    seen: dict[str, Counter[str]] = {name: Counter() for name in calls}
    try:
        for _ in range(rounds):
            for name, call in calls.items():
                count, before = m.count, Counter(m.statements)
                call()
                totals[name] += m.count - count
                seen[name].update(m.statements - before)
    finally:
        m.close()
    return {
        f"meter_{name}": {
            "calls": rounds,
            "statements_per_call": totals[name] / rounds,
            "statements": {s: n / rounds for s, n in seen[name].most_common()},
        }
        for name in calls
    }


# ---------------------------------------------------------------- W4g


def w4g_pairs(n: int, plan: Plan, runs: int) -> int:
    """Timed promote/rollback pairs per W4g run: W4's, or fewer when the model's ``n``
    versions cannot give every run its own candidates (v1 stays the base)."""
    return max(1, min(plan.w4_flips // 2, (n - 1) // runs - EXTRA_PAIRS))


def w4g_prepare(store: Any, model: str, runs: int, pairs: int) -> list[list[int]]:
    """Untimed setup of the gated promote, on a model without a stored policy (the
    default policy: replicas, health, canary, signature in three regions).

    Releases v1 through the gates, then stages ``runs`` disjoint sets of candidates and
    records each one's facts. Each rollback returns to v1, so v1 is in Production at
    every promote and every canary names it as its baseline.
    """
    record = store.get_policy(model)
    if record.version != 0 or record.policy != DEFAULT_POLICY:
        raise RuntimeError(f"W4g needs {model} on the default policy, found {record}")
    store.transition(model, 1, Stage.STAGING)
    record_release_facts(store, model, 1, baseline=None)
    store.transition(model, 1, Stage.PRODUCTION)
    per_run = pairs + EXTRA_PAIRS
    sets = []
    for first in range(2, 2 + runs * per_run, per_run):
        versions = list(range(first, first + per_run))
        for version in versions:
            store.transition(model, version, Stage.STAGING)
            record_release_facts(store, model, version, baseline=1)
        sets.append(versions)
    return sets


def w4g_gated(store: Any, model: str, versions: list[int], pairs: int) -> dict[str, Any]:
    """Timed: ``transition(model, v, PRODUCTION)`` through the four gates (facts read and
    the flip committed in one transaction), alternating with rollbacks (replicas gate)."""
    result = flip_pairs(store, model, iter(versions), 2 * pairs)
    if store.resolve(model, "production") != 1:
        raise RuntimeError("W4g: the rollbacks did not return to v1")
    result["policy"] = DEFAULT_POLICY.to_document()
    return result


# ---------------------------------------------------------------- W5


def w5_worker(url: str, g0: int, seconds: float, barrier: Any, results: Any) -> None:
    """One contender: read the generation, then flip with expected_generation, until time's up.

    The generation's parity (relative to ``g0``) says which flip comes next, so
    every process agrees and the winners always alternate promote/rollback.
    """
    store = connect(url)
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    try:
        store.get_model(W5_MODEL)
        barrier.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not w5_step(store, g0, counts, errors):
                break
    finally:
        store.close()
        results.put({"counts": dict(counts), "errors": dict(errors)})


def w5_step(store: Any, g0: int, counts: Counter[str], errors: Counter[str]) -> bool:
    model = store.get_model(W5_MODEL)
    generation = model.generation
    try:
        if (generation - g0) % 2 == 0:
            if not model.staging:
                counts["out_of_staging_versions"] += 1
                return False
            change = store.transition(
                W5_MODEL,
                min(model.staging),
                Stage.PRODUCTION,
                expected_generation=generation,
                reason="w5",
            )
        else:
            change = store.rollback(W5_MODEL, expected_generation=generation, reason="w5")
    except Conflict as exc:
        counts["conflicts"] += 1
        stale = str(exc).startswith("stale generation")
        counts["conflicts_stale_generation" if stale else "conflicts_stage_rule"] += 1
    except RegistryUnavailable as exc:
        counts["lock_errors"] += 1
        errors[f"RegistryUnavailable: {str(exc)[:120]}"] += 1
    except Exception as exc:
        counts["errors"] += 1
        errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
    else:
        counts["successes" if change.events else "stale_noops"] += 1
    return True


def w5_contention(url: str, plan: Plan, flips_per_s: float) -> dict[str, Any]:
    store = connect(url)
    try:
        staged = int(min(6000, max(300, flips_per_s * plan.w5_seconds * 0.75))) + 20
        fill(store, W5_MODEL, staged + 1)
        ungated(store, W5_MODEL)
        promote_to_production(store, W5_MODEL, 1)
        replicate(store, W5_MODEL, 1)  # every rollback returns to v1
        stage_versions(store, W5_MODEL, 2, staged + 1)
        g0 = store.get_model(W5_MODEL).generation
        start_seq = last_seq(store)
        totals, errors, elapsed = run_contenders(url, plan, g0)
        final = store.get_model(W5_MODEL)
        generations = pointer_generations(store, start_seq)
        in_production = store.search(f"name = '{W5_MODEL}' and stage = 'Production'")
    finally:
        store.close()
    successes = totals.get("successes", 0)
    return {
        "processes": plan.w5_processes,
        "seconds": elapsed,
        "staged_versions_provisioned": staged,
        "successes": successes,
        "conflicts": totals.get("conflicts", 0),
        "conflicts_stale_generation": totals.get("conflicts_stale_generation", 0),
        "conflicts_stage_rule": totals.get("conflicts_stage_rule", 0),
        "errors": totals.get("errors", 0),
        "lock_errors": totals.get("lock_errors", 0),
        "stale_noops": totals.get("stale_noops", 0),
        "out_of_staging_versions": totals.get("out_of_staging_versions", 0),
        "error_kinds": dict(errors.most_common(10)),
        "generation_start": g0,
        "generation_end": final.generation,
        "generation_delta": final.generation - g0,
        "pointer_change_calls_in_log": generations,
        "production_versions_at_end": len(in_production),
        "lost_updates": (final.generation - g0 != successes) or (generations != successes),
        "successes_per_s": successes / elapsed if elapsed else math.nan,
    }


def last_seq(store: Any) -> int:
    seq = 0
    while batch := store.events(since=seq, limit=10_000):
        seq = batch[-1].seq
    return seq


def pointer_generations(store: Any, since: int) -> int:
    """Distinct generations among stage/rollback events of W5_MODEL after ``since``."""
    seen: set[int] = set()
    seq = since
    while batch := store.events(since=seq, limit=10_000, model=W5_MODEL):
        seen.update(e.generation for e in batch if e.kind in ("stage", "rollback"))
        seq = batch[-1].seq
    return len(seen)


def run_contenders(url: str, plan: Plan, g0: int) -> tuple[Counter[str], Counter[str], float]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(plan.w5_processes + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=w5_worker, args=(url, g0, plan.w5_seconds, barrier, results))
        for _ in range(plan.w5_processes)
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    start = time.monotonic()
    reports = [results.get(timeout=plan.w5_seconds + 300) for _ in procs]
    elapsed = time.monotonic() - start
    for proc in procs:
        proc.join(timeout=60)
    totals: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for report in reports:
        totals.update(report["counts"])
        errors.update(report["errors"])
    crashed = [p.pid for p in procs if p.exitcode not in (0, None)]
    if crashed:
        totals["errors"] += len(crashed)
        errors["worker process crashed"] += len(crashed)
    return totals, errors, elapsed


# ---------------------------------------------------------------- CLI


def cli_wall(url: str, runs: int) -> dict[str, Any]:
    """Wall time of ``modelreg --help`` and ``modelreg models --json`` as subprocesses."""
    if not (REPO / "registry" / "cli" / "main.py").is_file():
        return {"missing": "registry/cli/main.py does not exist yet"}
    exe = Path(sys.executable).parent / "modelreg"
    if not exe.is_file():
        found = shutil.which("modelreg")
        if found is None:
            return {"missing": "no modelreg executable next to the interpreter or on PATH"}
        exe = Path(found)
    env = {**os.environ, "MODELREG_URL": url}
    env.pop("MODELREG_HOME", None)
    return {
        "help": run_cli([str(exe), "--help"], env, runs),
        "models_json": run_cli([str(exe), "models", "--json"], env, runs),
    }


def run_cli(argv: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)  # warm caches
    walls = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
        walls.append((time.perf_counter_ns() - start) / 1e9)
        if done.returncode != 0:
            first = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            return {"failed": f"exit {done.returncode}: {first[-1] if first else ''}"[:300]}
    return {"best_s": min(walls), "median_s": statistics.median(walls), "runs": runs}


# ---------------------------------------------------------------- scenarios


def bench_backend(backend: Backend, plan: Plan, workdir: Path) -> Report:
    report = Report(backend.name)
    reason = backend.unavailable()
    if reason is not None:
        report.note(f"SKIPPED: {reason}")
        return report
    report.details["server"] = backend.server_version()
    if backend.name != "sqlite":
        report.note("the issue states its targets for SQLite; PASS/FAIL here is for reference")
    smallest = min(plan.sizes)
    flips_per_s = 500.0
    for requested in sorted(plan.sizes):
        n, size_budget = requested, plan.w1_budget_s
        rate = report.details.get(f"w1_{smallest}", {}).get("versions_per_s")
        if requested > smallest and rate and requested / rate > plan.w1_budget_s:
            n = max(smallest, int(rate * plan.w1_budget_s * 0.9) // 10_000 * 10_000)
            report.note(
                f"W1 N={requested:,}: at {rate:.0f}/s it would take ~{requested / rate / 60:.0f} "
                f"min (> {plan.w1_budget_s / 60:.0f} min budget); using N={n:,} instead"
            )
            size_budget = plan.w1_budget_s * 1.2
        with backend.database(f"n{n}") as url:
            log(f"[{backend.name}] N={n:,}: W1/W2/W3" + (" /W4/CLI" if n == smallest else ""))
            flips = size_scenario(report, url, n, size_budget, plan, with_flips=n == smallest)
            flips_per_s = flips or flips_per_s
    if backend.name == "sqlite":
        bulk_opt_out(report, backend, plan)
    with backend.database("w1b") as url:
        log(f"[{backend.name}] W1b register_file x{plan.w1b_files}")
        w1b = w1b_register_files(url, workdir, plan.w1b_files)
        report.details["w1b"] = w1b
        report.add(
            "W1b",
            f"register_file, 4 KiB each, N={plan.w1b_files:,}",
            w1b["versions_per_s"],
            "versions/s",
        )
        report.add("W1b", "register_file latency p50", w1b["latency_ms"]["p50"], "ms")
    with backend.database("w5") as url:
        log(f"[{backend.name}] W5 {plan.w5_processes} processes x {plan.w5_seconds:g}s")
        w5 = w5_contention(url, plan, flips_per_s)
        report.details["w5"] = w5
        add_w5_rows(report, w5)
    return report


def size_scenario(
    report: Report, url: str, n: int, budget_s: float, plan: Plan, *, with_flips: bool
) -> float | None:
    store = connect(url)
    try:
        w1 = w1_register(store, n, budget_s)
        report.details[f"w1_{n}"] = w1
        label = f"register N={w1['registered']:,}{sync_label(report.backend)}"
        if w1["truncated"]:
            label += " (stopped by time budget)"
        report.add("W1", label, w1["versions_per_s"], "versions/s", Target(">=", 1700))
        log(f"    W3 search at {w1['registered']:,} versions")
        w3 = w3_search(store, plan)
        report.details[f"w3_{n}"] = w3
        bound = 2.0 if n <= 1000 else 20.0
        for key, res in w3.items():
            lat = res["latency_ms"]
            report.add(
                "W3",
                f"search {key} N={w1['registered']:,} p50 ({res['results']} hits)",
                lat["p50"],
                "ms",
                Target("<=", bound),
            )
            report.add("W3", f"search {key} N={w1['registered']:,} p95", lat["p95"], "ms")
        gated = None
        if report.backend != "sqlite":  # SQLite runs W4g on the bulk_opt_out files
            pairs = w4g_pairs(w1["registered"], plan, runs=1)
            log(f"    W4g {2 * pairs} gated flips (facts recorded first, untimed)")
            (versions,) = w4g_prepare(store, MODEL, runs=1, pairs=pairs)
            gated = w4g_gated(store, MODEL, versions, pairs)
            report.details[f"w4g_{w1['registered']}"] = gated
        log(f"    W2 resolve x{plan.w2_resolves}")
        w2 = w2_resolve(store, plan.w2_resolves)
        report.details[f"w2_{n}"] = w2
        at = f"N={w1['registered']:,}"
        for which, key in (("v1", "latency_ms"), ("newest", "latency_ms_newest_in_production")):
            lat = w2[key]
            target = Target("<=", 0.2) if with_flips else None
            label = f"resolve production ({at}, {which} serving)"
            report.add("W2", f"{label} p50", lat["p50"], "ms", target)
            report.add("W2", f"{label} p95", lat["p95"], "ms")
            report.add("W2", f"{label} p99", lat["p99"], "ms")
        if not with_flips:
            if gated is not None:
                start = len(report.rows)
                add_w4g_rows(report, gated, w1["registered"], "")
                place_beside(report, start, ("W4", "W4g"))
            return None
        log(f"    W4 {plan.w4_flips} flips")
        w4 = w4_flips(store, plan.w4_flips)
        report.details["w4"] = w4
        add_w4_rows(report, w4, sync_label(report.backend), Target("<=", 2))
        if gated is not None:
            add_w4g_rows(report, gated, w1["registered"], "")
        report.details["w1_parse_ms_per_version"] = w1_parse_share()
        report.details["w1_meter"] = meter(
            store,
            lambda i: store.register(
                "bench/metered",
                artifact_ref("metered", i),
                VersionCreate.parse(version_meta(i, random.Random(i))),
            ),
            200,
        )
    finally:
        store.close()
    log("    CLI wall time")
    add_cli_rows(report, cli_wall(url, plan.cli_runs))
    return 1000.0 / w4["latency_ms"]["mean"]


def add_w4_rows(report: Report, w4: dict[str, Any], setting: str, target: Target | None) -> None:
    flip = f"ungated flip (required: []) p50{setting}"
    report.add("W4", flip, w4["latency_ms"]["p50"], "ms", target)
    report.add("W4", f"ungated flip p95{setting}", w4["latency_ms"]["p95"], "ms")
    report.add("W4", f"promote (Staging -> Production) p50{setting}", w4["promote_ms"]["p50"], "ms")
    report.add("W4", f"rollback p50{setting}", w4["rollback_ms"]["p50"], "ms")
    report.add(
        "W4",
        f"rollback p50, first / last tenth of the run{setting}",
        w4["rollback_p50_first_tenth_ms"],
        f"/ {w4['rollback_p50_last_tenth_ms']:.3f} ms",
    )


def add_w4g_rows(report: Report, w4g: dict[str, Any], n: int, setting: str) -> None:
    at = f"N={n:,}{setting}"
    promote, rollback, flip = w4g["promote_ms"], w4g["rollback_ms"], w4g["latency_ms"]
    report.add("W4g", f"gated promote p50, {at}", promote["p50"], "ms", Target("<=", 3))
    report.add("W4g", f"gated promote p95, {at}", promote["p95"], "ms")
    report.add("W4g", f"rollback p50 / p95, {at}", rollback["p50"], f"/ {rollback['p95']:.3f} ms")
    report.add("W4g", f"flip (either) p50 / p95, {at}", flip["p50"], f"/ {flip['p95']:.3f} ms")
    statements = w4g.get("meter_promote", {}).get("statements_per_call")
    back = w4g.get("meter_rollback", {}).get("statements_per_call", math.nan)
    if statements is not None and float(statements).is_integer():
        statements = int(statements)
    label = f"statements per gated promote / rollback, {at}"
    counted = "BEGIN, COMMIT counted" if report.backend == "sqlite" else "COMMIT not counted"
    report.add("W4g", label, statements, f"/ {back:g} ({counted})")


def place_beside(report: Report, start: int, workloads: tuple[str, ...]) -> None:
    """Move the rows added since ``start`` to just after the last row of ``workloads``."""
    moved = report.rows[start:]
    del report.rows[start:]
    anchors = [i for i, row in enumerate(report.rows) if row["workload"] in workloads]
    at = anchors[-1] + 1 if anchors else len(report.rows)
    report.rows[at:at] = moved


def bulk_opt_out(report: Report, backend: Backend, plan: Plan) -> None:
    """W1 at every size and W4 again, on stores opened with ``synchronous=normal``; and
    W4g at every size on those files, under both settings.

    The same sizes as the default run (capped the same way by the W1 budget), each on
    a fresh database; W1 and W4 rows carry no target here: their targets are for the
    default setting. W4g's facts are recorded by the ``synchronous=normal`` store
    (untimed); one run of timed flips uses that store, the other a default
    ``synchronous=full`` store opened on the same file, each with its own candidates.
    """
    setting = sync_label(report.backend, BULK_SYNCHRONOUS)
    report.note(
        f"rows ending in synchronous={BULK_SYNCHRONOUS}: the opt-out a bulk import may choose; "
        f"every other SQLite row runs with the default synchronous={DEFAULT_SYNCHRONOUS}"
    )
    smallest = min(plan.sizes)
    for requested in sorted(plan.sizes):
        n = requested
        rate = report.details.get(f"w1_{BULK_SYNCHRONOUS}_{smallest}", {}).get("versions_per_s")
        if requested > smallest and rate and requested / rate > plan.w1_budget_s:
            n = max(smallest, int(rate * plan.w1_budget_s * 0.9) // 10_000 * 10_000)
            report.note(f"W1{setting} N={requested:,}: using N={n:,} (time budget)")
        with backend.database(f"{BULK_SYNCHRONOUS}-n{n}") as url:
            log(
                f"[{backend.name}] N={n:,}{setting}: W1"
                + (" /W4" if n == smallest else "")
                + " /W4g"
            )
            store = SqlStore(url, actor="bench", synchronous=BULK_SYNCHRONOUS)
            try:
                w1 = w1_register(store, n, plan.w1_budget_s * 1.2)
                report.details[f"w1_{BULK_SYNCHRONOUS}_{n}"] = w1
                label = f"register N={w1['registered']:,}{setting}"
                if w1["truncated"]:
                    label += " (stopped by time budget)"
                report.add("W1", label, w1["versions_per_s"], "versions/s")
                if n == smallest:
                    log(f"    W4 {plan.w4_flips} flips{setting}")
                    w4 = w4_flips(store, plan.w4_flips)
                    report.details[f"w4_{BULK_SYNCHRONOUS}"] = w4
                    start = len(report.rows)
                    add_w4_rows(report, w4, setting, None)
                    place_beside(report, start, ("W4",))
                pairs = w4g_pairs(w1["registered"], plan, runs=2)
                log(f"    W4g facts for 2 x {pairs + EXTRA_PAIRS} candidates (untimed)")
                full_set, normal_set = w4g_prepare(store, MODEL, runs=2, pairs=pairs)
                log(f"    W4g {2 * pairs} gated flips{setting}")
                normal = w4g_gated(store, MODEL, normal_set, pairs)
            finally:
                store.close()
            log(f"    W4g {2 * pairs} gated flips{sync_label(report.backend)}")
            with SqlStore(url, actor="bench") as default_store:  # synchronous=full
                full = w4g_gated(default_store, MODEL, full_set, pairs)
        start = len(report.rows)
        for sync, result in ((DEFAULT_SYNCHRONOUS, full), (BULK_SYNCHRONOUS, normal)):
            report.details[f"w4g_{sync}_{w1['registered']}"] = result
            add_w4g_rows(report, result, w1["registered"], sync_label(report.backend, sync))
        place_beside(report, start, ("W4", "W4g"))
    report.note(
        "W4g: the default policy (replicas, health, canary, signature in 3 regions), facts "
        "recorded beforehand (untimed) on the files W1 filled with synchronous=normal; the "
        "timed flips ran once with that store and once with a default synchronous=full store "
        "opened on the same file, each with its own candidates; the target is on the "
        "promote p50"
    )


def add_cli_rows(report: Report, cli: dict[str, Any]) -> None:
    report.details["cli"] = cli
    if "missing" in cli:
        report.note(
            f"TODO CLI: {cli['missing']}; re-run once the CLI lands "
            "(modelreg --help < 0.3 s, modelreg models --json < 1 s)"
        )
        report.add("CLI", "modelreg --help (TODO: CLI missing)", None, "s", Target("<", 0.3))
        report.add("CLI", "modelreg models --json (TODO: CLI missing)", None, "s", Target("<", 1.0))
        return
    for key, label, bound in (
        ("help", "modelreg --help", 0.3),
        ("models_json", "modelreg models --json", 1.0),
    ):
        res = cli[key]
        if "failed" in res:
            report.note(f"CLI `{label}` failed: {res['failed']}")
            report.add("CLI", f"{label} (FAILED to run)", None, "s", Target("<", bound))
            continue
        report.add(
            "CLI", f"{label} median of {res['runs']}", res["median_s"], "s", Target("<", bound)
        )
        report.add("CLI", f"{label} best of {res['runs']}", res["best_s"], "s")


def add_w5_rows(report: Report, w5: dict[str, Any]) -> None:
    label = f"{w5['processes']} procs, {w5['seconds']:.1f}s"
    report.add("W5", f"{label}: successful flips", w5["successes"], "calls")
    report.add("W5", "conflicts (reported as Conflict)", w5["conflicts"], "calls")
    report.add(
        "W5",
        "  of which stale generation / stage rule",
        w5["conflicts_stale_generation"],
        f"/ {w5['conflicts_stage_rule']:,} calls",
    )
    report.add("W5", "errors (other exceptions)", w5["errors"], "calls", Target("==", 0))
    report.add(
        "W5", "lock errors (RegistryUnavailable)", w5["lock_errors"], "calls", Target("==", 0)
    )
    report.add(
        "W5",
        "generation delta - successes",
        w5["generation_delta"] - w5["successes"],
        "lost",
        Target("==", 0),
    )
    report.add(
        "W5",
        "pointer-change generations in log - successes",
        w5["pointer_change_calls_in_log"] - w5["successes"],
        "lost",
        Target("==", 0),
    )
    report.add(
        "W5",
        "Production versions at end",
        w5["production_versions_at_end"],
        "versions",
        Target("<=", 1),
    )
    if w5["stale_noops"]:
        report.note(
            f"W5: {w5['stale_noops']} stale calls returned a no-op PointerChange instead of "
            "Conflict (transition to the stage the version is already in is checked before "
            "expected_generation)"
        )
    if w5["out_of_staging_versions"]:
        report.note("W5: contenders ran out of Staging versions before time was up")
    for kind, count in w5["error_kinds"].items():
        report.note(f"W5 error x{count}: {kind}")


# ---------------------------------------------------------------- output


def machine_info() -> dict[str, Any]:
    """benchlib's, with the stack's versions and a fingerprint of the code measured."""
    import psycopg

    machine = benchlib.machine_info()
    del machine["uncommitted_under_registry"]  # in registry_code, with the sources' digest
    return {
        **machine,
        "sqlalchemy": sqlalchemy.__version__,
        "pydantic": pydantic.VERSION,
        "psycopg": psycopg.__version__,
        "sqlite": sqlite3.sqlite_version,
        "registry_code": code_fingerprint(),
    }


def code_fingerprint() -> str:
    """Uncommitted edits under registry/ and a digest of its sources: the code measured."""
    status = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "registry"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    digest = hashlib.sha256()
    for path in sorted((REPO / "registry").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    changed = len(status.splitlines())
    return (
        f"{changed} uncommitted file(s) under registry/, sources sha256 {digest.hexdigest()[:12]}"
    )


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def print_table(report: Report) -> None:
    print(f"\n== {report.backend} ==")
    for row in report.rows:
        value = f"{fmt(row['value'])} {row['unit']}"
        target = row["target"] or ""
        print(f"{row['workload']:<4} {row['label']:<52} {value:>22}  {target:<10} {verdict(row)}")
    for text in report.notes:
        print(f"note: {text}")


def write_json(out: Path, report: Report, machine: dict[str, Any], plan: Plan) -> None:
    data = {
        "backend": report.backend,
        "quick": plan.quick,
        "sizes": list(plan.sizes),
        "machine": {**machine, "loadavg_at_end": loadavg()},
        "rows": report.rows,
        "notes": report.notes,
        "details": report.details,
    }
    path = out / f"registry-{report.backend}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    log(f"wrote {path}")


def write_markdown(out: Path) -> None:
    """``registry.md`` from every ``registry-<backend>.json`` in ``out``."""
    paths = sorted(out.glob("registry-*.json"), key=lambda p: (p.stem != "registry-sqlite", p.stem))
    runs = [json.loads(p.read_text()) for p in paths]
    lines = [
        "# Registry benchmark results",
        "",
        "Produced by `bench/registry_bench.py`; see `bench/README.md` for what each "
        "workload measures.",
        "",
    ]
    for run in runs:
        lines += markdown_run(run)
    (out / "registry.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out / 'registry.md'}")


def markdown_run(run: dict[str, Any]) -> list[str]:
    m = run["machine"]
    details = run["details"]
    mode = " (--quick: reduced workload, not the spec)" if run["quick"] else ""
    lines = [
        f"## {run['backend']}{mode}",
        "",
        f"{m['date']} · git {m['git_commit']} ({m.get('registry_code', '?')}) · "
        f"{m['nproc']} CPUs ({m['cpu']}) · "
        f"Python {m['python']} · SQLAlchemy {m['sqlalchemy']} · pydantic {m['pydantic']} · "
        f"psycopg {m['psycopg']} · SQLite {m['sqlite']} · load average (1/5/15 min) "
        f"{m.get('loadavg_at_start')} at start, {m.get('loadavg_at_end')} at end"
        + (f" · server: {details['server']}" if details.get("server") else ""),
        "",
        "| workload | figure | value | target | verdict |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for row in run["rows"]:
        lines.append(
            f"| {row['workload']} | {row['label']} | {fmt(row['value'])} {row['unit']} | "
            f"{row['target'] or ''} | {verdict(row)} |"
        )
    lines.append("")
    lines += [f"- {text}" for text in run["notes"]]
    lines += markdown_details(details)
    return [*lines, ""]


def markdown_details(details: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    meters = {k: v for k, v in details.items() if isinstance(v, dict) and v.get("meter")}
    meters.update(
        {
            f"{k}.{f}": r
            for k, v in details.items()
            if k.startswith("w3_")
            for f, r in v.items()
            if r.get("meter")
        }
    )
    if details.get("w1_meter") or meters:
        lines += [
            "",
            "Per-call breakdown (diagnostic pass with SQL listeners attached):",
            "",
            "| call | statements | ms/call | in driver execute | rest (Python, commit) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        rows = [("register (W1)", details.get("w1_meter"))]
        rows += [(k, v["meter"]) for k, v in meters.items()]
        for name, mt in rows:
            if mt:
                lines.append(
                    f"| {name} | {mt['statements_per_call']:.1f} | {mt['ms_per_call']:.3f} | "
                    f"{mt['driver_execute_ms_per_call']:.3f} | {mt['other_ms_per_call']:.3f} |"
                )
    phases = [
        (k, f, r["phases_ms"])
        for k, v in details.items()
        if k.startswith("w3_")
        for f, r in v.items()
        if r.get("phases_ms")
    ]
    if phases:
        lines += ["", "Search phases (median ms): build statement / id query / load versions:", ""]
        lines += [
            f"- {k} {f}: {p['build_statement']:.3f} / {p['id_query']:.3f} / "
            f"{p['load_versions']:.3f}"
            for k, f, p in phases
        ]
    gated = [(k, v) for k, v in details.items() if k.startswith("w4g_") and "meter_promote" in v]
    if gated:
        key, w4g = gated[0]
        lines += [
            "",
            f"Statements of one gated promote ({key}):",
            "",
        ]
        lines += [f"- {n:g} x `{text}`" for text, n in w4g["meter_promote"]["statements"].items()]
    if "w4" in details:
        w4 = details["w4"]
        lines += [
            "",
            f"W4 rollback p50 first tenth {w4['rollback_p50_first_tenth_ms']:.3f} ms, "
            f"last tenth {w4['rollback_p50_last_tenth_ms']:.3f} ms.",
        ]
    for key, w1 in details.items():
        if key.startswith("w1_") and isinstance(w1, dict) and len(w1.get("chunks", [])) > 10:
            c = w1["chunks"]
            picks = [c[0], c[len(c) // 2], c[-1]]
            lines += [
                "",
                f"W1 N={w1['registered']:,} chunk rates: "
                + ", ".join(f"{p['versions_per_s']:.0f}/s up to {p['upto']:,}" for p in picks),
            ]
    return lines


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres (default both)",
    )
    parser.add_argument(
        "--sizes", default=None, help="W1/W3 version counts (default 1000,100000; --quick: 1000)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument(
        "--pg-admin-url",
        default=PG_ADMIN_URL,
        help="PostgreSQL URL used to create and drop the bench databases",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes_text = args.sizes or ("1000" if args.quick else "1000,100000")
    plan = Plan.make(tuple(int(s.replace("_", "")) for s in sizes_text.split(",")), args.quick)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-") as tmp:
        workdir = Path(tmp)
        for name in backends:
            backend: Backend = (
                SqliteBackend(workdir) if name == "sqlite" else PostgresBackend(args.pg_admin_url)
            )
            if name not in ("sqlite", "postgres"):
                raise SystemExit(f"unknown backend {name!r}: use sqlite or postgres")
            report = bench_backend(backend, plan, workdir)
            print_table(report)
            write_json(args.out, report, machine, plan)
    write_markdown(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
