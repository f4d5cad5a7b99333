"""registry.subjects: the secret, subject keys, and manifests on a real artifact store."""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from pathlib import Path

import pytest

from registry.artifacts import LocalArtifactStore
from registry.config import Settings
from registry.errors import ArtifactError, ChecksumMismatch, InvalidInput
from registry.models import ArtifactRef
from registry.subjects import (
    MANIFEST_FORMAT,
    SECRET_BYTES,
    fingerprint,
    load_secret,
    manifest_bytes,
    parse_manifest,
    put_manifest,
    read_manifest,
    subject_key,
)

SECRET = bytes(range(32))


def settings_at(home: Path, secret: str | None = None) -> Settings:
    return Settings(home=home, subject_secret=secret)


# ---------------------------------------------------------------- keys


def test_a_key_is_the_hmac_sha256_of_the_id_under_the_secret() -> None:
    expected = hmac.new(SECRET, b"customer-42", hashlib.sha256).hexdigest()
    assert subject_key(SECRET, "customer-42") == expected


def test_keys_are_stable_and_differ_per_id_and_per_secret() -> None:
    assert subject_key(SECRET, "c-1") == subject_key(SECRET, "c-1")
    assert subject_key(SECRET, "c-1") != subject_key(SECRET, "c-2")
    assert subject_key(SECRET, "c-1") != subject_key(b"x" * 32, "c-1")


def test_the_id_is_nfc_normalised_and_stripped_first() -> None:
    composed = unicodedata.normalize("NFC", "José")
    decomposed = unicodedata.normalize("NFD", "José")
    assert composed != decomposed
    assert subject_key(SECRET, composed) == subject_key(SECRET, f"  {decomposed}\t\n")


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_id_is_refused(blank: str) -> None:
    with pytest.raises(InvalidInput, match="blank"):
        subject_key(SECRET, blank)


def test_an_id_that_is_not_text_is_refused() -> None:
    with pytest.raises(InvalidInput, match="text"):
        subject_key(SECRET, 42)  # type: ignore[arg-type]


def test_the_fingerprint_is_eight_hex_digits_of_an_hmac() -> None:
    expected = hmac.new(SECRET, b"modelreg-fingerprint", hashlib.sha256).hexdigest()[:8]
    assert fingerprint(SECRET) == expected
    assert fingerprint(SECRET) != fingerprint(b"y" * 32)


# ---------------------------------------------------------------- the secret


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    settings = settings_at(tmp_path / "home")
    first = load_secret(settings)
    path = settings.subject_key_path
    assert len(first) == SECRET_BYTES
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret(settings) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = settings_at(tmp_path)
    load_secret(settings)
    os.chmod(settings.subject_key_path, 0o644)
    with pytest.raises(InvalidInput, match=r"readable by others \(mode 0644\): chmod 600"):
        load_secret(settings)


def test_a_key_file_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    settings = settings_at(tmp_path)
    path = settings.subject_key_path
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(InvalidInput, match="holds 5 bytes, expected 32"):
        load_secret(settings)


def test_the_environment_secret_wins_over_the_file(tmp_path: Path) -> None:
    settings = settings_at(tmp_path, secret=SECRET.hex())
    assert load_secret(settings) == SECRET
    assert not settings.subject_key_path.exists()


def test_settings_read_the_secret_from_the_environment_and_hide_it(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"MODELREG_HOME": str(tmp_path), "MODELREG_SUBJECT_SECRET": SECRET.hex()}
    )
    assert load_secret(settings) == SECRET
    assert SECRET.hex() not in repr(settings)


@pytest.mark.parametrize("bad", ["not hex", "ab" * 16, "zz" * 32])
def test_a_malformed_environment_secret_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInput, match="at least 64 hex digits"):
        load_secret(settings_at(tmp_path, secret=bad))


# ---------------------------------------------------------------- manifests


