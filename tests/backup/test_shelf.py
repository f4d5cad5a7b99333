"""The backup shelf (issue #12 item 1) on a local folder and on S3 (the session's moto
server over HTTP): put, list, get and prune; keep N; a changed stored backup is refused
before anything restores it; an upload that is cut, or whose leftovers remain, is
never listed. The CLI part (``backup --shelf``, ``backup list``, ``restore --latest``)
runs as real processes.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from artifacts.conftest import aws_env, make_bucket, s3_client, s3_endpoint
from store.support import artifact

from registry.backup import verify
from registry.backup_shelf import (
    FolderShelf,
    S3Shelf,
    Shelf,
    ShelfEntry,
    entry_name,
    open_shelf,
    parse_name,
    take,
)
from registry.errors import ArtifactError, ChecksumMismatch, InvalidInput, NotFound
from registry.models import VersionCreate
from registry.store.sql import SqlStore

from .test_backup import registry_urls
from .test_backup_cli import modelreg, one_error_line

__all__ = ["aws_env", "make_bucket", "registry_urls", "s3_client", "s3_endpoint"]

KINDS = ["local", "s3"]
MODEL = "fraud"


@pytest.fixture
def make_shelf(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., tuple[Shelf, str]]:
    """``make(kind)``: an empty shelf and the artifact root it lives under."""

    def make(kind: str, endpoint: str | None = None) -> tuple[Shelf, str]:
        if kind == "local":
            root = str(tmp_path / f"artifacts-{uuid.uuid4().hex[:6]}")
            return open_shelf(root), root
        bucket = request.getfixturevalue("make_bucket")()
        root = f"s3://{bucket}/models/prod"
        where = endpoint or request.getfixturevalue("s3_endpoint")
        return open_shelf(root, endpoint_url=where), root

    return make


@pytest.fixture(params=KINDS)
def shelf(request: pytest.FixtureRequest, make_shelf: Callable[..., tuple[Shelf, str]]) -> Shelf:
    return make_shelf(request.param)[0]


@pytest.fixture
def registry_url(registry_urls: Callable[[str], str]) -> str:
    return registry_urls("sqlite")


def write(url: str, count: int = 1) -> int:
    """``count`` registrations (each moves the registry's seq); the seq after them."""
    with SqlStore(url, actor="writer") as store:
        for _ in range(count):
            store.register(MODEL, artifact(uuid.uuid4().bytes), VersionCreate())
        return store.latest_seq()


def backup_file(url: str, tmp_path: Path) -> Path:
    return take(url, tmp_path / "work")


def stored_keys(shelf: Shelf) -> list[str]:
    """Everything under the shelf's prefix (temporaries and checksums included)."""
    if isinstance(shelf, FolderShelf):
        if not shelf.folder.exists():
            return []
        return sorted(str(p.relative_to(shelf.folder)) for p in shelf.folder.rglob("*"))
    assert isinstance(shelf, S3Shelf)
    listed = shelf.client.list_objects_v2(Bucket=shelf.bucket, Prefix=f"{shelf.prefix}/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def overwrite(shelf: Shelf, name: str, data: bytes) -> None:
    """Replace a stored backup's bytes behind the shelf's back, its checksum kept."""
    if isinstance(shelf, FolderShelf):
        (shelf.folder / name).write_bytes(data)
        return
    assert isinstance(shelf, S3Shelf)
    sha256 = shelf.entry(name).sha256
    shelf.client.put_object(
        Bucket=shelf.bucket, Key=shelf._key(name), Body=data, Metadata={"sha256": sha256}
    )


# ---------------------------------------------------------------- put, list, get


def test_backups_are_listed_newest_first_with_size_time_and_seq(
    shelf: Shelf, registry_url: str, tmp_path: Path
) -> None:
    shelved: list[ShelfEntry] = []
    seqs = []
    for _ in range(3):
        seqs.append(write(registry_url))
        path = backup_file(registry_url, tmp_path)
        info = verify(path)
        entry = shelf.put(path)
        assert entry.name == entry_name(info.created_at, seqs[-1])
        assert entry.size == path.stat().st_size
        shelved.append(entry)

    listed = shelf.entries()

    assert [e.name for e in listed] == [e.name for e in reversed(shelved)]
    assert [e.seq for e in listed] == sorted(seqs, reverse=True)
    assert listed == list(reversed(shelved))
    assert shelf.latest() == shelved[-1]
    assert all(e.uri.endswith(f"/backups/{e.name}") for e in listed)


def test_a_shelved_backup_downloads_byte_for_byte_and_restores(
    shelf: Shelf, registry_urls: Callable[[str], str], tmp_path: Path
) -> None:
    source = registry_urls("sqlite")
    write(source, 3)
    path = backup_file(source, tmp_path)
    entry = shelf.put(path)

    got = shelf.get(entry.name, tmp_path / "down" / "copy.tar")

    assert got == entry
    assert (tmp_path / "down" / "copy.tar").read_bytes() == path.read_bytes()
    target = registry_urls("sqlite")
    from registry.backup import restore

    restore(tmp_path / "down" / "copy.tar", target)
    with SqlStore(source, actor="a") as a, SqlStore(target, actor="b") as b:
        assert b.history(MODEL) == a.history(MODEL)
        assert b.latest_seq() == a.latest_seq() == entry.seq


def test_shelving_the_same_backup_again_changes_nothing(
    shelf: Shelf, registry_url: str, tmp_path: Path
) -> None:
    write(registry_url)
    path = backup_file(registry_url, tmp_path)
    first = shelf.put(path)
    keys = stored_keys(shelf)

    assert shelf.put(path) == first  # a retried upload task
    assert stored_keys(shelf) == keys
    assert shelf.entries() == [first]


def test_a_file_that_is_not_a_backup_is_refused_and_nothing_is_stored(
    shelf: Shelf, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all")

    with pytest.raises(InvalidInput, match=r"junk\.tar"):
        shelf.put(junk)

    assert stored_keys(shelf) == []


@pytest.mark.parametrize(
    "name",
    ["../registry-20261201T000000Z-seq1.tar", "registry-latest.tar", "x", "registry-1-seq1.tar"],
)
def test_a_name_that_is_not_a_shelf_entry_is_invalid_input(shelf: Shelf, name: str) -> None:
    assert parse_name(name) is None
    with pytest.raises(InvalidInput, match="not a shelf entry name"):
        shelf.entry(name)


def test_an_absent_entry_and_an_empty_shelf_are_not_found(shelf: Shelf, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no backups on the shelf"):
        shelf.latest()
    with pytest.raises(NotFound, match=r"registry-20261201T000000Z-seq1\.tar"):
        shelf.get("registry-20261201T000000Z-seq1.tar", tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()


# ---------------------------------------------------------------- prune


def test_prune_keeps_the_newest_n(shelf: Shelf, registry_url: str, tmp_path: Path) -> None:
    names = []
    for _ in range(5):
        write(registry_url)
        names.append(shelf.put(backup_file(registry_url, tmp_path)).name)

    pruned = shelf.prune(2, protect=names[-1])

    assert pruned == [names[2], names[1], names[0]]  # newest of the doomed first
    assert [e.name for e in shelf.entries()] == [names[4], names[3]]
    if isinstance(shelf, FolderShelf):  # no checksum left without its backup
        assert sorted(p.name for p in shelf.folder.iterdir()) == sorted(
            [names[3], names[4], f"{names[3]}.sha256", f"{names[4]}.sha256"]
        )
    assert shelf.prune(2, protect=names[-1]) == []


def test_prune_never_deletes_the_backup_just_shelved_even_when_it_is_older(
    shelf: Shelf, registry_url: str, tmp_path: Path
) -> None:
    # A backup taken earlier but shelved last (a retried run): it is the one this run
    # vouches for, so it stays whatever the clock says.
    write(registry_url)
    older = backup_file(registry_url, tmp_path)
    newer_names = []
    for _ in range(2):
        write(registry_url)
        newer_names.append(shelf.put(backup_file(registry_url, tmp_path)).name)
    just_shelved = shelf.put(older).name

    pruned = shelf.prune(1, protect=just_shelved)

    assert pruned == [newer_names[0]]
    assert {e.name for e in shelf.entries()} == {newer_names[1], just_shelved}


def test_prune_refuses_keeping_none_and_a_backup_that_is_not_shelved(
    shelf: Shelf, registry_url: str, tmp_path: Path
) -> None:
    entry = shelf.put(backup_file(registry_url, tmp_path))
    absent = "registry-20200101T000000Z-seq9.tar"

    with pytest.raises(InvalidInput, match="at least 1"):
        shelf.prune(0, protect=entry.name)
    with pytest.raises(NotFound, match="nothing pruned"):
        shelf.prune(1, protect=absent)  # its upload failed: prune must not run blind

    assert shelf.entries() == [entry]


# ---------------------------------------------------------------- tampering


@pytest.mark.parametrize("change", ["flip-a-byte", "truncate", "other-backup"])
def test_a_changed_stored_backup_is_refused_and_nothing_is_written(
    shelf: Shelf, registry_url: str, tmp_path: Path, change: str
) -> None:
    write(registry_url)
    path = backup_file(registry_url, tmp_path)
    entry = shelf.put(path)
    data = path.read_bytes()
    if change == "flip-a-byte":
        middle = len(data) // 2
        changed = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
    elif change == "truncate":
        changed = data[: len(data) // 2]
    else:  # a real, valid backup, but not the one shelved under this name
        write(registry_url)
        changed = backup_file(registry_url, tmp_path).read_bytes()
    overwrite(shelf, entry.name, changed)
    dest = tmp_path / "restore-me.tar"

    with pytest.raises(ChecksumMismatch, match=f"{re.escape(entry.name)}.*corrupt or was changed"):
        shelf.get(entry.name, dest)

    assert not dest.exists()
    assert list(dest.parent.glob(".restore-me.tar*")) == []  # no temporary left either


# ---------------------------------------------------------------- interrupted uploads


def test_leftovers_of_an_interrupted_upload_are_never_listed(
    shelf: Shelf, registry_url: str, tmp_path: Path
) -> None:
    path = backup_file(registry_url, tmp_path)
    good = shelf.put(path)
    half = path.read_bytes()[:1000]
    name = "registry-20991231T235959Z-seq99.tar"  # would be the newest if it counted
    # What a process killed mid-upload leaves behind, on each kind of shelf.
    if isinstance(shelf, FolderShelf):
        (shelf.folder / f".{name}.x1y2.part").write_bytes(half)  # write_verified's temp
        (shelf.folder / f"{name}.sha256").write_text("0" * 64 + "\n")  # its checksum only
    else:
        assert isinstance(shelf, S3Shelf)
        put = shelf.client.put_object
        put(Bucket=shelf.bucket, Key=f"{shelf.prefix}/tmp/{uuid.uuid4().hex}.partial", Body=half)
        put(Bucket=shelf.bucket, Key=shelf._key(name), Body=half)  # not put by a shelf

    assert shelf.entries() == [good]
    assert shelf.latest() == good
    assert shelf.prune(1, protect=good.name) == []


def test_a_landing_that_fails_leaves_no_entry_and_no_checksum(
    registry_url: str, tmp_path: Path, make_shelf: Callable[..., tuple[Shelf, str]]
) -> None:
    shelf, _root = make_shelf("local")
    assert isinstance(shelf, FolderShelf)
    path = backup_file(registry_url, tmp_path)
    name = entry_name(verify(path).created_at, 0)
    (shelf.folder / name).mkdir(parents=True)  # the rename into place fails

    with pytest.raises(ArtifactError, match=name):
        shelf.put(path)

    assert shelf.entries() == []
    assert sorted(p.name for p in shelf.folder.iterdir()) == [name]  # only the blocker


class CuttingProxy:
    """A TCP proxy to ``upstream`` that cuts every connection once the client has sent
    ``limit`` bytes on it: an upload dies mid-body, requests smaller than that pass."""

    def __init__(self, upstream: tuple[str, int], limit: int) -> None:
        self.upstream, self.limit, self.cut = upstream, limit, 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as upstream:
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
            sent = 0
            with suppress(OSError):
                while data := client.recv(65536):
                    if sent + len(data) > self.limit:
                        self.cut += 1
                        break
                    upstream.sendall(data)
                    sent += len(data)
            for sock in (client, upstream):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)


@contextmanager
def cutting_proxy(endpoint: str, limit: int) -> Iterator[CuttingProxy]:
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    proxy = CuttingProxy((host, int(port)), limit)
    try:
        yield proxy
    finally:
        proxy.close()


def test_an_upload_cut_mid_stream_leaves_the_s3_shelf_as_it_was(
    registry_url: str, tmp_path: Path, s3_endpoint: str, make_bucket: Callable[[], str]
) -> None:
    root = f"s3://{make_bucket()}/models"
    direct = open_shelf(root, endpoint_url=s3_endpoint)
    write(registry_url)
    before = direct.put(backup_file(registry_url, tmp_path))
    write(registry_url)
    path = backup_file(registry_url, tmp_path)
    assert path.stat().st_size > 8192
    keys = stored_keys(direct)

    with cutting_proxy(s3_endpoint, limit=path.stat().st_size // 2) as proxy:
        flaky = open_shelf(root, endpoint_url=proxy.url)
        with pytest.raises(ArtifactError, match="upload"):
            flaky.put(path)
        assert proxy.cut >= 1

    assert direct.entries() == [before]
    assert stored_keys(direct) == keys  # no half object, no temporary left behind
    assert direct.put(path).seq == before.seq + 1  # the retry lands whole


# ---------------------------------------------------------------- the CLI


def test_cli_backup_to_the_shelf_list_and_restore_the_latest(
    registry_urls: Callable[[str], str], tmp_path: Path
) -> None:
    source = registry_urls("sqlite")
    root = tmp_path / "artifacts"
    names = []
    for _ in range(3):
        write(source)
        made = modelreg(
            "--registry", source, "backup", "--shelf-root", str(root), "--keep", "2", home=tmp_path
        )
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("shelved registry-") and made.stdout.count("\n") == 1
        names.append(made.stdout.split()[1])
    assert f"pruned 1: {names[0]}" in made.stdout

    listed = modelreg("backup", "list", "--shelf-root", str(root), "--json", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [e["name"] for e in entries] == [names[2], names[1]]
    assert entries[0]["seq"] == entries[1]["seq"] + 1
    table = modelreg("backup", "list", "--shelf-root", str(root), home=tmp_path)
    assert table.stdout.index(names[2]) < table.stdout.index(names[1])
    assert names[0] not in table.stdout

    target = registry_urls("sqlite")
    restored = modelreg(
        "restore", "--latest", "--shelf-root", str(root), "--registry", target, home=tmp_path
    )
    assert restored.returncode == 0, restored.stderr
    assert f"from {names[2]} on the shelf at {root / 'backups'}" in restored.stdout
    with SqlStore(source, actor="a") as a, SqlStore(target, actor="b") as b:
        assert b.history(MODEL) == a.history(MODEL)


def test_cli_shelf_on_s3_from_the_environment(
    registry_urls: Callable[[str], str], tmp_path: Path, s3_endpoint: str, make_bucket: Any
) -> None:
    source, root = registry_urls("sqlite"), f"s3://{make_bucket()}/team"
    write(source, 2)
    env = {"MODELREG_ARTIFACTS": root, "AWS_ENDPOINT_URL_S3": s3_endpoint}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        made = modelreg("--registry", source, "backup", "--shelf", home=tmp_path)
        listed = modelreg("backup", "list", home=tmp_path)
        name = made.stdout.split()[1]
        target = registry_urls("sqlite")
        restored = modelreg("restore", name, "--registry", target, home=tmp_path)
        checked = modelreg("backup", "verify", name, home=tmp_path)

    assert made.returncode == 0, made.stderr
    assert f"at {root}/backups" in made.stdout
    assert name in listed.stdout and "seq" in listed.stdout
    assert restored.returncode == 0, restored.stderr
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stderr
    with SqlStore(target, actor="b") as b:
        assert b.latest_seq() == write(source, 0)


def test_cli_refuses_a_changed_shelved_backup_in_one_line(
    registry_urls: Callable[[str], str], tmp_path: Path
) -> None:
    source, root = registry_urls("sqlite"), tmp_path / "artifacts"
    write(source)
    made = modelreg("--registry", source, "backup", "--shelf-root", str(root), home=tmp_path)
    name = made.stdout.split()[1]
    stored = root / "backups" / name
    data = bytearray(stored.read_bytes())
    data[len(data) // 3] ^= 0x20  # inside the tables, not the tar's zero padding
    stored.write_bytes(bytes(data))
    target = registry_urls("sqlite")

    restored = modelreg(
        "restore", name, "--shelf-root", str(root), "--registry", target, home=tmp_path
    )
    checked = modelreg("backup", "verify", name, "--shelf-root", str(root), home=tmp_path)

    assert "corrupt or was changed" in one_error_line(restored, 5)
    assert "corrupt or was changed" in one_error_line(checked, 5)
    with SqlStore(target, actor="check") as b:
        assert b.list_models() == [] and b.latest_seq() == 0


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["backup", "--shelf", "--to", "x.tar", "--shelf-root", "ROOT"], 2, "not both"),
        (["backup", "--keep", "3"], 2, "--shelf"),
        (["backup", "--shelf-root", "ROOT", "--keep", "0"], 2, "at least 1"),
        (["restore", "--shelf-root", "ROOT"], 2, "--latest"),
        (["restore", "x.tar", "--latest", "--shelf-root", "ROOT"], 2, "--latest"),
        (["restore", "--latest", "--shelf-root", "ROOT"], 3, "no backups on the shelf"),
        (
            ["restore", "registry-20261201T000000Z-seq1.tar", "--shelf-root", "ROOT"],
            3,
            "no backup registry-",
        ),
        (["restore", "nothing-here.tar", "--shelf-root", "ROOT"], 2, "no backup file"),
        (
            ["backup", "verify", "../registry-20261201T000000Z-seq1.tar", "--shelf-root", "ROOT"],
            2,
            "no backup file",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_changes_nothing(
    registry_urls: Callable[[str], str], tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    url = registry_urls("sqlite")
    seq = write(url)
    root = tmp_path / "artifacts"
    args = [str(root) if arg == "ROOT" else arg for arg in args]

    result = modelreg("--registry", url, *args, home=tmp_path)

    assert words in one_error_line(result, code)
    assert not (root / "backups").exists()
    with SqlStore(url, actor="check") as store:
        assert store.latest_seq() == seq
