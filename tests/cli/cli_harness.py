"""The harness the CLI tests share: run ``modelreg`` in-process against one registry.

Promotions to Production pass the release gates, so ``promote`` first records what a
release pipeline would (verified replicas, health checks, a canary) through the
Python API, as ``pipeline@test``: the CLI has no command that records health or
canary results.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from release_facts import make_releasable

from registry.cli.main import cli
from registry.store.sql import SqlStore

MODEL = "fraud-detector"

BASE_META: dict[str, Any] = {
    "metrics": {"auc": 0.9, "f1": 0.79},
    "params": {"n_estimators": 200, "learning_rate": 0.1},
    "tags": {"team": "payments"},
    "signature": {
        "features": [
            {"name": "amount", "dtype": "float64"},
            {"name": "merchant_category", "dtype": "category"},
        ],
        "target": {"name": "is_fraud", "dtype": "int64"},
        "preprocessing_version": "fe-2.3",
    },
    "lineage": {
        "datasets": [
            {
                "name": "transactions",
                "version": "2026-11-01",
                "fingerprint": "sha256:aaaa",
                "rows": 120000,
                "date_range": ["2026-10-01", "2026-10-31"],
            }
        ],
        "feature_pipeline": "fe-2.3",
        "code": {"repository": "git@example.com:fraud.git", "commit": "9f1c2ab", "branch": "main"},
    },
    "environment": {"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
    "run_id": "run-1",
}


class Harness:
    """Runs ``modelreg --registry URL …`` in-process and writes its input files."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.env = {
            "MODELREG_HOME": str(tmp_path / "home"),
            "MODELREG_ARTIFACTS": str(tmp_path / "artifacts"),
            "MODELREG_USER": "oncall@test",
            "MODELREG_URL": None,
        }
        self.runner = CliRunner(env=self.env)

    def run(self, *args: str, stdin: str | None = None, user: str | None = None) -> Result:
        """``modelreg --registry URL ARGS``, as ``user`` (``MODELREG_USER``) if given."""
        env = {"MODELREG_USER": user} if user else None
        return self.runner.invoke(cli, ["--registry", self.url, *args], input=stdin, env=env)

    def json(self, *args: str, user: str | None = None) -> Any:
        """Run with ``--json``; the command must succeed and print nothing on stderr."""
        result = self.run(*args, "--json", user=user)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        return json.loads(result.stdout)

    def fail(self, *args: str, code: int, user: str | None = None) -> str:
        """Run a command that must fail; return its one-line error message."""
        result = self.run(*args, user=user)
        assert result.exit_code == code, result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        return lines[0]

    def artifact(self, content: str | None = None) -> str:
        path = self.tmp_path / f"model-{uuid.uuid4().hex[:8]}.skops"
        path.write_text(content or uuid.uuid4().hex)
        return str(path)

    def meta(self, changes: dict[str, Any] | None = None) -> str:
        """A meta.json: ``BASE_META`` with top-level keys replaced by ``changes``."""
        return self.meta_text(json.dumps({**BASE_META, **(changes or {})}))

    def meta_text(self, text: str) -> str:
        path = self.tmp_path / f"meta-{uuid.uuid4().hex[:8]}.json"
        path.write_text(text)
        return str(path)

    def register(self, name: str = MODEL, changes: dict[str, Any] | None = None) -> int:
        version = self.json(
            "register", name, "--artifact", self.artifact(), "--meta", self.meta(changes)
        )
        return int(version["version"])

    def promote(self, version: int, *, name: str = MODEL) -> None:
        """Staging, the gate facts, then Production: the legal way up."""
        self.json("promote", name, str(version), "--stage", "Staging")
        self.make_releasable(version, name=name)
        self.json("promote", name, str(version), "--stage", "Production")

    def make_releasable(self, version: int, *, name: str = MODEL) -> None:
        """Record what the default policy's promotion gate asks of ``version``
        (replicas, health, a canary against the current Production version)."""
        with self.store() as store:
            make_releasable(store, name, version)

    def store(self, actor: str = "pipeline@test") -> SqlStore:
        """The same registry through the Python API (close it: ``with reg.store() as s``)."""
        return SqlStore(self.url, actor=actor)

    def snapshot(self) -> tuple[Any, Any]:
        """Everything a failed command must leave as it was: models and the event log."""
        return self.json("models"), self.json("events")


def first_line_then_hang_up(
    argv: list[str], env: Mapping[str, str], cwd: Path | None = None
) -> tuple[bytes, int, str]:
    """Run ``argv``, read one line of its output and close the pipe, as ``head -n 1``
    does: the line, the exit code and stderr."""
    with subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read()
        code = proc.wait(timeout=60)
    return first, code, stderr.decode()
