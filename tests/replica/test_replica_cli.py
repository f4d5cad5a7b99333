"""``modelreg --read-registry URL`` and MODELREG_READ_URL, as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from release_facts import release

from registry.models import ArtifactRef, VersionCreate

from .conftest import Replicated

ArtifactFor = Callable[..., ArtifactRef]


def modelreg(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")},
        "MODELREG_HOME": str(tmp_path / "home"),
        "MODELREG_USER": "oncall@test",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "registry.cli.main", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def shown(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def lagging(replicated: Replicated, artifact_for: ArtifactFor) -> tuple[int, int]:
    """v1 served on the standby; v2 promoted since on the primary, replay paused."""
    with replicated.primary_store() as other:
        versions = [
            other.register("fraud", artifact_for(uuid.uuid4().bytes), VersionCreate()).version
            for _ in range(2)
        ]
        release(other, "fraud", versions[0])
        replicated.pair.wait_caught_up()
        replicated.pair.pause()
        release(other, "fraud", versions[1])
    return versions[0], versions[1]


def test_show_reads_the_replica_named_by_the_flag_or_the_environment(
    replicated: Replicated, lagging: tuple[int, int], tmp_path: Path
) -> None:
    v1, v2 = lagging
    primary, replica = replicated.primary_url, replicated.replica_url
    by_flag = modelreg(
        "--registry", primary, "--read-registry", replica, "--json", "show", "fraud", "production",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert shown(by_flag)["version"] == v1
    by_env = modelreg(
        "--registry", primary, "--json", "show", "fraud", "production",
        tmp_path=tmp_path, env={"MODELREG_READ_URL": replica},
    )  # fmt: skip
    assert shown(by_env)["version"] == v1
    without = modelreg(
        "--registry", primary, "--json", "show", "fraud", "production", tmp_path=tmp_path
    )
    assert shown(without)["version"] == v2


def test_a_command_after_a_write_of_this_home_reads_it_back_while_the_replica_lags(
    replicated: Replicated, lagging: tuple[int, int], tmp_path: Path
) -> None:
    """Each command is a process of its own: the mark of the write is kept in the home
    (``read-marks.json``), so the next command reads the primary until the standby
    has replayed it. Another home is another client and reads the standby."""
    v1, v2 = lagging
    flags = ["--registry", replicated.primary_url, "--read-registry", replicated.replica_url]
    moved = modelreg(*flags, "alias", "set", "fraud", "challenger", str(v1), tmp_path=tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert (
        shown(modelreg(*flags, "--json", "show", "fraud", "challenger", tmp_path=tmp_path))[
            "version"
        ]
        == v1
    )
    # Its production read is as new as the alias move, so v2's promotion is in it too.
    assert (
        shown(modelreg(*flags, "--json", "show", "fraud", "production", tmp_path=tmp_path))[
            "version"
        ]
        == v2
    )
    elsewhere = tmp_path / "another-home"
    assert (
        shown(modelreg(*flags, "--json", "show", "fraud", "production", tmp_path=elsewhere))[
            "version"
        ]
        == v1
    )


@pytest.mark.parametrize(
    ("read_url", "said"),
    [
        ("sqlite:///copy.db", "a read replica is a PostgreSQL standby"),
        ("http://127.0.0.1:9", "a read replica is a PostgreSQL standby"),
        ("postgresql://[::1", "invalid read replica URL"),
    ],
)
def test_a_bad_read_url_is_one_line_and_exit_2(
    replicated: Replicated, tmp_path: Path, read_url: str, said: str
) -> None:
    result = modelreg(
        "--registry", replicated.primary_url, "--read-registry", read_url, "models",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert said in result.stderr


def test_a_read_url_for_a_sqlite_registry_is_refused(
    tmp_path: Path, replicated: Replicated
) -> None:
    result = modelreg(
        "--registry", f"sqlite:///{tmp_path}/reg.db", "models",
        tmp_path=tmp_path, env={"MODELREG_READ_URL": replicated.replica_url},
    )  # fmt: skip
    assert result.returncode == 2
    assert "needs a postgresql:// registry" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_server_with_a_bad_read_url_does_not_start(
    tmp_path: Path, replicated: Replicated
) -> None:
    result = modelreg(
        "server", "--registry", replicated.primary_url,
        "--read-registry", f"sqlite:///{tmp_path}/copy.db", "--port", "9",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "a read replica is a PostgreSQL standby" in result.stderr


def test_webhook_deliver_with_a_read_replica_delivers_through_the_primary(
    replicated: Replicated, tmp_path: Path
) -> None:
    """Deliveries are writes: with a read URL set, ``webhook deliver`` uses the primary
    (it refused to run: the store it got was not a database store)."""
    primary, replica = replicated.primary_url, replicated.replica_url
    with replicated.primary_store() as store:
        hook, _secret = store.add_webhook("http://127.0.0.1:9/hook", ["registered"])
    result = modelreg(
        "--registry", primary, "--read-registry", replica, "--json", "webhook", "deliver",
        tmp_path=tmp_path,
    )  # fmt: skip
    report = shown(result)
    with replicated.primary_store() as store:
        assert [w.id for w in store.list_webhooks()] == [hook.id]
    assert isinstance(report, dict)
