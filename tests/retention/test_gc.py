"""``registry.retention.collect`` (what ``modelreg gc`` runs) on every backend pair: the
registry on SQLite and PostgreSQL, the artifact stores as local folders and S3 buckets.

Each test builds a registry, runs gc "a day later" (so nothing is younger than the
default min-age unless the test says so) and reads the stores and the log back.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest
from release_facts import make_releasable

from registry.artifacts import ArtifactStore, LocalArtifactStore
from registry.artifacts.bundle import put_bundle
from registry.artifacts.s3 import S3ArtifactStore
from registry.errors import Conflict
from registry.models import ArtifactRef, Event, Signature, Stage, VersionCreate
from registry.release_models import ReplicaState
from registry.retention import MAIN_STORE

from .conftest import MODEL, REGION, Registry

SIGNATURE = Signature.model_validate({"features": [{"name": "amount", "dtype": "float64"}]})


def collected(registry: Registry, since: int = 0) -> list[Event]:
    return [e for e in registry.store.events(since=since) if e.kind == "artifact.collected"]


def serve(registry: Registry, version: int, name: str = MODEL) -> None:
    """Staging, the gate facts, then Production: the legal way up."""
    registry.store.transition(name, version, Stage.STAGING)
    make_releasable(registry.store, name, version)
    registry.store.transition(name, version, Stage.PRODUCTION)


# ---------------------------------------------------------------- what goes, what stays


def test_unreferenced_old_bytes_go_and_referenced_bytes_stay(registry: Registry) -> None:
    version = registry.register()
    kept = registry.sha(MODEL, version)
    orphan = registry.put()  # an upload whose registration never happened
    report = registry.gc()
    assert registry.held() == {kept}
    assert [(a.store, a.sha256, a.size) for a in report.artifacts] == [
        (MAIN_STORE, orphan.sha256, orphan.size)
    ]
    assert report.bytes_freed == orphan.size and report.kept == 1
    # No registration named the orphan: no model to log it on, so the gc log has it.
    assert collected(registry) == []
    assert report.artifacts[0].event is None
    log = (registry.tmp_path / "home" / "gc.log").read_text().splitlines()
    lines = [json.loads(line) for line in log]
    assert [line["collected"]["sha256"] for line in lines] == [orphan.sha256]


def test_bytes_of_a_deleted_version_go_with_an_event_on_its_model(registry: Registry) -> None:
    first = registry.register()
    second = registry.register()
    gone, stays = registry.sha(MODEL, first), registry.sha(MODEL, second)
    registry.store.delete_version(MODEL, first)
    before = registry.store.latest_seq()
    report = registry.gc()
    assert registry.held() == {stays}
    [event] = collected(registry, before)
    assert (event.model, event.version, event.subject) == (MODEL, first, MAIN_STORE)
    assert (event.details.sha256, event.details.size) == (gone, report.artifacts[0].size)
    assert event.actor == "tester" and event.reason is not None and "24h" in event.reason
    assert report.artifacts[0].event == event.seq
    assert gone not in {e.details.sha256 for e in registry.store.history(MODEL)[:-1]}


def test_bytes_of_a_version_that_served_stay_after_it_was_archived(registry: Registry) -> None:
    first, second = registry.register(), registry.register()
    serve(registry, first)
    serve(registry, second)  # archives the first
    assert registry.store.get_version(MODEL, first).stage is Stage.ARCHIVED
    with pytest.raises(Conflict, match="served in Production"):
        registry.store.delete_version(MODEL, first)
    report = registry.gc(keep_versions=0)
    assert report.versions == () and report.artifacts == ()
    assert registry.held() == {registry.sha(MODEL, first), registry.sha(MODEL, second)}
    references = registry.store.artifact_references()
    assert registry.sha(MODEL, first) in references.served
    assert "served in Production" in references.versions[0].protected


def test_bytes_bound_to_an_app_release_stay(registry: Registry) -> None:
    registry.store.register(MODEL, registry.put(), VersionCreate.parse({"signature": SIGNATURE}))
    registry.register()
    registry.store.create_app_release("checkout", "r1", SIGNATURE)
    registry.store.bind_app_release("checkout", "r1", MODEL, version=1)
    with pytest.raises(Conflict, match="bound by an app release"):
        registry.store.delete_version(MODEL, 1)
    report = registry.gc(keep_versions=0)
    assert [(v.version, v.deleted) for v in report.versions] == [(2, True)]
    assert registry.held() == {registry.sha(MODEL, 1)}
    assert [e.version for e in collected(registry)] == [2]


def test_a_young_unreferenced_upload_stays(registry: Registry) -> None:
    """The race that matters: bytes uploaded, registration not committed yet."""
    in_flight = registry.put()
    report = registry.gc(later=False)  # the default min-age, right now
    assert registry.held() == {in_flight.sha256}
    assert (report.artifacts, report.young) == ((), 1)
    # Its registration commits: referenced from then on, whatever its age.
    registry.register(ref=in_flight)
    assert registry.gc().artifacts == ()
    assert registry.held() == {in_flight.sha256}


def test_min_age_zero_takes_a_fresh_orphan(registry: Registry) -> None:
    orphan = registry.put()
    from datetime import timedelta

    report = registry.gc(later=False, min_age=timedelta(0))
    assert [a.sha256 for a in report.artifacts] == [orphan.sha256]
    assert registry.held() == set()


def test_region_replicas_of_a_deleted_version_are_collected(registry: Registry) -> None:
    version = registry.register()
    ref = registry.store.get_version(MODEL, version).artifact
    placed = registry.region.copy_from(registry.main, ref)
    registry.store.record_replica(
        MODEL,
        version,
        REGION,
        ReplicaState.VERIFIED,
        uri=placed.uri,
        sha256=ref.sha256,
        size=ref.size,
    )
    keep = registry.register()
    registry.region.copy_from(registry.main, registry.store.get_version(MODEL, keep).artifact)
    registry.store.delete_version(MODEL, version)
    registry.gc()
    assert ref.sha256 not in registry.held(registry.region) | registry.held()
    assert registry.held(registry.region) == {registry.sha(MODEL, keep)}
    events = collected(registry)
    assert sorted((e.subject, e.version, e.details.sha256) for e in events) == [
        (MAIN_STORE, version, ref.sha256),
        (REGION, version, ref.sha256),
    ]


def test_keys_that_are_not_content_keys_are_never_touched(registry: Registry) -> None:
    """Backups (``backups/``), uploads in progress and foreign files stay; only
    content keys are listed, let alone removed."""
    backup = "backups/registry-2026-12-01.tar"
    shard = "sha256/00/" + "ab" * 32  # a digest under the wrong shard: not a content key
    foreign = [backup, shard, "sha256/ab/notahash", "tmp/upload-in-flight"]
    write_raw(registry.main, foreign)
    report = registry.gc(keep_versions=0)
    assert report.artifacts == () and registry.held() == set()
    assert read_raw(registry.main, foreign) == foreign


def test_a_dry_run_changes_nothing(registry: Registry) -> None:
    for _ in range(3):
        registry.register()
    registry.store.delete_version(MODEL, 1)
    orphan = registry.put()
    held, seq = registry.held(), registry.store.latest_seq()
    versions = registry.store.list_versions(MODEL)
    report = registry.gc(dry_run=True, keep_versions=1)
    assert report.dry_run
    assert [(v.version, v.deleted) for v in report.versions] == [(2, False)]
    would = {a.sha256 for a in report.artifacts}
    assert would == held - {registry.sha(MODEL, 3)}
    assert orphan.sha256 in would and registry.sha(MODEL, 2) in would
    assert report.bytes_freed == sum(a.size for a in report.artifacts) > 0
    assert registry.held() == held
    assert registry.store.latest_seq() == seq
    assert registry.store.list_versions(MODEL) == versions
    assert not (registry.tmp_path / "home" / "gc.log").exists()
    # The real run does what the dry run said.
    real = registry.gc(keep_versions=1)
    assert {a.sha256 for a in real.artifacts} == would


def test_keep_versions_deletes_old_unprotected_versions_and_their_bytes(
    registry: Registry,
) -> None:
    for _ in range(6):
        registry.register()
    registry.store.set_aliases(MODEL, {"shadow": 2})
    registry.store.transition(MODEL, 3, Stage.STAGING)
    registry.store.transition(MODEL, 4, Stage.ARCHIVED, reason="never used")
    shas = {v: registry.sha(MODEL, v) for v in range(1, 7)}
    before = registry.store.latest_seq()
    report = registry.gc(keep_versions=2)
    assert [(v.version, v.deleted) for v in report.versions] == [(1, True), (4, True)]
    assert [v.version for v in registry.store.list_versions(MODEL)] == [6, 5, 3, 2]
    assert registry.held() == {shas[v] for v in (2, 3, 5, 6)}
    kinds = [(e.kind, e.version) for e in registry.store.events(since=before)]
    assert kinds == [
        ("version.deleted", 1),
        ("version.deleted", 4),
        *sorted(
            [("artifact.collected", 1), ("artifact.collected", 4)],
            key=lambda kv: shas[kv[1]],
        ),
    ]


def test_keep_versions_keeps_models_apart(registry: Registry) -> None:
    for name in ("a/one", "b/two"):
        for _ in range(2):
            registry.register(name)
    report = registry.gc(keep_versions=1)
    assert [(v.model, v.version) for v in report.versions] == [("a/one", 1), ("b/two", 1)]
    assert {e.model for e in collected(registry)} == {"a/one", "b/two"}


def test_bytes_shared_by_a_kept_version_stay(registry: Registry) -> None:
    ref = registry.put()
    registry.register(ref=ref)
    registry.register("other", ref=ref)
    registry.store.delete_version(MODEL, 1)
    assert registry.gc().artifacts == ()
    assert registry.held() == {ref.sha256}


# ---------------------------------------------------------------- bundles


def test_bundle_files_stay_while_referenced_and_go_with_their_version(
    registry: Registry, tmp_path: Path
) -> None:
    kept = registry.register(ref=bundle(registry, tmp_path, "kept"))
    gone_ref = bundle(registry, tmp_path, "gone")
    gone = registry.register(ref=gone_ref)
    bundle(registry, tmp_path, "orphan")  # files and manifest, never registered
    kept_files = registry.held()
    registry.store.delete_version(MODEL, gone)
    before = registry.store.latest_seq()
    report = registry.gc()
    remaining = registry.held()
    kept_ref = registry.store.get_version(MODEL, kept).artifact
    assert kept_ref.sha256 in remaining
    registry.main.verify(kept_ref)  # the kept bundle is whole: manifest and every file
    assert gone_ref.sha256 not in remaining and remaining < kept_files
    # The deleted bundle's files are logged on its model, through its manifest.
    events = collected(registry, before)
    assert {e.version for e in events} == {gone}
    via = {e.details.sha256: e.from_value for e in events}
    assert via[gone_ref.sha256] is None
    assert set(via.values()) == {None, gone_ref.sha256} and len(via) == 3
    # The orphan bundle has no model: logged in gc.log only.
    unattributed = [a for a in report.artifacts if a.event is None]
    assert len(unattributed) == 3
    assert {a.via for a in unattributed} - {None} != set()


def bundle(registry: Registry, tmp_path: Path, tag: str) -> ArtifactRef:
    folder = tmp_path / f"bundle-{tag}-{uuid.uuid4().hex[:6]}"
    (folder / "data").mkdir(parents=True)
    (folder / "MLmodel").write_text(f"flavors: {tag} {uuid.uuid4().hex}\n")
    (folder / "data" / "model.bin").write_bytes(os.urandom(100))
    return put_bundle(registry.main, folder)


# ---------------------------------------------------------------- raw keys


def write_raw(main: ArtifactStore, keys: list[str]) -> None:
    for key in keys:
        if isinstance(main, LocalArtifactStore):
            path = main.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not content-addressed")
        else:
            assert isinstance(main, S3ArtifactStore)
            main.client.put_object(Bucket=main.bucket, Key=f"{main.prefix}/{key}", Body=b"x")


def read_raw(main: ArtifactStore, keys: list[str]) -> list[str]:
    if isinstance(main, LocalArtifactStore):
        return [key for key in keys if (main.root / key).is_file()]
    assert isinstance(main, S3ArtifactStore)
    listed = main.client.list_objects_v2(Bucket=main.bucket, Prefix=f"{main.prefix}/")
    found = {item["Key"].removeprefix(f"{main.prefix}/") for item in listed.get("Contents", ())}
    return [key for key in keys if key in found]


def test_subject_manifests_are_never_collected(registry: Registry) -> None:
    manifest = registry.put(b"subject manifest: " + os.urandom(32))
    subject = hashlib.sha256(b"subject-1").hexdigest()
    registry.store.record_subject_manifest("transactions", "2026-11-01", manifest, [subject])
    orphan = registry.put()
    report = registry.gc(keep_versions=0)
    assert [a.sha256 for a in report.artifacts] == [orphan.sha256]
    assert registry.held() == {manifest.sha256}
    assert registry.store.artifact_references().subject_manifests == (manifest.sha256,)
