"""Region configuration: default folders under the home, MODELREG_REGION_ROOTS overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.artifacts import LocalArtifactStore
from registry.artifacts.s3 import S3ArtifactStore
from registry.config import Settings
from registry.errors import InvalidInput
from registry.replication import region_stores


def test_default_regions_are_folders_under_the_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"MODELREG_HOME": str(tmp_path)})

    assert dict(settings.region_roots) == {
        region: str(tmp_path / "regions" / region) for region in ("us-east", "eu-west", "ap-south")
    }
    store = settings.region_store("eu-west")
    assert isinstance(store, LocalArtifactStore)
    assert store.root == (tmp_path / "regions" / "eu-west").resolve()


@pytest.mark.usefixtures("aws_env")  # dummy credentials: the S3 client reads no real config
def test_region_roots_override_some_regions_and_follow_the_configured_regions(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env(
        {
            "MODELREG_HOME": str(tmp_path),
            "MODELREG_REGIONS": "us-east, eu-west",
            "MODELREG_REGION_ROOTS": f"us-east=s3://bucket/models/us, eu-west={tmp_path}/eu,",
        }
    )

    assert dict(settings.region_roots) == {
        "us-east": "s3://bucket/models/us",
        "eu-west": f"{tmp_path}/eu",
    }
    stores = region_stores(settings)
    assert list(stores) == ["us-east", "eu-west"]
    us = stores["us-east"]
    assert isinstance(us, S3ArtifactStore)
    assert (us.bucket, us.prefix) == ("bucket", "models/us")
    assert region_stores(settings, ["eu-west"]).keys() == {"eu-west"}


@pytest.mark.parametrize(
    "env",
    [
        {"MODELREG_REGION_ROOTS": "us-east"},
        {"MODELREG_REGION_ROOTS": "=/x"},
        {"MODELREG_REGION_ROOTS": "us-east="},
        {"MODELREG_REGION_ROOTS": "us-east=/a,us-east=/b"},
        {"MODELREG_REGION_ROOTS": "mars=/x"},  # not a configured region
        {"MODELREG_REGIONS": "us-east,../etc"},
        {"MODELREG_REGIONS": "US"},
    ],
)
def test_bad_region_configuration_is_one_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        Settings.from_env(env)


def test_an_unknown_region_has_no_store(tmp_path: Path) -> None:
    settings = Settings.from_env({"MODELREG_HOME": str(tmp_path)})

    with pytest.raises(InvalidInput, match="unknown region 'mars'"):
        settings.region_store("mars")
    with pytest.raises(InvalidInput):
        region_stores(settings, ["us-east", "mars"])


def test_settings_stay_hashable_and_comparable(tmp_path: Path) -> None:
    env = {"MODELREG_HOME": str(tmp_path), "MODELREG_USER": "me"}

    assert Settings.from_env(env) == Settings.from_env(env)
    assert hash(Settings.from_env(env)) == hash(Settings.from_env(env))
    assert Settings.from_env(env) != Settings.from_env(
        {**env, "MODELREG_REGION_ROOTS": "us-east=/elsewhere"}
    )
