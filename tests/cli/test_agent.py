"""The warm agent (``registry/cli/agent.py``): read commands of the installed ``modelreg``
script answered by a forked worker of a pre-started agent process.

Real processes throughout: the script, the agent it talks to, SQLite registries. What
they must keep:

- a routed read prints the same stdout and stderr and exits with the same code as
  in-process, errors included; writes never go through the agent;
- each command runs in its own environment and working directory;
- with no agent to answer (none yet, one killed, a folder that is not private) the
  command answers in-process, and an agent comes up for the next one (never in a
  folder that is not private);
- a reader that goes away, and Ctrl-C, end a routed command as they end it in-process;
- the agent's life: it exits when idle, ``agent stop`` stops it, ``agent status``;
- ``routed`` (which argument lists go to the agent) and ``code_stamp``.

Whether the agent ran a command is read from ``MODELREG_AGENT_REPORT``: the caller
appends one JSON line per command an agent ran. The suite turns the agent off
(tests/conftest.py), so every process here turns it on in its own environment, with a
private agent folder under ``tmp_path``. Every agent of those folders is stopped by
the fixtures (those a command started in the background too): none outlives the module.

"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cli_harness import MODEL, Harness, first_line_then_hang_up

from registry.cli import agent
from registry.models import Stage
from registry.store.sql import SqlStore

MODELREG = Path(sys.executable).parent / "modelreg"
OTHER_MODEL = "churn-scorer"
DEADLINE_S = 20.0


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str
    reports: list[dict[str, Any]]  # one per command an agent ran


class Started(NamedTuple):
    pid: int
    socket: Path


# ---------------------------------------------------------------- processes


def _eventually(check: Callable[[], bool], timeout: float = DEADLINE_S) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds have passed."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name: state, ppid, …"""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _asleep(pid: int) -> bool:
    """Blocked in the kernel (waiting on a socket, a pipe, select): not runnable."""
    fields = _stat(pid)
    return fields is not None and fields[0] == "S"


def _alive(pid: int) -> bool:
    """Running. An agent is not our child: once dead it may stay a zombie a while."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (zombies too: the agent must reap them)."""
    return [child for child in _pids() if (fields := _stat(child)) and fields[1] == str(pid)]


def _agents_of(folder: Path) -> list[int]:
    """Agent processes serving ``folder``: ``python -m registry.cli.agent FOLDER STAMP``."""
    found = []
    for pid in _pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "registry.cli.agent" in argv and str(folder) in argv and _alive(pid):
            found.append(pid)
    return found


def _reap(pids: list[int]) -> None:
    """Wait for agents sent SIGTERM to exit; SIGKILL any that would not."""
    if not _eventually(lambda: not any(_alive(pid) for pid in pids), 10):
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _queued(fd: int) -> int:
    """Bytes waiting in the pipe read at ``fd``."""
    (queued,) = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0)))
    return int(queued)


def _pipe_full(fd: int) -> bool:
    """The pipe read at ``fd`` holds all it can (within a page): its writer blocks."""
    return _queued(fd) >= fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) - 4096


