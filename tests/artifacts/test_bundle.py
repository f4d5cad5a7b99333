"""Bundles on real stores (local folders, S3 buckets on the session's moto server):
put_bundle, manifests, listing, bundle-aware copy_from/verify, replication, and
ingest_source of MLflow sources (file://, paths, s3://) with its roots and caps."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.artifacts import ArtifactStore, LocalArtifactStore
from registry.artifacts.bundle import (
    BUNDLE_FORMAT,
    FILE_FORMAT,
    MAX_FILES,
    MAX_MANIFEST_BYTES,
    Entry,
    ingest_source,
    listing,
    member,
    put_bundle,
    read_manifest,
)
from registry.errors import ArtifactError, ChecksumMismatch, InvalidInput, NotFound
from registry.models import ArtifactRef, VersionCreate
from registry.release_models import ReplicaState
from registry.replication import replicate, verify_replicas
from registry.store.sql import SqlStore

from .support import free_port, overwrite_stored, pattern, stored_objects

PAIRS = [("local", "local"), ("local", "s3"), ("s3", "local"), ("s3", "s3")]
MakeStore = Callable[[str], ArtifactStore]

MLMODEL = b"artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
# An MLflow model directory, with what makes listing and ordering interesting: a
# sub-folder, names that sort around "sub/" ("sub-notes.txt" < "sub/…" < "subway"),
# an empty file, and the same bytes at two paths.
MODEL_FILES: dict[str, bytes] = {
    "MLmodel": MLMODEL,
    "model.pkl": pattern(1)[:300_001],
    "conda.yaml": b"name: mlflow-env\ndependencies:\n  - python=3.11\n",
    "requirements.txt": b"scikit-learn==1.9.1\n",
    "empty.txt": b"",
    "sub-notes.txt": b"notes\n",
    "sub/metadata/MLmodel": MLMODEL,
    "sub/metadata/requirements.txt": b"scikit-learn==1.9.1\nnumpy\n",
    "sub/input_example.json": b'{"columns": ["amount"], "data": [[1.5]]}',
    "subway": b"not in sub/\n",
}


def write_tree(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "roots" / "models" / "fraud", MODEL_FILES)


@pytest.fixture
def roots(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "roots")]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_back(store: ArtifactStore, ref: ArtifactRef, dest: Path) -> dict[str, bytes]:
    """Every file of the bundle, downloaded one by one through member() and get_file()."""
    manifest = read_manifest(store, ref)
    out = {}
    for file in manifest.files:
        path = store.get_file(member(manifest, file.path), dest / uuid.uuid4().hex)
        out[file.path] = path.read_bytes()
    return out


def canonical(files: list[dict[str, Any]], **extra: Any) -> bytes:
    doc = {"bundle": 1, "files": files, **extra}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry(path: str, data: bytes = b"x") -> dict[str, Any]:
    return {"path": path, "sha256": digest(data), "size": len(data)}


def put_raw_manifest(store: ArtifactStore, data: bytes) -> ArtifactRef:
    """Store ``data`` as an object and return a bundle reference to it."""
    ref = ArtifactRef(uri="x", sha256=digest(data), size=len(data), format=FILE_FORMAT)
    placed = store.put_verified(io.BytesIO(data), ref)
    return placed.model_copy(update={"format": BUNDLE_FORMAT})


def only_file_blobs(store: ArtifactStore, files: dict[str, bytes]) -> bool:
    """Whether everything the store holds is one of ``files``' bytes (so no manifest)."""
    allowed = {digest(data) for data in files.values()}
    return all(key.rsplit("/", 1)[-1] in allowed for key in stored_objects(store))


# ---------------------------------------------------------------- put_bundle and manifests


