"""The CLI at 100,000 versions (#13): every read command as a whole process.

    python bench/cli_bench.py [--versions 100000] [--runs 5] [--db PATH] [--out bench/results]

Setup (untimed, kept in ``--db`` so a second run reuses it): one SQLite registry with
100,000 versions of ``fraud-detector``, 60 stage changes of it (promotions and
rollbacks), 30 app releases bound to it, and 50 other models of 20 versions each.

Each command runs as its own process, interpreter start included, ``--runs`` times
after one warm-up run, two ways:

- **with the agent** (the default a user gets, judged against the targets): the bench
  starts the warm agent (``modelreg agent start``, in a folder of its own) and each
  ``modelreg`` process hands its command to a forked worker of it. The peak RSS is
  the larger of the process's and its worker's, and the CPU time is their sum (the
  agent reports its worker's through ``MODELREG_AGENT_REPORT``). A run the agent did
  not answer is a failure, not a figure.
- **cold** (``MODELREG_AGENT=off``, untargeted): the whole command in one process, as
  on the first command after a machine starts or with the agent turned off.

The report gives the p50 wall time, the CPU time and the peak RSS (``wait4``'s
``ru_maxrss``) of each, and for ``history --all --json`` the events streamed per
second. A command the CLI does not have yet is reported as missing, not skipped
silently. Targets (#13): p50 < 0.5 s, RSS < 120 MB, >= 50,000 events/s.

Two things keep the figures honest. The setup runs in a child process and this one
imports no registry code: Linux carries a process's peak RSS across ``exec``, so a
child spawned by a 70 MB parent reports at least 70 MB whatever it uses. And the
commands run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed, the cache
under ``--db``'s folder), as an installed package runs: without it every process
compiles the registry's sources again, which doubles its start-up. The user and
system CPU time of each child are reported beside the wall time, with the load
average, since a loaded machine stretches wall time but hardly CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import Report, Target, log, verdict

if TYPE_CHECKING:
    from registry.store.sql import SqlStore

MODEL = "fraud-detector"
OTHERS = 50
OTHER_VERSIONS = 20
RELEASES = 30
STAGE_CHANGES = 60
P50_S = Target("<", 0.5, " s")
RSS_MB = Target("<", 120, " MB")
STREAM = Target(">=", 50_000, " events/s")
# The figures #13 was filed with, for the report's "before" column.
BEFORE = {"history": {"p50_s": 33.0, "rss_mb": 634.0}}


def build(db: Path, versions: int) -> dict[str, Any]:
    """The registry the issue describes; returns what the commands need to name."""
    marker = db.with_suffix(".json")
    if db.exists() and marker.exists():
        facts: dict[str, Any] = json.loads(marker.read_text())
        if facts.get("versions") == versions:
            log(f"reusing {db}")
            return facts
        db.unlink()
    db.parent.mkdir(parents=True, exist_ok=True)
    from registry_bench import UNGATED, fill

    from registry.store.sql import SqlStore

    started = time.perf_counter()
    store = SqlStore(f"sqlite:///{db}", actor="bench")
    try:
        store.create_model(MODEL)
        store.set_policy(MODEL, UNGATED, reason="bench: no gates")
        for start in range(0, versions, 10_000):
            fill(store, MODEL, min(10_000, versions - start), start)
            log(f"  {start + 10_000:,} versions")
        promoted = _stage_changes(store, versions)
        at = datetime.now(UTC).isoformat()
        _releases(store, promoted[-1])
        for m in range(OTHERS):
            name = f"model-{m:02d}"
            store.create_model(name)
            fill(store, name, OTHER_VERSIONS)
        facts = {
            "versions": versions,
            "production": promoted[-1],
            "previous": promoted[-2],
            "at": at,
            "since_seq": max(0, store.latest_seq() - 200),
            "build_s": round(time.perf_counter() - started, 1),
        }
    finally:
        store.close()
    marker.write_text(json.dumps(facts))
    return facts


def _stage_changes(store: SqlStore, versions: int) -> list[int]:
    """Promotions spread over the versions and a rollback every fifth one."""
    from registry_bench import promote_to_production, record_release_facts

    step = max(1, versions // (STAGE_CHANGES + 1))
    promoted: list[int] = []
    changes = 0
    version = step
    while changes < STAGE_CHANGES and version <= versions:
        record_release_facts(store, MODEL, version, promoted[-1] if promoted else None)
        promote_to_production(store, MODEL, version)
        promoted.append(version)
        changes += 1
        if changes % 5 == 0 and len(promoted) > 1 and changes < STAGE_CHANGES:
            store.rollback(MODEL, reason="bench rollback")
            promoted.append(promoted[-2])
            changes += 1
        version += step
    return promoted


def _releases(store: SqlStore, version: int) -> None:
    """Releases of one app, each bound to the Production version (the schema it sends is
    the version's own signature, so every binding passes)."""
    signature = store.get_version(MODEL, version).signature
    assert signature is not None
    for r in range(RELEASES):
        release = f"1.{r}.0"
        store.create_app_release("checkout", release, signature)
        store.bind_app_release("checkout", release, MODEL, follow="production")


# Every event of the model, as JSON: --all adds registrations to the pointer history,
# --limit 0 lifts the default of the 50 latest (every event, oldest first, streamed).
HISTORY_ALL_JSON = ["history", MODEL, "--all", "--limit", "0", "--json"]


def commands(facts: dict[str, Any]) -> dict[str, list[str]]:
    prod, prev = facts["production"], facts["previous"]
    return {
        "models": ["models"],
        "versions": ["versions", MODEL],
        "show": ["show", MODEL, "production"],
        "history": ["history", MODEL],
        "history --at": ["history", MODEL, "--at", facts["at"]],
        "search": ["search", "metrics.auc > 0.999 and tags.team = 'team-3'"],
        "diff": ["diff", MODEL, str(prev), str(prod)],
        "lineage impact": ["lineage", "impact", "--dataset", "transactions@2026-11-05"],
        "events": ["events", "--since", str(facts["since_seq"]), "--limit", "100"],
        "rollback --dry-run": ["rollback", MODEL, "--dry-run"],
    }


def run(
    argv: list[str], env: dict[str, str], out: Any = subprocess.DEVNULL
) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s, peak RSS MB, exit code, last stderr line) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = err.decode(errors="replace").strip().splitlines()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, proc.returncode, lines[-1] if lines else ""