def _sigint_default() -> None:
    """In the child before exec: SIGINT raises KeyboardInterrupt, as under a terminal,
    even where this test runs with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _reports(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _names(run: Run) -> list[str]:
    assert run.code == 0, run.stderr
    return [model["name"] for model in json.loads(run.stdout)]


class Agents:
    """A private agent folder, and ``modelreg`` run in it with the agent on."""

    def __init__(self, root: Path, mode: int = 0o700) -> None:
        self.folder = root / "agent"
        self.folder.mkdir()
        self.folder.chmod(mode)
        self.home = root / "home"  # the default working directory of every command
        self.home.mkdir()
        self.report_dir = root / "reports"
        self.report_dir.mkdir()

    def env(
        self, url: str | None = None, *, on: bool = True, extra: Mapping[str, str] = {}
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
        env.update(
            MODELREG_AGENT="on" if on else "off",
            MODELREG_AGENT_DIR=str(self.folder),
            MODELREG_HOME=str(self.home / ".modelreg"),
            MODELREG_USER="oncall@test",
        )
        if url is not None:
            env["MODELREG_URL"] = url
        env.update(extra)
        return env

    def report_file(self) -> Path:
        return self.report_dir / f"{uuid.uuid4().hex}.jsonl"

    def run(
        self,
        *args: str,
        url: str | None = None,
        on: bool = True,
        cwd: Path | None = None,
        extra: Mapping[str, str] = {},
    ) -> Run:
        """``modelreg ARGS`` in a process of its own; ``on=False``: MODELREG_AGENT=off."""
        report = self.report_file()
        done = subprocess.run(
            [str(MODELREG), *args],
            env=self.env(url, on=on, extra={**extra, "MODELREG_AGENT_REPORT": str(report)}),
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr, _reports(report))

    def start(self, extra: Mapping[str, str] = {}) -> Started:
        """``modelreg agent start``: it returns once the agent answers."""
        done = self.run("agent", "start", extra=extra)
        assert done.code == 0, done.stderr
        pid, _, sock = done.stdout.strip().removeprefix("agent up: pid ").partition(", ")
        assert Path(sock).parent == self.folder, done.stdout
        return Started(int(pid), Path(sock))

    def status(self) -> list[dict[str, Any]]:
        """``modelreg agent status --json``: the agents that hold their lock."""
        done = self.run("agent", "status", "--json")
        assert done.code == 0, done.stderr
        agents: list[dict[str, Any]] = json.loads(done.stdout)["agents"]
        return agents

    def wait_for_agent(self, *, not_pid: int = 0) -> int:
        """Poll the folder until an agent other than ``not_pid`` wrote its pid file (it does
        once its socket accepts), then check that ``agent status`` lists it as running
        the current code. Its pid."""
        found: list[int] = []

        def up() -> bool:
            for pid_file in self.folder.glob("*.pid"):
                with contextlib.suppress(OSError, ValueError, KeyError):
                    info = json.loads(pid_file.read_text())
                    pid = int(info["pid"])
                    if pid != not_pid and _alive(pid) and Path(info["socket"]).exists():
                        found.append(pid)
                        return True
            return False

        assert _eventually(up), f"no agent came up in {self.folder}"
        assert [a["pid"] for a in self.status() if a["current"]] == found
        return found[0]

    def stop_all(self) -> list[int]:
        """Ask every agent of this folder to stop, those still starting too; their pids."""
        pids = _agents_of(self.folder)
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        return pids


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    """Three versions of MODEL; 1 then 2 promoted to Production: v1 is the rollback
    target. Read-only for the tests that share it."""
    reg = Harness(
        f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.db'}",
        tmp_path_factory.mktemp("registry-files"),
    )
    for _ in range(3):
        reg.register()
    reg.promote(1)
    reg.promote(2)
    return reg


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Harness, int]:
    """A registry whose ``history --all --limit 0`` prints far more than a pipe holds
    (2,000 alias moves: 20 aliases moved at once, 100 times), and that table's size."""
    reg = Harness(
        f"sqlite:///{tmp_path_factory.mktemp('long') / 'registry.db'}",
        tmp_path_factory.mktemp("long-files"),
    )
    reg.register()
    reg.register()
    aliases = [f"shadow-{i}" for i in range(20)]
    with reg.store() as store:
        for turn in range(100):
            moves = {alias: 1 + (turn + i) % 2 for i, alias in enumerate(aliases)}
            store.set_aliases(MODEL, moves, reason="setup")
    size = len(reg.run("history", MODEL, "--all", "--limit", "0").stdout)
    assert size > 2 * 65536 + 8192  # more than a pipe and a reader's buffer: or no test
    return reg, size


