"""Subject lineage and erasure through the CLI, on a real SQLite registry.

``lineage subject``, ``erasure request/list/justify``, ``dataset manifest``, the
"retrain required" marker of ``models`` and ``show``, bad input as one line and a
non-zero exit, and the raw subject id never stored anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cli_harness import BASE_META, MODEL, Harness

from registry.config import Settings
from registry.subjects import load_secret, subject_key

OCTOBER, NOVEMBER = "2026-10-01", "2026-11-01"
ALICE, BOB, CAROL = "cust-000001", "cust-000002", "cust-000003"


@pytest.fixture
def reg(registry_url: str, tmp_path: Path) -> Harness:
    """A harness whose secret is the key file under its home (never the caller's env)."""
    harness = Harness(registry_url, tmp_path)
    harness.env["MODELREG_SUBJECT_SECRET"] = None
    return harness


def lineage_on(version: str) -> dict[str, Any]:
    datasets = [{**BASE_META["lineage"]["datasets"][0], "version": version}]
    return {"lineage": {**BASE_META["lineage"], "datasets": datasets}}


def ids_file(reg: Harness, *ids: str, name: str = "ids.txt") -> str:
    path = reg.tmp_path / name
    path.write_text("".join(f"{i}\n" for i in ids))
    return str(path)


def record(reg: Harness, version: str, *ids: str) -> dict[str, Any]:
    path = ids_file(reg, *ids, name=f"ids-{version}.txt")
    found: dict[str, Any] = reg.json(
        "dataset", "manifest", f"transactions@{version}", "--subjects", path
    )
    return found


def key_of(reg: Harness, subject_id: str) -> str:
    settings = Settings(home=Path(reg.env["MODELREG_HOME"] or ""))
    return subject_key(load_secret(settings), subject_id)


@pytest.fixture
def world(reg: Harness) -> Harness:
    """October holds Alice and Bob, November Bob and Carol; v1 trained on October,
    v2 on November and in Production."""
    record(reg, OCTOBER, ALICE, BOB)
    record(reg, NOVEMBER, BOB, CAROL)
    assert reg.register(changes=lineage_on(OCTOBER)) == 1
    assert reg.register(changes=lineage_on(NOVEMBER)) == 2
    reg.promote(2)
    return reg


# ---------------------------------------------------------------- manifests


def test_a_manifest_is_recorded_from_a_file_of_ids(reg: Harness) -> None:
    found = record(reg, OCTOBER, ALICE, BOB, ALICE)
    assert found["dataset"] == "transactions"
    assert found["version"] == OCTOBER
    assert found["subjects"] == 2
    assert found["recorded_by"] == "oncall@test"
    shown = reg.json("dataset", "manifest", f"transactions@{OCTOBER}")
    assert shown["sha256"] == found["sha256"]


def test_recording_the_same_manifest_again_changes_nothing(reg: Harness) -> None:
    first = record(reg, OCTOBER, ALICE, BOB)
    assert record(reg, OCTOBER, BOB, ALICE) == first


def test_another_manifest_for_a_recorded_version_is_refused(reg: Harness) -> None:
    record(reg, OCTOBER, ALICE)
    path = ids_file(reg, CAROL)
    reg.fail("dataset", "manifest", f"transactions@{OCTOBER}", "--subjects", path, code=4)
    assert reg.json("dataset", "manifest", f"transactions@{OCTOBER}")["subjects"] == 1


def test_a_csv_column_is_read_and_blank_ids_are_skipped(reg: Harness) -> None:
    path = reg.tmp_path / "rows.csv"
    path.write_text(f"amount,customer_id\n1.0,{ALICE}\n2.0,\n3.0,{BOB}\n4.0,{ALICE}\n")
    args = ["dataset", "manifest", f"transactions@{OCTOBER}", "--subjects", str(path)]
    result = reg.run(*args, "--column", "customer_id")
    assert result.exit_code == 0, result.output
    assert "2 subjects" in result.stdout
    assert result.stderr.strip() == "skipped 1 blank ids"


def test_a_parquet_column_is_read(reg: Harness) -> None:
    import pandas as pd

    path = reg.tmp_path / "rows.parquet"
    pd.DataFrame({"customer_id": [ALICE, BOB, None], "amount": [1.0, 2.0, 3.0]}).to_parquet(path)
    args = ["dataset", "manifest", f"transactions@{OCTOBER}", "--subjects", str(path)]
    assert reg.json(*args, "--column", "customer_id")["subjects"] == 2


def test_the_manifest_artifact_lists_the_keys_never_the_ids(reg: Harness) -> None:
    found = record(reg, OCTOBER, ALICE, BOB)
    sha = found["sha256"]
    text = (reg.tmp_path / "artifacts" / "sha256" / sha[:2] / sha).read_text()
    assert text.splitlines()[1:] == sorted([key_of(reg, ALICE), key_of(reg, BOB)])
    assert ALICE not in text


# ---------------------------------------------------------------- lineage subject


def test_lineage_subject_finds_datasets_versions_and_what_serves(world: Harness) -> None:
    found = world.json("lineage", "subject", BOB)
    assert found["subject"] == key_of(world, BOB)
    assert {(d["dataset"], d["version"]) for d in found["datasets"]} == {
        ("transactions", OCTOBER),
        ("transactions", NOVEMBER),
    }
    versions = [(v["name"], v["version"], v["live"]) for v in found["versions"]]
    assert versions == [(MODEL, 2, True), (MODEL, 1, False)]  # live first
    assert found["versions"][0]["why_live"] == ["Production"]
    assert found["erasures"] == []


def test_lineage_subject_of_a_subject_only_in_old_data(world: Harness) -> None:
    found = world.json("lineage", "subject", ALICE)
    assert [d["version"] for d in found["datasets"]] == [OCTOBER]
    assert [(v["version"], v["live"]) for v in found["versions"]] == [(1, False)]


def test_lineage_subject_by_key_is_the_same_answer(world: Harness) -> None:
    by_id = world.json("lineage", "subject", BOB)
    assert world.json("lineage", "subject", "--key", key_of(world, BOB)) == by_id


def test_lineage_subject_reads_the_id_from_stdin(world: Harness) -> None:
    result = world.run("lineage", "subject", "-", "--json", stdin=f"{BOB}\n")
    assert result.exit_code == 0, result.output
    assert '"live": true' in result.stdout


def test_lineage_subject_human_output_never_prints_the_id(world: Harness) -> None:
    result = world.run("lineage", "subject", BOB)
    assert result.exit_code == 0, result.output
    assert BOB not in result.stdout
    assert f"subject {key_of(world, BOB)[:12]}" in result.stdout
    assert "in 2 dataset versions" in result.stdout
    assert "Production" in result.stdout
    assert "live now: 1 of 2 versions" in result.stdout


def test_an_unknown_subject_has_no_lineage(world: Harness) -> None:
    found = world.json("lineage", "subject", "cust-999999")
    assert found["datasets"] == [] and found["versions"] == []
    result = world.run("lineage", "subject", "cust-999999")
    assert "no recorded dataset version holds this subject" in result.stdout


# ---------------------------------------------------------------- erasure


def test_an_erasure_request_flags_only_live_versions(world: Harness) -> None:
    found = world.json("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    assert found["subject"] == key_of(world, BOB)
    assert found["reason"] == "ticket GDPR-17"
    assert found["open"] is True
    assert [(i["name"], i["version"], i["state"]) for i in found["items"]] == [
        (MODEL, 2, "retrain required")
    ]
    (listed,) = world.json("erasure", "list", "--open")
    assert listed["id"] == found["id"]
    hits = world.json("lineage", "subject", BOB)
    assert hits["versions"][0]["retrain_required"] == [found["id"]]
    assert [r["id"] for r in hits["erasures"]] == [found["id"]]


def test_the_request_prints_its_id_and_the_flagged_versions(world: Harness) -> None:
    result = world.run("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"erasure request #1 for subject {key_of(world, BOB)[:12]}…",
        f"  {MODEL} version 2: retrain required",
    ]


def test_models_and_show_mark_versions_that_need_a_retrain(world: Harness) -> None:
    assert world.json("models")[0]["retrain_required"] == []
    assert "retrain required" not in world.run("models").stdout
    world.json("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    assert world.json("models")[0]["retrain_required"] == [2]
    table = world.run("models").stdout
    assert "retrain required" in table and "v2 (#1)" in table
    assert world.json("show", MODEL, "2")["retrain_required"] == [1]
    assert world.json("show", MODEL, "1")["retrain_required"] == []
    page = world.run("show", MODEL, "production").stdout
    assert "request #1" in page and "retrain required" in page


def test_justify_closes_the_item_and_the_marker(world: Harness) -> None:
    world.json("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    found = world.json(
        "erasure", "justify", "1", MODEL, "2", "--reason", "legal hold until 2027", user="dpo@test"
    )
    (item,) = found["items"]
    assert item["state"] == "justified"
    assert item["justification"] == "legal hold until 2027"
    assert item["closed_by"] == "dpo@test"
    assert found["open"] is False
    assert world.json("erasure", "list", "--open") == []
    assert len(world.json("erasure", "list")) == 1
    assert world.json("models")[0]["retrain_required"] == []
    assert "justified" in world.run("erasure", "list").stdout


def test_a_retrain_on_data_without_the_subject_closes_the_item(world: Harness) -> None:
    world.json("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    record(world, "2026-12-01", CAROL)
    v3 = world.register(changes=lineage_on("2026-12-01"))
    (request,) = world.json("erasure", "list")
    assert request["items"][0]["state"] == "retrained"
    assert request["items"][0]["closed_by_version"] == v3
    assert world.json("models")[0]["retrain_required"] == []


def test_erasure_list_filters_by_model(world: Harness) -> None:
    world.json("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    world.register(name="other-model")
    assert len(world.json("erasure", "list", "--model", MODEL)) == 1
    assert world.json("erasure", "list", "--model", "other-model") == []
    world.fail("erasure", "list", "--model", "no-such-model", code=3)


def test_a_request_for_a_subject_nothing_live_used_flags_nothing(world: Harness) -> None:
    result = world.run("erasure", "request", ALICE, "--reason", "ticket GDPR-18")
    assert result.exit_code == 0, result.output
    assert "nothing to retrain" in result.stdout


# ---------------------------------------------------------------- bad input


def test_an_erasure_request_needs_a_reason(world: Harness) -> None:
    before = world.snapshot()
    assert "--reason" in world.fail("erasure", "request", BOB, code=2)
    assert "reason" in world.fail("erasure", "request", BOB, "--reason", "  ", code=2)
    assert world.json("erasure", "list") == []
    assert world.snapshot() == before


def test_justifying_an_unknown_request_is_not_found(world: Harness) -> None:
    line = world.fail("erasure", "justify", "7", MODEL, "2", "--reason", "x", code=3)
    assert "7" in line


def test_justify_needs_a_reason(world: Harness) -> None:
    world.json("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    world.fail("erasure", "justify", "1", MODEL, "2", "--reason", " ", code=2)
    assert world.json("erasure", "list", "--open") != []


@pytest.mark.parametrize("key", ["abc", "G" * 64, "a" * 63, "a" * 65])
def test_a_malformed_key_is_refused(world: Harness, key: str) -> None:
    assert "invalid subject key" in world.fail("lineage", "subject", "--key", key, code=2)


@pytest.mark.parametrize(
    "args",
    [
        ["lineage", "subject"],
        ["lineage", "subject", BOB, "--key", "a" * 64],
        ["erasure", "request", "--reason", "x"],
    ],
)
def test_exactly_one_of_id_and_key(world: Harness, args: list[str]) -> None:
    assert "--key" in world.fail(*args, code=2)


def test_a_blank_id_is_refused(world: Harness) -> None:
    assert "blank" in world.fail("lineage", "subject", "  ", code=2)


def test_a_key_file_others_can_read_is_one_line(world: Harness) -> None:
    path = Path(world.env["MODELREG_HOME"] or "") / "subject.key"
    os.chmod(path, 0o644)
    line = world.fail("lineage", "subject", BOB, code=2)
    assert "readable by others" in line and "chmod 600" in line


@pytest.mark.parametrize(
    ("ref", "why"),
    [("transactions", "NAME@VERSION"), ("@2026-10-01", "invalid dataset version")],
)
def test_a_malformed_dataset_version_is_refused(reg: Harness, ref: str, why: str) -> None:
    path = ids_file(reg, ALICE)
    assert why in reg.fail("dataset", "manifest", ref, "--subjects", path, code=2)


def test_a_csv_without_the_column_is_refused(reg: Harness) -> None:
    path = reg.tmp_path / "rows.csv"
    path.write_text("amount\n1.0\n")
    args = ["dataset", "manifest", f"transactions@{OCTOBER}", "--subjects", str(path)]
    assert "no column 'customer_id'" in reg.fail(*args, "--column", "customer_id", code=2)
    assert "--column" in reg.fail(*args, code=2)


def test_a_dataset_without_a_manifest_is_not_found(reg: Harness) -> None:
    reg.fail("dataset", "manifest", f"transactions@{OCTOBER}", code=3)


# ---------------------------------------------------------------- the id stays here


def test_the_raw_id_never_reaches_the_database_or_the_artifacts(world: Harness) -> None:
    world.json("erasure", "request", BOB, "--reason", "ticket GDPR-17")
    world.json("erasure", "justify", "1", MODEL, "2", "--reason", "legal hold")
    world.json("lineage", "subject", BOB)
    stored = [p for p in world.tmp_path.iterdir() if p.name.startswith("registry.db")]
    stored += [p for p in (world.tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert any(p.name == "registry.db" for p in stored)
    for path in stored:
        data = path.read_bytes()
        for subject_id in (ALICE, BOB, CAROL):
            assert subject_id.encode() not in data, (path, subject_id)
    assert key_of(world, BOB).encode() in b"".join(p.read_bytes() for p in stored)


def test_drain_records_a_manifest_noted_while_the_registry_was_down(reg: Harness) -> None:
    """``modelreg drain`` records the noted manifests before the queued registrations,
    as the drain flow does: a retrain is judged on its data's manifest."""
    import socket

    from registry.subjects import remember_pending, store_manifest

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = Settings(
        home=reg.tmp_path / "home",
        registry_url=f"postgresql://postgres@127.0.0.1:{port}/registry?connect_timeout=2",
        artifact_root=str(reg.tmp_path / "artifacts"),
    )
    secret = load_secret(down)
    ref, _keys = store_manifest(down, [ALICE, BOB], secret=secret)
    remember_pending(down, "transactions", OCTOBER, ref)
    result = reg.run("drain")
    assert result.exit_code == 0, result.output
    shown = reg.json("dataset", "manifest", f"transactions@{OCTOBER}")
    assert shown["sha256"] == ref.sha256 and shown["subjects"] == 2
    lineage = reg.json("lineage", "subject", "--key", subject_key(secret, ALICE))
    assert [(d["dataset"], d["version"]) for d in lineage["datasets"]] == [
        ("transactions", OCTOBER)
    ]
    assert not list((reg.tmp_path / "home" / "subject-manifests.pending").glob("*.json"))
