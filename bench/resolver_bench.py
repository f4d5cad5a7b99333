"""Resolver benchmark: the serving side's hot path, propagation, CLI rollback and memory.

Measures the targets in the "Performance" section of issue 9, on SQLite and on
PostgreSQL, each against a fresh registry that this script creates and removes:

    hot path     ``Resolver.get(ref)`` 1,000,000 times: p50 and p99   target p99 <= 5 µs
                 registry statements on the calling thread meanwhile      target == 0
    propagation  200 resolvers (4 processes x 50) follow one registry; from the
                 commit of a promotion (and of a rollback) until each one serves
                 the new version: p50, p99, max              target max <= 1 s (stretch 250 ms)
    CLI          ``modelreg rollback NAME --reason ...`` as a process, from just before
                 it launches until all 200 serve the old version     target < 2 s
    memory       VmRSS of one idle resolver process serving the example model

The model is the example workload's own (``registry.pipeline.training.train_model``
on 30,000 generated transactions, a ~22 KB skops file); each version is trained with
another seed. Versions go through the default gates with the facts recorded as a
release pipeline would: the bytes really copied into every region's folder
(``registry.replication.replicate``), passing health checks and a passing canary.

Usage::

    python bench/resolver_bench.py [--backends sqlite,postgres] [--quick] [--out bench/results]

Prints a table and the load average, and writes ``resolver.json`` and ``resolver.md``
into ``bench/results/`` (or ``--out``). See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import benchlib
from benchlib import Report, Target, fmt, loadavg, log, percentile, verdict

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MODEL = "bench/fraud-detector"
REF = f"{MODEL}@production"
TRAIN_ROWS = 30_000  # the example dataset's size (registry.pipeline.data.DEFAULT_ROWS)
WATCH_SLEEP_S = 0.001  # between two sweeps of a process's resolvers while it watches
PG_SPARE_CONNECTIONS = 20  # left to the other users of a shared server
SHARED_POOL = 5  # connections per fleet process when its resolvers share one store


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class Plan:
    """How much to run (the issue's numbers, or ``--quick``)."""

    quick: bool = False
    hot_batches: int = 1000
    hot_batch_size: int = 1000
    hot_sample_every: int = 10  # every 10th batch is timed call by call (100,000 calls)
    processes: int = 4
    per_process: int = 50
    poll_s: float = 0.05
    watch_timeout_s: float = 30.0
    idle_s: float = 3.0  # how long the memory child idles before its RSS is read

    @classmethod
    def make(cls, quick: bool, poll_s: float) -> Plan:
        if not quick:
            return cls(poll_s=poll_s)
        return cls(
            quick=True, hot_batches=100, processes=2, per_process=10, poll_s=poll_s, idle_s=1.0
        )

    @property
    def resolvers(self) -> int:
        return self.processes * self.per_process


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Trained:
    path: str
    signature: dict[str, Any]


def train_versions(folder: Path, count: int) -> list[Trained]:
    """``count`` example-sized models, one per seed (distinct bytes), trained once per run."""
    from registry.pipeline import data
    from registry.pipeline.training import train_model

    frame = data.generate_transactions(date(2024, 1, 1), date(2024, 1, 30), rows=TRAIN_ROWS, seed=7)
    out = []
    for seed in range(1, count + 1):
        result = train_model(frame, {}, seed=seed, out_dir=folder / f"seed-{seed}")
        out.append(Trained(result.model_path, result.signature))
    return out


def bench_settings(url: str, home: Path) -> Any:
    from registry import Settings

    return Settings(
        home=home, registry_url=url, artifact_root=str(home / "artifacts"), actor="bench"
    )


def register_and_stage(settings: Any, store: Any, trained: Trained) -> int:
    """Register ``trained``, stage it and record every fact the default policy asks for."""
    import registry
    from registry import Stage
    from registry.replication import region_stores, replicate

    meta = {"signature": trained.signature, "metrics": {"auc": 0.9}}
    version = registry.register_file(
        store, settings.artifacts(), MODEL, Path(trained.path), meta
    ).version
    store.transition(MODEL, version, Stage.STAGING)
    replicas = replicate(store, settings.artifacts(), region_stores(settings), MODEL, version)
    failed = [r.region for r in replicas if r.state.value != "verified"]
    if failed:
        raise RuntimeError(f"v{version} did not replicate to {', '.join(failed)}")
    for region in settings.regions:
        store.record_check(MODEL, version, "health", region=region, passed=True, evidence={})
    baseline = store.get_model(MODEL).production
    store.record_check(
        MODEL,
        version,
        "canary",
        passed=True,
        evidence={"decision": "non-inferior", "baseline_version": baseline},
    )
    return version


# ---------------------------------------------------------------- backends


class SqliteBackend:
    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root

    def unavailable(self) -> str | None:
        return None

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def free_connections(self) -> int | None:
        return None

    @contextlib.contextmanager
    def database(self, label: str) -> Iterator[str]:
        folder = self.root / f"sqlite-{label}"
        folder.mkdir(parents=True)
        yield f"sqlite:///{folder}/registry.db"


class PostgresBackend:
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
        return f"PostgreSQL {row[0] if row else '?'}"

    def free_connections(self) -> int | None:
        """Connections the server can still take, less a margin for its other users."""
        with self._admin() as conn:
            row = conn.execute("SHOW max_connections").fetchone()
            used = conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()
        return int(row[0] if row else 0) - int(used[0] if used else 0) - PG_SPARE_CONNECTIONS

    def connections_to(self, url: str) -> int | None:
        try:
            with self._admin() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                    (url.rsplit("/", 1)[1],),
                ).fetchone()
        except Exception:  # a full server: the count is only a detail
            return None
        return int(row[0] if row else 0)

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


