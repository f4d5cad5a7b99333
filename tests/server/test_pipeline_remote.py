"""The release steps the pipeline's promote and rollback tasks call, against a registry
server: the client takes no promotion lock (the server does), the gates run on the
server, and history names the token."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from release_facts import make_releasable

from registry.config import Settings
from registry.models import ArtifactRef, Stage, VersionCreate
from registry.release import steps
from registry.release.lock import promotion_lock

from .conftest import Served


def _settings(served: Served, secret: str, tmp_path: Path) -> Settings:
    return Settings(registry_url=served.url, token=secret, home=tmp_path / "home")


def test_promote_and_rollback_steps_work_through_a_server(
    served: Served, tmp_path: Path, artifact_for: Callable[..., ArtifactRef]
) -> None:
    ci = _settings(served, served.token("ci", "deployer"), tmp_path)
    with ci.connect() as store:
        for n in (1, 2):
            store.register("fraud", artifact_for(f"v{n}".encode()), VersionCreate())
            store.transition("fraud", n, Stage.STAGING)
        make_releasable(store, "fraud", 1)
        first = steps.promote(ci, "fraud", 1, reason="first")
        make_releasable(store, "fraud", 2)  # its canary against v1, now in Production
    second = steps.promote(ci, "fraud", 2, reason="second")
    back = steps.rollback(ci, "fraud", "v2 misbehaves")

    assert (first.moved, second.previous) == (True, 1)
    assert (back.from_version, back.to_version) == (2, 1)
    with served.db() as db:
        moves = [e for e in db.history("fraud") if e.kind in ("stage", "rollback")]
        assert db.get_model("fraud").production == 1
    assert {e.actor for e in moves} == {"ci"}


def test_the_server_holds_the_promotion_lock_around_a_promotion(
    served: Served, tmp_path: Path, artifact_for: Callable[..., ArtifactRef]
) -> None:
    """While something else holds the model's lock on the server's database, a promotion
    through the server waits for it, then goes ahead."""
    ci = _settings(served, served.token("ci", "deployer"), tmp_path)
    with ci.connect() as store:
        store.register("fraud", artifact_for(b"v1"), VersionCreate())
        store.transition("fraud", 1, Stage.STAGING)
        make_releasable(store, "fraud", 1)
    done = threading.Event()
    outcome: list[object] = []

    def promote() -> None:
        outcome.append(steps.promote(ci, "fraud", 1, reason="waits for the lock"))
        done.set()

    with promotion_lock(served.db_url, "fraud"):
        worker = threading.Thread(target=promote)
        worker.start()
        waited = not done.wait(1.0)
        with served.db() as db:
            during = db.get_model("fraud").production
    worker.join(timeout=60)

    assert waited and during is None
    assert len(outcome) == 1
    with served.db() as db:
        assert db.get_model("fraud").production == 1


def test_a_caller_who_may_not_promote_is_refused_without_waiting_for_the_lock(
    served: Served, artifact_for: Callable[..., ArtifactRef]
) -> None:
    with served.db() as db:
        db.register("fraud", artifact_for(b"v1"), VersionCreate())
    reader = served.token("viewer", "reader")

    with promotion_lock(served.db_url, "fraud"), served.client(reader) as client:
        answer = client.put("/stage/fraud@1", json={"stage": "Production"}, timeout=10)

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
