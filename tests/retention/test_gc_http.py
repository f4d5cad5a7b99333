"""gc through a real registry server process (``HttpStore``): the reference listing and the
collection log are admin-only, and a run as an admin logs its events as that token."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from server.conftest import Served, module_served

from registry.artifacts import LocalArtifactStore
from registry.auth import Role
from registry.errors import Forbidden
from registry.models import VersionCreate
from registry.retention import MAIN_STORE, GcOptions, collect
from registry.retention_models import CollectedArtifact
from registry.store.http import HttpStore

__all__ = ["module_served"]

MODEL = "fraud-detector"


def http(served: Served, secret: str) -> HttpStore:
    return HttpStore(served.url, token=secret)


@pytest.mark.parametrize("role", [Role.READER, Role.DATA_SCIENTIST, Role.DEPLOYER])
def test_below_admin_may_neither_list_references_nor_record_collections(
    module_served: Served, role: Role
) -> None:
    served = module_served
    secret = served.token(f"t-{role}", role)
    with http(served, secret) as store:
        with pytest.raises(Forbidden, match="needs admin"):
            store.artifact_references()
        item = CollectedArtifact(sha256="a" * 64, size=1, store=MAIN_STORE)
        with pytest.raises(Forbidden, match="needs admin"):
            store.record_collection([item], reason="gc")


def test_a_scoped_admin_may_not_list_every_model(module_served: Served) -> None:
    served = module_served
    secret = served.token("scoped-admin", Role.ADMIN, "payments/*")
    with http(served, secret) as store, pytest.raises(Forbidden):
        store.artifact_references()


def test_an_admin_collects_over_http_and_the_events_name_the_token(
    module_served: Served, tmp_path: Path
) -> None:
    served = module_served
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    with http(served, served.admin) as store:
        refs = []
        for _ in range(2):
            path = tmp_path / uuid.uuid4().hex
            path.write_bytes(uuid.uuid4().bytes)
            refs.append(artifacts.put_file(path))
            store.register(MODEL, refs[-1], VersionCreate.parse({}))
        store.delete_version(MODEL, 1)
        listed = store.artifact_references()
        assert [(u.model, u.version, u.sha256) for u in listed.versions] == [
            (MODEL, 2, refs[1].sha256)
        ]
        report = collect(store, {MAIN_STORE: artifacts}, GcOptions(min_age=timedelta(0)))
    assert [a.sha256 for a in report.artifacts] == [refs[0].sha256]
    assert {o.sha256 for o in artifacts.iter_content()} == {refs[1].sha256}
    with served.db() as db:
        [event] = [e for e in db.events() if e.kind == "artifact.collected"]
    assert (event.actor, event.version, event.details.sha256) == ("admin", 1, refs[0].sha256)
    assert report.artifacts[0].event == event.seq