def test_put_bundle_round_trips_every_file_byte_for_byte(
    store: ArtifactStore, tmp_path: Path
) -> None:
    files = {**MODEL_FILES, "sub/big.bin": pattern(2) * 6}  # over 5 MiB: S3's multipart path
    folder = write_tree(tmp_path / "model", files)

    ref = put_bundle(store, folder)

    assert ref.format == BUNDLE_FORMAT
    assert ref.uri == store.uri_for(ref.sha256)
    assert read_back(store, ref, tmp_path / "out") == files
    store.verify(ref)
    # One object per distinct content plus the manifest, and no temporaries.
    assert len(stored_objects(store)) == len(set(map(digest, files.values()))) + 1


def test_the_same_files_give_the_same_manifest_digest(
    make_store: MakeStore, model_dir: Path, tmp_path: Path
) -> None:
    # Written in the opposite order, elsewhere, later: only names and bytes count.
    again = write_tree(tmp_path / "elsewhere", dict(reversed(MODEL_FILES.items())))
    os.utime(again / "MLmodel", (0, 0))
    refs = [
        put_bundle(make_store("local"), model_dir),
        put_bundle(make_store("s3"), again),
        put_bundle(make_store("local"), again),
    ]
    assert len({ref.sha256 for ref in refs}) == 1
    (again / "conda.yaml").write_bytes(b"changed")
    assert put_bundle(make_store("local"), again).sha256 != refs[0].sha256


def test_the_manifest_is_canonical_json_sorted_by_path(
    store: ArtifactStore, model_dir: Path
) -> None:
    ref = put_bundle(store, model_dir)
    with store.open_stored(ref.sha256) as stream:
        raw = stream.read()
    expected = canonical([entry(path, MODEL_FILES[path]) for path in sorted(MODEL_FILES)])
    assert raw == expected
    assert (ref.size, ref.sha256) == (len(raw), digest(raw))


def test_put_bundle_refuses_an_empty_or_missing_folder(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="holds no files"):
        put_bundle(store, tmp_path / "empty")
    with pytest.raises(InvalidInput, match="not found"):
        put_bundle(store, tmp_path / "absent")
    assert stored_objects(store) == []


@pytest.mark.parametrize(
    "name",
    [b"back\\slash", b"new\nline", b"tab\there", b"del\x7f", b"latin1-\xe9"],
    ids=["backslash", "newline", "tab", "DEL", "not UTF-8"],
)
def test_put_bundle_refuses_a_file_name_that_is_no_bundle_path(tmp_path: Path, name: bytes) -> None:
    folder = write_tree(tmp_path / "model", {"MLmodel": MLMODEL})
    Path(os.fsdecode(os.fsencode(folder) + b"/" + name)).write_bytes(b"x")
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidInput, match="bundle path"):
        put_bundle(store, folder)
    assert stored_objects(store) == []


def test_put_bundle_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "model", {"MLmodel": MLMODEL})
    os.mkfifo(folder / "pipe")
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidInput, match="not a regular file"):
        put_bundle(store, folder)
    assert stored_objects(store) == []


def test_a_symlink_to_a_file_inside_is_stored_and_a_folder_symlink_is_not_followed(
    tmp_path: Path,
) -> None:
    folder = write_tree(tmp_path / "model", {"MLmodel": MLMODEL, "sub/a.txt": b"a"})
    (folder / "link.txt").symlink_to(folder / "sub" / "a.txt")
    (folder / "loop").symlink_to(folder)  # followed, this would never end
    store = LocalArtifactStore(tmp_path / "store")
    ref = put_bundle(store, folder)
    assert read_back(store, ref, tmp_path / "out") == {
        "MLmodel": MLMODEL,
        "link.txt": b"a",
        "sub/a.txt": b"a",
    }


# ---------------------------------------------------------------- listing and member


@pytest.fixture
def manifest_of_model(model_dir: Path, tmp_path: Path) -> Any:
    store = LocalArtifactStore(tmp_path / "store")
    return read_manifest(store, put_bundle(store, model_dir))