Backend = SqliteBackend | PostgresBackend


# ---------------------------------------------------------------- hot path


class StatementCounter:
    """Every statement the resolver's engine runs, by the thread that ran it.

    SQLAlchemy's ``before_cursor_execute`` sees what goes through SQLAlchemy; on
    SQLite the store runs some statements straight on the sqlite3 connection, so the
    driver's trace callback is also set on every connection the pool hands out.
    """

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.by_thread: Counter[str] = Counter()
        self.traced: list[sqlite3.Connection] = []
        self.sqlite = engine.dialect.name == "sqlite"
        event.listen(engine, "before_cursor_execute", self._cursor)
        if self.sqlite:
            event.listen(engine, "checkout", self._checkout)

    def _thread(self) -> str:
        return threading.current_thread().name

    def _cursor(self, *_args: Any) -> None:
        if not self.sqlite:  # on SQLite the trace callback sees these too
            self.by_thread[self._thread()] += 1

    def _traced(self, _statement: str) -> None:
        self.by_thread[self._thread()] += 1

    def _checkout(self, dbapi_conn: Any, *_args: Any) -> None:
        dbapi_conn.set_trace_callback(self._traced)
        if dbapi_conn not in self.traced:
            self.traced.append(dbapi_conn)

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._cursor)
        if self.sqlite:
            event.remove(self.engine, "checkout", self._checkout)
        for dbapi_conn in self.traced:
            with contextlib.suppress(sqlite3.Error):
                dbapi_conn.set_trace_callback(None)


def timer_overhead_ns(count: int = 100_000) -> float:
    """The median cost of one ``perf_counter_ns`` pair with nothing between."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(count):
        t0 = clock()
        samples.append(clock() - t0)
    samples.sort()
    return float(samples[len(samples) // 2])


def hot_path(settings: Any, plan: Plan, cache_dir: Path) -> dict[str, Any]:
    """``get(REF)`` in batches, with the resolver's follower running as in production."""
    from registry.resolver import Resolver

    clock = time.perf_counter_ns
    batch_size = plan.hot_batch_size
    batch_means_ns: list[float] = []
    per_call_ns: list[int] = []
    with Resolver(settings, settings.regions[0], [REF], cache_dir=cache_dir) as resolver:
        get = resolver.get
        version = get(REF).version
        for _ in range(10_000):  # warm-up, untimed
            get(REF)
        counter = StatementCounter(resolver._store.db.engine)  # type: ignore[union-attr]
        # The hooks must see something: wait for the follower's next poll, then start.
        deadline = time.monotonic() + 5
        while not counter.by_thread and time.monotonic() < deadline:
            time.sleep(0.01)
        hooks_saw = dict(counter.by_thread)
        counter.by_thread.clear()
        caller = threading.current_thread().name
        started = time.monotonic()
        try:
            for batch in range(plan.hot_batches):
                if batch % plan.hot_sample_every == 0:
                    for _ in range(batch_size):
                        t0 = clock()
                        get(REF)
                        per_call_ns.append(clock() - t0)
                else:
                    t0 = clock()
                    for _ in range(batch_size):
                        get(REF)
                    batch_means_ns.append((clock() - t0) / batch_size)
        finally:
            counter.close()
        seconds = time.monotonic() - started
        still = get(REF).version
    overhead = timer_overhead_ns()
    batch_means_ns.sort()
    per_call_ns.sort()
    calls = plan.hot_batches * batch_size
    return {
        "calls": calls,
        "batched_calls": len(batch_means_ns) * batch_size,
        "sampled_calls": len(per_call_ns),
        "seconds": seconds,
        "version": version,
        "version_after": still,
        "p50_us": percentile(batch_means_ns, 0.50) / 1000,
        "batch_mean_p99_us": percentile(batch_means_ns, 0.99) / 1000,
        "sampled_p50_us": percentile([float(s) for s in per_call_ns], 0.50) / 1000,
        "p99_us": percentile([float(s) for s in per_call_ns], 0.99) / 1000,
        "sampled_p999_us": percentile([float(s) for s in per_call_ns], 0.999) / 1000,
        "sampled_max_us": per_call_ns[-1] / 1000 if per_call_ns else math.nan,
        "timer_overhead_us": overhead / 1000,
        "statements_on_caller": counter.by_thread.get(caller, 0),
        "statements_by_thread": dict(counter.by_thread),
        "hooks_checked_on": hooks_saw,
    }


