"""The installed ``modelreg`` run as a real process: entry point, exit codes, imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import MODEL, Harness

from registry.cli.main import COMMANDS

MODELREG = Path(sys.executable).parent / "modelreg"
HEAVY = ("prefect", "great_expectations", "sklearn")


def _run(
    args: list[str], reg: Harness, *, python_flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{k: v for k, v in reg.env.items() if v is not None}}
    env.pop("MODELREG_URL", None)
    command = (
        [sys.executable, *python_flags, "-m", "registry.cli.main"]
        if python_flags
        else [str(MODELREG)]
    )
    return subprocess.run(
        [*command, "--registry", reg.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_refused_promotion_exits_4_with_one_line_listing_every_unmet_gate(
    reg: Harness,
) -> None:
    reg.register()
    staged = _run(["promote", MODEL, "1", "--stage", "Staging", "--reason", "s"], reg)
    assert staged.returncode == 0, staged.stderr

    result = _run(["promote", MODEL, "1", "--stage", "Production", "--reason", "p"], reg)

    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: promotion gate refused {MODEL} v1 to Production: ")
    for gate in ("replica not verified", "no health check", "no canary result"):
        assert gate in result.stderr
    forced = _run(["promote", MODEL, "1", "--force", "--reason", "incident"], reg)
    assert forced.returncode == 0, forced.stderr
    assert "FORCED" in forced.stdout
    history = _run(["history", MODEL], reg).stdout
    assert "REFUSED v1 -> Production (promotion gate)" in history
    assert "Staging -> Production FORCED" in history


@pytest.fixture
def served(reg: Harness) -> Harness:
    """Two versions: the first served in Production, the second serves now."""
    reg.register()
    reg.register(changes={"metrics": {"auc": 0.95}})
    reg.promote(1)
    reg.promote(2)
    return reg


def test_help_lists_every_command(reg: Harness) -> None:
    result = _run(["--help"], reg)
    assert result.returncode == 0
    listed = result.stdout.split("Commands:")[1].splitlines()
    # Long summaries wrap onto indented lines; each command starts a line of its own.
    names = [line.split()[0] for line in listed if line.startswith("  ") and line[2] != " "]
    assert names == list(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_summary_is_the_first_line_of_the_commands_docstring(name: str) -> None:
    import importlib

    target, summary = COMMANDS[name]
    module_name, attribute = target.split(":")
    command = getattr(importlib.import_module(module_name), attribute)
    assert (command.help or "").strip().splitlines()[0] == summary


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "from registry.cli.main import cli\n"
        "cli.main(['--help'], standalone_mode=False)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('registry'))\n"
        "print(','.join(loaded), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    loaded = set(result.stderr.strip().splitlines()[-1].split(","))
    assert loaded == {"registry", "registry.cli", "registry.cli.main"}, loaded


def test_installed_script_prints_json(served: Harness) -> None:
    result = _run(["models", "--json"], served)
    assert result.returncode == 0, result.stderr
    assert '"production": 2' in result.stdout


def test_installed_script_error_is_one_line_without_traceback(served: Harness) -> None:
    result = _run(["show", MODEL, "99"], served)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["models", "--json"], id="models"),
        pytest.param(["show", MODEL, "production"], id="show"),
        pytest.param(["diff", MODEL, "1", "2"], id="diff"),
        pytest.param(["search", "metrics.auc > 0.5"], id="search"),
        pytest.param(["lineage", "impact", "--dataset", "transactions"], id="lineage"),
        pytest.param(["history", MODEL, "--at", "2026-01-01"], id="history"),
        pytest.param(["rollback", MODEL, "--reason", "test"], id="rollback"),
        pytest.param(["versions", MODEL], id="versions"),
        pytest.param(["policy", "show", MODEL], id="policy"),
        pytest.param(["release", "list"], id="release"),
        pytest.param(
            ["register", MODEL, "--artifact", "{artifact}", "--meta", "{meta}"], id="register"
        ),
    ],
)
def test_registry_commands_import_no_pipeline_or_ml_library(
    served: Harness, args: list[str]
) -> None:
    files = {"{artifact}": served.artifact(), "{meta}": served.meta()}
    result = _run([files.get(a, a) for a in args], served, python_flags=("-X", "importtime"))
    assert result.returncode == 0, result.stderr
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "registry" in imported  # the import list was really captured
    assert imported.isdisjoint(HEAVY), imported & set(HEAVY)
