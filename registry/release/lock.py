"""One promotion or rollback per model at a time, across processes.

Scoped like the registry itself, and released by the operating system or the
database if the holder dies: a lock file next to a SQLite registry (every writer
of that file is on this machine), a session advisory lock on PostgreSQL; behind a
registry server (``http://…``) the server takes the lock around each promotion and
rollback it serves, so the client takes none. The
compare-and-swap inside the gated flip still decides a race on its own; the lock
makes the second promotion wait, then re-check the gates against what the first
one did. ``LockTimeout`` (transient) if the lock stays taken for ``timeout`` seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from registry.errors import LockTimeout, RegistryUnavailable

LOCK_TIMEOUT_S = 600.0
_LOCK_POLL_S = 0.05


@contextmanager
def promotion_lock(
    registry_url: str, name: str, *, timeout: float = LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold the model's promotion lock for the duration of the ``with`` block."""
    from sqlalchemy.engine import make_url

    from registry.store.sql.engine import normalise_url

    if registry_url.startswith(("http://", "https://")):
        yield  # the server holds the lock around the move it makes
        return
    url = make_url(normalise_url(registry_url))
    if url.get_backend_name() == "sqlite":
        with _file_lock(Path(url.database or ""), name, timeout):
            yield
        return
    with _advisory_lock(url.render_as_string(hide_password=False), name, timeout):
        yield


@contextmanager
def _file_lock(database: Path, name: str, timeout: float) -> Iterator[None]:
    safe = re.sub(r"[^a-z0-9-]", "-", name)
    path = database.parent / f"{database.name}.promote-{safe}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _wait(lambda: _try_flock(fd), name, timeout)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def _advisory_lock(url: str, name: str, timeout: float) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(f"modelreg.promote:{name}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0  # a signed bigint
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            take = text("SELECT pg_try_advisory_lock(:k)")
            _wait(lambda: bool(conn.execute(take, {"k": key}).scalar()), name, timeout)
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    except SQLAlchemyError as exc:
        raise RegistryUnavailable(f"cannot take the promotion lock of {name!r}: {exc}") from exc
    finally:
        engine.dispose()


def _wait(attempt: Callable[[], bool], name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not attempt():
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"another promotion or rollback of {name!r} held its lock for {timeout}s"
            )
        time.sleep(_LOCK_POLL_S)
