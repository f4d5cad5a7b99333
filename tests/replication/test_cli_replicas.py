"""``modelreg replicate / replicas / verify``, run in-process against a real registry and
real region stores (folders under the home; S3 buckets on the moto server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from artifacts.support import overwrite_stored
from click.testing import CliRunner, Result

from registry.artifacts import LocalArtifactStore
from registry.artifacts.s3 import S3ArtifactStore
from registry.cli.main import cli

from .support import REGIONS, remove_stored

MODEL = "fraud-detector"


class Cli:
    """``modelreg --registry URL …`` with its home, artifacts and regions under tmp_path
    (the pattern of tests/cli/cli_harness.py)."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.home = tmp_path / "home"
        self.url = f"sqlite:///{tmp_path / 'registry.db'}"
        self.env: dict[str, str | None] = {
            "MODELREG_HOME": str(self.home),
            "MODELREG_ARTIFACTS": str(tmp_path / "artifacts"),
            "MODELREG_USER": "oncall@test",
            "MODELREG_URL": None,
            "MODELREG_REGIONS": None,
            "MODELREG_REGION_ROOTS": None,
            **env,
        }

    def run(self, *args: str) -> Result:
        return CliRunner(env=self.env).invoke(cli, ["--registry", self.url, *args])

    def json(self, *args: str, code: int = 0) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == code, result.output
        if code == 0:
            assert result.stderr == ""
        return json.loads(result.stdout)

    def fail(self, *args: str, code: int) -> str:
        """A command that must fail before printing anything: its one-line error."""
        result = self.run(*args)
        assert result.exit_code == code, result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        return lines[0]

    def register(self, content: str = "model-bytes") -> tuple[int, str]:
        artifact = self.tmp_path / f"model-{len(content)}-{hash(content) & 0xFFFF}.skops"
        artifact.write_text(content)
        meta = self.tmp_path / "meta.json"
        meta.write_text("{}")
        version = self.json("register", MODEL, "--artifact", str(artifact), "--meta", str(meta))
        return int(version["version"]), str(version["artifact"]["sha256"])

    def region(self, region: str) -> LocalArtifactStore:
        return LocalArtifactStore(self.home / "regions" / region)


