"""``modelreg gc`` through the CLI (in-process, ``tests/cli/cli_harness.py``) on SQLite and
PostgreSQL, with the artifacts and regions as folders under the test's home: its
output, ``--json``, ``--dry-run``, ``--keep-versions``, and one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from cli.cli_harness import MODEL, Harness

from registry.artifacts import LocalArtifactStore
from registry.models import VersionCreate
from registry.outbox import Outbox

DAY = 86400


@pytest.fixture
def cli(store_url: str, tmp_path: Path) -> Harness:
    return Harness(store_url, tmp_path)


def artifacts(cli: Harness) -> LocalArtifactStore:
    return LocalArtifactStore(cli.tmp_path / "artifacts")


def upload(cli: Harness, *, days_old: float = 2) -> str:
    """Bytes stored with no registration, ``days_old`` ago; returns their sha256."""
    ref = artifacts(cli).put_file(Path(cli.artifact()))
    age(cli, ref.sha256, days_old)
    return ref.sha256


def age(cli: Harness, sha256: str, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(artifacts(cli).local_path(sha256), (then, then))


def held(cli: Harness) -> set[str]:
    return {obj.sha256 for obj in artifacts(cli).iter_content()}


def registered(cli: Harness, name: str = MODEL) -> str:
    """Register a version through the CLI, its bytes two days old; returns their sha256."""
    version = cli.register(name)
    sha = str(cli.json("show", name, str(version))["artifact"]["sha256"])
    age(cli, sha, 2)
    return sha


def test_gc_removes_an_old_orphan_and_says_so(cli: Harness) -> None:
    kept = registered(cli)
    orphan = upload(cli)
    result = cli.run("gc")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"removed artifacts {orphan[:12]} ")
    assert lines[-1].startswith("removed 1 objects, ")
    assert "kept 1 referenced and 0 younger than 24h" in lines[-1]
    assert "1 never registered (logged in" in lines[-1]
    assert held(cli) == {kept}
    log = (cli.tmp_path / "home" / "gc.log").read_text().splitlines()
    assert [json.loads(line)["collected"]["sha256"] for line in log] == [orphan]


def test_gc_json_lists_each_removal_with_its_event(cli: Harness) -> None:
    first = registered(cli)
    second = registered(cli)
    cli.json("versions", MODEL)  # the model exists
    with cli.store() as store:
        store.delete_version(MODEL, 1)
    report = cli.json("gc")
    assert [(a["store"], a["sha256"]) for a in report["artifacts"]] == [("artifacts", first)]
    assert report["bytes_freed"] == report["artifacts"][0]["size"] > 0
    assert report["dry_run"] is False and report["min_age_s"] == DAY
    events = cli.json("events")
    [collected] = [e for e in events if e["kind"] == "artifact.collected"]
    assert collected["seq"] == report["artifacts"][0]["event"]
    assert (collected["model"], collected["version"]) == (MODEL, 1)
    assert collected["details"]["sha256"] == first
    assert collected["actor"] == "oncall@test"
    assert held(cli) == {second}


def test_a_dry_run_lists_and_changes_nothing(cli: Harness) -> None:
    for _ in range(2):
        registered(cli)
    orphan = upload(cli)
    before, seq = held(cli), cli.json("events")[-1]["seq"]
    result = cli.run("gc", "--dry-run", "--keep-versions", "1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"would delete version 1 of {MODEL}"
    assert any(line.startswith(f"would remove artifacts {orphan[:12]}") for line in lines)
    assert lines[-1].startswith("would remove 2 objects, ")
    assert held(cli) == before
    assert cli.json("events")[-1]["seq"] == seq
    assert [v["version"] for v in cli.json("versions", MODEL)["versions"]] == [2, 1]
    assert not (cli.tmp_path / "home" / "gc.log").exists()


def test_keep_versions_deletes_old_versions_through_the_store(cli: Harness) -> None:
    shas = [registered(cli) for _ in range(3)]
    cli.json("alias", "set", MODEL, "shadow", "1")
    report = cli.json("gc", "--keep-versions", "1")
    assert [(v["version"], v["deleted"]) for v in report["versions"]] == [(2, True)]
    assert [v["version"] for v in cli.json("versions", MODEL)["versions"]] == [3, 1]
    assert held(cli) == {shas[0], shas[2]}
    kinds = [e["kind"] for e in cli.json("history", MODEL, "--all")["events"]]
    assert kinds[-2:] == ["version.deleted", "artifact.collected"]
    history = cli.run("history", MODEL, "--all").stdout
    assert f"version 2 bytes {shas[1][:12]} removed from artifacts" in history


def test_a_fresh_upload_stays_under_the_default_min_age(cli: Harness) -> None:
    """An upload whose registration has not committed yet is never collected."""
    fresh = upload(cli, days_old=0)
    report = cli.json("gc")
    assert report["artifacts"] == [] and report["young"] == 1
    assert held(cli) == {fresh}
    assert cli.json("gc", "--min-age", "0")["artifacts"][0]["sha256"] == fresh
    assert held(cli) == set()


def test_a_registration_queued_in_the_outbox_keeps_its_bytes(cli: Harness) -> None:
    """Bytes whose registration waits in this machine's outbox (the registry was down)
    are not referenced yet, however old: gc keeps them for the drain."""
    orphan = upload(cli)
    queued = artifacts(cli).put_file(Path(cli.artifact()))
    age(cli, queued.sha256, 2)
    Outbox(cli.tmp_path / "home" / "outbox.db").enqueue(MODEL, queued, VersionCreate.parse({}))
    removed = [a["sha256"] for a in cli.json("gc")["artifacts"]]
    assert removed == [orphan]
    assert held(cli) == {queued.sha256}


def test_a_subject_manifest_noted_while_the_registry_was_down_keeps_its_bytes(
    cli: Harness,
) -> None:
    """A manifest stored while the registry was down waits as a note for the drain: its
    bytes are referenced by no row yet, however old, and gc keeps them."""
    from registry.config import Settings
    from registry.subjects import remember_pending

    orphan = upload(cli)
    noted = artifacts(cli).put_file(Path(cli.artifact()), format="subject-manifest")
    age(cli, noted.sha256, 2)
    settings = Settings(home=cli.tmp_path / "home", registry_url=cli.url)
    remember_pending(settings, "transactions", "2026-11-01", noted)
    removed = [a["sha256"] for a in cli.json("gc")["artifacts"]]
    assert removed == [orphan]
    assert held(cli) == {noted.sha256}


def test_region_folders_are_swept_too(cli: Harness) -> None:
    region = LocalArtifactStore(cli.tmp_path / "home" / "regions" / "eu-west")
    path = cli.tmp_path / "replica.bin"
    path.write_bytes(b"a replica of nothing")
    ref = region.put_file(path)
    then = time.time() - 2 * DAY
    os.utime(region.local_path(ref.sha256), (then, then))
    report = cli.json("gc")
    assert [(a["store"], a["sha256"]) for a in report["artifacts"]] == [("eu-west", ref.sha256)]
    assert hashlib.sha256(b"a replica of nothing").hexdigest() == ref.sha256
    assert list(region.iter_content()) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--keep-versions", "-1"), "--keep-versions"),
        (("--keep-versions", "many"), "--keep-versions"),
        (("--min-age", "3x"), "invalid duration '3x'"),
        (("--min-age", "-1h"), "invalid duration '-1h'"),
        (("--min-age", ""), "invalid duration ''"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_and_nothing_goes(
    cli: Harness, args: tuple[str, ...], says: str
) -> None:
    orphan = upload(cli)
    message = cli.fail("gc", *args, code=2)
    assert says in message
    assert held(cli) == {orphan}