def test_listing_the_root_shows_files_and_folders(manifest_of_model: Any) -> None:
    assert listing(manifest_of_model, "") == [
        Entry("MLmodel", False, len(MLMODEL)),
        Entry("conda.yaml", False, len(MODEL_FILES["conda.yaml"])),
        Entry("empty.txt", False, 0),
        Entry("model.pkl", False, 300_001),
        Entry("requirements.txt", False, len(MODEL_FILES["requirements.txt"])),
        Entry("sub", True, None),
        Entry("sub-notes.txt", False, len(b"notes\n")),
        Entry("subway", False, len(MODEL_FILES["subway"])),
    ]


@pytest.mark.parametrize("folder", ["sub", "sub/"])
def test_listing_a_sub_folder_shows_its_direct_children(
    manifest_of_model: Any, folder: str
) -> None:
    assert listing(manifest_of_model, folder) == [
        Entry("input_example.json", False, len(MODEL_FILES["sub/input_example.json"])),
        Entry("metadata", True, None),
    ]
    assert [e.path for e in listing(manifest_of_model, "sub/metadata")] == [
        "MLmodel",
        "requirements.txt",
    ]


def test_listing_a_file_returns_that_one_file(manifest_of_model: Any) -> None:
    # MLflow's HTTP artifact client treats exactly this answer as "a file, not a folder".
    assert listing(manifest_of_model, "sub/metadata/MLmodel") == [
        Entry("MLmodel", False, len(MLMODEL))
    ]
    assert listing(manifest_of_model, "MLmodel") == [Entry("MLmodel", False, len(MLMODEL))]


@pytest.mark.parametrize("folder", ["nope", "sub/nope", "su", "sub/metadata/MLmodel/x"])
def test_listing_a_missing_path_is_not_found(manifest_of_model: Any, folder: str) -> None:
    with pytest.raises(NotFound):
        listing(manifest_of_model, folder)


@pytest.mark.parametrize("folder", ["../etc", "/etc", "sub/./metadata", "a\\b"])
def test_listing_refuses_a_malformed_folder(manifest_of_model: Any, folder: str) -> None:
    with pytest.raises(InvalidInput):
        listing(manifest_of_model, folder)


def test_member_is_the_files_own_reference(manifest_of_model: Any) -> None:
    ref = member(manifest_of_model, "sub/metadata/requirements.txt")
    data = MODEL_FILES["sub/metadata/requirements.txt"]
    assert (ref.sha256, ref.size, ref.format) == (digest(data), len(data), FILE_FORMAT)
    for missing in ["sub", "sub/metadata", "nope", ""]:
        with pytest.raises(NotFound):
            member(manifest_of_model, missing)


# ---------------------------------------------------------------- copy_from and verify


