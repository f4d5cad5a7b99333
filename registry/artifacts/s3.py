"""Artifacts in an S3 bucket (any S3-compatible endpoint), through boto3.

Objects live at ``<prefix>/sha256/ab/<hex>`` with the digest in their metadata
(``x-amz-meta-sha256``). ETags are never trusted: they differ between a
multipart upload and its copy. Reads always re-hash the bytes.

botocore errors are translated here, once, in ``_translated``:

- 404 / ``NoSuchKey`` → ``ArtifactError`` ("… missing")
- endpoint unreachable or timing out (``EndpointConnectionError``,
  ``ConnectTimeoutError``, ``ReadTimeoutError``, a dropped connection) and
  throttling / 5xx after the client's own retries → ``ArtifactUnavailable``
  (an ``ArtifactError``: transient, worth retrying with backoff)
- anything else from botocore (access denied, no such bucket, bad credentials)
  → ``ArtifactError``

boto3 is imported lazily so ``import registry`` never pays for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC
from pathlib import Path
from typing import Any

from registry.artifacts.base import (
    ArtifactStore,
    Readable,
    StoredObject,
    content_key,
    sha256_of_key,
)
from registry.artifacts.files import check_digest, file_digest
from registry.errors import ArtifactError, ArtifactUnavailable, InvalidInput
from registry.models import ArtifactRef

MULTIPART_THRESHOLD = 8 * 1024 * 1024
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_TRANSIENT_CODES = {"SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable", "500", "503"}


def make_client(endpoint_url: str | None = None) -> Any:
    """An S3 client that fails in seconds when the endpoint is down (credentials: boto3's chain)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=3,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
    )

    try:
        yield
    except ClientError as exc:
        raise _from_client_error(exc, what) from exc
    except S3UploadFailedError as exc:
        # upload_file wraps the ClientError; classify by the wrapped one when present.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ClientError):
            raise _from_client_error(cause, what) from exc
        raise ArtifactError(f"{what}: upload failed ({exc})") from exc
    except (ConnectionError, HTTPClientError) as exc:
        # ConnectionError covers EndpointConnectionError and ConnectTimeoutError;
        # HTTPClientError covers ReadTimeoutError and connections dropped mid-stream.
        raise ArtifactUnavailable(f"{what}: S3 endpoint unreachable ({exc})") from exc
    except BotoCoreError as exc:
        raise ArtifactError(f"{what}: {exc}") from exc


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _from_client_error(exc: Any, what: str) -> ArtifactError:
    code = _error_code(exc)
    if code in _MISSING_CODES:
        return ArtifactError(f"{what}: object is missing")
    if code in _TRANSIENT_CODES:
        return ArtifactUnavailable(f"{what}: S3 is unavailable ({code})")
    message = exc.response.get("Error", {}).get("Message", "")
    return ArtifactError(f"{what}: S3 error {code}: {message}")


