"""A registry server that goes away: registrations wait in the outbox, reads fail fast.

Real ``modelreg server`` processes, SIGKILLed and started again on the same port;
the CLI runs as a real process where its exit code and message are the subject; the
pipeline's register step is called as the retrain flow calls it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from registry.config import Settings
from registry.errors import NotFound, RegistryUnavailable
from registry.models import ArtifactRef, Environment, Signature, VersionCreate
from registry.outbox import Outbox
from registry.pipeline import steps
from registry.release.checks import EvaluationEvidence
from registry.store.http import HttpStore
from registry.store.sql import SqlStore

from .conftest import Served, free_port
from .remote_cli import META, MODELREG, RemoteCli

MODEL = "fraud-detector"


def _settings(served: Served, home: Path, token: str) -> Settings:
    return Settings(
        home=home,
        registry_url=served.url,
        artifact_root=str(home / "artifacts"),
        actor="claimed-user@laptop",
        token=token,
    )


def _run_inputs(
    settings: Settings, seed: str
) -> tuple[steps.Uploaded, steps.TrainedModel, steps.Dataset, EvaluationEvidence]:
    """What the retrain flow hands its register step: a trained model (its bytes and
    golden batch uploaded), the data set it was trained on, its evaluation."""
    work = settings.home / "work"
    work.mkdir(parents=True, exist_ok=True)
    model = work / f"model-{seed}.skops"
    model.write_text(f"a model file {seed}")
    golden = work / f"model-{seed}.golden.json"
    golden.write_text('{"rows": []}')
    artifacts = settings.artifacts()
    uploaded = steps.Uploaded(
        model=artifacts.put_file(model, format="skops"),
        golden=artifacts.put_file(golden, format="json"),
    )
    trained = steps.TrainedModel(
        model_path=str(model),
        sha256=uploaded.model.sha256,
        size=uploaded.model.size,
        params={"n_estimators": 200},
        signature=Signature.model_validate(META["signature"]),
        environment=Environment(python="3.11.7"),
        golden={"rows": []},
        metrics={"train_auc": 0.95},
        cost=steps.TrainingCost(wall_s=1.0, cpu_s=1.0, peak_rss_mb=100.0),
    )
    dataset = steps.Dataset(
        path=str(work / "transactions.parquet"),
        lineage={"name": "transactions", "version": "2026-11-01", "rows": 1000},
    )
    return uploaded, trained, dataset, EvaluationEvidence(metrics={"auc": 0.91})


def _register_step(settings: Settings, seed: str) -> steps.Registration:
    uploaded, trained, dataset, evaluation = _run_inputs(settings, seed)
    # No extra pauses between attempts: HttpStore's own write budget is the retry.
    return steps.register(
        settings, MODEL, uploaded, trained, dataset, evaluation, run_id=seed, delays=()
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_and_pipeline_registrations_queue_while_the_server_is_down_and_drain_once(
    served: Served, tmp_path: Path
) -> None:
    """Two registrants sharing a home: a user's ``modelreg register`` and a retrain
    run's register step. While the server is up the step registers as the token;
    during an outage both ride the write budget, then queue; after the restart one
    ``modelreg drain`` delivers each exactly once."""
    token = served.token("alice", "data-scientist")
    user = RemoteCli(served.url, tmp_path / "home", token)
    settings = _settings(served, user.home, token)
    first = _register_step(settings, "run-1")
    again = _register_step(settings, "run-1")  # a re-run of the same training
    assert (first.status, first.version, again.status, again.version) == (
        "registered",
        1,
        "registered",
        1,
    )
    assert first.key == f"retrain:{MODEL}:{_run_inputs(settings, 'run-1')[0].model.sha256}"
    served.server.kill()
    settings = settings.model_copy(update={"write_retry_s": 3.0})

    with ThreadPoolExecutor(1) as pool:
        # Both wait out a short write budget (MODELREG_WRITE_RETRY_S) at the same time.
        cli = subprocess.Popen(
            [str(MODELREG), *user.register_args(MODEL)],
            env={**user.process_env(), "MODELREG_WRITE_RETRY_S": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        pipeline = pool.submit(_register_step, settings, "run-9")
        read = user.fail("models", code=5)  # meanwhile, a read says so at once
        stdout, stderr = cli.communicate(timeout=120)
        queued = pipeline.result(timeout=120)

    assert read.startswith(f"error: registry server {served.url} is unreachable: ")
    assert cli.returncode == 75, (stdout, stderr)
    assert stderr == "" and stdout.count("\n") == 1
    [cli_entry] = [e for e in Outbox(user.outbox).pending() if e.key.startswith("cli-")]
    assert stdout.startswith(f"queued {MODEL} (key {cli_entry.key}, sha256 ")
    assert f"in {user.outbox}: the registry is unreachable (registry server {served.url}" in stdout
    assert f"'modelreg --registry {served.url} drain'" in stdout
    assert (queued.status, queued.outbox, queued.version) == ("queued", str(user.outbox), None)
    assert sorted(e.key for e in Outbox(user.outbox).pending()) == sorted(
        [cli_entry.key, queued.key]
    )

    served.server.start()
    drained = user.run("drain")
    nothing_left = user.run("drain")

    assert drained.returncode == 0, drained.stderr
    assert [line.split(" (key ")[0] for line in drained.stdout.splitlines()][:2] == [
        f"delivered {MODEL} version 2",
        f"delivered {MODEL} version 3",
    ]
    assert f"(key {cli_entry.key})" in drained.stdout and f"(key {queued.key})" in drained.stdout
    assert (nothing_left.returncode, nothing_left.stdout) == (
        0,
        f"nothing queued in {user.outbox}\n",
    )
    with served.db() as db:
        versions = db.list_versions(MODEL)
        actors = {e.actor for e in db.history(MODEL)}
    assert [v.idempotency_key for v in versions][-1] == first.key  # newest first
    assert sorted(v.idempotency_key or "" for v in versions[:2]) == sorted(
        [cli_entry.key, queued.key]
    )
    assert versions[-1].metrics["auc"] == 0.91 and versions[-1].run_id == "run-1"
    assert actors == {"alice"}  # the token's name, never $MODELREG_USER
    assert [e.state for e in Outbox(user.outbox).entries()] == ["delivered", "delivered"]


class DroppingServer:
    """A port that takes every connection and closes it unanswered (a server that is
    up but broken), counting the attempts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)  # accept() wakes up to notice close()
        self.accepted = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dropping() -> Iterator[DroppingServer]:
    server = DroppingServer()
    yield server
    server.close()


