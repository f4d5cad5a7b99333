"""Human output: what an on-call engineer reads without ``--json``."""

from __future__ import annotations

import re

from cli_harness import MODEL, Harness

UTC_SECOND = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b")


def _out(reg: Harness, *args: str) -> str:
    result = reg.run(*args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def _row(text: str, first_cell: str) -> list[str]:
    """The cells of the table row that starts with ``first_cell``."""
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{text}")


def test_models_on_an_empty_registry_says_how_to_start(reg: Harness) -> None:
    assert "modelreg register" in _out(reg, "models")


def test_models_table_shows_what_serves_now(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.promote(1)
    reg.json("alias", "set", MODEL, "challenger", "2")
    row = _row(_out(reg, "models"), MODEL)
    # production, rollback target (none: v1 is the first to serve), staging, aliases, …
    assert row[1:7] == ["1", "-", "-", "challenger=2", "3", "2"]
    assert UTC_SECOND.search(row[7])
    assert "alias challenger" in row[7]


def test_versions_table_has_one_row_per_version_with_utc_times(reg: Harness) -> None:
    reg.register()
    reg.register()
    out = _out(reg, "versions", MODEL)
    assert _row(out, "2")[1] == "None"
    assert UTC_SECOND.search(_row(out, "1")[3])


def test_tables_are_not_wrapped_when_piped(reg: Harness) -> None:
    reg.register(changes={"metrics": {f"metric_{i}": 0.5 for i in range(20)}})
    out = _out(reg, "search", f"name = '{MODEL}'")
    (row,) = [line for line in out.splitlines() if "metric_0" in line]
    assert "metric_19=0.5" in row


def test_show_prints_each_section(reg: Harness) -> None:
    reg.register()
    out = _out(reg, "show", MODEL, "1")
    for section in ("artifact", "signature", "metrics", "params", "tags", "lineage"):
        assert f"\n{section}\n" in out
    sha = reg.json("show", MODEL, "1")["artifact"]["sha256"]
    assert f"sha256  {sha}" in out
    assert "transactions@2026-11-01 (120000 rows, 2026-10-01..2026-10-31" in out


def test_diff_shows_deltas_and_retyped_features(reg: Harness) -> None:
    reg.register()
    reg.register(
        changes={
            "metrics": {"auc": 0.95, "f1": 0.79},
            "signature": {
                "features": [
                    {"name": "merchant_category", "dtype": "category"},
                    {"name": "amount", "dtype": "float32"},
                ]
            },
        }
    )
    out = _out(reg, "diff", MODEL, "1", "2")
    assert re.search(r"auc\s+0\.9 -> 0\.95\s+\(\+0\.05\)", out)
    assert re.search(r"amount\s+retyped float64 -> float32", out)
    assert re.search(r"order\s+amount, merchant_category -> merchant_category, amount", out)
    assert "params\n  no differences" in out


def test_promote_says_what_moved(reg: Harness) -> None:
    reg.register()
    out = _out(reg, "promote", MODEL, "1", "--stage", "Staging")
    assert f"{MODEL}: version 1: None -> Staging" in out
    assert "generation 1" in out


def test_promote_to_the_same_stage_says_nothing_changed(reg: Harness) -> None:
    reg.register()
    reg.json("promote", MODEL, "1", "--stage", "Staging")
    assert "nothing changed" in _out(reg, "promote", MODEL, "1", "--stage", "Staging")


def test_rollback_says_which_version_serves_now(reg: Harness) -> None:
    for version in (1, 2):
        reg.register()
        reg.promote(version)
    assert "rollback of Production: version 2 -> 1" in _out(
        reg, "rollback", MODEL, "--reason", "bad"
    )


def test_register_prints_the_version_number(reg: Harness) -> None:
    out = _out(reg, "register", MODEL, "--artifact", reg.artifact(), "--meta", reg.meta())
    assert out.startswith(f"registered {MODEL} version 1 ")


def test_history_at_says_when_nothing_served(reg: Harness) -> None:
    reg.register()
    out = _out(reg, "history", MODEL, "--at", "2001-02-03 04:05:06")
    assert out.strip() == f"{MODEL}: no version served in Production at 2001-02-03T04:05:06Z"


def test_history_at_converts_an_offset_time_to_utc(reg: Harness) -> None:
    reg.register()
    out = _out(reg, "history", MODEL, "--at", "2001-02-03T04:05:06+02:00")
    assert out.strip().endswith("at 2001-02-03T02:05:06Z")


def test_history_shows_reasons_verbatim_not_as_markup(reg: Harness) -> None:
    for version in (1, 2):
        reg.register()
        reg.promote(version)
    reg.json("rollback", MODEL, "--reason", "[red]auc[/red] dropped")
    assert "[red]auc[/red] dropped" in _out(reg, "history", MODEL)


def test_events_table_names_the_model(reg: Harness) -> None:
    reg.register()
    assert _row(_out(reg, "events"), "2")[2] == MODEL


def test_lineage_impact_table_says_why_a_version_is_live(reg: Harness) -> None:
    reg.register()
    reg.promote(1)
    row = _row(_out(reg, "lineage", "impact", "--commit", "9f1c2ab"), MODEL)
    assert row[1:4] == ["1", "Production", "Production"]


def test_search_with_no_match_says_so(reg: Harness) -> None:
    reg.register()
    assert _out(reg, "search", "metrics.auc > 2").strip() == "no versions match"


def test_init_prints_where_the_registry_and_artifacts_are(reg: Harness) -> None:
    out = _out(reg, "init")
    assert f"registry:  {reg.url}" in out
    assert "artifacts: " in out


def test_versions_fits_120_columns_with_long_metric_names_and_many_metrics(reg: Harness) -> None:
    metrics = {f"holdout_{i:02d}_precision_at_recall_ninety_five": 0.123456789 for i in range(40)}
    for _ in range(3):
        reg.register(changes={"metrics": metrics, "tags": {}})
    reg.json("alias", "set", MODEL, "challenger-with-a-long-name", "3")
    long_user = "someone-with-a-long-name@build-agent-07.example.internal"
    result = reg.run("register", MODEL, "--artifact", reg.artifact(), "--meta",
                     reg.meta({"metrics": metrics}), user=long_user)  # fmt: skip
    assert result.exit_code == 0, result.output
    out = _out(reg, "versions", MODEL)
    lines = out.splitlines()
    assert len(lines) == 2 + 4  # header, rule, one line per version
    assert max(len(line) for line in lines) <= 120, out
    assert "0.1235" in _row(out, "1")[-1]  # 4 significant digits
    assert "holdout_02" not in out  # a few metrics, not all 40
    newest = reg.json("versions", MODEL)["versions"][0]
    assert len(newest["metrics"]) == 40  # --json keeps every one
    assert "holdout_39_precision_at_recall_ninety_five  0.123456789" in _out(
        reg, "show", MODEL, "1"
    )


def test_versions_shows_the_key_metrics_of_the_policy(reg: Harness) -> None:
    reg.register(changes={"metrics": {"auc": 0.91234, "f1": 0.79, "latency_p99_ms": 3.14159}})
    policy = reg.tmp_path / "policy.yaml"
    policy.write_text("staging: ['latency_p99_ms <= 25', 'auc >= production.auc - 0.01']\n")
    reg.json("policy", "set", MODEL, "--file", str(policy), "--reason", "rules")
    assert _row(_out(reg, "versions", MODEL), "1")[-1] == "latency_p99_ms=3.142, auc=0.9123"


def test_versions_without_key_metrics_shows_the_first_few_by_name(reg: Harness) -> None:
    reg.register(changes={"metrics": {"recall": 0.5, "auc": 0.9, "f1": 0.79, "brier": 0.1}})
    assert _row(_out(reg, "versions", MODEL), "1")[-1] == "auc=0.9, brier=0.1, f1=0.79"
