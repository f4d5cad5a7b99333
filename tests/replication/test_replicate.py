"""Contract B: replicate, replicate_one and verify_replicas against real stores.

Regions are local folders and buckets on the session's moto server (HTTP on
127.0.0.1); the registry is SQLite and PostgreSQL where the store matters, SQLite
only where the subject is the bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from artifacts.support import MIB, free_port, overwrite_stored, stored_objects

from registry.artifacts import ArtifactStore, LocalArtifactStore
from registry.artifacts.s3 import S3ArtifactStore
from registry.errors import ArtifactUnavailable, InvalidInput, NotFound
from registry.models import ArtifactRef
from registry.release_models import ReplicaState
from registry.replication import replicate, replicate_one, verify_replicas
from registry.store.base import RegistryStore

from .conftest import MODEL
from .support import REGIONS, dropping_proxy, remove_stored

FAST = {"retries": 2, "backoff": 0.01}
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
KINDS = [("local", "local"), ("local", "s3"), ("s3", "s3"), ("s3", "local")]

MakeArtifacts = Callable[[str], ArtifactStore]
MakeRegions = Callable[[str], dict[str, ArtifactStore]]
PutVersion = Callable[..., ArtifactRef]


def _states(replicas: list) -> dict[str, ReplicaState]:  # type: ignore[type-arg]
    return {r.region: r.state for r in replicas}


def _unreachable_s3() -> S3ArtifactStore:
    return S3ArtifactStore("down", endpoint_url=f"http://127.0.0.1:{free_port()}")


# ---------------------------------------------------------------- every region verifies


@SQLITE_ONLY
@pytest.mark.parametrize(("source_kind", "region_kind"), KINDS)
def test_every_region_gets_verified_bytes_and_a_verified_row(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
    source_kind: str,
    region_kind: str,
) -> None:
    source, regions = make_artifacts(source_kind), make_regions(region_kind)
    ref = put_version(source, 6 * MIB + 3)  # over the 5 MiB part size: the multipart path

    replicas = replicate(store, source, regions, MODEL, 1, **FAST)

    assert [r.region for r in replicas] == sorted(REGIONS)
    assert store.replicas(MODEL, 1) == replicas
    for replica in replicas:
        target = regions[replica.region]
        assert replica.state is ReplicaState.VERIFIED
        assert (replica.sha256, replica.size, replica.error) == (ref.sha256, ref.size, None)
        assert replica.verified_at is not None
        assert replica.uri == target.uri_for(ref.sha256)
        target.verify(ref)
        assert len(stored_objects(target)) == 1  # no temporaries left behind
    assert store.ready_in_regions(MODEL, 1, REGIONS) == []


def test_replication_records_rows_on_each_backend(
    store: RegistryStore, make_artifacts: MakeArtifacts, put_version: PutVersion
) -> None:
    source = make_artifacts("local")
    put_version(source)
    regions = {region: make_artifacts("local") for region in REGIONS}

    replicas = replicate(store, source, regions, MODEL, 1, **FAST)

    assert _states(replicas) == dict.fromkeys(REGIONS, ReplicaState.VERIFIED)
    assert store.replicas(MODEL, 1) == replicas


@SQLITE_ONLY
def test_an_empty_artifact_replicates(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
) -> None:
    source = make_artifacts("local")
    put_version(source, 0)

    replicas = replicate(store, source, make_regions("local"), MODEL, 1, **FAST)

    assert {(r.state, r.size) for r in replicas} == {(ReplicaState.VERIFIED, 0)}


# ---------------------------------------------------------------- failures stay in their region


@SQLITE_ONLY
def test_an_unreachable_region_fails_after_retries_while_the_others_verify(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    put_version: PutVersion,
) -> None:
    source = make_artifacts("s3")
    ref = put_version(source)
    regions = {
        "us-east": make_artifacts("s3"),
        "eu-west": make_artifacts("local"),
        "ap-south": _unreachable_s3(),
    }

    replicas = replicate(store, source, regions, MODEL, 1, retries=1, backoff=0.01)

    by_region = {r.region: r for r in replicas}
    down = by_region["ap-south"]
    assert down.state is ReplicaState.FAILED
    assert down.error is not None
    assert "unreachable" in down.error
    assert "after 2 attempts" in down.error
    assert down.verified_at is None
    assert _states(replicas) == {
        "ap-south": ReplicaState.FAILED,
        "eu-west": ReplicaState.VERIFIED,
        "us-east": ReplicaState.VERIFIED,
    }
    regions["us-east"].verify(ref)
    assert store.ready_in_regions(MODEL, 1, REGIONS) == ["ap-south"]


def _connections_per_call(s3_endpoint: str) -> int:
    """How many connections botocore tries for one call before it gives up (its retries)."""
    with dropping_proxy(s3_endpoint, drop=1000) as proxy:
        with pytest.raises(ArtifactUnavailable):
            S3ArtifactStore("any", endpoint_url=proxy.url).exists("0" * 64)
        return proxy.dropped


@SQLITE_ONLY
def test_a_region_that_drops_connections_verifies_on_a_retry(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    put_version: PutVersion,
    s3_endpoint: str,
) -> None:
    source = make_artifacts("local")
    ref = put_version(source)
    bucket = make_artifacts("s3")
    assert isinstance(bucket, S3ArtifactStore)
    per_call = _connections_per_call(s3_endpoint)
    # Exactly enough dropped connections to fail our first attempt, not the second.
    with dropping_proxy(s3_endpoint, drop=per_call) as proxy:
        flaky = S3ArtifactStore(bucket.bucket, "models", endpoint_url=proxy.url)

        replica = replicate_one(store, source, "eu-west", flaky, MODEL, 1, retries=1, backoff=0.01)

    assert proxy.dropped == per_call
    assert (replica.state, replica.error) == (ReplicaState.VERIFIED, None)
    bucket.verify(ref)


@SQLITE_ONLY
def test_without_retries_one_failed_attempt_is_a_failure(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    put_version: PutVersion,
    s3_endpoint: str,
) -> None:
    source = make_artifacts("local")
    ref = put_version(source)
    bucket = make_artifacts("s3")
    assert isinstance(bucket, S3ArtifactStore)
    per_call = _connections_per_call(s3_endpoint)
    with dropping_proxy(s3_endpoint, drop=per_call) as proxy:
        flaky = S3ArtifactStore(bucket.bucket, "models", endpoint_url=proxy.url)

        replica = replicate_one(store, source, "eu-west", flaky, MODEL, 1, retries=0, backoff=0)

    assert replica.state is ReplicaState.FAILED
    assert replica.error is not None
    assert replica.error.endswith("(gave up after 1 attempt)")
    assert not bucket.exists(ref.sha256)


@SQLITE_ONLY
@pytest.mark.parametrize(("source_kind", "region_kind"), KINDS)
def test_a_corrupt_source_fails_every_region_and_leaves_no_good_looking_copy(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
    source_kind: str,
    region_kind: str,
) -> None:
    source, regions = make_artifacts(source_kind), make_regions(region_kind)
    ref = put_version(source, 6000)
    overwrite_stored(source, ref.sha256, b"x" * 6000)  # same size, other bytes

    replicas = replicate(store, source, regions, MODEL, 1, retries=1, backoff=0.01)

    for replica in replicas:
        assert replica.state is ReplicaState.FAILED
        assert replica.error is not None
        assert "corrupt" in replica.error
        # s3 -> s3 is a server-side copy: same-size bytes land before the read-back
        # catches them, and are deleted again.
        assert stored_objects(regions[replica.region]) == []
    assert store.ready_in_regions(MODEL, 1, REGIONS) == list(REGIONS)


@SQLITE_ONLY
@pytest.mark.parametrize(("source_kind", "region_kind"), KINDS)
def test_corrupt_bytes_a_region_already_held_are_deleted_when_the_source_is_corrupt_too(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    put_version: PutVersion,
    source_kind: str,
    region_kind: str,
) -> None:
    source, target = make_artifacts(source_kind), make_artifacts(region_kind)
    ref = put_version(source, 6000)
    replicate_one(store, source, "eu-west", target, MODEL, 1, **FAST)
    overwrite_stored(target, ref.sha256, b"y" * 6000)
    verify_replicas(store, {"eu-west": target}, MODEL, 1, **FAST)  # the row says failed
    overwrite_stored(source, ref.sha256, b"x" * 6000)

    replica = replicate_one(store, source, "eu-west", target, MODEL, 1, **FAST)

    assert replica.state is ReplicaState.FAILED
    assert "corrupt" in (replica.error or "")
    assert stored_objects(target) == []


@SQLITE_ONLY
def test_a_source_without_the_bytes_fails_at_once(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
) -> None:
    source = make_artifacts("local")
    put_version(source)

    replicas = replicate(store, make_artifacts("local"), make_regions("local"), MODEL, 1, **FAST)

    assert _states(replicas) == dict.fromkeys(REGIONS, ReplicaState.FAILED)
    assert all("missing" in (r.error or "") and "attempt" not in (r.error or "") for r in replicas)


# ---------------------------------------------------------------- idempotence


@SQLITE_ONLY
@pytest.mark.parametrize("region_kind", ["local", "s3"])
def test_a_verified_replica_is_not_copied_again(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
    region_kind: str,
) -> None:
    source, regions = make_artifacts("local"), make_regions(region_kind)
    ref = put_version(source)
    first = replicate(store, source, regions, MODEL, 1, **FAST)
    before = {region: _stamp(target, ref) for region, target in regions.items()}

    again = replicate(store, source, regions, MODEL, 1, **FAST)

    assert again == first  # same rows: verified_at and updated_at unchanged
    assert {region: _stamp(target, ref) for region, target in regions.items()} == before


def _stamp(target: ArtifactStore, ref: ArtifactRef) -> object:
    """What a rewrite of the stored object would change."""
    if isinstance(target, LocalArtifactStore):
        stat = Path(target.uri_for(ref.sha256).removeprefix("file://")).stat()
        return (stat.st_ino, stat.st_mtime_ns)
    assert isinstance(target, S3ArtifactStore)
    key = target.uri_for(ref.sha256).removeprefix(f"s3://{target.bucket}/")
    head = target.client.head_object(Bucket=target.bucket, Key=key)
    return (head["LastModified"], head["ETag"])


@SQLITE_ONLY
def test_a_rerun_repairs_only_the_failed_region(
    store: RegistryStore, make_artifacts: MakeArtifacts, put_version: PutVersion
) -> None:
    source = make_artifacts("local")
    ref = put_version(source)
    regions: dict[str, ArtifactStore] = {r: make_artifacts("local") for r in REGIONS}
    healthy = regions["ap-south"]
    regions["ap-south"] = _unreachable_s3()
    first = {r.region: r for r in replicate(store, source, regions, MODEL, 1, retries=0)}
    regions["ap-south"] = healthy  # the region came back

    again = {r.region: r for r in replicate(store, source, regions, MODEL, 1, **FAST)}

    assert first["ap-south"].state is ReplicaState.FAILED
    assert again["ap-south"].state is ReplicaState.VERIFIED
    assert again["eu-west"] == first["eu-west"]
    assert again["us-east"] == first["us-east"]
    healthy.verify(ref)


@SQLITE_ONLY
@pytest.mark.parametrize("region_kind", ["local", "s3"])
def test_a_verified_row_whose_object_vanished_is_copied_again(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
    region_kind: str,
) -> None:
    source, regions = make_artifacts("local"), make_regions(region_kind)
    ref = put_version(source)
    replicate(store, source, regions, MODEL, 1, **FAST)
    remove_stored(regions["eu-west"], ref.sha256)

    replicas = replicate(store, source, regions, MODEL, 1, **FAST)

    assert _states(replicas) == dict.fromkeys(REGIONS, ReplicaState.VERIFIED)
    regions["eu-west"].verify(ref)


@SQLITE_ONLY
def test_bytes_already_in_a_region_without_a_row_are_verified_not_copied(
    store: RegistryStore, make_artifacts: MakeArtifacts, put_version: PutVersion
) -> None:
    """A crash after the copy and before the row: the rerun reads the bytes back."""
    source = make_artifacts("local")
    ref = put_version(source)
    target = make_artifacts("local")
    target.copy_from(source, ref)
    before = _stamp(target, ref)

    replica = replicate_one(store, source, "us-east", target, MODEL, 1, **FAST)

    assert replica.state is ReplicaState.VERIFIED
    assert _stamp(target, ref) == before


# ---------------------------------------------------------------- verify_replicas


@SQLITE_ONLY
@pytest.mark.parametrize("region_kind", ["local", "s3"])
def test_tampered_bytes_in_one_region_are_detected_and_marked_failed(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
    region_kind: str,
) -> None:
    source, regions = make_artifacts("local"), make_regions(region_kind)
    ref = put_version(source, 5000)
    replicate(store, source, regions, MODEL, 1, **FAST)
    overwrite_stored(regions["eu-west"], ref.sha256, b"y" * 5000)  # same size, other bytes

    checked = {r.region: r for r in verify_replicas(store, regions, MODEL, 1, **FAST)}

    tampered = checked["eu-west"]
    assert tampered.state is ReplicaState.FAILED
    assert tampered.error is not None
    assert "corrupt" in tampered.error
    assert "attempt" not in tampered.error  # re-reading the same bytes is not retried
    assert checked["us-east"].state is ReplicaState.VERIFIED
    assert checked["ap-south"].state is ReplicaState.VERIFIED
    assert store.ready_in_regions(MODEL, 1, REGIONS) == ["eu-west"]


@SQLITE_ONLY
def test_replicate_repairs_a_replica_that_verify_marked_failed(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
) -> None:
    source, regions = make_artifacts("local"), make_regions("local")
    ref = put_version(source)
    replicate(store, source, regions, MODEL, 1, **FAST)
    overwrite_stored(regions["us-east"], ref.sha256, b"truncated")
    verify_replicas(store, regions, MODEL, 1, **FAST)

    replicas = replicate(store, source, regions, MODEL, 1, **FAST)

    assert _states(replicas) == dict.fromkeys(REGIONS, ReplicaState.VERIFIED)
    regions["us-east"].verify(ref)


@SQLITE_ONLY
def test_verify_marks_missing_and_unreachable_copies_failed(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
) -> None:
    source, regions = make_artifacts("local"), make_regions("local")
    ref = put_version(source)
    replicate(store, source, regions, MODEL, 1, **FAST)
    remove_stored(regions["eu-west"], ref.sha256)
    regions["ap-south"] = _unreachable_s3()

    checked = {r.region: r for r in verify_replicas(store, regions, MODEL, 1, **FAST)}

    assert _states(list(checked.values())) == {
        "ap-south": ReplicaState.FAILED,
        "eu-west": ReplicaState.FAILED,
        "us-east": ReplicaState.VERIFIED,
    }
    assert "missing" in (checked["eu-west"].error or "")
    assert "unreachable" in (checked["ap-south"].error or "")


@SQLITE_ONLY
def test_verify_refreshes_the_verification_time(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
) -> None:
    source, regions = make_artifacts("local"), make_regions("local")
    put_version(source)
    [first, *_] = replicate(store, source, regions, MODEL, 1, **FAST)

    [again, *_] = verify_replicas(store, regions, MODEL, 1, **FAST)

    assert again.region == first.region
    assert again.state is ReplicaState.VERIFIED
    assert first.verified_at is not None
    assert again.verified_at is not None
    assert again.verified_at >= first.verified_at


# ---------------------------------------------------------------- refused input


@SQLITE_ONLY
def test_a_symlink_out_of_a_region_root_is_refused_and_nothing_is_written_there(
    store: RegistryStore, make_artifacts: MakeArtifacts, put_version: PutVersion, tmp_path: Path
) -> None:
    source = make_artifacts("local")
    put_version(source)
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "region-root"
    root.mkdir()
    (root / "sha256").symlink_to(outside, target_is_directory=True)

    replica = replicate_one(store, source, "us-east", LocalArtifactStore(root), MODEL, 1, **FAST)

    assert replica.state is ReplicaState.FAILED
    assert "escapes the store root" in (replica.error or "")
    assert list(outside.rglob("*")) == []


@SQLITE_ONLY
@pytest.mark.parametrize("region", ["../us-east", "us/east", "", "US-EAST", "a" * 65])
def test_region_names_that_could_escape_or_confuse_are_refused(
    store: RegistryStore, make_artifacts: MakeArtifacts, put_version: PutVersion, region: str
) -> None:
    source = make_artifacts("local")
    put_version(source)

    with pytest.raises(InvalidInput):
        replicate(store, source, {region: make_artifacts("local")}, MODEL, 1)
    with pytest.raises(InvalidInput):
        replicate_one(store, source, region, make_artifacts("local"), MODEL, 1)
    assert store.replicas(MODEL, 1) == []


@SQLITE_ONLY
@pytest.mark.parametrize(
    "kwargs", [{"retries": -1}, {"retries": 1.5}, {"backoff": -1}, {"backoff": 3600}]
)
def test_bad_retry_settings_are_refused(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
    kwargs: dict[str, float],
) -> None:
    source = make_artifacts("local")
    put_version(source)

    with pytest.raises(InvalidInput):
        replicate(store, source, make_regions("local"), MODEL, 1, **kwargs)  # type: ignore[arg-type]


@SQLITE_ONLY
def test_no_regions_is_refused(
    store: RegistryStore, make_artifacts: MakeArtifacts, put_version: PutVersion
) -> None:
    source = make_artifacts("local")
    put_version(source)

    with pytest.raises(InvalidInput):
        replicate(store, source, {}, MODEL, 1)


@SQLITE_ONLY
def test_an_unknown_version_is_not_found_and_nothing_is_copied(
    store: RegistryStore,
    make_artifacts: MakeArtifacts,
    make_regions: MakeRegions,
    put_version: PutVersion,
) -> None:
    source, regions = make_artifacts("local"), make_regions("local")
    put_version(source)

    with pytest.raises(NotFound):
        replicate(store, source, regions, MODEL, 2)
    with pytest.raises(NotFound):
        verify_replicas(store, regions, MODEL, 2)
    assert all(stored_objects(target) == [] for target in regions.values())
