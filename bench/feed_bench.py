"""Feed benchmark: how fast one registry server fans a promotion out to 200 SSE subscribers.

Issue 10's figure: "Feed fan-out: 200 SSE subscribers get a promotion within 1 s".
On SQLite and on PostgreSQL, each against a fresh registry this script creates and
removes:

    fan-out  a ``modelreg server`` process (1 worker); 200 subscribers on
             ``GET /api/v1/events/stream``, in 2 client processes of 100 asyncio
             streams each; N promotions, one at a time, each committed by a
             release process straight in the database (as a second server worker
             or the CLI would); from the commit until each subscriber has parsed
             the promotion's event: p50, p99 and max per promotion and over all of
             them                           target: max over all <= 1 s (PASS/FAIL)
    cost     the server's CPU time and RSS meanwhile (it follows the log once per
             process, whatever the number of subscribers)

The promotions are ungated (the model's policy is ``required: []``): the figure is
the feed's, not the gates' (bench/registry_bench.py times those). The commit
timestamp is taken in the promoting process right after ``transition`` returns, with
``time.monotonic_ns`` (one clock for every process of the machine); a subscriber
stamps the event once its blank line ends the frame.

Usage::

    python bench/feed_bench.py [--backends sqlite,postgres] [--subscribers 200]
                               [--promotions 20] [--quick] [--out bench/results]

Prints a table and writes ``feed.json`` and ``feed.md`` into ``bench/results/`` (or
``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib import Report, Target, fmt, loadavg, log, machine_info, percentile, verdict

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MODEL = "bench/feed"
FAN_OUT = Target("<=", 1000, " ms")
READY_TIMEOUT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    quick: bool = False
    subscribers: int = 200
    processes: int = 2
    promotions: int = 20
    gap_s: float = 0.5  # between two promotions: each is measured on its own
    deliver_timeout_s: float = 15.0

    @classmethod
    def make(cls, quick: bool, subscribers: int, promotions: int) -> Plan:
        if quick:
            return cls(quick=True, subscribers=min(subscribers, 40), promotions=min(promotions, 5))
        return cls(subscribers=subscribers, promotions=promotions)


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``modelreg server`` as a child process, ready once ``/api/v1/health`` answers."""

    def __init__(self, registry_url: str, log_path: Path) -> None:
        self.registry_url = registry_url
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        import httpx

        command = [
            sys.executable,
            "-m",
            "registry.cli.main",
            "server",
            "--registry",
            self.registry_url,
            "--port",
            str(self.port),
            "--no-webhooks",
        ]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"server not ready: {self.log_path.read_text()}")

    def cpu_s(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return math.nan

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------- backends


@contextlib.contextmanager
def sqlite_database(root: Path) -> Iterator[str]:
    yield f"sqlite:///{root}/feed.db"


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"modelreg_bench_{os.getpid()}_feed_{uuid.uuid4().hex[:6]}"
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


# ---------------------------------------------------------------- subscribers


def subscribe(
    url: str, token: str, count: int, ready: Any, results: Any, stop: Any, timeout_s: float
) -> None:
    """One client process: ``count`` event streams in one asyncio loop; puts ``count``
    on ``ready`` once every stream is open, then, after ``stop``, a list (one per
    stream) of {seq: monotonic_ns it was received} for the promotions it saw."""
    results.put(asyncio.run(_subscribe(url, token, count, ready, stop, timeout_s)))


async def _subscribe(
    url: str, token: str, count: int, ready: Any, stop: Any, timeout_s: float
) -> list[dict[int, int]]:
    import httpx

    opened = 0
    all_open = asyncio.Event()
    seen: list[dict[int, int]] = [{} for _ in range(count)]

    async def follow(client: httpx.AsyncClient, index: int) -> None:
        nonlocal opened
        async with client.stream("GET", "/events/stream") as response:
            if response.status_code != 200:
                raise RuntimeError(f"stream refused: HTTP {response.status_code}")
            seq, promotion, first = None, False, True
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    if first:
                        first = False
                        opened += 1
                        if opened == count:
                            all_open.set()
                elif line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("data: "):
                    promotion = '"to_value":"Production"' in line
                elif not line:
                    if promotion and seq is not None:
                        seen[index][seq] = time.monotonic_ns()
                    seq, promotion = None, False

    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=count + 1, max_keepalive_connections=count + 1)
    timeout = httpx.Timeout(None, connect=timeout_s)
    async with httpx.AsyncClient(
        base_url=f"{url}/api/v1", headers=headers, limits=limits, timeout=timeout
    ) as client:
        tasks = [asyncio.create_task(follow(client, i)) for i in range(count)]
        await asyncio.wait_for(all_open.wait(), timeout_s)
        ready.put(count)
        while not stop.is_set():
            await asyncio.sleep(0.05)
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise RuntimeError(f"a stream failed: {failed[0].exception()}")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return seen