@pytest.fixture(scope="module")
def stopping() -> Iterator[list[int]]:
    """Agents asked to stop: each exits within about a second, in parallel with the
    next tests; at the module's end every one must be gone (else it is killed)."""
    pids: list[int] = []
    yield pids
    _reap(pids)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agents, int]]:
    """One agent, up, for the tests that do not need one of their own; its pid."""
    agents = Agents(tmp_path_factory.mktemp("shared"))
    started = agents.start()
    yield agents, started.pid
    _reap(agents.stop_all())


@pytest.fixture
def fresh(tmp_path: Path, stopping: list[int]) -> Iterator[Agents]:
    """A private agent folder with no agent in it yet."""
    agents = Agents(tmp_path)
    yield agents
    stopping.extend(agents.stop_all())


# ---------------------------------------------------------------- the same answers


READS = [
    ["models"],
    ["models", "--json"],
    ["versions", MODEL],
    ["show", MODEL, "production"],
    ["history", MODEL],
    ["history", MODEL, "--all", "--json"],
    ["search", "metrics.auc > 0.85 and tags.team = 'payments'"],
    ["diff", MODEL, "1", "2"],
    ["lineage", "impact", "--dataset", "transactions@2026-11-01"],
    ["events", "--limit", "5"],
    ["rollback", MODEL, "--dry-run"],
    ["show", "nope", "1"],  # not found
    ["history", MODEL, "--no-such-option"],  # a usage error
]


@pytest.fixture(scope="module")
def answers(shared: tuple[Agents, int], registry: Harness) -> dict[str, tuple[Run, Run]]:
    """Every command of READS run through the agent and with MODELREG_AGENT=off, three
    processes at a time (so the agent also runs several workers at once)."""
    agents, _ = shared

    def both_ways(args: list[str]) -> tuple[Run, Run]:
        return agents.run(*args, url=registry.url), agents.run(*args, url=registry.url, on=False)

    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = pool.map(both_ways, READS)
        return {" ".join(args): pair for args, pair in zip(READS, runs, strict=True)}


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_read_answers_the_same_through_the_agent_and_in_process(
    answers: dict[str, tuple[Run, Run]], args: list[str]
) -> None:
    through, here = answers[" ".join(args)]

    assert (through.code, through.stdout, through.stderr) == (here.code, here.stdout, here.stderr)
    assert here.stdout or here.stderr  # something was answered
    (report,) = through.reports  # the agent ran it ...
    assert report["code"] == through.code
    assert here.reports == []  # ... and with MODELREG_AGENT=off nothing did


def test_the_error_cases_do_fail(answers: dict[str, tuple[Run, Run]]) -> None:
    """The two error cases above compare failures, not two empty successes."""
    _, missing = answers["show nope 1"]
    _, usage = answers[f"history {MODEL} --no-such-option"]

    assert missing.code != 0
    assert missing.stderr.startswith("error: ") and "nope" in missing.stderr
    assert usage.code == 2
    assert "--no-such-option" in usage.stderr


def test_writes_run_in_process_and_take_effect(
    shared: tuple[Agents, int], registry: Harness, tmp_path: Path
) -> None:
    agents, _ = shared
    url = f"sqlite:///{tmp_path / 'writes.db'}"
    with (
        contextlib.closing(sqlite3.connect(registry.url.removeprefix("sqlite:///"))) as source,
        contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as copy,
    ):
        source.backup(copy)  # the shared registry, to change: v2 serves, v1 before it

    promoted = agents.run("promote", MODEL, "3", "--stage", "Staging", url=url)
    rolled_back = agents.run("rollback", MODEL, "--reason", "v2 is bad", url=url)
    read = agents.run("show", MODEL, "production", "--json", url=url)

    assert promoted.code == 0, promoted.stderr
    assert rolled_back.code == 0, rolled_back.stderr
    assert promoted.reports == rolled_back.reports == []  # no agent ran either
    assert len(read.reports) == 1  # while one was up and answered reads
    assert json.loads(read.stdout)["version"] == 1
    with SqlStore(url, actor="test") as store:
        assert store.get_model(MODEL).production == 1
        assert store.get_version(MODEL, 3).stage is Stage.STAGING