def measure(
    exe: str, args: list[str], env: dict[str, str], runs: int, via_agent: bool = False
) -> dict[str, Any]:
    """p50 wall and CPU time and peak RSS of ``runs`` runs after a warm-up run. With
    ``via_agent``, every timed run must have been answered by the agent's worker, whose
    peak RSS and CPU time count in."""
    report = Path(env["MODELREG_AGENT_DIR"]) / "report.jsonl"
    env = {**env, "MODELREG_AGENT_REPORT": str(report)}
    run([exe, *args], env)
    walls, cpus, rss = [], [], []
    for _ in range(runs):
        got = run_counted([exe, *args], env, report, via_agent)
        if isinstance(got, str):
            return {"failed": got}
        wall, cpu, mb = got
        walls.append(wall)
        cpus.append(cpu)
        rss.append(mb)
    return {
        "p50_s": statistics.median(walls),
        "cpu_p50_s": statistics.median(cpus),
        "rss_mb": max(rss),
        "runs": runs,
    }


def run_counted(
    argv: list[str], env: dict[str, str], report: Path, via_agent: bool, out: Any = None
) -> tuple[float, float, float] | str:
    """(wall s, CPU s, peak RSS MB) of one run, its worker's CPU and RSS counted in when
    ``via_agent``; or why the run does not count (it failed, or the agent did not
    answer it)."""
    report.unlink(missing_ok=True)
    wall, cpu, mb, code, last = run(argv, env, subprocess.DEVNULL if out is None else out)
    if code != 0:
        return f"exit {code}: {last}"[:200]
    worker = _worker_facts(report)
    if via_agent:
        if worker is None:
            return "the agent did not answer this command"
        cpu += worker["cpu_ms"] / 1000
        mb = max(mb, worker["rss_kb"] / 1024)
    return wall, cpu, mb


def _worker_facts(report: Path) -> dict[str, int] | None:
    try:
        lines = report.read_text().splitlines()
    except FileNotFoundError:
        return None
    facts: dict[str, int] = json.loads(lines[-1])
    return facts


def start_agent(exe: str, env: dict[str, str]) -> int:
    """The warm agent, up and answering: its pid."""
    done = subprocess.run(
        [exe, "agent", "start"], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split("pid ")[1].split(",")[0])