def test_a_cli_read_tries_a_broken_server_twice_then_exits_5_naming_it(
    dropping: DroppingServer, tmp_path: Path
) -> None:
    user = RemoteCli(dropping.url, tmp_path / "home", "mrt_whatever")

    message = user.fail("models", code=5)

    assert message.startswith(f"error: registry server {dropping.url} is unreachable: ")
    # One quick retry, not the write budget's thirty seconds of them.
    assert 1 <= dropping.accepted <= 2


# ---------------------------------------------------------------- killed mid-batch

CLIENTS = 4
PER_CLIENT = 20
KILL_AFTER = 12  # versions the database holds when the server is killed


def _batch_key(client: int, index: int) -> str:
    return f"batch-{client}-{index}"


def _client(
    client: int,
    served: Served,
    token: str,
    outbox: Path,
    artifact_for: Callable[..., ArtifactRef],
) -> list[str]:
    """Register PER_CLIENT versions through one HttpStore; whatever outlives the retry
    budget goes into the outbox, as ``modelreg register`` does. The keys queued."""
    # Half the clients give up on a call within a second (their calls then wait in
    # the outbox), half ride the outage out on the default budget.
    budget = 30.0 if client % 2 == 0 else 0.5
    queued: list[str] = []
    with HttpStore(served.url, token=token, write_budget_s=budget) as store:
        for index in range(PER_CLIENT):
            key = _batch_key(client, index)
            ref = artifact_for(key.encode())
            meta = VersionCreate(metrics={"auc": 0.9}, idempotency_key=key)
            try:
                store.register(MODEL, ref, meta)
            except RegistryUnavailable:
                Outbox(outbox).enqueue(MODEL, ref, meta)
                queued.append(key)
            time.sleep(0.02)  # clients that keep a pace, so the kill lands mid-batch
    return queued


def _latest(served: Served) -> int:
    with served.db() as db:
        try:
            return db.get_model(MODEL).latest_version
        except NotFound:
            return 0


def _kill_mid_batch(served: Served, done: threading.Event) -> int:
    """SIGKILL the server once KILL_AFTER registrations are in, restart it a second
    later; how many the database held at the kill."""
    while _latest(served) < KILL_AFTER and not done.is_set():
        time.sleep(0.005)
    served.server.kill()
    at_kill = _latest(served)
    time.sleep(1.0)  # long enough for the impatient clients to give up
    served.server.start()
    return at_kill