# ---------------------------------------------------------------- each command's own world


def test_each_command_reads_the_registry_of_its_own_environment(
    shared: tuple[Agents, int], registry: Harness, tmp_path: Path
) -> None:
    agents, _ = shared
    other = Harness(f"sqlite:///{tmp_path / 'other.db'}", tmp_path)
    other.register(name=OTHER_MODEL)

    first = agents.run("models", "--json", url=registry.url)
    second = agents.run("models", "--json", url=other.url)
    again = agents.run("models", "--json", url=registry.url)

    assert (_names(first), _names(second), _names(again)) == ([MODEL], [OTHER_MODEL], [MODEL])
    assert [len(run.reports) for run in (first, second, again)] == [1, 1, 1]


def test_a_relative_registry_url_is_resolved_against_the_callers_cwd(
    shared: tuple[Agents, int], tmp_path: Path
) -> None:
    agents, _ = shared
    project = tmp_path / "project"
    project.mkdir()
    Harness(f"sqlite:///{project / 'rel.db'}", tmp_path).register(name=OTHER_MODEL)

    run = agents.run("models", "--json", url="sqlite:///rel.db", cwd=project)

    assert _names(run) == [OTHER_MODEL]
    assert len(run.reports) == 1
    assert not (agents.home / "rel.db").exists()  # not the agent's cwd


# ---------------------------------------------------------------- no agent to answer


def test_the_first_read_runs_in_process_and_starts_an_agent(
    fresh: Agents, registry: Harness
) -> None:
    first = fresh.run("models", "--json", url=registry.url)

    assert _names(first) == [MODEL]
    assert first.reports == []
    fresh.wait_for_agent()
    second = fresh.run("models", "--json", url=registry.url)
    assert (second.code, second.stdout, second.stderr) == (0, first.stdout, first.stderr)
    assert len(second.reports) == 1


def test_a_killed_agent_is_replaced_and_its_command_runs_in_process(
    fresh: Agents, registry: Harness
) -> None:
    killed = fresh.start()
    os.kill(killed.pid, signal.SIGKILL)
    assert _eventually(lambda: not _alive(killed.pid))
    assert killed.socket.exists()  # left behind: nothing listens on it

    here = fresh.run("versions", MODEL, url=registry.url)
    assert here.code == 0, here.stderr
    assert here.reports == []
    assert here.stdout.splitlines()[2].split()[:2] == ["3", "None"]

    fresh.wait_for_agent(not_pid=killed.pid)
    through = fresh.run("versions", MODEL, url=registry.url)
    assert (through.code, through.stdout, through.stderr) == (0, here.stdout, here.stderr)
    assert len(through.reports) == 1


