"""S3 specifics: multipart uploads, metadata, and the botocore error mapping (one test each)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from registry.artifacts import ArtifactStore, file_digest
from registry.artifacts.s3 import S3ArtifactStore, _translated
from registry.errors import ArtifactError, ArtifactUnavailable, ChecksumMismatch
from registry.models import ArtifactRef

from .support import MIB, free_port


def _client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.fixture
def s3_store(make_store: Callable[[str], ArtifactStore]) -> S3ArtifactStore:
    store = make_store("s3")
    assert isinstance(store, S3ArtifactStore)
    return store


def _head(store: S3ArtifactStore, ref: ArtifactRef) -> dict[str, Any]:
    key = ref.uri.removeprefix(f"s3://{store.bucket}/")
    head: dict[str, Any] = store.client.head_object(Bucket=store.bucket, Key=key)
    return head


def test_large_upload_is_multipart_with_sha256_metadata(
    s3_store: S3ArtifactStore, artifact: Callable[..., Path]
) -> None:
    ref = s3_store.put_file(artifact(12 * MIB))
    head = _head(s3_store, ref)
    assert head["ETag"].strip('"').endswith("-3")  # three 5 MiB parts; the ETag is not a digest
    assert head["Metadata"]["sha256"] == ref.sha256
    assert head["ContentLength"] == 12 * MIB


def test_small_upload_is_a_single_put(
    s3_store: S3ArtifactStore, artifact: Callable[..., Path]
) -> None:
    ref = s3_store.put_file(artifact(MIB))
    assert "-" not in _head(s3_store, ref)["ETag"]


@pytest.mark.parametrize("source_kind", ["local", "s3"])
def test_a_copy_in_records_sha256_metadata(
    s3_store: S3ArtifactStore,
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
) -> None:
    source = make_store(source_kind)
    ref = s3_store.copy_from(source, source.put_file(artifact(6 * MIB)))
    assert _head(s3_store, ref)["Metadata"]["sha256"] == ref.sha256


def test_a_streamed_put_records_sha256_metadata(
    s3_store: S3ArtifactStore, artifact: Callable[..., Path]
) -> None:
    source = artifact(6 * MIB)
    sha256, size = file_digest(source)
    ref = ArtifactRef(uri="file:///elsewhere", sha256=sha256, size=size)
    with source.open("rb") as stream:
        placed = s3_store.put_verified(stream, ref)
    assert _head(s3_store, placed)["Metadata"]["sha256"] == sha256


def test_objects_live_under_the_prefix(
    s3_store: S3ArtifactStore, artifact: Callable[..., Path]
) -> None:
    ref = s3_store.put_file(artifact(10))
    assert ref.uri == f"s3://{s3_store.bucket}/models/prod/sha256/{ref.sha256[:2]}/{ref.sha256}"


def test_unreachable_endpoint_fails_fast_as_unavailable(
    artifact: Callable[..., Path], aws_env: None
) -> None:
    store = S3ArtifactStore("bucket", endpoint_url=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(ArtifactUnavailable, match="unreachable"):
        store.put_file(artifact(10))
    with pytest.raises(ArtifactUnavailable):
        store.exists("ab" * 32)
    assert time.monotonic() - started < 10


def test_missing_bucket_is_an_artifact_error_not_unavailable(
    artifact: Callable[..., Path], s3_endpoint: str
) -> None:
    store = S3ArtifactStore("no-such-bucket-here", endpoint_url=s3_endpoint)
    with pytest.raises(ArtifactError) as caught:
        store.put_file(artifact(10))
    assert not isinstance(caught.value, ArtifactUnavailable)


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (_client_error("NoSuchKey", 404), ArtifactError, "missing"),
        (_client_error("404", 404), ArtifactError, "missing"),
        (_client_error("SlowDown", 503), ArtifactUnavailable, "unavailable"),
        (_client_error("AccessDenied", 403), ArtifactError, "AccessDenied"),
        (EndpointConnectionError(endpoint_url="http://x"), ArtifactUnavailable, "unreachable"),
        (ConnectTimeoutError(endpoint_url="http://x"), ArtifactUnavailable, "unreachable"),
        (ReadTimeoutError(endpoint_url="http://x"), ArtifactUnavailable, "unreachable"),
        (S3UploadFailedError("upload failed"), ArtifactError, "upload failed"),
    ],
    ids=[
        "no-such-key",
        "404",
        "slow-down",
        "access-denied",
        "endpoint",
        "connect-timeout",
        "read-timeout",
        "upload-failed",
    ],
)
def test_botocore_errors_are_translated(raised: Exception, expected: type, message: str) -> None:
    with pytest.raises(expected, match=message) as caught, _translated("read x"):
        raise raised
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised


def test_wrapped_upload_error_keeps_its_classification() -> None:
    def fail() -> None:
        try:
            raise _client_error("SlowDown", 503)
        except ClientError as exc:
            raise S3UploadFailedError("upload failed") from exc

    with pytest.raises(ArtifactUnavailable), _translated("upload x"):
        fail()


def test_checksum_mismatch_stays_an_artifact_error() -> None:
    assert issubclass(ChecksumMismatch, ArtifactError)
    assert issubclass(ArtifactUnavailable, ArtifactError)