@pytest.fixture
def artifacts(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def keys_for(*ids: str) -> list[str]:
    return [subject_key(SECRET, i) for i in ids]


def test_a_manifest_round_trips_sorted_and_unique(artifacts: LocalArtifactStore) -> None:
    keys = keys_for("c-3", "c-1", "c-2", "c-1")
    ref = put_manifest(artifacts, manifest_bytes(SECRET, keys))
    assert ref.format == MANIFEST_FORMAT
    manifest = read_manifest(artifacts, ref, secret=SECRET)
    assert manifest.keys == tuple(sorted(set(keys)))
    assert manifest.fingerprint == fingerprint(SECRET)


def test_the_manifest_header_names_format_version_key_and_count() -> None:
    data = manifest_bytes(SECRET, keys_for("a", "b"))
    header = data.decode().splitlines()[0]
    assert header == f"modelreg-subject-manifest 1 key={fingerprint(SECRET)} subjects=2"


def test_an_empty_manifest_round_trips(artifacts: LocalArtifactStore) -> None:
    ref = put_manifest(artifacts, manifest_bytes(SECRET, []))
    assert read_manifest(artifacts, ref).keys == ()


def test_the_same_subjects_are_one_artifact(artifacts: LocalArtifactStore) -> None:
    one = put_manifest(artifacts, manifest_bytes(SECRET, keys_for("a", "b")))
    two = put_manifest(artifacts, manifest_bytes(SECRET, keys_for("b", "a")))
    assert one == two


def test_a_tampered_manifest_is_refused_before_parsing(artifacts: LocalArtifactStore) -> None:
    ref = put_manifest(artifacts, manifest_bytes(SECRET, keys_for("a", "b")))
    path = artifacts.local_path(ref.sha256)
    data = bytearray(path.read_bytes())
    data[-2] = ord("0") if data[-2] != ord("0") else ord("1")
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch, match="corrupt"):
        read_manifest(artifacts, ref)


def test_a_truncated_manifest_is_refused(artifacts: LocalArtifactStore) -> None:
    ref = put_manifest(artifacts, manifest_bytes(SECRET, keys_for("a", "b")))
    path = artifacts.local_path(ref.sha256)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ChecksumMismatch):
        read_manifest(artifacts, ref)


def test_a_manifest_written_under_another_secret_is_refused(
    artifacts: LocalArtifactStore,
) -> None:
    ref = put_manifest(artifacts, manifest_bytes(b"z" * 32, keys_for("a")))
    with pytest.raises(InvalidInput, match="written with key"):
        read_manifest(artifacts, ref, secret=SECRET)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"hello\n", "header"),
        (b"modelreg-subject-manifest 2 key=00000000 subjects=0\n", "format version"),
        (b"modelreg-subject-manifest 1 key=0000 subjects=0\n", "fingerprint"),
        (b"modelreg-subject-manifest 1 key=00000000 subjects=2\n" + b"a" * 64 + b"\n", "says 2"),
        (b"modelreg-subject-manifest 1 key=00000000 subjects=1\n" + b"A" * 64 + b"\n", "not a"),
        (
            b"modelreg-subject-manifest 1 key=00000000 subjects=2\n"
            + b"b" * 64
            + b"\n"
            + b"a" * 64
            + b"\n",
            "sorted",
        ),
        (b"modelreg-subject-manifest 1 key=00000000 subjects=1\n" + b"a" * 64, "cut short"),
        ("é".encode(), "ASCII"),
    ],
)
def test_bytes_that_are_not_a_manifest_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(ArtifactError, match=why):
        parse_manifest(data, where="x")


def test_a_malformed_key_is_never_written() -> None:
    with pytest.raises(InvalidInput, match="invalid subject key"):
        manifest_bytes(SECRET, ["not-a-key"])


def test_write_manifest_stores_the_artifact_and_records_the_keys(tmp_path: Path) -> None:
    from registry.store.sql import SqlStore
    from registry.subjects import write_manifest

    settings = Settings(
        home=tmp_path,
        registry_url=f"sqlite:///{tmp_path}/registry.db",
        artifact_root=str(tmp_path / "artifacts"),
        subject_secret=SECRET.hex(),
        actor="dpo@test",
    )
    found = write_manifest(settings, "transactions", "2026-10-01", ["c-2", "c-1", " c-1 "])
    assert (found.subjects, found.recorded_by) == (2, "dpo@test")
    with SqlStore(settings.registry_url, actor="t") as store:
        assert store.subject_manifest("transactions", "2026-10-01") == found
        lineage = store.subject_lineage(subject_key(SECRET, "c-1"))
    assert [d.version for d in lineage.datasets] == ["2026-10-01"]
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    ref = artifacts_ref(artifacts, found.sha256)
    assert read_manifest(artifacts, ref, secret=SECRET).keys == tuple(
        sorted(keys_for("c-1", "c-2"))
    )


def artifacts_ref(artifacts: LocalArtifactStore, sha256: str) -> ArtifactRef:
    path = artifacts.local_path(sha256)
    return ArtifactRef(
        uri=artifacts.uri_for(sha256), sha256=sha256, size=path.stat().st_size, format="x"
    )