# ---------------------------------------------------------------- the run


def prepare(url: str, versions: int) -> tuple[str, str]:
    """A migrated registry with ``versions`` staged versions of MODEL, v1 in Production,
    an ungated policy, and two tokens: (admin secret, reader secret)."""
    from registry.auth import Role
    from registry.models import ArtifactRef, Stage
    from registry.release.policy import ReleasePolicy
    from registry.store.sql import SqlStore

    with SqlStore(url, actor="bench") as store:
        _made, admin = store.create_token("bench-admin", Role.ADMIN)
        _made, reader = store.create_token("bench-subscriber", Role.READER)
        store.set_policy(MODEL, ReleasePolicy(required=()), reason="the feed is measured")
        for n in range(1, versions + 1):
            digest = f"{n:064x}"
            artifact = ArtifactRef(uri=f"file:///b/{digest}", sha256=digest, size=1, format="skops")
            store.register(MODEL, artifact, {})
            store.transition(MODEL, n, Stage.STAGING)
        store.transition(MODEL, 1, Stage.PRODUCTION)
    return admin, reader


def bench_backend(backend: str, url: str, plan: Plan, workdir: Path) -> Report:
    from registry.models import Stage
    from registry.store.sql import SqlStore

    report = Report(backend)
    report.details["loadavg_at_start"] = loadavg()
    _admin, reader = prepare(url, plan.promotions + 1)
    server = Server(url, workdir / f"server-{backend}.log").start()
    ctx = mp.get_context("spawn")
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    per_process = [
        plan.subscribers // plan.processes + (1 if i < plan.subscribers % plan.processes else 0)
        for i in range(plan.processes)
    ]
    clients = [
        ctx.Process(
            target=subscribe,
            args=(server.url, reader, n, ready, results, stop, READY_TIMEOUT_S),
            daemon=True,
        )
        for n in per_process
    ]
    committed: dict[int, int] = {}  # seq -> monotonic_ns right after its commit returned
    calls_ms: list[float] = []
    try:
        started = time.monotonic()
        for client in clients:
            client.start()
        for _ in clients:
            ready.get(timeout=READY_TIMEOUT_S * 2)
        report.details["subscribe_s"] = time.monotonic() - started
        rss_before = server.rss_mib()
        cpu_before = server.cpu_s()
        with SqlStore(url, actor="release-bot", migrate=False) as store:
            for version in range(2, plan.promotions + 2):
                time.sleep(plan.gap_s)
                t0 = time.monotonic_ns()
                change = store.transition(MODEL, version, Stage.PRODUCTION)
                done = time.monotonic_ns()
                calls_ms.append((done - t0) / 1e6)
                [promotion] = [e for e in change.events if e.to_value == "Production"]
                committed[promotion.seq] = done
        time.sleep(min(plan.deliver_timeout_s, 2.0))
        cpu_s = server.cpu_s() - cpu_before
        rss_after = server.rss_mib()
        stop.set()
        seen: list[dict[int, int]] = []
        for _ in clients:
            seen += results.get(timeout=60)
        for client in clients:
            client.join(timeout=30)
    finally:
        stop.set()
        for client in clients:
            if client.is_alive():
                client.kill()
        server.stop()
    summarise(report, plan, committed, seen, calls_ms)
    report.details.update(
        server_cpu_s=cpu_s,
        server_rss_mib=[rss_before, rss_after],
        loadavg_at_end=loadavg(),
    )
    report.add("cost", "server CPU during the promotions (incl. idle polls)", cpu_s, "s")
    report.add("cost", "server RSS with every subscriber connected", rss_after, "MiB")
    return report