@pytest.mark.parametrize(("first", "second"), [("local", "s3"), ("s3", "local"), ("s3", "s3")])
def test_copy_from_carries_a_bundle_there_and_back(
    make_store: MakeStore, model_dir: Path, tmp_path: Path, first: str, second: str
) -> None:
    origin, there, back = make_store("local"), make_store(first), make_store(second)
    ref = put_bundle(origin, model_dir)

    at_there = there.copy_from(origin, ref)
    at_back = back.copy_from(there, at_there)

    for target, copied in [(there, at_there), (back, at_back)]:
        assert copied.uri == target.uri_for(ref.sha256)
        assert (copied.sha256, copied.size, copied.format) == (ref.sha256, ref.size, BUNDLE_FORMAT)
        target.verify(copied)
        assert read_back(target, copied, tmp_path / uuid.uuid4().hex) == MODEL_FILES
        assert len(stored_objects(target)) == len(set(map(digest, MODEL_FILES.values()))) + 1


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copying_a_bundle_again_needs_nothing_from_the_source(
    make_store: MakeStore, model_dir: Path, source_kind: str, target_kind: str
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = put_bundle(source, model_dir)
    first = target.copy_from(source, ref)
    # An empty store as the source: every byte must come from the target's own copy.
    assert target.copy_from(make_store("local"), ref) == first


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copy_from_restores_a_missing_or_corrupt_file_of_a_bundle(
    make_store: MakeStore, model_dir: Path, source_kind: str, target_kind: str
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = put_bundle(source, model_dir)
    target.copy_from(source, ref)
    target.delete(digest(MODEL_FILES["model.pkl"]))
    overwrite_stored(target, digest(MODEL_FILES["conda.yaml"]), b"x" * 10)
    with pytest.raises(ArtifactError):
        target.verify(ref)
    target.copy_from(source, ref)
    target.verify(ref)


@pytest.mark.parametrize("damage", ["tampered", "truncated", "missing"])
@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_a_damaged_file_fails_verify_and_copy_and_leaves_no_manifest(
    make_store: MakeStore, model_dir: Path, source_kind: str, target_kind: str, damage: str
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = put_bundle(source, model_dir)
    good = MODEL_FILES["model.pkl"]
    if damage == "missing":
        source.delete(digest(good))
    else:
        bad = bytes([good[0] ^ 1]) + good[1:] if damage == "tampered" else good[:-1]
        overwrite_stored(source, digest(good), bad)
    error = ArtifactError if damage == "missing" else ChecksumMismatch

    with pytest.raises(error):
        source.verify(ref)
    with pytest.raises(error):
        target.copy_from(source, ref)

    assert not target.exists(ref.sha256)
    assert not target.exists(digest(good))  # nor the damaged bytes under the file's key
    assert only_file_blobs(target, MODEL_FILES)


@pytest.mark.parametrize("damage", ["tampered", "truncated", "longer"])
@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_a_damaged_manifest_fails_verify_and_copy(
    make_store: MakeStore, model_dir: Path, source_kind: str, target_kind: str, damage: str
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = put_bundle(source, model_dir)
    with source.open_stored(ref.sha256) as stream:
        raw = stream.read()
    bad = {"tampered": raw.replace(b"MLmodel", b"MLmodeL"), "truncated": raw[:-1]}.get(
        damage, raw + b" "
    )
    overwrite_stored(source, ref.sha256, bad)

    for action in (lambda: read_manifest(source, ref), lambda: source.verify(ref)):
        with pytest.raises(ChecksumMismatch):
            action()
    with pytest.raises(ChecksumMismatch):
        target.copy_from(source, ref)
    assert stored_objects(target) == []


# ---------------------------------------------------------------- replication


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("source_kind", ["local", "s3"])
def test_replicate_copies_a_bundle_version_into_every_region(
    store_url: str, make_store: MakeStore, model_dir: Path, tmp_path: Path, source_kind: str
) -> None:
    source = make_store(source_kind)
    regions = {"eu-west": make_store("local"), "us-east": make_store("s3")}
    ref = put_bundle(source, model_dir)
    with SqlStore(store_url, actor="tester") as registry:
        registry.register("fraud-detector", ref, VersionCreate())

        replicas = replicate(registry, source, regions, "fraud-detector", 1, retries=0)
        checked = verify_replicas(registry, regions, "fraud-detector", 1, retries=0)

    assert [(r.region, r.state) for r in replicas] == [
        ("eu-west", ReplicaState.VERIFIED),
        ("us-east", ReplicaState.VERIFIED),
    ]
    assert all(r.state is ReplicaState.VERIFIED for r in checked)
    for region, target in regions.items():
        assert read_back(target, ref, tmp_path / region) == MODEL_FILES


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_replicating_a_bundle_with_a_tampered_file_fails_and_places_no_manifest(
    store_url: str, make_store: MakeStore, model_dir: Path
) -> None:
    source = make_store("s3")
    regions = {"eu-west": make_store("local"), "us-east": make_store("s3")}
    ref = put_bundle(source, model_dir)
    overwrite_stored(source, digest(MODEL_FILES["MLmodel"]), b"x" * len(MLMODEL))
    with SqlStore(store_url, actor="tester") as registry:
        registry.register("fraud-detector", ref, VersionCreate())
        replicas = replicate(registry, source, regions, "fraud-detector", 1, retries=0)

    assert all(r.state is ReplicaState.FAILED for r in replicas)
    assert all("corrupt" in (r.error or "") for r in replicas)
    assert not any(target.exists(ref.sha256) for target in regions.values())


# ---------------------------------------------------------------- malformed manifests


def _many(count: int) -> bytes:
    return canonical([entry(f"f{i:05d}") for i in range(count)])


MALFORMED: dict[str, bytes] = {
    "absolute path": canonical([entry("/etc/passwd")]),
    "dot-dot": canonical([entry("../secret")]),
    "dot-dot inside": canonical([entry("a/../../secret")]),
    "dot segment": canonical([entry("a/./b")]),
    "empty segment": canonical([entry("a//b")]),
    "trailing slash": canonical([entry("a/")]),
    "empty path": canonical([entry("")]),
    "backslash": canonical([entry("a\\..\\b")]),
    "NUL": canonical([entry("a\x00b")]),
    "control character": canonical([entry("a\x1bb")]),
    "path too long": canonical([entry("a" * 1025)]),
    "duplicate": canonical([entry("a"), entry("a", b"y")]),
    "file and folder": canonical([entry("a"), entry("a/b")]),
    "not sorted": canonical([entry("b"), entry("a")]),
    "no files": canonical([]),
    "too many files": _many(MAX_FILES + 1),
    "not canonical": canonical([entry("a")]).replace(b",", b", "),
    "extra key": canonical([entry("a")], extra=1),
    "extra file key": canonical([{**entry("a"), "mode": 420}]),
    "missing key": canonical([{"path": "a", "size": 1}]),
    "version 2": canonical([entry("a")]).replace(b'"bundle":1', b'"bundle":2'),
    "version true": canonical([entry("a")]).replace(b'"bundle":1', b'"bundle":true'),
    "bad sha256": canonical([{**entry("a"), "sha256": "AB" * 32}]),
    "negative size": canonical([{**entry("a"), "size": -1}]),
    "float size": canonical([{**entry("a"), "size": 1.0}]),
    "bool size": canonical([{**entry("a"), "size": True}]),
    "path not a string": canonical([{**entry("a"), "path": 7}]),
    "files not a list": b'{"bundle":1,"files":{}}',
    "not an object": b"[]",
    "not JSON": b"MLmodel\nmodel.pkl\n",
    "not UTF-8": b'{"bundle":1,"files":[{"path":"\xff","sha256":"","size":0}]}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_manifest_is_refused(tmp_path: Path, data: bytes) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    ref = put_raw_manifest(store, data)
    with pytest.raises(InvalidInput):
        read_manifest(store, ref)
    with pytest.raises(InvalidInput):
        store.verify(ref)


def test_a_well_formed_raw_manifest_is_read(tmp_path: Path) -> None:
    """The malformed cases above differ from this one only in what they break."""
    store = LocalArtifactStore(tmp_path / "store")
    files = [entry("a"), entry("a-b"), entry("a.b/c"), entry("a0"), entry("é/ü")]
    manifest = read_manifest(store, put_raw_manifest(store, canonical(files)))
    assert [f.path for f in manifest.files] == ["a", "a-b", "a.b/c", "a0", "é/ü"]


def test_a_manifest_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    huge = ArtifactRef(uri="x", sha256="0" * 64, size=MAX_MANIFEST_BYTES + 1, format=BUNDLE_FORMAT)
    with pytest.raises(InvalidInput, match="over"):
        read_manifest(store, huge)  # no such object: refused without reading


# ---------------------------------------------------------------- ingest_source: local


def test_ingest_reads_a_file_uri_and_a_bare_path_alike(
    store: ArtifactStore, model_dir: Path, roots: list[str], tmp_path: Path
) -> None:
    by_uri = ingest_source(store, model_dir.as_uri(), roots=roots)
    by_path = ingest_source(store, str(model_dir), roots=roots)
    assert by_uri is not None and by_path is not None
    assert by_uri == by_path
    assert by_uri.sha256 == put_bundle(LocalArtifactStore(tmp_path / "other"), model_dir).sha256
    assert read_back(store, by_uri, tmp_path / "out") == MODEL_FILES


def test_ingest_decodes_a_percent_encoded_file_uri(tmp_path: Path, roots: list[str]) -> None:
    folder = write_tree(tmp_path / "roots" / "my model #1", {"MLmodel": MLMODEL})
    store = LocalArtifactStore(tmp_path / "store")
    assert folder.as_uri().endswith("my%20model%20%231")
    ref = ingest_source(store, folder.as_uri(), roots=[Path(roots[0]).as_uri()])
    assert ref is not None
    assert read_back(store, ref, tmp_path / "out") == {"MLmodel": MLMODEL}


def test_ingest_of_one_file_is_a_bundle_of_that_file(
    store: ArtifactStore, model_dir: Path, roots: list[str], tmp_path: Path
) -> None:
    ref = ingest_source(store, str(model_dir / "model.pkl"), roots=roots)
    assert ref is not None and ref.format == BUNDLE_FORMAT
    manifest = read_manifest(store, ref)
    assert listing(manifest, "") == [Entry("model.pkl", False, 300_001)]
    assert read_back(store, ref, tmp_path / "out") == {"model.pkl": MODEL_FILES["model.pkl"]}


@pytest.mark.parametrize(
    "source",
    [
        "runs:/0123456789abcdef/model",
        "models:/m-0123456789abcdef",
        "models:/fraud-detector/1",
        "http://example.com/model",
        "mlflow-artifacts:/0/abc/artifacts/model",
        "relative/model",
        "",
        "file://otherhost/tmp/model",
    ],
)
def test_ingest_of_a_source_it_cannot_read_is_none(
    tmp_path: Path, roots: list[str], source: str
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    assert ingest_source(store, source, roots=[*roots, "/"]) is None
    assert stored_objects(store) == []


def test_ingest_of_a_missing_path_is_none(tmp_path: Path, roots: list[str]) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    assert ingest_source(store, str(tmp_path / "roots" / "gone"), roots=roots) is None
    assert ingest_source(store, (tmp_path / "roots" / "gone").as_uri(), roots=roots) is None


def test_ingest_of_a_source_outside_every_root_is_none(model_dir: Path, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    write_tree(tmp_path / "secrets", {"key.pem": b"secret"})
    root = tmp_path / "roots" / "models"
    cases = [
        (str(tmp_path / "secrets"), [str(root)]),
        (f"{root}/../../secrets", [str(root)]),  # climbs out of the root
        (str(model_dir), [str(root / "fra")]),  # a root that is a prefix of the name only
        (str(model_dir), [str(tmp_path / "other")]),
        (str(model_dir), []),
        (str(model_dir), ["s3://bucket/models"]),
    ]
    for source, allowed in cases:
        assert ingest_source(store, source, roots=allowed) is None, (source, allowed)
    assert stored_objects(store) == []


def test_ingest_of_a_link_that_leads_outside_the_roots_reads_nothing(tmp_path: Path) -> None:
    secret = write_tree(tmp_path / "secrets", {"key.pem": b"secret"})
    roots = [str(tmp_path / "roots")]
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "model").symlink_to(secret)
    (tmp_path / "roots" / "key").symlink_to(secret / "key.pem")
    store = LocalArtifactStore(tmp_path / "store")
    assert ingest_source(store, str(tmp_path / "roots" / "model"), roots=roots) is None
    assert ingest_source(store, str(tmp_path / "roots" / "key"), roots=roots) is None
    assert stored_objects(store) == []


@pytest.mark.parametrize("target", ["file", "folder"])
def test_ingest_refuses_a_symlink_inside_the_source_that_escapes_it(
    tmp_path: Path, model_dir: Path, roots: list[str], target: str
) -> None:
    secret = write_tree(tmp_path / "secrets", {"key.pem": b"secret"})
    (model_dir / "sub" / "key").symlink_to(secret / "key.pem" if target == "file" else secret)
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidInput, match="outside"):
        ingest_source(store, str(model_dir), roots=roots)
    assert stored_objects(store) == []  # refused before any file was read


def test_ingest_refuses_a_link_to_a_sibling_model_in_the_same_root(
    tmp_path: Path, model_dir: Path, roots: list[str]
) -> None:
    """Inside the roots but outside the source: another model's bytes are not this one's."""
    other = write_tree(model_dir.parent / "other", {"weights.bin": b"other model"})
    (model_dir / "weights.bin").symlink_to(other / "weights.bin")
    with pytest.raises(InvalidInput, match="outside"):
        ingest_source(LocalArtifactStore(tmp_path / "store"), str(model_dir), roots=roots)


def test_ingest_of_a_source_whose_file_vanished_is_none_and_stores_no_manifest(
    tmp_path: Path, model_dir: Path, roots: list[str]
) -> None:
    # Sorted last, so the other files are stored before it fails to open.
    (model_dir / "zz-weights.bin").symlink_to(model_dir / "was-here.bin")
    store = LocalArtifactStore(tmp_path / "store")
    assert ingest_source(store, str(model_dir), roots=roots) is None
    assert stored_objects(store)  # the files before it were stored: harmless orphans
    assert only_file_blobs(store, MODEL_FILES)


def test_ingest_of_a_file_that_changes_while_it_is_stored_is_none(tmp_path: Path) -> None:
    """/proc/self/io counts the bytes this process has read, so reading it changes it: a
    real file whose bytes differ between the hash and the copy into the store."""
    store = LocalArtifactStore(tmp_path / "store")
    assert ingest_source(store, "/proc/self/io", roots=["/proc/self"]) is None
    assert stored_objects(store) == []


@pytest.mark.parametrize(
    ("caps", "message"),
    [({"max_files": len(MODEL_FILES) - 1}, "file cap"), ({"max_bytes": 300_000}, "size cap")],
)
def test_ingest_over_a_cap_is_refused_naming_it(
    tmp_path: Path, model_dir: Path, roots: list[str], caps: dict[str, int], message: str
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidInput, match=message):
        ingest_source(store, str(model_dir), roots=roots, **caps)
    assert stored_objects(store) == []
    exact = {"max_files": len(MODEL_FILES), "max_bytes": sum(map(len, MODEL_FILES.values()))}
    assert ingest_source(store, str(model_dir), roots=roots, **exact) is not None


@pytest.mark.parametrize("root", ["relative/root", "http://example.com/", "s3://", "s3://b/../x"])
def test_ingest_refuses_a_malformed_root(tmp_path: Path, model_dir: Path, root: str) -> None:
    with pytest.raises(InvalidInput, match="source root"):
        ingest_source(LocalArtifactStore(tmp_path / "store"), str(model_dir), roots=[root])


# ---------------------------------------------------------------- ingest_source: S3


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The S3 endpoint as a server would be given it: boto3's environment variable."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    return s3_endpoint


@pytest.fixture
def s3_model(s3_client: Any, make_bucket: Callable[[], str]) -> Iterator[str]:
    """A bucket holding MODEL_FILES under ``0/run/artifacts/model/`` as MLflow logs them,
    with a console's folder marker and a neighbour that shares the prefix's name."""
    bucket = make_bucket()
    prefix = "0/run/artifacts/model"
    for name, data in MODEL_FILES.items():
        s3_client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}/sub/", Body=b"")
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}-other/MLmodel", Body=b"other")
    yield bucket


def test_ingest_reads_an_s3_prefix_into_the_same_bundle_as_the_folder(
    s3_env: str, s3_model: str, store: ArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    source = f"s3://{s3_model}/0/run/artifacts/model"
    ref = ingest_source(store, source, roots=[f"s3://{s3_model}/0"])
    assert ref is not None
    assert ref.sha256 == put_bundle(LocalArtifactStore(tmp_path / "local"), model_dir).sha256
    assert read_back(store, ref, tmp_path / "out") == MODEL_FILES
    trailing = ingest_source(store, f"{source}/", roots=[f"s3://{s3_model}"])
    assert trailing == ref


def test_ingest_of_one_s3_object_is_a_bundle_of_that_file(
    s3_env: str, s3_model: str, tmp_path: Path
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    source = f"s3://{s3_model}/0/run/artifacts/model/model.pkl"
    ref = ingest_source(store, source, roots=[f"s3://{s3_model}"])
    assert ref is not None
    assert read_back(store, ref, tmp_path / "out") == {"model.pkl": MODEL_FILES["model.pkl"]}


def test_ingest_of_s3_sources_outside_the_roots_is_none(
    s3_env: str, s3_model: str, tmp_path: Path
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    model = f"s3://{s3_model}/0/run/artifacts/model"
    cases = [
        (model, [f"s3://{s3_model}/1"]),
        (model, [f"s3://{s3_model}/0/ru"]),  # a prefix of a name, not of the path
        (model, [f"s3://{s3_model}-other"]),
        (model, [str(tmp_path)]),
        (model, []),
        (f"s3://{s3_model}/0/run/artifacts/model/../../../secret", [f"s3://{s3_model}/0"]),
        (f"s3://{s3_model}/0//run", [f"s3://{s3_model}/0"]),
    ]
    for source, allowed in cases:
        assert ingest_source(store, source, roots=allowed) is None, (source, allowed)
    assert stored_objects(store) == []


def test_ingest_of_an_s3_source_it_cannot_read_is_none(
    s3_env: str, s3_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    roots = ["s3://no-such-bucket-here", f"s3://{s3_model}"]
    assert ingest_source(store, "s3://no-such-bucket-here/model", roots=roots) is None
    assert ingest_source(store, f"s3://{s3_model}/0/run/artifacts/absent", roots=roots) is None
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    source = f"s3://{s3_model}/0/run/artifacts/model"
    assert ingest_source(store, source, roots=roots) is None  # endpoint down
    assert stored_objects(store) == []


def test_ingest_of_an_s3_prefix_with_an_unreadable_object_is_none_and_stores_no_manifest(
    s3_env: str, s3_client: Any, make_bucket: Callable[[], str], tmp_path: Path
) -> None:
    bucket = make_bucket()
    files = {"MLmodel": MLMODEL, "requirements.txt": b"numpy\n"}
    for name, data in files.items():
        s3_client.put_object(Bucket=bucket, Key=f"model/{name}", Body=data)
    # Listed like any object, but GET answers InvalidObjectState until it is restored.
    s3_client.put_object(Bucket=bucket, Key="model/zz.bin", Body=b"cold", StorageClass="GLACIER")
    store = LocalArtifactStore(tmp_path / "store")
    assert ingest_source(store, f"s3://{bucket}/model", roots=[f"s3://{bucket}"]) is None
    assert stored_objects(store)
    assert only_file_blobs(store, files)


@pytest.mark.parametrize(
    ("caps", "message"), [({"max_files": 3}, "file cap"), ({"max_bytes": 10}, "size cap")]
)
def test_ingest_of_an_s3_prefix_over_a_cap_is_refused(
    s3_env: str, s3_model: str, tmp_path: Path, caps: dict[str, int], message: str
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidInput, match=message):
        ingest_source(
            store, f"s3://{s3_model}/0/run/artifacts/model", roots=[f"s3://{s3_model}"], **caps
        )
    assert stored_objects(store) == []


def test_ingest_refuses_an_s3_key_that_is_no_bundle_path(
    s3_env: str, s3_client: Any, make_bucket: Callable[[], str], tmp_path: Path
) -> None:
    bucket = make_bucket()
    s3_client.put_object(Bucket=bucket, Key="model/MLmodel", Body=MLMODEL)
    s3_client.put_object(Bucket=bucket, Key="model/a//b", Body=b"x")
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(InvalidInput, match="bundle path"):
        ingest_source(store, f"s3://{bucket}/model", roots=[f"s3://{bucket}"])
    assert stored_objects(store) == []