# ---------------------------------------------------------------- the fleet (child processes)


def fleet_worker(
    settings: Any,
    index: int,
    count: int,
    poll_s: float,
    cache_root: str,
    share_store: bool,
    conn: Any,
) -> None:
    """``count`` resolvers in one process; watches for a version when told to."""
    logging.basicConfig(level=logging.ERROR)
    from registry.resolver import Resolver

    shared = small_pool_store(settings) if share_store else None

    class SharedStoreResolver(Resolver):
        """A resolver that reads the registry through this process's one store and is
        woken by this process's one LISTEN connection (see ``share_store`` in
        ``run_fleet``: a server with too few connections for two per resolver)."""

        def _open(self) -> Any:
            return shared

        def _listen(self) -> None:
            return None

    kind = SharedStoreResolver if share_store else Resolver
    region = settings.regions[index % len(settings.regions)]
    started = time.monotonic()
    resolvers = [
        kind(
            settings,
            region,
            [REF],
            cache_dir=Path(cache_root) / f"p{index}-r{i}",
            poll_s=poll_s,
            resolver_id=f"bench-p{index}-r{i}",
        )
        for i in range(count)
    ]
    for resolver in resolvers:
        resolver.start()
    listener = shared_listener(settings, resolvers) if share_store else None
    conn.send(
        {
            "start_s": time.monotonic() - started,
            "serving": dict(Counter(r.get(REF).version for r in resolvers)),
            "rss_mib": rss_mib(),
        }
    )
    while True:
        command = conn.recv()
        if command[0] == "stop":
            break
        if command[0] == "idle":
            cpu0 = os.times()
            time.sleep(command[1])
            cpu1 = os.times()
            conn.send((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system))
            continue
        _, version, timeout_s = command
        conn.send("watching")
        conn.send(watch(resolvers, version, timeout_s))
    for resolver in resolvers:
        resolver.close()
    if listener is not None:
        listener.close()
    if shared is not None:
        shared.close()
    conn.send("closed")


def shared_listener(settings: Any, resolvers: list[Any]) -> Any:
    """One LISTEN connection for a process's resolvers: every NOTIFY wakes them all."""
    if not settings.registry_url.startswith("postgresql"):
        return None
    from registry.store.sql.listen import EventListener

    listener = EventListener(settings.registry_url)

    def wake() -> None:
        for _seq in listener.heard():
            for resolver in resolvers:
                resolver.refresh_now()

    threading.Thread(target=wake, name="bench-listener", daemon=True).start()
    return listener


def small_pool_store(settings: Any) -> Any:
    """A store whose PostgreSQL engine keeps at most ``SHARED_POOL`` connections.

    The registry gives no pool setting, so the engine is rebuilt here as
    ``make_engine`` builds it, with a smaller pool: a shared server must keep room
    for its other users (a full one refuses everyone, this fleet and the CLI too).
    """
    from sqlalchemy import create_engine

    store = settings.connect()
    db = store.db
    db.engine.dispose()
    db.engine = create_engine(db.url, pool_pre_ping=True, pool_size=SHARED_POOL, max_overflow=0)
    db._writer = db.engine.execution_options(modelreg_write=True)
    return store