def test_a_server_killed_mid_batch_loses_and_doubles_no_registration(
    served: Served, tmp_path: Path, artifact_for: Callable[..., ArtifactRef]
) -> None:
    token = served.token("batch-bot", "data-scientist")
    outbox = tmp_path / "outbox.db"
    done = threading.Event()
    # The lost reply made certain: the server took this one, the client heard nothing
    # and queued it; the drain must find the version by its key.
    lost_ref, lost = artifact_for(b"taken"), VersionCreate(idempotency_key="lost-reply")
    with HttpStore(served.url, token=token) as store:
        taken = store.register(MODEL, lost_ref, lost)
    Outbox(outbox).enqueue(MODEL, lost_ref, lost)

    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        killer = pool.submit(_kill_mid_batch, served, done)
        args = (served, token, outbox, artifact_for)
        clients = [pool.submit(_client, c, *args) for c in range(CLIENTS)]
        queued = [key for future in clients for key in future.result(timeout=300)]
        done.set()
        at_kill = killer.result(timeout=120)
    with HttpStore(served.url, token=token) as store:
        report = Outbox(outbox).drain(store)

    total = CLIENTS * PER_CLIENT + 1
    assert 1 < at_kill < total, "the kill must land in the middle of the batch"
    assert queued, "some calls outlived their retry budget and were queued"
    assert (report.failed, report.remaining) == ([], 0)
    assert sorted(key for key, _name, _v in report.delivered) == sorted(["lost-reply", *queued])
    assert ("lost-reply", MODEL, taken.version) in report.delivered
    with served.db() as db:
        versions = db.list_versions(MODEL, limit=total * 2)
        registered = [e for e in db.history(MODEL) if e.kind == "version.registered"]
    keys = Counter(v.idempotency_key for v in versions)
    expected = {"lost-reply"} | {
        _batch_key(c, i) for c in range(CLIENTS) for i in range(PER_CLIENT)
    }
    assert set(keys) == expected  # none lost
    assert set(keys.values()) == {1}  # none twice
    assert sorted(v.version for v in versions) == list(range(1, total + 1))
    assert len(registered) == total
    by_key = {v.idempotency_key: v.version for v in versions}
    assert all(by_key[key] == version for key, _name, version in report.delivered)


# ---------------------------------------------------------------- a database URL


def test_register_queues_for_an_unreachable_database_too_and_drain_reports_each_outcome(
    tmp_path: Path, artifact_for: Callable[..., ArtifactRef]
) -> None:
    """The same outbox whatever the URL: a PostgreSQL server that is down, then a
    registry that takes the entry, and one that refuses another for good."""
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/registry?connect_timeout=2"
    user = RemoteCli(down, tmp_path / "home", None)
    queued = user.run(*user.register_args(MODEL))
    still_down = user.run("drain")
    [entry] = Outbox(user.outbox).pending()
    # A key the registry already holds for other bytes: refused for good once delivered.
    local = f"sqlite:///{tmp_path}/registry.db"
    with SqlStore(local, actor="someone-else") as db:
        db.register(MODEL, artifact_for(b"other bytes"), VersionCreate(idempotency_key="taken"))
    Outbox(user.outbox).enqueue(
        MODEL, artifact_for(b"mine"), VersionCreate(idempotency_key="taken")
    )

    drained = RemoteCli(local, user.home, None).run("drain", "--json")

    assert queued.returncode == 75 and queued.stdout.startswith(f"queued {MODEL} (key cli-")
    assert (still_down.returncode, still_down.stdout) == (5, f"1 still queued in {user.outbox}\n")
    assert still_down.stderr.startswith(f"error: 1 registration(s) still queued in {user.outbox}: ")
    assert drained.returncode == 4 and drained.stderr.count("\n") == 1
    assert "refused 1 queued registration(s) for good" in drained.stderr
    report = json.loads(drained.stdout)
    assert report["delivered"] == [{"key": entry.key, "name": MODEL, "version": 2}]
    assert [r["key"] for r in report["rejected"]] == ["taken"]
    assert (report["remaining"], report["unavailable"]) == (0, None)
    assert {e.key: e.state for e in Outbox(user.outbox).entries()} == {
        entry.key: "delivered",
        "taken": "rejected",
    }