class _TranslatedBody:
    """A response body whose read errors (dropped connection mid-stream) are ours."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what

    def read(self, size: int = -1, /) -> bytes:
        with _translated(self._what):
            data: bytes = self._body.read(size if size >= 0 else None)
        return data


class _HashingReader:
    """Hashes what an upload reads. Deliberately not seekable: s3transfer then reads
    parts sequentially, so the digest covers the bytes in order."""

    def __init__(self, stream: Readable) -> None:
        import hashlib

        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._stream.read(size)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk


def _valid_prefix(prefix: str) -> str:
    prefix = prefix.rstrip("/")
    parts = prefix.split("/") if prefix else []
    if any(part in {"", ".", ".."} for part in parts):  # "" also catches a leading "/"
        raise InvalidInput(f"invalid S3 prefix {prefix!r}: no '..', '.', empty or absolute parts")
    return prefix


class S3ArtifactStore(ArtifactStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client: Any = None,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> None:
        if not bucket or "/" in bucket:
            raise InvalidInput(f"invalid S3 bucket {bucket!r}")
        self.bucket = bucket
        self.prefix = _valid_prefix(prefix)
        self.endpoint_url = endpoint_url
        self.client = client if client is not None else make_client(endpoint_url)
        self.multipart_threshold = multipart_threshold

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.uri_root!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def uri_root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, sha256: str) -> str:
        key = content_key(sha256)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_threshold,
            max_concurrency=4,
        )
        # Bounds memory whatever the file size: at most this many chunks buffered from a
        # stream (put_verified). boto3's constructor does not take it; s3transfer reads it.
        config.max_in_memory_upload_chunks = 4
        return config

    def uri_for(self, sha256: str) -> str:
        return f"s3://{self.bucket}/{self._key(sha256)}"

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        key = self._key(sha256)
        with _translated(f"head {self.uri_for(sha256)}"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in _MISSING_CODES:
                    return False
                raise
        return True

    def put_file(self, path: Path, *, format: str = "skops") -> ArtifactRef:
        # Hash first, then upload: the file is local, so reading it twice costs no
        # memory, the final key is known up front (no temporary key, no copy, no
        # 5 GiB copy_object limit), and nothing unverified ever sits at a content key.
        source = Path(path)
        if not source.is_file():
            raise InvalidInput(f"artifact file not found: {source}")
        try:
            sha256, size = file_digest(source)
        except OSError as exc:
            raise ArtifactError(f"could not read {source}: {exc}") from exc
        self._upload(source, sha256)
        return ArtifactRef(uri=self.uri_for(sha256), sha256=sha256, size=size, format=format)

    def _upload(self, source: Path, sha256: str) -> None:
        with _translated(f"upload {source} to {self.uri_for(sha256)}"):
            self.client.upload_file(
                str(source),
                self.bucket,
                self._key(sha256),
                ExtraArgs={"Metadata": {"sha256": sha256}},
                Config=self._transfer_config(),
            )

    def put_verified(self, stream: Readable, ref: ArtifactRef) -> ArtifactRef:
        # A stream cannot be read twice: upload it to a temporary key while hashing,
        # and copy to the content key only if the digest matches.
        final = self._key(ref.sha256)
        temp = f"{self.prefix}/tmp/{uuid.uuid4().hex}".lstrip("/")
        reader = _HashingReader(stream)
        what = f"copy {ref.sha256[:12]} into {self.uri_root}"
        try:
            with _translated(what):
                self.client.upload_fileobj(
                    reader, self.bucket, temp, Config=self._transfer_config()
                )
            check_digest(ref, reader.digest.hexdigest(), reader.size, what)
            self._copy({"Bucket": self.bucket, "Key": temp}, final, ref.sha256, what)
        finally:
            # Best effort: a failed delete must not hide the error that got us here.
            with suppress(ArtifactError), _translated(f"delete temporary {temp}"):
                self.client.delete_object(Bucket=self.bucket, Key=temp)
        return ref.model_copy(update={"uri": self.uri_for(ref.sha256)})

    def delete(self, sha256: str) -> None:
        with _translated(f"delete {self.uri_for(sha256)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(sha256))

    def iter_content(self) -> Iterator[StoredObject]:
        # Listed under ``<prefix>/sha256/`` only, and each key checked: temporary uploads
        # (``<prefix>/tmp/…``), backups and foreign objects are never listed.
        root = f"{self.prefix}/" if self.prefix else ""
        what = f"list {self.uri_root}/sha256/"
        with _translated(what):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{root}sha256/"
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    stored = _stored(item, root)
                    if stored is not None:
                        yield stored

    def _copy_in(self, source: ArtifactStore, ref: ArtifactRef) -> None:
        path = source.local_path(ref.sha256)
        if isinstance(source, S3ArtifactStore) and source.endpoint_url == self.endpoint_url:
            # No bytes through this process; the read-back below is the only check.
            what = f"server-side copy {source.uri_for(ref.sha256)} to {self.uri_root}"
            copy_source = {"Bucket": source.bucket, "Key": source._key(ref.sha256)}
            self._copy(copy_source, self._key(ref.sha256), ref.sha256, what)
        elif path is not None:
            # From a path the upload goes straight to the content key, reading parts from
            # the file as they are sent: no temporary key, a few MiB of memory.
            self._upload_checked(path, ref)
        else:
            with source.open_stored(ref.sha256) as stream:
                self.put_verified(stream, ref)
        self.verify(ref)  # the read-back: never an ETag

    def _upload_checked(self, path: Path, ref: ArtifactRef) -> None:
        try:
            sha256, size = file_digest(path)
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {ref.sha256[:12]} is missing from {path}") from exc
        except OSError as exc:
            raise ArtifactError(f"could not read artifact {ref.sha256[:12]}: {exc}") from exc
        check_digest(ref, sha256, size, path.as_uri())  # a corrupt source never lands
        self._upload(path, ref.sha256)

    def _copy(self, copy_source: dict[str, str], key: str, sha256: str, what: str) -> None:
        with _translated(what):
            self.client.copy(
                copy_source,
                self.bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": sha256}, "MetadataDirective": "REPLACE"},
                Config=self._transfer_config(),
            )

    @contextmanager
    def open_stored(self, sha256: str) -> Iterator[Readable]:
        uri = self.uri_for(sha256)
        with _translated(f"read {uri}"):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256))
        body = response["Body"]
        try:
            yield _TranslatedBody(body, f"read {uri}")
        finally:
            body.close()


def _stored(item: dict[str, Any], root: str) -> StoredObject | None:
    key = str(item["Key"])[len(root) :]
    try:
        sha256 = sha256_of_key(key)
    except InvalidInput:
        return None
    modified = item["LastModified"]
    modified = modified.replace(tzinfo=UTC) if modified.tzinfo is None else modified.astimezone(UTC)
    return StoredObject(sha256, int(item["Size"]), modified)