def watch(resolvers: list[Any], version: int, timeout_s: float) -> dict[str, Any]:
    """When each resolver first serves ``version`` (``time.monotonic_ns``, or None)."""
    seen: list[int | None] = [None] * len(resolvers)
    pending = list(range(len(resolvers)))
    cpu0 = os.times()
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        still = []
        for i in pending:
            if resolvers[i].get(REF).version == version:
                seen[i] = time.monotonic_ns()
            else:
                still.append(i)
        pending = still
        time.sleep(WATCH_SLEEP_S)
    cpu1 = os.times()
    degraded = Counter((s.reason or "")[:120] for r in resolvers for s in r.status() if s.degraded)
    return {
        "seen_ns": seen,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "degraded": dict(degraded),
    }


class Fleet:
    """``plan.processes`` processes of ``plan.per_process`` resolvers each."""

    def __init__(self, settings: Any, plan: Plan, cache_root: Path, share_store: bool) -> None:
        ctx = mp.get_context("spawn")
        self.plan = plan
        self.pipes = []
        self.procs = []
        for index in range(plan.processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=fleet_worker,
                args=(
                    settings,
                    index,
                    plan.per_process,
                    plan.poll_s,
                    str(cache_root),
                    share_store,
                    child,
                ),
                daemon=True,
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.ready = [self._recv(p, 180) for p in self.pipes]
        self.started = time.monotonic()

    def _recv(self, pipe: Any, timeout_s: float) -> Any:
        if not pipe.poll(timeout_s):
            raise RuntimeError(f"a fleet process did not answer within {timeout_s:g}s")
        return pipe.recv()

    def serving(self) -> Counter[int]:
        total: Counter[int] = Counter()
        for ready in self.ready:
            total.update({int(k): v for k, v in ready["serving"].items()})
        return total

    def idle_cpu(self, seconds: float) -> float:
        """CPU seconds per second the whole fleet spends while nothing changes (polling)."""
        for pipe in self.pipes:
            pipe.send(("idle", seconds))
        return sum(self._recv(p, seconds + 30) for p in self.pipes) / seconds

    def settle(self, version: int) -> int:
        """Wait until every resolver serves ``version``; the number that did not."""
        for pipe in self.pipes:
            pipe.send(("watch", version, self.plan.watch_timeout_s))
        for pipe in self.pipes:
            self._recv(pipe, 30)
        results = [self._recv(p, self.plan.watch_timeout_s + 30) for p in self.pipes]
        return sum(1 for r in results for seen in r["seen_ns"] if seen is None)

    def switch(self, version: int, action: Any) -> dict[str, Any]:
        """Run ``action`` (it returns the monotonic_ns its change committed at, and
        anything else to report) and time until every resolver serves ``version``."""
        for pipe in self.pipes:
            pipe.send(("watch", version, self.plan.watch_timeout_s))
        for pipe in self.pipes:
            if self._recv(pipe, 30) != "watching":
                raise RuntimeError("a fleet process did not start watching")
        committed_ns, extra = action()
        results = [self._recv(p, self.plan.watch_timeout_s + 30) for p in self.pipes]
        latencies = sorted(
            (seen - committed_ns) / 1e6 for r in results for seen in r["seen_ns"] if seen
        )
        missed = sum(1 for r in results for seen in r["seen_ns"] if seen is None)
        degraded: Counter[str] = Counter()
        for r in results:
            degraded.update(r["degraded"])
        return {
            "version": version,
            "resolvers": self.plan.resolvers,
            "switched": len(latencies),
            "missed": missed,
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": latencies[-1] if latencies and not missed else math.inf,
            "min_ms": latencies[0] if latencies else math.nan,
            "process_max_ms": [
                max(((s - committed_ns) / 1e6 for s in r["seen_ns"] if s), default=math.nan)
                for r in results
            ],
            "fleet_cpu_s": sum(r["cpu_s"] for r in results),
            "degraded_after": dict(degraded),
            **extra,
        }

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for pipe in self.pipes:
            with contextlib.suppress(OSError, EOFError, RuntimeError):
                self._recv(pipe, 30)
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def promote_action(store: Any, version: int) -> Any:
    def action() -> tuple[int, dict[str, Any]]:
        t0 = time.monotonic_ns()
        store.promote(MODEL, version)
        committed = time.monotonic_ns()  # right after the commit returned
        return committed, {"call_ms": (committed - t0) / 1e6}

    return action


def rollback_action(store: Any) -> Any:
    def action() -> tuple[int, dict[str, Any]]:
        t0 = time.monotonic_ns()
        store.rollback(MODEL, reason="bench: propagation of a rollback")
        committed = time.monotonic_ns()
        return committed, {"call_ms": (committed - t0) / 1e6}

    return action


def cli_rollback_action(settings: Any, url: str) -> Any:
    """``modelreg rollback`` as a process; timed from just before it launches."""

    def action() -> tuple[int, dict[str, Any]]:
        env = {
            **os.environ,
            "MODELREG_URL": url,
            "MODELREG_HOME": str(settings.home),
            "MODELREG_USER": "bench-cli",
        }
        command = [str(Path(sys.executable).with_name("modelreg")), "rollback", MODEL]
        command += ["--reason", "bench: CLI rollback end to end"]
        launched = time.monotonic_ns()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        exited = time.monotonic_ns()
        return launched, {
            "cli_exit": done.returncode,
            "cli_wall_ms": (exited - launched) / 1e6,
            "cli_output": (done.stdout + done.stderr).strip()[-300:],
        }

    return action


# ---------------------------------------------------------------- memory (child process)


def rss_child(settings_json: str, cache_dir: str, idle_s: float) -> None:
    """One resolver in a fresh process: VmRSS after import, after start, after idling."""
    logging.basicConfig(level=logging.ERROR)
    from registry import Settings

    settings = Settings.model_validate_json(settings_json)
    baseline = rss_mib()
    from registry.resolver import Resolver

    imported = rss_mib()
    import skops.io  # what the first load pulls in anyway (sklearn, scipy, numpy)

    libraries = rss_mib()
    with Resolver(settings, settings.regions[0], [REF], cache_dir=Path(cache_dir)) as resolver:
        version = resolver.get(REF).version
        started = rss_mib()
        time.sleep(idle_s)
        idle = rss_mib()
        version_after = resolver.get(REF).version
    print(
        json.dumps(
            {
                "interpreter_mib": baseline,
                "after_import_mib": imported,
                "after_skops_mib": libraries,
                "skops_module": skops.io.__name__,
                "after_start_mib": started,
                "idle_mib": idle,
                "idle_s": idle_s,
                "version": version,
                "version_after": version_after,
            }
        )
    )


def memory(settings: Any, plan: Plan, cache_dir: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--rss-child"]
    command += [settings.model_dump_json(), str(cache_dir), str(plan.idle_s)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------- one backend


def bench_backend(backend: Backend, plan: Plan, workdir: Path, trained: list[Trained]) -> Report:
    report = Report(backend.name)
    reason = backend.unavailable()
    if reason:
        report.note(f"SKIPPED: {reason}")
        return report
    report.details["server"] = backend.server_version()
    report.details["loadavg_at_start"] = loadavg()
    with backend.database("resolver") as url:
        home = workdir / f"home-{backend.name}"
        settings = bench_settings(url, home)
        store = settings.connect()
        try:
            run_backend(report, backend, plan, settings, store, url, trained, home)
        finally:
            store.close()
    report.details["loadavg_at_end"] = loadavg()
    return report


def run_backend(
    report: Report,
    backend: Backend,
    plan: Plan,
    settings: Any,
    store: Any,
    url: str,
    trained: list[Trained],
    home: Path,
) -> None:
    from registry import Stage

    name = backend.name
    v1 = register_and_stage(settings, store, trained[0])
    store.transition(MODEL, v1, Stage.PRODUCTION)

    log(f"[{name}] hot path: {plan.hot_batches * plan.hot_batch_size:,} calls")
    hot = hot_path(settings, plan, home / "cache-hot")
    report.details["hot_path"] = hot
    add_hot_rows(report, hot)

    run_fleet(report, backend, plan, settings, store, url, trained, home, v1)

    if name == "sqlite":
        log(f"[{name}] memory of one idle resolver process")
        mem = memory(settings, plan, home / "cache-rss")
        report.details["memory"] = mem
        report.add(
            "memory", "VmRSS, one idle resolver process (example model)", mem["idle_mib"], "MiB"
        )
        report.add(
            "memory", "of which: interpreter + resolver import", mem["after_import_mib"], "MiB"
        )
        report.add("memory", "of which: + skops/sklearn import", mem["after_skops_mib"], "MiB")


def wait_for_connections(backend: Backend, wanted: int, patience_s: float = 120.0) -> int | None:
    """The server's spare connections, once there are ``wanted`` (a shared server's other
    users come and go), or what there is after ``patience_s``."""
    deadline = time.monotonic() + patience_s
    while True:
        free = backend.free_connections()
        if free is None or free >= wanted or time.monotonic() >= deadline:
            return free
        log(f"[{backend.name}] {free} spare connections, waiting for {wanted}")
        time.sleep(2.0)


def run_fleet(
    report: Report,
    backend: Backend,
    plan: Plan,
    settings: Any,
    store: Any,
    url: str,
    trained: list[Trained],
    home: Path,
    v1: int,
) -> None:
    """The propagation runs and the CLI rollback, on one fleet of resolvers."""
    name = backend.name
    free = wait_for_connections(backend, plan.processes * SHARED_POOL)
    share = free is not None and free < 2 * plan.resolvers
    if share and free is not None and free < plan.processes * SHARED_POOL:
        report.note(
            f"only {free} connections to spare for {plan.processes} shared stores of "
            f"{SHARED_POOL} each: resolvers may have been refused connections"
        )
    report.details["fleet"] = {
        "processes": plan.processes,
        "per_process": plan.per_process,
        "poll_s": plan.poll_s,
        "watch_sleep_s": WATCH_SLEEP_S,
        "shared_store_per_process": share,
        "free_connections": free,
    }
    if share:
        report.note(
            f"the server had {free} connections to spare (max_connections less those in use "
            f"and {PG_SPARE_CONNECTIONS} kept free) for {plan.resolvers} resolvers, each of "
            "which holds two (its store's and its LISTEN connection): the resolvers of each "
            f"process share one store instead, whose engine keeps at most {SHARED_POOL} "
            "connections, and one LISTEN connection that wakes them all. A real fleet of 200 "
            "needs max_connections >= 400 plus headroom, or a pooler"
        )
    v2 = register_and_stage(settings, store, trained[1])
    v3 = v2 + 1  # registered (and staged) after the rollback, so its canary baseline is v1
    log(f"[{name}] starting {plan.resolvers} resolvers in {plan.processes} processes")
    fleet = Fleet(settings, plan, home / "cache-fleet", share)
    try:
        report.details["fleet"]["start"] = fleet.ready
        serving = fleet.serving()
        if serving != Counter({v1: plan.resolvers}):
            report.note(f"at start the fleet served {dict(serving)}, not v{v1} everywhere")
        if isinstance(backend, PostgresBackend):
            report.details["fleet"]["connections"] = backend.connections_to(url)
        time.sleep(1.0)  # let every follower settle into its polling
        report.details["fleet"]["idle_cpu_per_s"] = fleet.idle_cpu(3.0)
        switches: dict[str, Any] = {}
        steps = [
            ("promote", v2, v1, lambda: promote_action(store, v2)),
            ("rollback", v1, v2, lambda: rollback_action(store)),
            ("promote_again", v3, v1, lambda: promote_action(store, v3)),
            ("cli_rollback", v1, v3, lambda: cli_rollback_action(settings, url)),
        ]
        for key, version, before, action in steps:
            behind = fleet.settle(before)
            if behind:
                report.note(f"before {key}: {behind} resolvers never came to serve v{before}")
            if key == "promote_again" and register_and_stage(settings, store, trained[2]) != v3:
                raise RuntimeError(f"expected the third version to be v{v3}")
            time.sleep(0.5)
            log(f"[{name}] {key} -> v{version}")
            switches[key] = fleet.switch(version, action())
        fleet_rows = getattr(store, "fleet", None)
        if fleet_rows is not None:  # every resolver has beaten once (heartbeat_s=5)
            time.sleep(max(0.0, fleet.started + 6.0 - time.monotonic()))
            report.details["fleet"]["heartbeat_rows"] = len(fleet_rows(MODEL))
    finally:
        fleet.close()
    report.details["switches"] = switches
    idle = report.details["fleet"]["idle_cpu_per_s"]
    report.add(
        "fleet", f"CPU of the {plan.resolvers} idle followers (of {os.cpu_count()})", idle, "cores"
    )
    for s in switches.values():
        # Rough: the fleet's CPU in the watch window, less what idle polling takes in it.
        window_s = s["max_ms"] / 1000 if math.isfinite(s["max_ms"]) else plan.watch_timeout_s
        s["swap_cpu_ms_per_resolver"] = (s["fleet_cpu_s"] - idle * window_s) / plan.resolvers * 1000
    add_switch_rows(report, switches)
    if switches["cli_rollback"].get("cli_exit"):
        report.note(f"modelreg rollback failed: {switches['cli_rollback']['cli_output']}")


def add_hot_rows(report: Report, hot: dict[str, Any]) -> None:
    report.add("hot", "get p50 (mean per call of 900 timed batches of 1,000)", hot["p50_us"], "µs")
    report.add(
        "hot",
        f"get p99 (each of {hot['sampled_calls']:,} calls timed)",
        hot["p99_us"],
        "µs",
        Target("<=", 5),
    )
    report.add(
        "hot",
        f"registry statements from the caller's thread in {hot['calls']:,} calls",
        hot["statements_on_caller"],
        "",
        Target("==", 0),
    )
    background = sum(hot["statements_by_thread"].values()) - hot["statements_on_caller"]
    report.add("hot", "meanwhile, the follower thread's polls (not the hot path)", background, "")
    if not hot["hooks_checked_on"]:
        report.note("the statement hooks saw no follower poll before the run: count unverified")
    if hot["version_after"] != hot["version"]:
        report.note("the served version changed during the hot-path run")


def add_switch_rows(report: Report, switches: dict[str, Any]) -> None:
    titles = {
        "promote": "promote",
        "rollback": "rollback",
        "promote_again": "promote (2nd)",
        "cli_rollback": "modelreg rollback (CLI)",
    }
    for key, s in switches.items():
        title = f"{titles[key]} -> v{s['version']}"
        n = s["resolvers"]
        if key == "cli_rollback":
            target = Target("<", 2000)
            report.add("e2e", f"{title}: launch to all {n} serving", s["max_ms"], "ms", target)
            report.add("e2e", "of which the CLI process (start to exit)", s["cli_wall_ms"], "ms")
            continue
        report.add("prop", f"{title}: p50 over {n}", s["p50_ms"], "ms")
        report.add("prop", f"{title}: p99 over {n}", s["p99_ms"], "ms")
        report.add("prop", f"{title}: max (all {n} serving)", s["max_ms"], "ms", Target("<=", 1000))
        report.add("prop", f"{title}: max, stretch goal", s["max_ms"], "ms", Target("<=", 250))
        if s["missed"]:
            report.note(f"{title}: {s['missed']} resolvers did not switch within the timeout")
    for key, s in switches.items():
        if s["degraded_after"]:
            report.note(f"{titles[key]}: degraded afterwards: {s['degraded_after']}")


# ---------------------------------------------------------------- output


def machine_info() -> dict[str, Any]:
    """benchlib's, with the versions of the stack the resolver runs on."""
    import pydantic
    import sqlalchemy

    return {
        **benchlib.machine_info(),
        "sqlalchemy": sqlalchemy.__version__,
        "pydantic": pydantic.VERSION,
        "sqlite": sqlite3.sqlite_version,
    }


def print_table(report: Report) -> None:
    print(f"\n== {report.backend} ==")
    for row in report.rows:
        value = f"{fmt(row['value'])} {row['unit']}"
        target = row["target"] or ""
        print(f"{row['workload']:<6} {row['label']:<62} {value:>12}  {target:<8} {verdict(row)}")
    for text in report.notes:
        print(f"note: {text}")


def write_results(out: Path, reports: list[Report], machine: dict[str, Any], plan: Plan) -> None:
    data = {
        "plan": asdict(plan),
        "machine": {**machine, "loadavg_at_end": loadavg()},
        "backends": {
            r.backend: {"rows": r.rows, "notes": r.notes, "details": r.details} for r in reports
        },
    }
    (out / "resolver.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "resolver.md").write_text(markdown(data) + "\n")
    log(f"wrote {out / 'resolver.json'} and {out / 'resolver.md'}")


def markdown(data: dict[str, Any]) -> str:
    m, plan = data["machine"], data["plan"]
    mode = " (--quick: reduced workload, not the spec)" if plan["quick"] else ""
    lines = [
        f"# Resolver benchmark results{mode}",
        "",
        "Produced by `bench/resolver_bench.py`; see `bench/README.md` for what is measured.",
        "",
        f"{m['date']} · git {m['git_commit']} ({m['uncommitted_under_registry']} uncommitted "
        f"file(s) under registry/) · {m['nproc']} CPUs ({m['cpu']}) · Python {m['python']} · "
        f"SQLAlchemy {m['sqlalchemy']} · pydantic {m['pydantic']} · SQLite {m['sqlite']} · "
        f"load average (1/5/15 min) {m['loadavg_at_start']} at start, "
        f"{m['loadavg_at_end']} at end",
        "",
        f"Fleet: {plan['processes']} processes x {plan['per_process']} resolvers, "
        f"poll_s={plan['poll_s']:g}; hot path: {plan['hot_batches']} batches of "
        f"{plan['hot_batch_size']:,} calls, every {plan['hot_sample_every']}th timed call "
        "by call.",
        "",
    ]
    for backend, run in data["backends"].items():
        details = run["details"]
        lines += [
            f"## {backend}",
            "",
            f"{details.get('server', '')} · load average {details.get('loadavg_at_start')} "
            f"at start, {details.get('loadavg_at_end')} at end",
            "",
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
        lines += markdown_details(details)
        lines.append("")
    return "\n".join(lines)


def markdown_details(details: dict[str, Any]) -> list[str]:
    lines = []
    hot = details.get("hot_path")
    if hot:
        lines.append(
            f"- Hot path: {hot['calls']:,} calls in {hot['seconds']:.2f} s; per-call samples "
            f"p50 {hot['sampled_p50_us']:.3f} µs, p99.9 {hot['sampled_p999_us']:.3f} µs, max "
            f"{hot['sampled_max_us']:.1f} µs; each sample includes one perf_counter_ns pair "
            f"(median {hot['timer_overhead_us']:.3f} µs). Statements by thread during the "
            f"run: {hot['statements_by_thread']}; before it, the hooks were seen to catch the "
            f"follower's poll: {hot['hooks_checked_on']}."
        )
    fleet = details.get("fleet")
    if fleet and "start" in fleet:
        starts = ", ".join(f"{s['start_s']:.1f}" for s in fleet["start"])
        rss = ", ".join(f"{s['rss_mib']:.0f}" for s in fleet["start"])
        lines.append(
            f"- Fleet: start-up of each process's resolvers took {starts} s; RSS per process "
            f"{rss} MiB; shared store per process: {fleet['shared_store_per_process']}"
            + (
                f"; connections to the database: {fleet['connections']}"
                if "connections" in fleet
                else ""
            )
            + (
                f"; heartbeat rows at the end: {fleet['heartbeat_rows']}"
                if "heartbeat_rows" in fleet
                else ""
            )
            + "."
        )
    for key, s in details.get("switches", {}).items():
        per_process = ", ".join(fmt(x) for x in s["process_max_ms"])
        lines.append(
            f"- {key} -> v{s['version']}: {s['switched']}/{s['resolvers']} switched, min "
            f"{fmt(s['min_ms'])} ms; slowest per process {per_process} ms; CPU the fleet "
            f"processes used meanwhile {s['fleet_cpu_s']:.2f} s (less idle polling: "
            f"{s['swap_cpu_ms_per_resolver']:.1f} ms per resolver, a rough estimate)"
            + (f"; the store call took {s['call_ms']:.1f} ms" if "call_ms" in s else "")
            + (f"; CLI exit {s['cli_exit']}" if "cli_exit" in s else "")
            + "."
        )
    mem = details.get("memory")
    if mem:
        lines.append(
            f"- Memory (VmRSS, MiB): interpreter {mem['interpreter_mib']:.1f}, after importing "
            f"the resolver {mem['after_import_mib']:.1f}, after importing skops (sklearn, "
            f"scipy, numpy: what loading the model imports) {mem['after_skops_mib']:.1f}, "
            f"serving after start "
            f"{mem['after_start_mib']:.1f}, after {mem['idle_s']:g} s idle {mem['idle_mib']:.1f}."
        )
    return lines


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres")
    parser.add_argument("--quick", action="store_true", help="a small fleet, for a smoke run")
    parser.add_argument(
        "--poll-s", type=float, default=0.05, help="each fleet resolver's poll_s (default 0.05)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument(
        "--pg-admin-url",
        default=PG_ADMIN_URL,
        help="PostgreSQL URL used to create and drop the bench database",
    )
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], args.rss_child[1], float(args.rss_child[2]))
        return 0
    plan = Plan.make(args.quick, args.poll_s)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in backends:
        if name not in ("sqlite", "postgres"):
            raise SystemExit(f"unknown backend {name!r}: use sqlite or postgres")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    print(f"load average at start: {machine['loadavg_at_start']}", flush=True)
    reports = []
    with tempfile.TemporaryDirectory(prefix="modelreg-resolver-bench-") as tmp:
        workdir = Path(tmp)
        log("training 3 example-sized models")
        trained = train_versions(workdir / "models", 3)
        for name in backends:
            backend: Backend = (
                SqliteBackend(workdir) if name == "sqlite" else PostgresBackend(args.pg_admin_url)
            )
            report = bench_backend(backend, plan, workdir, trained)
            print_table(report)
            reports.append(report)
        shutil.rmtree(workdir, ignore_errors=True)
    write_results(args.out, reports, machine, plan)
    print(f"load average at end: {loadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
