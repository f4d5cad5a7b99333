"""The release steps the pipeline's promote and rollback tasks call, against a registry
server: the client takes no promotion lock (the server does), the gates run on the
server, and history names the token.

One server per module and backend: each test has a model and tokens of its own.
"""

from __future__ import annotations

import threading
import uuid
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


def _own(what: str) -> str:
    """A model or token name of this test's own, on the module's server."""
    return f"{what}-{uuid.uuid4().hex[:8]}"


def test_promote_and_rollback_steps_work_through_a_server(
    module_served: Served, tmp_path: Path, artifact_for: Callable[..., ArtifactRef]
) -> None:
    served, model, token = module_served, _own("fraud"), _own("ci")
    ci = _settings(served, served.token(token, "deployer"), tmp_path)
    with ci.connect() as store:
        for n in (1, 2):
            store.register(model, artifact_for(f"{model} v{n}".encode()), VersionCreate())
            store.transition(model, n, Stage.STAGING)
        make_releasable(store, model, 1)
        first = steps.promote(ci, model, 1, reason="first")
        make_releasable(store, model, 2)  # its canary against v1, now in Production
    second = steps.promote(ci, model, 2, reason="second")
    back = steps.rollback(ci, model, "v2 misbehaves")

    assert (first.moved, second.previous) == (True, 1)
    assert (back.from_version, back.to_version) == (2, 1)
    with served.db() as db:
        moves = [e for e in db.history(model) if e.kind in ("stage", "rollback")]
        assert db.get_model(model).production == 1
    assert {e.actor for e in moves} == {token}


def test_the_server_holds_the_promotion_lock_around_a_promotion(
    module_served: Served, tmp_path: Path, artifact_for: Callable[..., ArtifactRef]
) -> None:
    """While something else holds the model's lock on the server's database, a promotion
    through the server waits for it, then goes ahead."""
    served, model = module_served, _own("fraud")
    ci = _settings(served, served.token(_own("ci"), "deployer"), tmp_path)
    with ci.connect() as store:
        store.register(model, artifact_for(f"{model} v1".encode()), VersionCreate())
        store.transition(model, 1, Stage.STAGING)
        make_releasable(store, model, 1)
    done = threading.Event()
    outcome: list[object] = []

    def promote() -> None:
        outcome.append(steps.promote(ci, model, 1, reason="waits for the lock"))
        done.set()

    with promotion_lock(served.db_url, model):
        worker = threading.Thread(target=promote)
        worker.start()
        waited = not done.wait(1.0)
        with served.db() as db:
            during = db.get_model(model).production
    worker.join(timeout=60)

    assert waited and during is None
    assert len(outcome) == 1
    with served.db() as db:
        assert db.get_model(model).production == 1


def test_a_caller_who_may_not_promote_is_refused_without_waiting_for_the_lock(
    module_served: Served, artifact_for: Callable[..., ArtifactRef]
) -> None:
    served, model = module_served, _own("fraud")
    with served.db() as db:
        db.register(model, artifact_for(f"{model} v1".encode()), VersionCreate())
    reader = served.token(_own("viewer"), "reader")

    with promotion_lock(served.db_url, model), served.client(reader) as client:
        answer = client.put(f"/stage/{model}@1", json={"stage": "Production"}, timeout=10)

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
