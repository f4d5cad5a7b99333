"""The list commands at scale (#13): history, versions, events and lineage impact page,
filter by default, stream, and end quietly when their reader goes away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_harness import BASE_META, MODEL, Harness, first_line_then_hang_up

from registry.models import VersionCreate

MODELREG = Path(sys.executable).parent / "modelreg"


@pytest.fixture
def registry_url(backend_url: str) -> str:
    return backend_url


def _registered(reg: Harness, count: int) -> None:
    """``count`` more versions: the first through the CLI, the rest through the store
    with the same bytes (the CLI path is tested elsewhere; this is setup)."""
    first = reg.register()
    with reg.store() as store:
        artifact = store.get_version(MODEL, first).artifact
        for _ in range(count - 1):
            store.register(MODEL, artifact, VersionCreate.parse(BASE_META))


def _alias_moves(reg: Harness, count: int) -> None:
    """``count`` pointer changes: ``challenger`` moved between versions 1 and 2."""
    with reg.store() as store:
        current = store.get_model(MODEL).aliases.get("challenger")
        for _ in range(count):
            current = 2 if current == 1 else 1
            store.set_aliases(MODEL, {"challenger": current}, reason="setup")


def _full_log(reg: Harness) -> list[dict[str, Any]]:
    return list(reg.json("history", MODEL, "--all", "--limit", "0")["events"])


def _moment() -> str:
    """Now, strictly between the events written before and after it."""
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    return moment


@pytest.fixture
def busy(reg: Harness) -> Harness:
    """A model whose newest events mix 60 alias moves with registrations: 2 versions,
    60 moves, then 3 more versions."""
    _registered(reg, 2)
    _alias_moves(reg, 60)
    _registered(reg, 3)
    return reg


# ---------------------------------------------------------------- history


def test_history_shows_the_50_latest_pointer_changes_newest_last(busy: Harness) -> None:
    log = _full_log(busy)
    moves = [e for e in log if e["kind"] == "alias"]
    page = busy.json("history", MODEL)

    assert page["events"] == moves[-50:]  # no registration among them, oldest first
    assert page["next_cursor"] == str(moves[-50]["seq"])


def test_history_table_says_on_stderr_that_earlier_events_exist(busy: Harness) -> None:
    result = busy.run("history", MODEL)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 50  # header, rule, one line per event
    assert all("alias challenger" in line for line in lines[2:])
    newest = _full_log(busy)[-1]  # a registration: not shown by default
    assert newest["kind"] == "version.registered"
    (hint,) = result.stderr.splitlines()
    assert hint.startswith("… earlier events exist: --cursor ")


def test_history_all_adds_registrations_and_n_limits(busy: Harness) -> None:
    log = _full_log(busy)

    page = busy.json("history", MODEL, "--all", "-n", "5")

    assert page["events"] == log[-5:]
    assert [e["kind"] for e in page["events"]][-3:] == ["version.registered"] * 3


def test_a_short_history_shows_everything_and_has_no_cursor(reg: Harness) -> None:
    _registered(reg, 2)
    _alias_moves(reg, 3)
    result = reg.run("history", MODEL)
    page = reg.json("history", MODEL)

    assert [e["to_value"] for e in page["events"]] == ["1", "2", "1"]
    assert page["next_cursor"] is None
    assert result.stderr == ""


def test_history_since_a_sequence_number(busy: Harness) -> None:
    moves = [e for e in _full_log(busy) if e["kind"] == "alias"]
    since = moves[-4]["seq"]

    page = busy.json("history", MODEL, "--since", str(since))

    assert page == {"events": moves[-3:], "next_cursor": None}


def test_history_since_a_time(reg: Harness) -> None:
    _registered(reg, 2)
    _alias_moves(reg, 5)
    moment = _moment()
    _alias_moves(reg, 2)
    moves = [e for e in _full_log(reg) if e["kind"] == "alias"]

    assert reg.json("history", MODEL, "--since", moment)["events"] == moves[-2:]
    naive_utc = datetime.fromisoformat(moment).replace(tzinfo=None).isoformat()
    assert reg.json("history", MODEL, "--since", naive_utc)["events"] == moves[-2:]
    everything = reg.json("history", MODEL, "--since", "2000-01-01T00:00:00Z")
    assert everything["events"] == moves


def test_json_pages_hold_every_event_once_while_new_events_arrive(busy: Harness) -> None:
    log = _full_log(busy)
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        args = ["--cursor", cursor] if cursor else []
        page = busy.json("history", MODEL, "--all", "-n", "25", *args)
        pages.append(page["events"])
        if cursor is not None:  # the page read again after new events: the same
            _alias_moves(busy, 1)
            assert busy.json("history", MODEL, "--all", "-n", "25", *args) == page
        cursor = page["next_cursor"]
        if cursor is None:
            break
        _registered(busy, 1)  # new events between page reads

    read = [e for page in reversed(pages) for e in page]
    assert read == log  # every event exactly once, in order, none of the new ones
    assert len(pages) == -(-len(log) // 25)


def test_limit_0_streams_every_event_oldest_first_in_pages(
    busy: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = busy.json("events", "--model", MODEL, "--limit", "10000")
    monkeypatch.setattr("registry.cli.paging.PAGE", 7)  # many store pages for a short log

    streamed = busy.json("history", MODEL, "--all", "--limit", "0")
    table = busy.run("history", MODEL, "--all", "--limit", "0")

    assert streamed == {"events": log, "next_cursor": None}
    seqs = [int(line.split()[0]) for line in table.stdout.splitlines()[2:]]
    assert seqs == [e["seq"] for e in log]
    assert table.stderr == ""


def test_events_streams_its_limit_in_pages(busy: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    log = busy.json("events", "--limit", "10000")
    monkeypatch.setattr("registry.cli.paging.PAGE", 7)

    assert busy.json("events", "--since", "3", "--limit", "30") == log[3:33]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--since", "yesterday"], "neither a sequence number nor an ISO 8601 time"),
        (["--limit", "10001"], "--limit"),
        (["--at", "2026-01-01", "--since", "3"], "--at takes no --since"),
        (["--at", "2026-01-01", "--all"], "--at takes no --all"),
        (["--cursor", "0"], "--cursor"),
    ],
)
def test_bad_history_options_fail_in_one_line(reg: Harness, args: list[str], fragment: str) -> None:
    reg.register()
    assert fragment in reg.fail("history", MODEL, *args, code=2)


# ---------------------------------------------------------------- versions


def test_versions_page_with_a_cursor(reg: Harness) -> None:
    _registered(reg, 7)

    first = reg.json("versions", MODEL, "--limit", "3")
    second = reg.json("versions", MODEL, "--limit", "3", "--cursor", first["next_cursor"])
    _registered(reg, 1)  # a new version does not shift the older pages
    third = reg.json("versions", MODEL, "--limit", "3", "--cursor", second["next_cursor"])

    numbers = [[v["version"] for v in page["versions"]] for page in (first, second, third)]
    assert numbers == [[7, 6, 5], [4, 3, 2], [1]]
    assert (first["next_cursor"], second["next_cursor"], third["next_cursor"]) == ("5", "2", None)


def test_versions_shows_the_20_newest_and_says_how_to_see_more(reg: Harness) -> None:
    _registered(reg, 23)

    result = reg.run("versions", MODEL)

    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[2:]
    assert [row.split()[0] for row in rows] == [str(v) for v in range(23, 3, -1)]
    assert max(len(line) for line in result.stdout.splitlines()) <= 120
    assert result.stderr.strip() == "… older versions exist: --cursor 4 shows the next page"


def test_versions_by_stage(reg: Harness) -> None:
    _registered(reg, 3)
    reg.json("promote", MODEL, "2", "--stage", "Staging")

    assert [
        v["version"] for v in reg.json("versions", MODEL, "--stage", "staging")["versions"]
    ] == [2]
    assert (
        "has no versions in Production"
        in reg.run("versions", MODEL, "--stage", "production").stdout
    )
    assert "unknown stage 'live'" in reg.fail("versions", MODEL, "--stage", "live", code=2)


# ---------------------------------------------------------------- lineage impact


def test_lineage_impact_lists_live_versions_then_counts_the_rest(reg: Harness) -> None:
    _registered(reg, 3)
    reg.promote(2)

    live = reg.run("lineage", "impact", "--dataset", "transactions@2026-11-01")
    every = reg.run("lineage", "impact", "--dataset", "transactions@2026-11-01", "--all")

    lines = live.stdout.splitlines()
    assert [line.split()[:4] for line in lines[2:-1]] == [[MODEL, "2", "Production", "Production"]]
    assert lines[-1] == "and 2 more versions used it (--all lists them)"
    versions = [line.split()[1] for line in every.stdout.splitlines()[2:]]
    assert versions == ["2", "1", "3"]  # live first, then by version
    assert [h["version"] for h in reg.json("lineage", "impact", "--commit", "9f1c")] == [2, 1, 3]


def test_lineage_impact_with_nothing_live_says_so_and_counts(reg: Harness) -> None:
    _registered(reg, 2)
    out = reg.run("lineage", "impact", "--commit", "9f1c2ab").stdout
    assert out.splitlines() == [
        "no live version used it",
        "and 2 more versions used it (--all lists them)",
    ]


# ---------------------------------------------------------------- a reader that goes away


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    """An SQLite registry whose history prints far more than a pipe holds (~200 kB)."""
    reg = Harness(
        f"sqlite:///{tmp_path_factory.mktemp('pipe') / 'registry.db'}",
        tmp_path_factory.mktemp("pipe-home"),
    )
    _registered(reg, 2)
    _alias_moves(reg, 2500)
    return reg


@pytest.mark.parametrize(
    "args",
    [
        ["history", MODEL, "--all", "--limit", "0"],
        ["history", MODEL, "--all", "--limit", "0", "--json"],
        ["events", "--limit", "10000"],
    ],
    ids=["history", "history-json", "events"],
)
def test_a_closed_pipe_ends_the_command_quietly(long_log: Harness, args: list[str]) -> None:
    env = {**os.environ, **{k: v for k, v in long_log.env.items() if v is not None}}
    env.pop("MODELREG_URL", None)
    first, code, stderr = first_line_then_hang_up(
        [str(MODELREG), "--registry", long_log.url, *args], env
    )

    assert first.strip()
    assert (code, stderr) == (0, "")


def test_history_piped_to_head_exits_0_with_nothing_on_stderr(long_log: Harness) -> None:
    env = {**os.environ, **{k: v for k, v in long_log.env.items() if v is not None}}
    env.pop("MODELREG_URL", None)
    command = f"'{MODELREG}' --registry '{long_log.url}' history {MODEL} --all --limit 0"
    shell = f"set -o pipefail; {command} | head -n 1"

    result = subprocess.run(
        ["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.split()[:2] == ["seq", "at"]