def stop_agent(exe: str, env: dict[str, str]) -> None:
    subprocess.run([exe, "agent", "stop"], env=env, capture_output=True, check=False)


def peak_rss_mb(pid: int) -> float | None:
    """A running process's peak RSS (``VmHWM``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def instructions(argv: list[str], env: dict[str, str]) -> float | None:
    """Millions of instructions the process executes (valgrind's cachegrind, no cache
    simulation): unlike wall or CPU time, the machine's load does not change it."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    done = subprocess.run(
        [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    for line in done.stderr.splitlines():
        if "I" in line and "refs:" in line:
            return int(line.split("refs:")[1].replace(",", "").strip()) / 1e6
    return None


def stream_rate(
    exe: str, env: dict[str, str], tmp: Path, runs: int, via_agent: bool
) -> dict[str, Any]:
    """``history --all --json``: events written per second (median of ``runs`` runs after
    a warm-up run), and the peak RSS (the worker's too, through the agent)."""
    out_path = tmp / "history.json"
    report = Path(env["MODELREG_AGENT_DIR"]) / "report.jsonl"
    env = {**env, "MODELREG_AGENT_REPORT": str(report)}
    walls, rss = [], []
    for attempt in range(runs + 1):
        with out_path.open("wb") as out:
            got = run_counted([exe, *HISTORY_ALL_JSON], env, report, via_agent, out)
        if isinstance(got, str):
            return {"failed": got}
        if attempt:
            walls.append(got[0])
            rss.append(got[2])
    events = _count_events(out_path)
    wall = statistics.median(walls)
    return {"events": events, "wall_s": wall, "events_per_s": events / wall, "rss_mb": max(rss)}


def _count_events(path: Path) -> int:
    text = path.read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return sum(1 for line in text.splitlines() if line.strip())
    if isinstance(doc, dict):
        doc = doc.get("events", [])
    return len(doc)


def setup(db: Path, versions: int) -> dict[str, Any]:
    """The registry and the machine's description, made in a child process (see the
    module docstring: this process must stay small for the RSS figures to mean
    anything)."""
    done = subprocess.run(
        [sys.executable, __file__, "--setup-only", "--db", str(db), "--versions", str(versions)],
        stdout=subprocess.PIPE,
        check=True,
    )
    facts: dict[str, Any] = json.loads(done.stdout)
    return facts


def command_env(db: Path, agent: bool) -> dict[str, str]:
    """The environment every timed command runs in: this registry, 120 columns, bytecode
    cached as an installed package's is (under the bench's own folder), and the agent on
    or off, in a folder of the bench's own."""
    folder = db.parent / "agent"
    folder.mkdir(mode=0o700, exist_ok=True)
    env = {
        **os.environ,
        "MODELREG_URL": f"sqlite:///{db}",
        "COLUMNS": "120",
        "PYTHONPYCACHEPREFIX": str(db.parent / "pycache"),
        "MODELREG_AGENT": "on" if agent else "off",
        "MODELREG_AGENT_DIR": str(folder),
    }
    for name in ("MODELREG_HOME", "MODELREG_READ_URL", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def time_commands(
    exe: str,
    envs: tuple[dict[str, str], dict[str, str]],
    facts: dict[str, Any],
    args: argparse.Namespace,
    report: Report,
    figures: dict[str, Any],
) -> dict[str, Any]:
    """Every read command with the agent (targeted) and cold; then the stream. Returns
    the stream's figures."""
    warm, cold = envs
    agent_pid = start_agent(exe, warm)
    try:
        for label, cmd in commands(facts).items():
            log(f"modelreg {' '.join(cmd)}")
            got = measure(exe, cmd, warm, args.runs, via_agent=True)
            got["cold"] = measure(exe, cmd, cold, args.runs)
            figures[label] = got
            if "failed" in got:
                report.note(f"{label}: {got['failed']}")
                report.add(label, "p50 wall", None, "s", P50_S)
                continue
            report.add(label, "p50 wall", got["p50_s"], "s", P50_S)
            report.add(label, "p50 CPU", got["cpu_p50_s"], "s")
            report.add(label, "peak RSS", got["rss_mb"], "MB", RSS_MB)
            report.add(label, "cold p50 wall", got["cold"].get("p50_s"), "s")
            report.add(label, "cold peak RSS", got["cold"].get("rss_mb"), "MB")
            if args.instructions:
                got["instructions_m"] = instructions([exe, *cmd], cold)
                report.add(label, "cold instructions", got["instructions_m"], "M")
        streamed = stream_rate(exe, warm, args.db.parent, args.runs, via_agent=True)
        streamed["cold"] = stream_rate(exe, cold, args.db.parent, args.runs, via_agent=False)
        figures["agent"] = {"pid": agent_pid, "peak_rss_mb": peak_rss_mb(agent_pid)}
    finally:
        stop_agent(exe, warm)
    return streamed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, default=Path("/tmp/modelreg-cli-bench/registry.db"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each command's instructions under valgrind (~30 s a command)",
    )
    args = parser.parse_args(argv)
    if args.setup_only:
        from registry_bench import machine_info

        facts = build(args.db, args.versions)
        print(json.dumps({**facts, "machine": machine_info()}))
        return 0
    facts = setup(args.db, args.versions)
    machine = facts.pop("machine")
    exe = shutil.which("modelreg", path=str(Path(sys.executable).parent)) or "modelreg"
    warm, cold = command_env(args.db, agent=True), command_env(args.db, agent=False)
    report = Report("sqlite")
    report.details["setup"] = facts
    figures: dict[str, Any] = {}
    load_before = os.getloadavg()
    # Start-up alone, untargeted: what every cold command pays before it reads anything.
    startup = {"python -c pass": [sys.executable, "-c", "pass"], "--help": [exe, "--help"]}
    for label, bare in startup.items():
        got = measure(bare[0], bare[1:], cold, args.runs)
        figures[label] = got
        report.add(label, "p50 wall", got.get("p50_s"), "s")
        report.add(label, "p50 CPU", got.get("cpu_p50_s"), "s")
        if args.instructions:
            got["instructions_m"] = instructions(bare, cold)
            report.add(label, "instructions", got["instructions_m"], "M")
    streamed = time_commands(exe, (warm, cold), facts, args, report, figures)
    figures["history --all --json"] = streamed
    name = "history --all --json"
    report.add(name, "events/s", streamed.get("events_per_s"), "/s", STREAM)
    report.add(name, "peak RSS", streamed.get("rss_mb"), "MB", RSS_MB)
    report.add(name, "cold events/s", streamed["cold"].get("events_per_s"), "/s")
    report.add("agent (idle, shared)", "peak RSS", figures["agent"]["peak_rss_mb"], "MB")
    report.details["figures"] = figures
    report.details["load_average"] = {"before": load_before, "after": os.getloadavg()}
    report.details["before"] = BEFORE
    write(args.out, report, machine)
    for row in report.rows:
        print(
            f"{row['workload']:24} {row['label']:10} {_fmt(row['value']):>10} {row['unit']:6} "
            f"{row['target'] or '':14} {verdict(row)}"
        )
    return 0


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:,.3f}" if value < 100 else f"{value:,.0f}"


def _load(triple: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.1f}" for x in triple)


def write(out: Path, report: Report, machine: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": "cli_bench",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "rows": report.rows,
        "details": report.details,
        "notes": report.notes,
    }
    (out / "cli_bench.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    lines = [
        "# CLI bench (#13): whole processes at 100,000 versions",
        "",
        "Targets are judged with the warm agent up (each `modelreg` process hands its "
        "command to a forked worker; RSS is the larger of the two, CPU their sum). "
        "The `cold` rows are the same commands with `MODELREG_AGENT=off`: one process "
        "does everything, imports included.",
        "",
        f"Run {doc['at']}; {report.details['setup']['versions']:,} versions of {MODEL}; "
        f"{machine.get('nproc')} cores; load average (1, 5, 15 min) "
        f"{_load(report.details['load_average']['before'])} before, "
        f"{_load(report.details['load_average']['after'])} after.",
        "",
        "| command | figure | value | target | verdict | before (#13 filed) |",
        "|---|---|---:|---|---|---|",
    ]
    for row in report.rows:
        before = BEFORE.get(row["workload"], {})
        was = before.get({"p50 wall": "p50_s", "peak RSS": "rss_mb"}.get(row["label"], ""))
        lines.append(
            f"| {row['workload']} | {row['label']} | {_fmt(row['value'])} {row['unit']} | "
            f"{row['target'] or ''} | {verdict(row)} | {'' if was is None else was} |"
        )
    lines += ["", *[f"- {n}" for n in report.notes]]
    (out / "cli_bench.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
