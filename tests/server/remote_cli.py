"""``modelreg`` run against a registry server, as a user's shell runs it.

``RemoteCli.run`` starts the installed ``modelreg`` as a real process (exit codes,
stdout and stderr as a script sees them) with ``MODELREG_URL`` pointing at the
server and ``MODELREG_TOKEN`` holding the token; ``RemoteCli.invoke`` runs the same
command in-process (click's runner), for the many calls where only the output
matters. The client's home (outbox, artifacts) is a folder of the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from registry.cli.main import cli

MODELREG = Path(sys.executable).parent / "modelreg"

META: dict[str, Any] = {
    "metrics": {"auc": 0.9, "f1": 0.79},
    "params": {"n_estimators": 200},
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
        "datasets": [{"name": "transactions", "version": "2026-11-01", "rows": 1000}],
        "feature_pipeline": "fe-2.3",
        "code": {"repository": "git@example.com:fraud.git", "commit": "9f1c2ab"},
    },
}


class RemoteCli:
    """The CLI of one user (a home folder) against the registry at ``url``."""

    def __init__(self, url: str, home: Path, token: str | None) -> None:
        self.url = url
        self.home = home
        self.token = token
        home.mkdir(parents=True, exist_ok=True)

    @property
    def outbox(self) -> Path:
        return self.home / "outbox.db"

    def env(self, token: str | None) -> dict[str, str]:
        env = {
            "MODELREG_HOME": str(self.home),
            "MODELREG_ARTIFACTS": str(self.home / "artifacts"),
            "MODELREG_URL": self.url,
            "MODELREG_USER": "claimed-user@laptop",  # what the server must not believe
        }
        if token is not None:
            env["MODELREG_TOKEN"] = token
        return env

    def process_env(self, token: str | None = None) -> dict[str, str]:
        """The environment of a ``modelreg`` process with ``token`` (default: this user's)."""
        env = {**os.environ, **self.env(token or self.token)}
        if token is None and self.token is None:
            env.pop("MODELREG_TOKEN", None)
        return env

    def run(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        """``modelreg ARGS`` as a real process, with ``token`` (default: this user's)."""
        return subprocess.run(
            [str(MODELREG), *args],
            env=self.process_env(token),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def invoke(self, *args: str, token: str | None = None) -> Result:
        """The same command in this process (click's runner)."""
        runner = CliRunner(env={**self.env(token or self.token)})
        return runner.invoke(cli, list(args))

    def json(self, *args: str, token: str | None = None) -> Any:
        """In-process ``modelreg ARGS --json``: it must succeed, silently on stderr."""
        result = self.invoke(*args, "--json", token=token)
        assert result.exit_code == 0, (result.output, result.exception)
        assert result.stderr == ""
        return json.loads(result.stdout)

    def fail(self, *args: str, code: int, token: str | None = None) -> str:
        """A real ``modelreg ARGS`` that must fail with ``code``: its one error line."""
        done = self.run(*args, token=token)
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: ")
        return lines[0]

    def files(self, meta: dict[str, Any] | None = None) -> tuple[str, str]:
        """A new model file (unique bytes) and a meta.json for it."""
        model = self.home / f"model-{uuid.uuid4().hex[:8]}.skops"
        model.write_text(uuid.uuid4().hex)
        meta_path = model.with_suffix(".json")
        meta_path.write_text(json.dumps(meta or META))
        return str(model), str(meta_path)

    def register_args(self, name: str, meta: dict[str, Any] | None = None) -> list[str]:
        model, meta_path = self.files(meta)
        return ["register", name, "--artifact", model, "--meta", meta_path]