def summarise(
    report: Report,
    plan: Plan,
    committed: dict[int, int],
    seen: list[dict[int, int]],
    calls_ms: list[float],
) -> None:
    everything: list[float] = []
    per_promotion = []
    missing = 0
    for seq, at in committed.items():
        latencies = sorted((s[seq] - at) / 1e6 for s in seen if seq in s)
        missing += len(seen) - len(latencies)
        everything += latencies
        per_promotion.append(
            {
                "seq": seq,
                "received": len(latencies),
                "p50_ms": percentile(latencies, 0.5),
                "p99_ms": percentile(latencies, 0.99),
                "max_ms": latencies[-1] if latencies else math.nan,
                "min_ms": latencies[0] if latencies else math.nan,
            }
        )
    everything.sort()
    n = len(seen)
    label = f"{n} subscribers x {len(committed)} promotions"
    report.add("fan-out", f"commit -> received: p50 ({label})", percentile(everything, 0.5), "ms")
    report.add("fan-out", "commit -> received: p99", percentile(everything, 0.99), "ms")
    worst = everything[-1] if everything and not missing else math.inf
    report.add(
        "fan-out",
        "commit -> received: max (every subscriber, every promotion)",
        worst,
        "ms",
        FAN_OUT,
    )
    report.add(
        "fan-out",
        "median over promotions of the slowest subscriber",
        percentile(sorted(p["max_ms"] for p in per_promotion), 0.5),
        "ms",
    )
    report.add("fan-out", "events missed", missing, "")
    report.details["per_promotion"] = per_promotion
    report.details["promote_call_ms_p50"] = percentile(sorted(calls_ms), 0.5)
    if everything:
        report.note(
            f"{n} subscribers in {plan.processes} processes; {len(committed)} promotions "
            f"{plan.gap_s:g} s apart; min {everything[0]:.1f} ms; the transition call took "
            f"p50 {report.details['promote_call_ms_p50']:.1f} ms"
        )


# ---------------------------------------------------------------- output


def print_table(report: Report) -> None:
    print(f"\n== {report.backend} ==")
    for row in report.rows:
        value = f"{fmt(row['value'])} {row['unit']}"
        print(
            f"{row['workload']:<8} {row['label']:<66} {value:>10}  "
            f"{row['target'] or '':<10} {verdict(row)}"
        )
    for text in report.notes:
        print(f"note: {text}")


def markdown(data: dict[str, Any]) -> str:
    m, plan = data["machine"], data["plan"]
    mode = " (--quick: reduced workload, not the spec)" if plan["quick"] else ""
    lines = [
        f"# Feed benchmark results{mode}",
        "",
        "Produced by `bench/feed_bench.py` (see its docstring for what is measured).",
        "",
        f"{m['date']} · git {m['git_commit']} ({m['uncommitted_under_registry']} uncommitted "
        f"file(s) under registry/) · {m['nproc']} CPUs ({m['cpu']}) · Python {m['python']} · "
        f"load average (1/5/15 min) {m['loadavg_at_start']} at start, "
        f"{m['loadavg_at_end']} at end",
        "",
        f"{plan['subscribers']} SSE subscribers in {plan['processes']} client processes, one "
        f"server process (1 worker); {plan['promotions']} promotions {plan['gap_s']:g} s "
        "apart, committed straight in the database by a release process.",
        "",
    ]
    for backend, run in data["backends"].items():
        details = run["details"]
        lines += [f"## {backend}", ""]
        if "skipped" in details:
            lines += [f"SKIPPED: {details['skipped']}", ""]
            continue
        lines += [
            f"load average {details.get('loadavg_at_start')} at start, "
            f"{details.get('loadavg_at_end')} at end; subscribing took "
            f"{details.get('subscribe_s', math.nan):.1f} s",
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
        slowest = ", ".join(fmt(p["max_ms"]) for p in details.get("per_promotion", []))
        if slowest:
            lines.append(f"- Slowest subscriber per promotion, in order (ms): {slowest}.")
        lines.append("")
    return "\n".join(lines)


def write_results(out: Path, reports: list[Report], machine: dict[str, Any], plan: Plan) -> None:
    data = {
        "plan": asdict(plan),
        "machine": {**machine, "loadavg_at_end": loadavg()},
        "backends": {
            r.backend: {"rows": r.rows, "notes": r.notes, "details": r.details} for r in reports
        },
    }
    (out / "feed.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "feed.md").write_text(markdown(data) + "\n")
    log(f"wrote {out / 'feed.json'} and {out / 'feed.md'}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--promotions", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="40 subscribers, 5 promotions")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.make(args.quick, args.subscribers, args.promotions)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in backends:
        if name not in ("sqlite", "postgres"):
            raise SystemExit(f"unknown backend {name!r}: use sqlite or postgres")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    print(f"load average at start: {machine['loadavg_at_start']}", flush=True)
    reports = []
    with tempfile.TemporaryDirectory(prefix="modelreg-feed-bench-") as tmp:
        for name in backends:
            log(f"[{name}] {plan.subscribers} subscribers, {plan.promotions} promotions")
            if name == "postgres" and (why := postgres_unavailable(args.pg_admin_url)):
                report = Report(name)
                report.details["skipped"] = why
            else:
                database = (
                    sqlite_database(Path(tmp))
                    if name == "sqlite"
                    else postgres_database(args.pg_admin_url)
                )
                with database as url:
                    report = bench_backend(name, url, plan, Path(tmp))
            print_table(report)
            reports.append(report)
    write_results(args.out, reports, machine, plan)
    print(f"load average at end: {loadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
