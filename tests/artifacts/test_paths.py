"""Keys and paths that try to escape a store's root are refused; store URIs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    content_key,
    open_store,
    sha256_of_key,
)
from registry.artifacts.s3 import S3ArtifactStore
from registry.errors import InvalidInput
from registry.models import ArtifactRef

DIGEST = "ab" * 32
BAD_DIGESTS = ["../../etc/passwd", "/etc/passwd", "ab/../../x", DIGEST.upper(), DIGEST + "/..", ""]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_bad_digests_are_refused_everywhere(store: ArtifactStore, bad: str, tmp_path: Path) -> None:
    ref = ArtifactRef.model_construct(uri="x", sha256=bad, size=1, format="skops")
    calls = [
        lambda: store.exists(bad),
        lambda: store.uri_for(bad),
        lambda: store.verify(ref),
        lambda: store.get_file(ref, tmp_path / "out"),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "key",
    [
        "../sha256/ab/" + DIGEST,
        "sha256/ab/../../" + DIGEST,
        "/sha256/ab/" + DIGEST,
        "/etc/passwd",
        "sha256/cd/" + DIGEST,  # the folder must be the digest's first two characters
        "sha256/ab/" + DIGEST + "/..",
    ],
)
def test_only_content_keys_are_accepted(key: str) -> None:
    with pytest.raises(InvalidInput):
        sha256_of_key(key)


def test_content_key_round_trips() -> None:
    assert sha256_of_key(content_key(DIGEST)) == DIGEST


def test_symlink_out_of_the_local_root_is_refused(
    tmp_path: Path, artifact: Callable[..., Path]
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "sha256").symlink_to(outside, target_is_directory=True)
    store = LocalArtifactStore(root)
    with pytest.raises(InvalidInput, match="escapes"):
        store.put_file(artifact(100))
    with pytest.raises(InvalidInput):
        store.exists(DIGEST)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("prefix", ["../other", "a/../b", "/abs", "a//b", "./a"])
def test_s3_prefixes_that_escape_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidInput):
        S3ArtifactStore("bucket", prefix=prefix, client=object())


def test_open_store_reads_file_uris_and_paths(tmp_path: Path) -> None:
    for uri in (tmp_path.as_uri(), str(tmp_path)):
        store = open_store(uri)
        assert isinstance(store, LocalArtifactStore)
        assert store.root == tmp_path.resolve()


def test_open_store_reads_s3_uris(s3_endpoint: str) -> None:
    store = open_store("s3://models/team/prod/", endpoint_url=s3_endpoint)
    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == ("models", "team/prod", s3_endpoint)
    assert store.uri_for(DIGEST) == f"s3://models/team/prod/{content_key(DIGEST)}"


@pytest.mark.parametrize(
    "uri", ["", "http://host/x", "file://remote-host/x", "s3://bucket/../x", "s3:///prefix"]
)
def test_open_store_refuses_bad_uris(uri: str) -> None:
    with pytest.raises(InvalidInput):
        open_store(uri, client=object()) if uri.startswith("s3") else open_store(uri)


def test_import_registry_loads_no_boto3_sklearn_or_skops() -> None:
    code = (
        "import sys, registry, registry.artifacts, registry.modelio\n"
        "heavy = {'boto3', 'botocore', 'sklearn', 'skops'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
