"""The warm agent: ``modelreg``'s read commands without the half second of start-up.

Most of a read command's time is start-up, not work. On a 2-core machine Python,
click, pydantic, SQLAlchemy and SQLModel take about 0.5 s to import before the first
row is read, and the read itself takes 40 to 160 ms even at 100,000 versions. The agent
imports them once. It is a fork server, like multiprocessing's ``forkserver``: it
listens on a Unix socket and forks a worker for each command.

The caller hands the worker its argument list, environment, working directory and
umask, and its stdin, stdout and stderr as file descriptors (``SCM_RIGHTS``). The
worker then runs the very command the caller would have run, through the same CLI,
the same store and the same checks. It writes straight to the caller's terminal or
pipe and exits with the command's code. The agent reports that code, and the
worker's peak RSS, back to the caller, which exits with the code.

What keeps it safe:

- **Reads only.** Only the commands in ``ROUTED`` go through the agent, plus
  ``rollback --dry-run``. Every write runs in its own process, so no write ever
  depends on a background process.
- **Nothing shared between commands.** Each command runs in a fresh fork of a
  process that has imported code and done nothing else: no connection, no cache, no
  settings. Configuration is read from the caller's environment, as in-process.
- **The code that would run in-process.** The socket's name carries a stamp of the
  interpreter, its ``PYTHON*`` settings and every source file of the ``registry``
  package. After an upgrade or an edit, callers look for a new agent and run
  in-process until it is up. An agent whose stamp went stale exits.
- **Only its owner.** The socket's folder is private (0700, owned by the user, no
  symlink). The agent also checks the caller's uid (``SO_PEERCRED``).
- **Never in the way.** If no agent answers, the command runs in-process, exactly as
  without the agent, and starts one in the background for the next command. The
  agent exits after ``MODELREG_AGENT_IDLE`` seconds without a command (default 900).
  ``MODELREG_AGENT=off`` turns it off.

This module is the console script's first stop, so it imports only the standard
library. For that reason it reads its variables (``MODELREG_AGENT``,
``MODELREG_AGENT_DIR``, ``MODELREG_AGENT_IDLE`` and ``MODELREG_AGENT_REPORT``) itself
rather than through ``registry.config``, which imports pydantic.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

# Commands that only read: they answer through the agent. ``rollback`` only with
# --dry-run (``routed``). The rest, every write among them, run in-process.
ROUTED = frozenset({"models", "versions", "show", "history", "search", "diff", "lineage", "events"})
# Global options of ``modelreg`` that take a value (``routed`` skips the value), and
# those of ``rollback``.
_VALUED = frozenset({"--registry", "--read-registry"})
_ROLLBACK_VALUED = frozenset({"--to", "--reason", "--expect-generation"})
OFF = frozenset({"off", "0", "false", "no"})
DEFAULT_IDLE_S = 900.0
# Modules a read command imports: the agent imports them before it listens.
WARM = (
    "registry.cli.main",
    "registry.cli.views",
    "registry.cli.queries",
    "registry.cli.render",
    "registry.cli.paging",
    "registry.cli.rollback_plan",
    "registry.cli.errors",
    "registry.cli.state",
    "registry.store.sql",
    "registry.store.http",
    "registry.models",
    "rich.console",
    "rich.table",
)
_HEADER = struct.Struct("!I")
# What a terminal or a supervisor sends a command: the caller passes them to its worker.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_PACKAGE = Path(__file__).resolve().parents[1]


def routed(argv: Sequence[str]) -> bool:
    """Whether ``modelreg ARGV`` is a read command the agent may answer."""
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help", "--version"):
            return False
        if arg in _VALUED:
            next(args, None)
            continue
        if arg.startswith("-"):
            continue
        rest = list(args)
        if "--help" in rest or "-h" in rest:
            return False
        return arg in ROUTED or (arg == "rollback" and _dry_run(rest))
    return False


def _dry_run(args: Sequence[str]) -> bool:
    """``--dry-run`` among ``rollback``'s options, not as the value of one that takes
    a value (``--reason --dry-run`` is a real rollback, for a strange reason)."""
    words = iter(args)
    for word in words:
        if word == "--":
            return False
        if word == "--dry-run":
            return True
        if word in _ROLLBACK_VALUED:
            next(words, None)
    return False


def enabled(env: Mapping[str, str]) -> bool:
    return env.get("MODELREG_AGENT", "on").strip().lower() not in OFF


def idle_seconds(env: Mapping[str, str]) -> float:
    """``MODELREG_AGENT_IDLE``: seconds without a command before the agent exits; 0
    keeps it until it is stopped (or its code changes)."""
    try:
        idle = float(env.get("MODELREG_AGENT_IDLE", DEFAULT_IDLE_S))
    except ValueError:
        return DEFAULT_IDLE_S
    return math.inf if idle <= 0 else max(0.1, idle)


def agent_dir(env: Mapping[str, str]) -> Path | None:
    """The private folder of this user's agents, made if missing; ``None`` when it is
    not private (another owner, group or world access, a symlink): then no agent."""
    uid = os.getuid()
    if env.get("MODELREG_AGENT_DIR"):
        folder = Path(env["MODELREG_AGENT_DIR"])
    elif env.get("XDG_RUNTIME_DIR"):
        folder = Path(env["XDG_RUNTIME_DIR"]) / "modelreg-agent"
    else:
        folder = Path("/tmp") / f"modelreg-agent-{uid}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    private = info.st_uid == uid and not info.st_mode & 0o077
    return folder if private and not folder.is_symlink() and folder.is_dir() else None


def code_stamp(package: Path = _PACKAGE, env: Mapping[str, str] | None = None) -> str:
    """A digest of the interpreter, of its settings in the environment (``PYTHON*``:
    warnings, hash seed, I/O encoding, …) and of every ``.py`` file under ``package``
    (path, size, modification time): an edit, an upgrade or other interpreter settings
    make it another agent's."""
    env = os.environ if env is None else env
    settings = sorted((k, v) for k, v in env.items() if k.startswith("PYTHON"))
    digest = hashlib.sha256(f"{sys.executable}\0{package}\0{settings}".encode())
    for path, info in sorted(_sources(package)):
        digest.update(f"\0{path}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _sources(folder: Path) -> Iterator[tuple[str, os.stat_result]]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                yield from _sources(Path(entry.path))
            elif entry.name.endswith(".py"):
                yield entry.path, entry.stat()


def paths(folder: Path, stamp: str) -> dict[str, Path]:
    return {kind: folder / f"{stamp}.{kind}" for kind in ("sock", "lock", "pid", "log")}


# -- the caller ------------------------------------------------------------------------


def call(argv: Sequence[str], env: Mapping[str, str]) -> int | None:
    """Run ``modelreg ARGV`` in a worker of the agent and return its exit code, or
    ``None`` when no agent took the command: the caller then runs it itself (and an agent
    is started for the next one). Once the agent has the command, this never returns
    ``None``: a command runs at most once."""
    folder = agent_dir(env)
    if folder is None:
        return None
    stamp = code_stamp(env=env)
    where = paths(folder, stamp)
    signals = _Forwarder()  # from now on a Ctrl-C is kept for the worker, not lost
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        sock.connect(str(where["sock"]))
        _send_request(sock, argv, env)
    except OSError:
        sock.close()
        signals.give_back()
        start_in_background(folder, stamp, env)
        return None
    with sock:
        code = _await_exit(sock, env, signals)
    if code is None:  # the agent closed before it forked a worker: nothing ran
        signals.give_back()
        start_in_background(folder, stamp, env)
    return code


class _Forwarder:
    """The signals a terminal or a supervisor sends (``FORWARDED``), passed on to the
    worker; those that come before its pid is known are kept and sent then. Signals this
    process ignores stay ignored (the worker ignores them too)."""

    def __init__(self) -> None:
        self.worker = 0
        self.pending: list[int] = []
        self.previous = {s: signal.getsignal(s) for s in FORWARDED}
        for signum, handler in self.previous.items():
            if handler != signal.SIG_IGN:
                signal.signal(signum, self._forward)

    def _forward(self, signum: int, _frame: Any) -> None:
        if self.worker:
            with contextlib.suppress(OSError):
                os.kill(self.worker, signum)
        else:
            self.pending.append(signum)

    def started(self, worker: int) -> None:
        self.worker = worker
        for signum in self.pending:
            with contextlib.suppress(OSError):
                os.kill(worker, signum)
        self.pending.clear()

    def give_back(self) -> None:
        """No worker will run: this process runs the command, with its own handlers and
        whatever signal came meanwhile."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        for pending in self.pending:
            signal.raise_signal(pending)


def _send_request(sock: socket.socket, argv: Sequence[str], env: Mapping[str, str]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    streams = [sys.stdin, sys.stdout, sys.stderr]
    request = {
        "argv": list(argv),
        "env": dict(env),
        "cwd": os.getcwd(),
        "umask": umask,
        "encodings": [
            [getattr(s, "encoding", None) or "utf-8", getattr(s, "errors", None) or "strict"]
            for s in streams
        ],
        "unbuffered": bool(getattr(sys.stdout, "write_through", False)),
        # A signal this process ignores (a shell's background job ignores SIGINT) is
        # ignored by the worker too, as it would be in-process.
        "ignored": [int(s) for s in FORWARDED if signal.getsignal(s) == signal.SIG_IGN],
    }
    body = json.dumps(request).encode()
    socket.send_fds(sock, [_HEADER.pack(len(body))], [0, 1, 2])
    sock.sendall(body)


def _await_exit(sock: socket.socket, env: Mapping[str, str], signals: _Forwarder) -> int | None:
    """Wait for the worker's exit code (signals go to it meanwhile), or ``None`` if the
    agent hung up before it started a worker."""
    sock.settimeout(None)
    reader = sock.makefile("r", encoding="ascii")
    for line in reader:
        kind, _, rest = line.strip().partition(" ")
        if kind == "P":
            signals.started(int(rest))
        elif kind == "X":
            code, rss_kb, cpu_ms = (int(x) for x in rest.split())
            facts = {"worker": signals.worker, "code": code, "rss_kb": rss_kb, "cpu_ms": cpu_ms}
            _report(env, facts)
            return code
    if not signals.worker:
        return None
    print("modelreg: the agent stopped before the command ended; run it again", file=sys.stderr)
    return 1


def _report(env: Mapping[str, str], facts: dict[str, int]) -> None:
    """``MODELREG_AGENT_REPORT=FILE``: one JSON line per command the agent ran (its
    worker's pid, exit code, peak RSS and CPU time), for benchmarks and tests."""
    target = env.get("MODELREG_AGENT_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(facts) + "\n")


def start_in_background(folder: Path, stamp: str, env: Mapping[str, str]) -> None:
    """Start an agent for ``stamp`` unless one holds its lock (running or starting)."""
    if running(folder, stamp):
        return
    import subprocess

    with contextlib.suppress(OSError):
        subprocess.Popen(
            # -P: not the caller's folder first on sys.path (as -m would put it), so the
            # agent imports what an in-process command imports; and it holds no cwd.
            [sys.executable, "-P", "-m", "registry.cli.agent", str(folder), stamp],
            cwd=folder,
            env={**env, "MODELREG_AGENT_DIR": str(folder)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def running(folder: Path, stamp: str) -> bool:
    """Whether an agent holds ``stamp``'s lock (it takes it before anything else)."""
    import fcntl

    try:
        with open(paths(folder, stamp)["lock"], "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(lock, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def status(folder: Path) -> list[dict[str, Any]]:
    """Every agent of this user: pid, stamp, start time, whether it is current."""
    current = code_stamp()
    found = []
    for pid_file in sorted(folder.glob("*.pid")):
        stamp = pid_file.name.removesuffix(".pid")
        try:
            info = json.loads(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if running(folder, stamp):
            found.append({**info, "stamp": stamp, "current": stamp == current})
    return found


# -- the agent -------------------------------------------------------------------------


class Agent:
    """The fork server: one listening socket, one worker per accepted connection."""

    def __init__(self, folder: Path, stamp: str, idle_s: float) -> None:
        self.folder, self.stamp, self.idle_s = folder, stamp, idle_s
        self.where = paths(folder, stamp)
        self.listener: socket.socket | None = None
        self.socket_inode = 0
        self.lock: IO[str] | None = None
        # pidfd -> (worker pid, the caller's connection)
        self.workers: dict[int, tuple[int, socket.socket]] = {}
        self.stopping = False
        self.wake: socket.socket | None = None
        self.wake_write: socket.socket | None = None

    def serve(self) -> int:
        import fcntl

        lock = open(self.where["lock"], "a")  # noqa: SIM115 - held for the agent's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return 0  # another agent has this stamp
        self.lock = lock
        try:
            self._warm()
            self._listen()
            signal.signal(signal.SIGTERM, self._stop)
            self._loop()
        finally:
            self._close()
            lock.close()
        return 0

    def _warm(self) -> None:
        import gc
        import importlib

        gc.disable()
        for name in WARM:
            importlib.import_module(name)
        # What was imported stays as it is: forks share its pages instead of copying
        # them when a collection would touch every object.
        gc.freeze()

    def _listen(self) -> None:
        path = self.where["sock"]
        path.unlink(missing_ok=True)  # an agent that died left it; we hold the lock
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        staging.unlink(missing_ok=True)
        listener.bind(str(staging))
        staging.chmod(0o600)
        listener.listen(64)
        staging.rename(path)  # callers see the socket only once it accepts
        self.listener = listener
        self.socket_inode = os.stat(path).st_ino
        self.where["pid"].write_text(
            json.dumps({"pid": os.getpid(), "started": time.time(), "socket": str(path)})
        )

    def _stop(self, _signum: int, _frame: Any) -> None:
        self.stopping = True

    def _loop(self) -> None:
        import selectors

        assert self.listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ, None)
        # A signal (SIGTERM from `agent stop`) wakes the select at once, not at its timeout.
        self.wake, wake_write = socket.socketpair()
        for end in (self.wake, wake_write):
            end.setblocking(False)
        signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        self.wake_write = wake_write
        selector.register(self.wake, selectors.EVENT_READ, "wake")
        last = time.monotonic()
        checked = last
        while not (self.stopping and not self.workers):
            for key, _ in selector.select(timeout=1.0):
                if key.data == "wake":
                    with contextlib.suppress(OSError):
                        self.wake.recv(512)
                    continue
                if key.data is None:
                    self._accept(selector)
                else:
                    self._reap(selector, key.fd)
                last = time.monotonic()
            now = time.monotonic()
            if not self.workers and now - last > self.idle_s:
                break
            if now - checked > 30:
                checked = now
                if not self._still_current():
                    self.stopping = True
            if self.stopping and self.listener is not None:
                selector.unregister(self.listener)
                self._unlisten()

    def _still_current(self) -> bool:
        """False once the sources changed, or once our socket is gone or replaced."""
        try:
            ours = os.stat(self.where["sock"]).st_ino == self.socket_inode
        except OSError:
            return False
        return ours and code_stamp() == self.stamp

    def _accept(self, selector: Any) -> None:
        import selectors

        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            conn.close()
            return
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory: the caller runs it itself
            conn.close()
            return
        if pid == 0:
            self._become_worker(conn)  # never returns
        with contextlib.suppress(OSError):
            conn.sendall(f"P {pid}\n".encode())
        pidfd = os.pidfd_open(pid)
        self.workers[pidfd] = (pid, conn)
        selector.register(pidfd, selectors.EVENT_READ, pid)

    def _reap(self, selector: Any, pidfd: int) -> None:
        pid, conn = self.workers.pop(pidfd)
        selector.unregister(pidfd)
        os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code  # killed by a signal: the shell's 128+N
        with conn, contextlib.suppress(OSError):
            cpu_ms = round((usage.ru_utime + usage.ru_stime) * 1000)
            conn.sendall(f"X {code} {usage.ru_maxrss} {cpu_ms}\n".encode())

    def _become_worker(self, conn: socket.socket) -> None:
        code = 1
        try:
            if self.listener is not None:
                self.listener.close()
            if self.lock is not None:
                self.lock.close()  # the agent keeps the lock; a worker must not outlive it with it
            signal.set_wakeup_fd(-1)
            for end in (self.wake, self.wake_write):
                if end is not None:
                    end.close()
            for fd, (_pid, other) in self.workers.items():
                os.close(fd)
                other.close()
            code = run_worker(conn)
        except BaseException:  # a worker must always reach os._exit
            code = 1
        finally:
            os._exit(code)

    def _unlisten(self) -> None:
        if self.listener is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.where["sock"]).st_ino == self.socket_inode:
                self.where["sock"].unlink()
        self.listener.close()
        self.listener = None

    def _close(self) -> None:
        self._unlisten()
        for pidfd, (_pid, conn) in self.workers.items():
            os.close(pidfd)
            conn.close()
        with contextlib.suppress(OSError):
            info = json.loads(self.where["pid"].read_text())
            if info.get("pid") == os.getpid():
                self.where["pid"].unlink()


def run_worker(conn: socket.socket) -> int:
    """In the forked worker: take the caller's request and streams, become the caller,
    run the command as ``modelreg`` would, and return its exit code."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    conn.settimeout(10.0)
    request, fds = _receive(conn)
    conn.settimeout(None)
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = ["modelreg", *request["argv"]]
    for signum in request["ignored"]:
        signal.signal(signum, signal.SIG_IGN)
    _std_streams(request["encodings"], bool(request["unbuffered"]))
    if _caller_gone(conn):
        return 1
    return _run_command()


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    head, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
    if len(head) != _HEADER.size or len(fds) != 3:
        raise ConnectionError("incomplete request")
    (size,) = _HEADER.unpack(head)
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("incomplete request")
        body += chunk
    request: dict[str, Any] = json.loads(body)
    return request, fds


def _std_streams(encodings: list[list[str]], unbuffered: bool) -> None:
    """Text streams over the caller's descriptors, buffered as Python buffers its own:
    stdout by line on a terminal and by block otherwise, stderr by line."""
    import io

    def wrap(fd: int, mode: str, index: int, line: bool) -> io.TextIOWrapper:
        encoding, errors = encodings[index]
        buffering = 0 if unbuffered and mode == "w" else -1
        raw = open(fd, mode + "b", buffering=buffering, closefd=False)  # noqa: SIM115
        return io.TextIOWrapper(
            raw,
            encoding=encoding,
            errors=errors,
            line_buffering=line,
            write_through=unbuffered,
        )

    sys.stdin = wrap(0, "r", 0, False)
    sys.stdout = wrap(1, "w", 1, os.isatty(1))
    sys.stderr = wrap(2, "w", 2, True)


def _caller_gone(conn: socket.socket) -> bool:
    """The caller hung up (it gave up waiting): its command must not run behind it."""
    import select

    poller = select.poll()
    poller.register(conn, select.POLLIN | select.POLLRDHUP)
    return any(event & (select.POLLRDHUP | select.POLLHUP) for _, event in poller.poll(0))


def _run_command() -> int:
    from registry.cli.main import main

    code = 0
    try:
        main()
    except SystemExit as stop:
        if isinstance(stop.code, int):
            code = stop.code
        elif stop.code is not None:
            print(stop.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    return code


def _serve_main(argv: Sequence[str]) -> int:
    """``python -m registry.cli.agent FOLDER STAMP``: what ``start_in_background`` runs."""
    folder, stamp = Path(argv[0]), argv[1]
    if agent_dir({"MODELREG_AGENT_DIR": str(folder)}) != folder or stamp != code_stamp():
        return 2
    try:
        return Agent(folder, stamp, idle_seconds(os.environ)).serve()
    except Exception:
        # The agent's stdio is /dev/null: what went wrong is kept in <stamp>.log.
        import traceback

        with open(paths(folder, stamp)["log"], "a", encoding="utf-8") as log:
            traceback.print_exc(file=log)
        return 1


if __name__ == "__main__":
    raise SystemExit(_serve_main(sys.argv[1:]))
