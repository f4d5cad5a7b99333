"""Bad input: one line on stderr, the right exit code, and nothing changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_harness import BASE_META, MODEL, Harness

USAGE, NOT_FOUND, CONFLICT, UNAVAILABLE = 2, 3, 4, 5
APP = "fraud-service"

# "{artifact}" and "{meta}" become fresh files; ``meta`` is the text of the
# metadata file (default: a valid one).
FILES = ["--artifact", "{artifact}", "--meta", "{meta}"]


def case(name: str, args: list[str], code: int, fragment: str, meta: str | None = None) -> Any:
    return pytest.param(args, code, fragment, meta, id=name)


def meta_with(**changes: Any) -> str:
    return json.dumps({**BASE_META, **changes})


BAD_INPUTS = [
    case("invalid model name", ["register", "Fraud_Detector", *FILES], USAGE, "invalid model name"),
    case("invalid namespaced name", ["register", "a/b/c", *FILES], USAGE, "invalid model name"),
    case("NaN metric", ["register", MODEL, *FILES], USAGE, "NaN", '{"metrics": {"auc": NaN}}'),
    case(
        "infinite param",
        ["register", MODEL, *FILES],
        USAGE,
        "Infinity",
        '{"params": {"x": Infinity}}',
    ),
    case("meta is not JSON", ["register", MODEL, *FILES], USAGE, "not valid JSON", "auc: 0.9"),
    case("meta is a list", ["register", MODEL, *FILES], USAGE, "JSON object", "[1, 2]"),
    case(
        "unknown key in meta", ["register", MODEL, *FILES], USAGE, "metricz", meta_with(metricz={})
    ),
    case(
        "metric is text",
        ["register", MODEL, *FILES],
        USAGE,
        "auc",
        meta_with(metrics={"auc": "high"}),
    ),
    case(
        "unknown dtype",
        ["register", MODEL, *FILES],
        USAGE,
        "dtype",
        meta_with(signature={"features": [{"name": "a", "dtype": "int"}]}),
    ),
    case(
        "missing artifact file",
        ["register", MODEL, "--artifact", "nope.skops", "--meta", "{meta}"],
        USAGE,
        "nope.skops",
    ),
    case(
        "missing meta file",
        ["register", MODEL, "--artifact", "{artifact}", "--meta", "nope.json"],
        USAGE,
        "nope.json",
    ),
    case("missing --meta option", ["register", MODEL, "--artifact", "{artifact}"], USAGE, "--meta"),
    case(
        "stale expected generation",
        ["promote", MODEL, "3", "--stage", "Staging", "--expect-generation", "0"],
        CONFLICT,
        "generation",
    ),
    case("promote None to Production", ["promote", MODEL, "3"], CONFLICT, "None to Production"),
    case(
        "promote Production back to Staging",
        ["promote", MODEL, "2", "--stage", "Staging"],
        CONFLICT,
        "Production to Staging",
    ),
    case("promote Archived to Production", ["promote", MODEL, "1"], CONFLICT, "rollback"),
    case("unknown stage", ["promote", MODEL, "3", "--stage", "Live"], USAGE, "Live"),
    case("version is not a number", ["promote", MODEL, "two"], USAGE, "two"),
    case(
        "unknown version to promote",
        ["promote", MODEL, "99", "--stage", "Staging"],
        NOT_FOUND,
        "99",
    ),
    case(
        "unknown model to promote",
        ["promote", "spam", "1", "--stage", "Staging"],
        NOT_FOUND,
        "spam",
    ),
    case("rollback without a reason", ["rollback", MODEL], USAGE, "--reason"),
    case("rollback with a blank reason", ["rollback", MODEL, "--reason", " "], USAGE, "reason"),
    case(
        "stale generation on rollback",
        ["rollback", MODEL, "--reason", "x", "--expect-generation", "0"],
        CONFLICT,
        "generation",
    ),
    case("alias named like a stage", ["alias", "set", MODEL, "staging", "1"], USAGE, "reserved"),
    case("alias with capitals", ["alias", "set", MODEL, "Champion", "1"], USAGE, "invalid alias"),
    case("alias on an unknown version", ["alias", "set", MODEL, "champion", "99"], NOT_FOUND, "99"),
    case(
        "delete an alias that does not exist",
        ["alias", "delete", MODEL, "champion"],
        NOT_FOUND,
        "champion",
    ),
    case(
        "stale generation on alias",
        ["alias", "set", MODEL, "champion", "1", "--expect-generation", "0"],
        CONFLICT,
        "generation",
    ),
    case("force without a reason", ["promote", MODEL, "3", "--force"], USAGE, "reason"),
    case(
        "forced alias without a reason",
        ["alias", "set", MODEL, "champion", "2", "--force"],
        USAGE,
        "reason",
    ),
    case("delete the production alias", ["alias", "delete", MODEL, "production"], USAGE, "stage"),
    case("approve an unknown version", ["approve", MODEL, "99", "--reason", "x"], NOT_FOUND, "99"),
    case("approve without a reason", ["approve", MODEL, "3"], USAGE, "--reason"),
    case("policy of an unknown model", ["policy", "show", "spam"], NOT_FOUND, "spam"),
    case("policy without --file", ["policy", "set", MODEL, "--reason", "x"], USAGE, "--file"),
    case("an unknown app release", ["release", "show", APP, "1.0.0"], NOT_FOUND, "1.0.0"),
    case("an invalid app name", ["release", "list", "Fraud_Service"], USAGE, "invalid app name"),
    case(
        "an invalid release name",
        ["release", "show", APP, "1.0.0 beta"],
        USAGE,
        "invalid release",
    ),
    case(
        "bind to an unknown release",
        ["release", "bind", APP, "9.9", "--model", MODEL, "--version", "2"],
        NOT_FOUND,
        "9.9",
    ),
    case("release without --schema", ["release", "create", APP, "1.0.0"], USAGE, "--schema"),
    case("show an unknown version", ["show", MODEL, "99"], NOT_FOUND, "99"),
    case("show an unknown alias", ["show", MODEL, "champion"], NOT_FOUND, "champion"),
    case("show an unknown model", ["show", "spam", "1"], NOT_FOUND, "spam"),
    case("versions of an unknown model", ["versions", "spam"], NOT_FOUND, "spam"),
    case("history of an unknown model", ["history", "spam"], NOT_FOUND, "spam"),
    case(
        "history at a time that is not ISO",
        ["history", MODEL, "--at", "2am yesterday"],
        USAGE,
        "ISO 8601",
    ),
    case("diff with an unknown version", ["diff", MODEL, "1", "99"], NOT_FOUND, "99"),
    case("malformed search filter", ["search", "metrics.auc >"], USAGE, "position"),
    case("search on an unknown field", ["search", "colour = 'red'"], USAGE, "colour"),
    case("lineage impact without a subject", ["lineage", "impact"], USAGE, "exactly one"),
    case(
        "lineage impact with two subjects",
        ["lineage", "impact", "--pipeline", "p", "--commit", "abcd"],
        USAGE,
        "exactly one",
    ),
    case(
        "lineage impact with a bad commit",
        ["lineage", "impact", "--commit", "xyz"],
        USAGE,
        "commit",
    ),
    case("events since a negative sequence", ["events", "--since", "-1"], USAGE, "--since"),
    case("unknown command", ["deploy", MODEL], USAGE, "deploy"),
    case("unknown option", ["models", "--colour"], USAGE, "--colour"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry built once per module; ``populated`` copies it for each test.

    fraud-detector: 1 Archived, 2 Production, 3 None (generation 4).
    churn: 1 Production, nothing before it.
    """
    root = tmp_path_factory.mktemp("template")
    reg = Harness(f"sqlite:///{root / 'registry.db'}", root)
    for _ in range(3):
        reg.register()
    reg.promote(1)
    reg.promote(2)
    reg.register("churn")
    reg.promote(1, name="churn")
    return root


