"""Every command with ``--json``: the machine shape and the values in it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path

from cli_harness import MODEL, Harness

from registry.cli.main import cli


def test_version_option_prints_the_installed_version(reg: Harness) -> None:
    result = reg.run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"modelreg {installed_version('modelreg')}"


def test_a_bare_command_group_prints_its_help(reg: Harness) -> None:
    result = reg.run("alias")
    assert result.exit_code == 0
    assert "set" in result.stdout and "delete" in result.stdout


def test_init_reports_the_registry_and_creates_the_artifact_folder(
    reg: Harness, artifacts_root: Path
) -> None:
    where = reg.json("init")
    assert where == {"registry": reg.url, "artifacts": str(artifacts_root.resolve())}
    assert artifacts_root.is_dir()


def test_init_twice_is_harmless(reg: Harness) -> None:
    assert reg.json("init") == reg.json("init")


def test_init_hides_the_password_of_the_registry_url() -> None:
    from registry.cli.lifecycle import _masked

    assert _masked("postgresql://u:secret@db:5432/r") == "postgresql://u:***@db:5432/r"


def test_models_is_empty_on_a_new_registry(reg: Harness) -> None:
    assert reg.json("models") == []


def test_register_returns_the_new_version_with_its_artifact(reg: Harness) -> None:
    artifact = reg.artifact("model bytes")
    version = reg.json("register", MODEL, "--artifact", artifact, "--meta", reg.meta())
    assert version["name"] == MODEL
    assert version["version"] == 1
    assert version["stage"] == "None"
    assert version["artifact"]["size"] == len("model bytes")
    assert version["artifact"]["format"] == "skops"
    assert version["created_by"] == "oncall@test"


def test_register_stores_the_artifact_bytes_under_their_sha256(
    reg: Harness, artifacts_root: Path
) -> None:
    version = reg.json("register", MODEL, "--artifact", reg.artifact("x"), "--meta", reg.meta())
    sha = version["artifact"]["sha256"]
    assert (artifacts_root / "sha256" / sha[:2] / sha).read_text() == "x"


def test_register_takes_the_format_option(reg: Harness) -> None:
    args = ["--artifact", reg.artifact(), "--meta", reg.meta(), "--format", "onnx"]
    assert reg.json("register", MODEL, *args)["artifact"]["format"] == "onnx"


def test_register_reads_metadata_from_stdin(reg: Harness) -> None:
    result = reg.run(
        "register", MODEL, "--artifact", reg.artifact(), "--meta", "-", "--json",
        stdin=json.dumps({"metrics": {"auc": 0.5}}),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"] == {"auc": 0.5}


def test_register_numbers_versions_one_after_another(reg: Harness) -> None:
    assert [reg.register() for _ in range(3)] == [1, 2, 3]


def test_register_replays_an_idempotency_key_to_the_same_version(reg: Harness) -> None:
    artifact = reg.artifact("same")
    meta = reg.meta({"idempotency_key": "run-42"})
    first = reg.json("register", MODEL, "--artifact", artifact, "--meta", meta)
    second = reg.json("register", MODEL, "--artifact", artifact, "--meta", meta)
    assert first["version"] == second["version"] == 1


def test_models_shows_production_staging_aliases_and_generation(reg: Harness) -> None:
    for _ in range(3):
        reg.register()
    reg.promote(1)
    reg.json("promote", MODEL, "2", "--stage", "Staging")
    reg.json("alias", "set", MODEL, "champion", "1")
    (model,) = reg.json("models")
    assert model["name"] == MODEL
    assert model["production"] == 1
    assert model["staging"] == [2]
    assert model["aliases"] == {"champion": 1}
    assert model["generation"] == 4
    assert model["latest_version"] == 3
    assert model["last_event"]["kind"] == "alias"


def test_versions_lists_newest_first(reg: Harness) -> None:
    for _ in range(3):
        reg.register()
    assert [v["version"] for v in reg.json("versions", MODEL)["versions"]] == [3, 2, 1]


def test_versions_limit_keeps_the_newest(reg: Harness) -> None:
    for _ in range(3):
        reg.register()
    assert [v["version"] for v in reg.json("versions", MODEL, "--limit", "2")["versions"]] == [3, 2]


def test_show_returns_every_part_of_the_version(reg: Harness) -> None:
    reg.register()
    shown = reg.json("show", MODEL, "1")
    assert shown["metrics"] == {"auc": 0.9, "f1": 0.79}
    assert shown["params"] == {"n_estimators": 200, "learning_rate": 0.1}
    assert shown["tags"] == {"team": "payments"}
    assert [f["name"] for f in shown["signature"]["features"]] == ["amount", "merchant_category"]
    assert shown["lineage"]["datasets"][0]["version"] == "2026-11-01"
    assert shown["lineage"]["code"]["commit"] == "9f1c2ab"
    assert shown["environment"]["packages"] == {"scikit-learn": "1.9.1"}
    assert shown["artifact"]["sha256"]
    assert shown["created_by"] == "oncall@test"


def test_show_resolves_the_production_stage(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.promote(1)
    assert reg.json("show", MODEL, "production")["version"] == 1
    assert reg.json("show", MODEL, "Production")["version"] == 1


def test_show_resolves_an_alias_and_latest(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.json("alias", "set", MODEL, "challenger", "1")
    assert reg.json("show", MODEL, "challenger")["version"] == 1
    assert reg.json("show", MODEL, "latest")["version"] == 2


def test_promote_to_staging_reports_the_stage_event(reg: Harness) -> None:
    reg.register()
    change = reg.json("promote", MODEL, "1", "--stage", "staging", "--reason", "candidate")
    assert change["generation"] == 1
    (event,) = change["events"]
    assert (event["kind"], event["from_value"], event["to_value"]) == ("stage", "None", "Staging")
    assert event["reason"] == "candidate"


def test_promote_defaults_to_production_and_archives_the_previous_one(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.promote(1)
    reg.json("promote", MODEL, "2", "--stage", "Staging")
    reg.make_releasable(2)
    change = reg.json("promote", MODEL, "2")
    moves = [(e["version"], e["from_value"], e["to_value"]) for e in change["events"]]
    assert moves == [(1, "Production", "Archived"), (2, "Staging", "Production")]
    assert reg.json("models")[0]["production"] == 2


def test_promote_to_the_current_stage_changes_nothing(reg: Harness) -> None:
    reg.register()
    reg.json("promote", MODEL, "1", "--stage", "Staging")
    change = reg.json("promote", MODEL, "1", "--stage", "Staging")
    assert change == {"name": MODEL, "generation": 1, "events": []}


def test_promote_with_the_current_generation_succeeds(reg: Harness) -> None:
    reg.register()
    change = reg.json("promote", MODEL, "1", "--stage", "Staging", "--expect-generation", "0")
    assert change["generation"] == 1


def test_rollback_puts_back_the_previous_production_version(reg: Harness) -> None:
    for version in (1, 2):
        reg.register()
        reg.promote(version)
    change = reg.json("rollback", MODEL, "--reason", "auc dropped")
    (event,) = change["events"]
    assert (event["kind"], event["from_value"], event["to_value"]) == ("rollback", "2", "1")
    assert event["reason"] == "auc dropped"
    assert reg.json("models")[0]["production"] == 1


def test_rollback_to_a_named_version_that_once_served(reg: Harness) -> None:
    for version in (1, 2, 3):
        reg.register()
        reg.promote(version)
    reg.json("rollback", MODEL, "--to", "1", "--reason", "known good")
    assert reg.json("models")[0]["production"] == 1
    assert reg.json("show", MODEL, "3")["stage"] == "Archived"


def test_alias_set_points_the_alias_at_the_version(reg: Harness) -> None:
    reg.register()
    change = reg.json("alias", "set", MODEL, "challenger", "1", "--reason", "best so far")
    (event,) = change["events"]
    assert (event["subject"], event["from_value"], event["to_value"]) == ("challenger", None, "1")
    assert reg.json("show", MODEL, "1")["aliases"] == ["challenger"]


def test_alias_set_moves_an_existing_alias(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.json("alias", "set", MODEL, "challenger", "1")
    reg.json("alias", "set", MODEL, "challenger", "2")
    assert reg.json("models")[0]["aliases"] == {"challenger": 2}


def test_alias_delete_removes_the_alias(reg: Harness) -> None:
    reg.register()
    reg.json("alias", "set", MODEL, "challenger", "1")
    change = reg.json("alias", "delete", MODEL, "challenger")
    assert change["events"][0]["to_value"] is None
    assert reg.json("models")[0]["aliases"] == {}


def test_history_all_lists_every_event_of_the_model_oldest_first(reg: Harness) -> None:
    reg.register()
    reg.promote(1)
    reg.json("alias", "set", MODEL, "champion", "1")
    kinds = [e["kind"] for e in reg.json("history", MODEL, "--all")["events"]]
    assert kinds == ["model.created", "version.registered", "stage", "stage", "alias"]


def test_history_at_a_time_before_any_promotion_says_none_served(reg: Harness) -> None:
    reg.register()
    reg.promote(1)
    answer = reg.json("history", MODEL, "--at", "2000-01-01T00:00:00")
    assert answer == {"name": MODEL, "at": "2000-01-01T00:00:00Z", "production": None}


def test_history_at_now_names_the_production_version(reg: Harness) -> None:
    reg.register()
    reg.promote(1)
    now = datetime.now(UTC).isoformat()
    assert reg.json("history", MODEL, "--at", now)["production"] == 1


def test_search_returns_the_matching_versions(reg: Harness) -> None:
    reg.register(changes={"metrics": {"auc": 0.8}})
    reg.register(changes={"metrics": {"auc": 0.95}})
    found = reg.json("search", "metrics.auc > 0.9")
    assert [(v["name"], v["version"]) for v in found] == [(MODEL, 2)]


def test_search_limit_caps_the_results(reg: Harness) -> None:
    for _ in range(3):
        reg.register()
    assert len(reg.json("search", f"name = '{MODEL}'", "--limit", "2")) == 2


def test_lineage_impact_by_dataset_marks_the_production_version_first(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.promote(2)
    hits = reg.json("lineage", "impact", "--dataset", "transactions")
    assert [(h["version"], h["in_production"], h["why_live"]) for h in hits] == [
        (2, True, ["Production"]),
        (1, False, []),
    ]
    assert hits[0]["datasets"] == ["transactions@2026-11-01"]


def test_lineage_impact_by_dataset_version_range(reg: Harness) -> None:
    for day in ("2026-11-01", "2026-11-08", "2026-11-15"):
        dataset = {"name": "transactions", "version": day}
        reg.register(changes={"lineage": {"datasets": [dataset]}})
    hits = reg.json("lineage", "impact", "--dataset", "transactions@2026-11-05..2026-11-30")
    assert [h["version"] for h in hits] == [2, 3]


def test_lineage_impact_by_pipeline(reg: Harness) -> None:
    reg.register()
    reg.register(changes={"lineage": {"feature_pipeline": "fe-3.0"}})
    hits = reg.json("lineage", "impact", "--pipeline", "fe-3.0")
    assert [(h["version"], h["feature_pipeline"]) for h in hits] == [(2, "fe-3.0")]


def test_lineage_impact_by_commit_prefix(reg: Harness) -> None:
    reg.register()
    assert [h["code_commit"] for h in reg.json("lineage", "impact", "--commit", "9f1c")] == [
        "9f1c2ab"
    ]


def test_diff_reports_metric_deltas(reg: Harness) -> None:
    reg.register()
    reg.register(changes={"metrics": {"auc": 0.95, "recall": 0.5}})
    metrics = {m["key"]: m for m in reg.json("diff", MODEL, "1", "2")["metrics"]}
    assert metrics["auc"]["a"] == 0.9
    assert metrics["auc"]["b"] == 0.95
    assert abs(metrics["auc"]["delta"] - 0.05) < 1e-9
    assert metrics["f1"]["b"] is None
    assert metrics["recall"] == {"key": "recall", "a": None, "b": 0.5, "delta": None}


def test_diff_reports_signature_params_lineage_and_environment(reg: Harness) -> None:
    reg.register()
    reg.register(
        changes={
            "params": {"n_estimators": 300},
            "signature": {"features": [{"name": "amount", "dtype": "float32"}]},
            "lineage": {"datasets": [{"name": "transactions", "version": "2026-11-08"}]},
            "environment": {"python": "3.11.9", "packages": {}},
        }
    )
    diff = reg.json("diff", MODEL, "1", "2")
    assert diff["signature"]["removed"] == [{"name": "merchant_category", "dtype": "category"}]
    assert diff["signature"]["retyped"] == [{"name": "amount", "a": "float64", "b": "float32"}]
    assert diff["params"]["changed"] == {"n_estimators": {"a": 200, "b": 300}}
    assert diff["params"]["removed"] == {"learning_rate": 0.1}
    assert diff["lineage"]["datasets_added"] == ["transactions@2026-11-08"]
    assert diff["lineage"]["datasets_removed"] == ["transactions@2026-11-01"]
    assert diff["environment"]["python"] == {"a": "3.11.7", "b": "3.11.9"}
    assert diff["environment"]["packages"]["removed"] == {"scikit-learn": "1.9.1"}


def test_diff_accepts_stage_references(reg: Harness) -> None:
    reg.register()
    reg.register()
    reg.promote(1)
    diff = reg.json("diff", MODEL, "production", "latest")
    assert (diff["a"]["version"], diff["b"]["version"]) == (1, 2)
    assert diff["artifact_changed"] is True


def test_events_lists_the_feed_in_sequence_order(reg: Harness) -> None:
    reg.register()
    reg.promote(1)
    seqs = [e["seq"] for e in reg.json("events")]
    assert seqs == sorted(seqs)
    assert len(seqs) == 4


def test_events_since_returns_only_later_events(reg: Harness) -> None:
    reg.register()
    reg.promote(1)
    assert [e["seq"] for e in reg.json("events", "--since", "2")] == [3, 4]


def test_events_limit_and_model_filter(reg: Harness) -> None:
    reg.register()
    reg.register(name="churn")
    events = reg.json("events", "--model", "churn", "--limit", "1")
    assert [(e["model"], e["kind"]) for e in events] == [("churn", "model.created")]


def test_json_is_accepted_as_a_global_option(reg: Harness) -> None:
    result = reg.run("--json", "models")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_json_is_accepted_on_a_subcommand_group(reg: Harness) -> None:
    reg.register()
    result = reg.run("alias", "--json", "set", MODEL, "challenger", "1")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["generation"] == 1


def test_registry_url_comes_from_the_environment_without_the_option(
    reg: Harness, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    result = reg.runner.invoke(
        cli,
        ["init", "--json"],
        env={"MODELREG_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["registry"] == url


def test_event_json_carries_every_detail(reg: Harness) -> None:
    reg.register()
    (event,) = reg.json("promote", MODEL, "1", "--stage", "Staging")["events"]
    assert event["details"] == {
        "forced": False,
        "skipped": [],
        "reasons": [],
        "gate": None,
        "invalidate": False,
        "origin": None,
        "sha256": None,  # of the bytes an artifact.collected event names
        "size": None,
    }
    assert reg.json("history", MODEL)["events"][-1] == event


def test_policy_json_shape(reg: Harness) -> None:
    reg.register()
    shown = reg.json("policy", "show", MODEL)
    assert set(shown) == {
        "model", "version", "default", "actor", "reason", "created_at", "policy", "key_metrics",
    }  # fmt: skip
    assert set(shown["policy"]) == {
        "required", "staging", "regions", "protected_aliases", "canary", "approvals",
    }  # fmt: skip


def test_approve_json_shape(reg: Harness) -> None:
    reg.register()
    approved = reg.json("approve", MODEL, "1", "--reason", "ok", user="alice@test")
    assert set(approved) == {
        "name", "version", "approval", "approvers", "required", "resumed_run",
    }  # fmt: skip
    assert set(approved["approval"]) == {
        "kind", "region", "passed", "evidence", "recorded_at", "recorded_by",
    }  # fmt: skip


def test_models_with_a_namespace_lists_only_that_namespace(reg: Harness) -> None:
    for name in ("payments/fraud", "payments/churn", "risk/fraud", "payments-other", "plain"):
        reg.register(name)
    assert [m["name"] for m in reg.json("models", "payments/")] == [
        "payments/churn",
        "payments/fraud",
    ]
    assert [m["name"] for m in reg.json("models", "payments")] == [
        "payments/churn",
        "payments/fraud",
    ]
    assert [m["name"] for m in reg.json("models", "risk/")] == ["risk/fraud"]
    assert reg.json("models", "empty/") == []
    assert "no models in namespace empty/" in reg.run("models", "empty/").stdout
    for bad in ("Payments/", "a/b/", "../", ""):
        assert "invalid namespace" in reg.fail("models", bad, code=2)
