"""``modelreg backup --to FILE``, ``modelreg backup verify FILE`` and ``modelreg restore
FILE --registry URL`` run as real processes: output, exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.store.sql import SqlStore

from .test_backup import MODEL, answers, build_world, registry_urls

__all__ = ["registry_urls"]  # the fixture, shared with test_backup

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def modelreg(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELREG_HOME": str(home), "MODELREG_USER": "oncall@test"}
    env.pop("MODELREG_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "registry.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("source_backend", BACKENDS)
@pytest.mark.parametrize("target_backend", BACKENDS)
def test_backup_verify_and_restore_through_the_cli(
    source_backend: str,
    target_backend: str,
    registry_urls: Callable[[str], str],
    tmp_path: Path,
) -> None:
    source_url, target_url = registry_urls(source_backend), registry_urls(target_backend)
    with SqlStore(source_url, actor="builder") as source:
        world = build_world(source)
        file = tmp_path / "nightly.backup"

        made = modelreg("--registry", source_url, "backup", "--to", str(file), home=tmp_path)
        assert made.returncode == 0, made.stderr
        assert made.stdout.count("\n") == 1 and "rows" in made.stdout, made.stdout
        rows = sum(verify_counts(file).values())
        assert f"{rows:,} rows" in made.stdout

        checked = modelreg("backup", "verify", str(file), home=tmp_path)
        assert checked.returncode == 0, checked.stderr
        assert "ok" in checked.stdout and f"{rows:,} rows" in checked.stdout

        restored = modelreg("restore", str(file), "--registry", target_url, home=tmp_path)
        assert restored.returncode == 0, restored.stderr
        assert f"restored {rows:,} rows" in restored.stdout

        with SqlStore(target_url, actor="builder") as target:
            assert answers(target, world) == answers(source, world)
            assert target.resolve(MODEL, "production") == 2


def verify_counts(path: Path) -> dict[str, int]:
    from registry.backup import verify

    return verify(path).tables


@pytest.fixture
def backup_file(registry_urls: Callable[[str], str], tmp_path: Path) -> Path:
    url = registry_urls("sqlite")
    with SqlStore(url, actor="builder") as store:
        build_world(store)
    file = tmp_path / "good.backup"
    result = modelreg("--registry", url, "backup", "--to", str(file), home=tmp_path)
    assert result.returncode == 0, result.stderr
    return file


@pytest.mark.parametrize("target_backend", BACKENDS)
def test_restore_into_a_non_empty_registry_exits_4_and_changes_nothing(
    target_backend: str, registry_urls: Callable[[str], str], backup_file: Path, tmp_path: Path
) -> None:
    target_url = registry_urls(target_backend)
    with SqlStore(target_url, actor="someone") as target:
        from store.support import artifact

        from registry.models import VersionCreate

        target.register("mine", artifact(b"mine"), VersionCreate())
        before = (target.list_models(), target.events(), target.list_tokens())

        result = modelreg("restore", str(backup_file), "--registry", target_url, home=tmp_path)

        message = one_error_line(result, 4)
        assert "not empty" in message
        assert (target.list_models(), target.events(), target.list_tokens()) == before


def _corrupt(good: Path, bad: Path) -> None:
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("target_backend", BACKENDS)
def test_a_corrupt_file_is_refused_by_verify_and_restore_with_exit_2(
    target_backend: str, registry_urls: Callable[[str], str], backup_file: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "cut.backup"
    _corrupt(backup_file, bad)
    target_url = registry_urls(target_backend)

    checked = modelreg("backup", "verify", str(bad), home=tmp_path)
    restored = modelreg("restore", str(bad), "--registry", target_url, home=tmp_path)

    assert str(bad) in one_error_line(checked, 2)
    assert str(bad) in one_error_line(restored, 2)
    with SqlStore(target_url, actor="check") as target:
        assert target.list_models() == [] and target.latest_seq() == 0


def test_a_file_that_is_not_a_backup_is_refused_in_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    empty = tmp_path / "empty.backup"
    empty.write_bytes(b"")

    for path in (text, empty):
        assert str(path) in one_error_line(
            modelreg("backup", "verify", str(path), home=tmp_path), 2
        )


def test_verify_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = modelreg("backup", "verify", str(tmp_path / "absent.backup"), home=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "absent.backup" in result.stderr


def test_backup_without_a_destination_is_a_usage_error(
    registry_urls: Callable[[str], str], tmp_path: Path
) -> None:
    result = modelreg("--registry", registry_urls("sqlite"), "backup", home=tmp_path)

    assert result.returncode == 2
    assert "--to" in result.stderr


def test_restore_refuses_a_server_url(backup_file: Path, tmp_path: Path) -> None:
    result = modelreg(
        "restore", str(backup_file), "--registry", "http://127.0.0.1:9", home=tmp_path
    )

    one_error_line(result, 2)