@pytest.fixture
def populated(template: Path, tmp_path: Path, registry_url: str) -> Harness:
    # Every command closed its connections, so the SQLite file holds everything.
    shutil.copy(template / "registry.db", tmp_path / "registry.db")
    shutil.copytree(template / "artifacts", tmp_path / "artifacts")
    return Harness(registry_url, tmp_path)


def _state(reg: Harness, artifacts_root: Path) -> tuple[Any, Any, list[str]]:
    blobs = sorted(str(p) for p in artifacts_root.rglob("*") if p.is_file())
    return (*reg.snapshot(), blobs)


@pytest.mark.parametrize(("args", "code", "fragment", "meta"), BAD_INPUTS)
def test_bad_input_gives_one_line_and_changes_nothing(
    populated: Harness,
    artifacts_root: Path,
    args: list[str],
    code: int,
    fragment: str,
    meta: str | None,
) -> None:
    files = {
        "{artifact}": populated.artifact(),
        "{meta}": populated.meta() if meta is None else populated.meta_text(meta),
    }
    before = _state(populated, artifacts_root)
    message = populated.fail(*(files.get(arg, arg) for arg in args), code=code)
    assert fragment in message
    assert _state(populated, artifacts_root) == before


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(["promote", MODEL, "3"], CONFLICT, id="conflict"),
        pytest.param(["show", MODEL, "99"], NOT_FOUND, id="not found"),
        pytest.param(["search", "metrics.auc >"], USAGE, id="invalid input"),
    ],
)
def test_errors_with_json_are_still_one_line_on_stderr(
    populated: Harness, args: list[str], code: int
) -> None:
    populated.fail(*args, "--json", code=code)