def test_the_agent_imports_nothing_from_the_folder_of_the_command_that_started_it(
    fresh: Agents, registry: Harness, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    imported = tmp_path / "imported"
    (project / "rich.py").write_text(
        f"open({str(imported)!r}, 'a').close()\nraise ImportError('not rich')\n"
    )

    first = fresh.run("models", url=registry.url, cwd=project)

    assert first.code == 0, first.stderr  # in-process the folder is not on sys.path
    assert _eventually(lambda: imported.exists() or any(fresh.folder.glob("*.pid")))
    assert not imported.exists(), "the agent imported rich.py from the caller's folder"


def test_a_folder_that_is_not_private_gets_no_agent(
    tmp_path: Path, registry: Harness, stopping: list[int]
) -> None:
    public = Agents(tmp_path, mode=0o755)
    try:
        run = public.run("models", "--json", url=registry.url)
        start = public.run("agent", "start", "--wait", "5")

        assert _names(run) == [MODEL]
        assert run.reports == []
        assert list(public.folder.iterdir()) == []  # no socket, lock or pid file
        assert _agents_of(public.folder) == []
        assert start.code != 0
        assert start.stdout == ""
        (line,) = start.stderr.splitlines()
        assert line.startswith("error: ") and "private" in line
    finally:
        stopping.extend(public.stop_all())


# ---------------------------------------------------------------- a reader that goes away, Ctrl-C


def test_a_closed_pipe_ends_a_routed_command_quietly(
    shared: tuple[Agents, int], long_log: tuple[Harness, int]
) -> None:
    agents, _ = shared
    reg, _ = long_log
    report = agents.report_file()
    first, code, stderr = first_line_then_hang_up(
        [str(MODELREG), "history", MODEL, "--all", "--limit", "0"],
        agents.env(reg.url, extra={"MODELREG_AGENT_REPORT": str(report)}),
        cwd=agents.home,
    )

    assert first.split()[:2] == [b"seq", b"at"]
    assert (code, stderr) == (0, "")
    assert [r["code"] for r in _reports(report)] == [0]


def _interrupted(agents: Agents, url: str, agent_pid: int) -> tuple[int, str, int, list[int]]:
    """Start a long read whose output nobody reads; once it blocks on the full pipe, send
    SIGINT to the ``modelreg`` process; once it has said so on stderr, drain its stdout.
    Its exit code, stderr, how much it printed, and the children of ``agent_pid`` while
    it ran (0: in-process).

    Through the agent, the caller can forward a signal only once it has read the
    worker's pid (the agent sends it after the fork): the signal goes once the agent and
    the caller both sleep, which they do only after that line was sent and read. And the
    forwarded signal lands a moment after a direct one: stdout is drained only once the
    command reacted, or it could finish printing first."""
    report = agents.report_file()
    with subprocess.Popen(
        [str(MODELREG), "history", MODEL, "--all", "--limit", "0", "--json"],
        env=agents.env(url, on=bool(agent_pid), extra={"MODELREG_AGENT_REPORT": str(report)}),
        cwd=agents.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_sigint_default,  # noqa: PLW1509 - one signal call, no lock taken
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = proc.stdout.fileno(), proc.stderr.fileno()
        client = proc.pid

        def blocked() -> bool:
            if not _pipe_full(stdout):
                return False
            return not agent_pid or (_asleep(agent_pid) and _asleep(client))

        assert _eventually(blocked), "the command never filled its pipe"
        workers = _children(agent_pid) if agent_pid else []
        proc.send_signal(signal.SIGINT)
        assert _eventually(lambda: _queued(stderr) > 0), "SIGINT did not end the command"
        out, err = proc.communicate(timeout=DEADLINE_S)  # what it had buffered, then EOF
    reported = [r["code"] for r in _reports(report)]
    assert reported == ([proc.returncode] if agent_pid else [])
    return proc.returncode, err.decode(), len(out), workers


def test_ctrl_c_reaches_the_worker_and_ends_the_command_as_in_process(
    shared: tuple[Agents, int], long_log: tuple[Harness, int]
) -> None:
    agents, agent_pid = shared
    reg, table_size = long_log

    code, stderr, printed, workers = _interrupted(agents, reg.url, agent_pid)
    here_code, here_stderr, here_printed, _ = _interrupted(agents, reg.url, 0)

    assert len(workers) == 1  # a worker of the agent was running it
    assert _eventually(lambda: _children(agent_pid) == []), "the worker outlived the command"
    assert code != 0
    assert (code, stderr) == (here_code, here_stderr)
    assert "aborted" in stderr
    # Both stopped where they were: the whole JSON log is longer than its table.
    assert printed < table_size and here_printed < table_size


# ---------------------------------------------------------------- the agent's life


def test_an_idle_agent_exits_and_removes_its_socket_and_pid_file(fresh: Agents) -> None:
    started = fresh.start({"MODELREG_AGENT_IDLE": "1"})  # up: its socket and pid file are
    pid_file = started.socket.with_suffix(".pid")

    assert _eventually(lambda: not _alive(started.pid), 15), "the idle agent did not exit"
    assert not started.socket.exists()
    assert not pid_file.exists()


def test_agent_stop_stops_the_agent_and_status_says_so(fresh: Agents) -> None:
    started = fresh.start()

    stop = fresh.run("agent", "stop")

    assert (stop.code, stop.stdout, stop.stderr) == (0, "stopped 1 agent(s)\n", "")
    assert _eventually(lambda: not _alive(started.pid)), "the agent did not stop"
    assert not started.socket.exists()
    status = fresh.run("agent", "status")
    assert status.code == 0
    assert status.stdout.startswith("no agent running")


# ---------------------------------------------------------------- routed, code_stamp


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        *[([command, MODEL], True) for command in sorted(agent.ROUTED)],
        (["rollback", MODEL, "--dry-run"], True),
        (["rollback", MODEL, "--dry-run", "--json"], True),
        (["rollback", MODEL], False),
        (["rollback", MODEL, "--reason", "bad"], False),
        (["rollback", MODEL, "--to", "3", "--dry-run"], True),
        (["rollback", MODEL, "--reason", "why", "--dry-run"], True),
        (["rollback", MODEL, "--expect-generation", "--dry-run"], False),
        (["rollback", "--", "--dry-run"], False),
        (["--registry", "sqlite:///x.db", "history", MODEL], True),
        (["--read-registry", "postgresql://replica/db", "models"], True),
        (["--json", "models"], True),
        (["--registry", "models", "promote", MODEL, "1"], False),  # "models" is the URL
        (["--help"], False),
        (["-h"], False),
        (["history", "--help"], False),
        (["history", MODEL, "-h"], False),
        (["--version"], False),
        (["promote", MODEL, "1"], False),
        (["register", MODEL], False),
        (["agent", "status"], False),
        ([], False),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_routed(argv: list[str], expected: bool) -> None:
    assert agent.routed(argv) is expected


def test_a_rollback_whose_reason_is_dry_run_is_not_routed() -> None:
    # click reads "--dry-run" here as the reason: this rolls back for real.
    assert agent.routed(["rollback", MODEL, "--reason", "--dry-run"]) is False


def test_code_stamp_follows_every_source_file_and_nothing_else(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub" / "__pycache__").mkdir(parents=True)
    module = package / "sub" / "mod.py"
    module.write_text("A = 1\n")
    (package / "__init__.py").write_text("")
    cached = package / "sub" / "__pycache__" / "mod.cpython-311.pyc"
    cached.write_bytes(b"\0" * 16)
    stamps = [agent.code_stamp(package)]

    assert agent.code_stamp(package) == stamps[0]  # stable
    before = module.stat()
    module.write_text("A = 12\n")  # another size, the same modification time
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    stamps.append(agent.code_stamp(package))
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))  # touched
    stamps.append(agent.code_stamp(package))
    (package / "sub" / "new.py").write_text("")  # a file added
    stamps.append(agent.code_stamp(package))
    assert len(set(stamps)) == 4

    cached.write_bytes(b"\1" * 32)  # bytecode rewritten
    (package / "sub" / "__pycache__" / "stray.py").write_text("")
    (package / "notes.txt").write_text("not source")
    assert agent.code_stamp(package) == stamps[-1]


def test_code_stamp_follows_the_interpreters_settings(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("")
    plain = agent.code_stamp(tmp_path, env={"HOME": "/root"})

    assert agent.code_stamp(tmp_path, env={"HOME": "/elsewhere"}) == plain  # not PYTHON*
    assert agent.code_stamp(tmp_path, env={"PYTHONHASHSEED": "0"}) != plain
    assert agent.code_stamp(tmp_path, env={"PYTHONWARNINGS": "error"}) != plain