@pytest.fixture
def reg(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _states(data: dict[str, Any]) -> dict[str, str]:
    return {r["region"]: r["state"] for r in data["replicas"]}


def test_replicate_copies_to_every_configured_region(reg: Cli) -> None:
    version, sha256 = reg.register()

    data = reg.json("replicate", MODEL, str(version))

    assert (data["name"], data["version"], data["not_ready"]) == (MODEL, version, [])
    assert _states(data) == dict.fromkeys(sorted(REGIONS), "verified")
    assert {r["sha256"] for r in data["replicas"]} == {sha256}
    for region in REGIONS:
        assert reg.region(region).exists(sha256)


def test_replicas_prints_a_table_of_region_state_checksum_time_and_error(reg: Cli) -> None:
    version, sha256 = reg.register()
    reg.json("replicate", MODEL, str(version))

    result = reg.run("replicas", MODEL, str(version))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["region", "state", "checksum", "verified", "at", "error"]
    rows = [line.split() for line in lines[2:]]
    assert [row[:3] for row in rows] == [[r, "verified", sha256[:12]] for r in sorted(REGIONS)]
    assert all(row[3].endswith("Z") and row[4] == "-" for row in rows)


def test_replicate_accepts_a_stage_alias_or_latest_and_a_region_subset(reg: Cli) -> None:
    reg.register("one")
    reg.register("two")

    data = reg.json("replicate", MODEL, "latest", "--regions", "eu-west")

    assert data["version"] == 2
    assert _states(data) == {"eu-west": "verified"}
    assert reg.json("replicas", MODEL, "1")["replicas"] == []


def test_rerunning_replicate_changes_nothing(reg: Cli) -> None:
    version, _ = reg.register()
    first = reg.json("replicate", MODEL, str(version))

    assert reg.json("replicate", MODEL, str(version)) == first


def test_verify_marks_a_tampered_region_failed_and_exits_5(reg: Cli) -> None:
    version, sha256 = reg.register("x" * 100)
    reg.json("replicate", MODEL, str(version))
    overwrite_stored(reg.region("ap-south"), sha256, b"y" * 100)

    result = reg.run("verify", MODEL, str(version))

    assert result.exit_code == 5, result.output
    assert result.stderr.splitlines() == [
        f"error: version {version} of '{MODEL}': replica failed in ap-south "
        "(see the error column; 'modelreg replicate' repairs it)"
    ]
    failed = [line for line in result.stdout.splitlines() if line.startswith("ap-south")]
    assert "failed" in failed[0]
    assert "corrupt" in failed[0]
    data = reg.json("replicas", MODEL, str(version), code=5)
    assert _states(data) == {"ap-south": "failed", "eu-west": "verified", "us-east": "verified"}
    assert data["not_ready"] == ["ap-south"]


def test_replicate_repairs_what_verify_found_missing(reg: Cli) -> None:
    version, sha256 = reg.register()
    reg.json("replicate", MODEL, str(version))
    remove_stored(reg.region("us-east"), sha256)
    assert _states(reg.json("verify", MODEL, str(version), code=5))["us-east"] == "failed"

    data = reg.json("replicate", MODEL, str(version))

    assert _states(data) == dict.fromkeys(sorted(REGIONS), "verified")
    assert reg.region("us-east").exists(sha256)


def test_replicas_of_a_version_never_replicated_is_an_empty_table(reg: Cli) -> None:
    reg.register()

    result = reg.run("replicas", MODEL, "1")

    assert result.exit_code == 0
    assert result.stdout.strip() == (
        f"version 1 of {MODEL} has no replicas (modelreg replicate {MODEL} 1)"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("replicate", MODEL, "1", "--regions", "mars"), 2, "unknown region 'mars'"),
        (("replicate", MODEL, "1", "--regions", "../etc"), 2, "invalid region"),
        (("replicate", MODEL, "1", "--regions", ","), 2, "no regions given"),
        (("replicate", MODEL, "7"), 3, "version 7"),
        (("replicate", "no-such-model", "1"), 3, "no-such-model"),
        (("replicas", MODEL, "7"), 3, "version 7"),
        (("verify", MODEL, "1"), 2, "no replicas to verify"),
        (("replicate", MODEL, "1", "--retries", "-1"), 2, "--retries"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    reg: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    reg.register()

    assert message in reg.fail(*args, code=code)


def test_a_failed_region_is_reported_and_the_others_still_verify(
    tmp_path: Path, s3_endpoint: str, make_bucket: Any
) -> None:
    """Regions on S3 through MODELREG_REGION_ROOTS; one bucket does not exist."""
    us, eu = make_bucket(), make_bucket()
    reg = Cli(
        tmp_path,
        MODELREG_REGION_ROOTS=(
            f"us-east=s3://{us}/models,eu-west=s3://{eu}/models,ap-south=s3://no-such-bucket/m"
        ),
        AWS_ENDPOINT_URL_S3=s3_endpoint,
    )
    version, sha256 = reg.register()

    data = reg.json("replicate", MODEL, str(version), "--retries", "0", code=5)

    assert _states(data) == {"ap-south": "failed", "eu-west": "verified", "us-east": "verified"}
    assert data["not_ready"] == ["ap-south"]
    [down] = [r for r in data["replicas"] if r["region"] == "ap-south"]
    assert "no-such-bucket" in down["uri"]
    assert "NoSuchBucket" in down["error"]
    for bucket in (us, eu):
        assert S3ArtifactStore(bucket, "models", endpoint_url=s3_endpoint).exists(sha256)