def test_unreachable_registry_exits_5(reg: Harness) -> None:
    down = Harness("postgresql://postgres@127.0.0.1:1/nothing", reg.tmp_path)
    assert "unavailable" in down.fail("models", code=UNAVAILABLE)


def test_unsupported_registry_url_is_a_usage_error(reg: Harness) -> None:
    assert "mysql" in Harness("mysql://db/x", reg.tmp_path).fail("models", code=USAGE)


def test_artifact_folder_that_cannot_be_created_exits_5(reg: Harness, artifacts_root: Path) -> None:
    artifacts_root.write_text("a file where the folder should be")
    assert "artifact folder" in reg.fail("init", code=UNAVAILABLE)


def test_malformed_filter_error_says_where(populated: Harness) -> None:
    message = populated.fail("search", "stage = 'Production' and and", code=USAGE)
    assert "position 26" in message


def test_register_into_an_unwritable_artifact_store_exits_5_and_registers_nothing(
    reg: Harness, artifacts_root: Path
) -> None:
    reg.json("init")
    artifacts_root.rmdir()
    artifacts_root.write_text("a file where the folder should be")
    reg.fail(
        "register", MODEL, "--artifact", reg.artifact(), "--meta", reg.meta(), code=UNAVAILABLE
    )
    assert reg.json("models") == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ["rollback", "churn", "--reason", "x"],
            "no earlier Production version",
            id="nothing to roll back to",
        ),
        pytest.param(
            ["rollback", MODEL, "--to", "3", "--reason", "x"],
            "never served",
            id="a version that never served",
        ),
    ],
)
def test_a_refused_rollback_moves_nothing_and_is_history(
    populated: Harness, args: list[str], fragment: str
) -> None:
    before = populated.json("models")
    message = populated.fail(*args, code=CONFLICT)
    assert fragment in message
    after = populated.json("models")
    assert [(m["name"], m["generation"], m["production"]) for m in after] == [
        (m["name"], m["generation"], m["production"]) for m in before
    ]
    last = populated.json("history", args[1])["events"][-1]
    assert (last["kind"], last["details"]["gate"], last["reason"]) == ("refused", "rollback", "x")
