"""``runs:/…`` and ``models:/m-…`` sources, through an MLflow tracking server.

MLflow's client registers a logged model by a URI that only its tracking server can
resolve. When the registry server is given one (``--mlflow-tracking URL``), it asks
it where the artifacts are (``runs/get``, ``logged-models/get``) and reads them:

- ``mlflow-artifacts:/…`` (the tracking server proxies its artifact store): listed and
  downloaded over HTTP from the tracking server, into a temporary folder, then stored
  as a bundle;
- ``file://`` or ``s3://``: read as any other source, under the same ``--source-root``s
  (a run's artifact location is chosen by whoever created its experiment);
- anything else, or a tracking server that does not answer: None, and the caller
  records the source as an unverified external reference.

The downloads are bounded by the bundle limits (file count and bytes), and every path
the tracking server lists is checked as a bundle path before it touches the disk.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from registry.artifacts.base import ArtifactStore
from registry.errors import InvalidInput
from registry.models import ArtifactRef

log = logging.getLogger("registry.mlflow.tracking")

TIMEOUT_S = 30.0
PROXIED = "mlflow-artifacts:"
# The server's own credentials for the tracking server, if it needs any.
TOKEN_ENV = "MLFLOW_TRACKING_TOKEN"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")  # a logged model's name, safe in a filter


def read_tracked(
    store: ArtifactStore, tracking_url: str, source: str, *, roots: Sequence[str]
) -> ArtifactRef | None:
    """The artifacts behind a ``runs:/`` or ``models:/m-`` source as a bundle, or None
    when the tracking server cannot say where they are or they cannot be read."""
    from registry.artifacts import bundle

    base = tracking_url.rstrip("/")
    token = os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=TIMEOUT_S) as http:
            for location in _locations(http, source):
                if location.startswith(PROXIED):
                    read = _download(http, store, location.removeprefix(PROXIED).lstrip("/"))
                else:
                    read = bundle.ingest_source(store, location, roots=roots)
                if read is not None:
                    return read
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("tracking server %s could not resolve %s: %s", base, source, exc)
    return None


def _locations(http: httpx.Client, source: str) -> list[str]:
    """Where the tracking server may keep the source's artifacts (URIs, likeliest first).

    ``runs:/RUN/NAME``: the run's own artifacts under NAME, then (MLflow 3 logs a model
    as a logged model of its own) the logged model called NAME that the run produced.
    """
    if source.startswith("models:/m-"):
        return [_logged_model_uri(http, source.removeprefix("models:/").strip("/"))]
    if not source.startswith("runs:/"):
        return []
    run_id, _, inner = source.removeprefix("runs:/").partition("/")
    if not run_id:
        return []
    reply = http.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    if reply.status_code != 200:
        return []
    info = reply.json()["run"]["info"]
    root = str(info["artifact_uri"])
    found = [posixpath.join(root, inner) if inner else root]
    if inner and _NAME_RE.fullmatch(inner.strip("/")):
        found += _logged_by_run(http, str(info["experiment_id"]), run_id, inner.strip("/"))
    return found


def _logged_by_run(http: httpx.Client, experiment: str, run_id: str, name: str) -> list[str]:
    body = {"experiment_ids": [experiment], "filter": f"name = '{name}'", "max_results": 100}
    reply = http.post("/api/2.0/mlflow/logged-models/search", json=body)
    if reply.status_code != 200:
        return []
    return [
        str(model["info"]["artifact_uri"])
        for model in reply.json().get("models", [])
        if model["info"].get("source_run_id") == run_id
    ]


def _logged_model_uri(http: httpx.Client, model_id: str) -> str:
    reply = http.get(f"/api/2.0/mlflow/logged-models/{model_id}")
    reply.raise_for_status()
    return str(reply.json()["model"]["info"]["artifact_uri"])


def _download(http: httpx.Client, store: ArtifactStore, root: str) -> ArtifactRef | None:
    """Every file under ``root`` of the tracking server's proxied artifact store, stored
    as a bundle (None if there is nothing there)."""
    from registry.artifacts import bundle

    folder = Path(tempfile.mkdtemp(prefix="modelreg-tracked-"))
    try:
        files, total = 0, 0
        for path, size in _walk(http, root):
            files += 1
            total += size or 0
            if files > bundle.MAX_FILES or total > bundle.MAX_BUNDLE_BYTES:
                raise InvalidInput(
                    f"the tracked artifacts under {root!r} exceed the bundle limits "
                    f"({bundle.MAX_FILES} files, {bundle.MAX_BUNDLE_BYTES} bytes)"
                )
            target = folder / bundle.check_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            url = f"/api/2.0/mlflow-artifacts/artifacts/{root}/{path}"
            with http.stream("GET", url) as reply:
                reply.raise_for_status()
                with target.open("wb") as out:
                    for chunk in reply.iter_bytes(1 << 20):
                        out.write(chunk)
        if files == 0:
            return None
        return bundle.put_bundle(store, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _walk(http: httpx.Client, root: str, inner: str = "", depth: int = 0) -> Any:
    """(path relative to ``root``, size) of every file below it, depth first."""
    from registry.artifacts import bundle

    if depth > 32:
        raise InvalidInput(f"the tracked artifacts under {root!r} nest too deep")
    where = posixpath.join(root, inner) if inner else root
    reply = http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": where})
    if reply.status_code != 200:  # nothing there (or not readable): no files
        return
    for item in reply.json().get("files", []):
        name = posixpath.basename(str(item["path"]).rstrip("/"))
        relative = bundle.check_path(posixpath.join(inner, name) if inner else name)
        if item.get("is_dir"):
            yield from _walk(http, root, relative, depth + 1)
        else:
            yield relative, int(item.get("file_size") or 0)
