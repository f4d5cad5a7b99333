"""Backup and restore (issue #12): a backup restored into an empty registry, on the same
backend or across (SQLite <-> PostgreSQL), answers every question as the source did, and
keeps working; a corrupt, truncated or tampered file, or a non-empty target, is refused.

The helpers here (``build_world``, ``answers``, the ``registry_urls`` fixture) are shared
by the other modules of this package.
"""

from __future__ import annotations

import copy
import json
import shutil
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from release_facts import make_releasable, release, replicate_everywhere
from store.support import artifact

from registry.auth import Role
from registry.backup import BackupInfo, backup, restore, verify
from registry.errors import Conflict, InvalidInput
from registry.models import Heartbeat, PointerChange, Signature, Stage, VersionCreate
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore

MODEL = "fraud"
OTHER = "payments/churn"
APP, APP_RELEASE = "fraud-service", "1.0.0"

_SIGNATURE: dict[str, Any] = {
    "features": [
        {"name": "amount", "dtype": "float64"},
        {"name": "merchant_category", "dtype": "category"},
    ],
    "target": {"name": "is_fraud", "dtype": "int64"},
    "preprocessing_version": "fe-2.3",
}


def meta(auc: float, dataset_version: str, *, commit: str = "9f1c2ab") -> VersionCreate:
    """Registration metadata with every part filled in (metrics, params, tags,
    signature, lineage with a dataset, environment, run id)."""
    return VersionCreate.parse(
        {
            "metrics": {"auc": auc, "f1": 0.79, "latency_p99_ms": 3.1},
            "params": {"n_estimators": 200, "learning_rate": 0.1, "criterion": "gini"},
            "tags": {"team": "payments", "use_case": "fraud"},
            "signature": copy.deepcopy(_SIGNATURE),
            "lineage": {
                "datasets": [
                    {
                        "name": "transactions",
                        "version": dataset_version,
                        "fingerprint": "sha256:" + uuid.uuid4().hex * 2,
                        "rows": 120000,
                        "date_range": ["2026-10-01", "2026-10-31"],
                    }
                ],
                "feature_pipeline": "fe-2.3",
                "code": {
                    "repository": "git@example.com:payments/fraud.git",
                    "commit": commit,
                    "branch": "main",
                },
            },
            "environment": {"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
            "run_id": f"run-{uuid.uuid4().hex[:8]}",
        }
    )


@dataclass(frozen=True)
class World:
    """What ``build_world`` made that the tests ask about afterwards."""

    times: tuple[datetime, ...]  # instants between the releases, for production_at
    token_secrets: dict[str, str]  # token name -> secret


def _tick(times: list[datetime]) -> None:
    # Distinct instants between steps: event times have microsecond resolution.
    time.sleep(0.002)
    times.append(datetime.now(UTC))
    time.sleep(0.002)


def build_world(store: SqlStore) -> World:
    """A registry with something in every table: two models, versions with full metadata,
    stage moves, releases through the gates (replicas, health and canary checks), a
    rollback, aliases, a policy, an app release with a binding, tokens and webhooks."""
    times: list[datetime] = []
    _tick(times)  # before anything served
    store.add_webhook("https://hooks.example.com/all", ["*"])
    store.add_webhook("https://hooks.example.com/fraud", ["promoted", "rolled_back"], model=MODEL)
    store.create_model(MODEL, description="card fraud", tags={"owner": "risk"})
    for number in range(1, 5):
        store.register(
            MODEL, artifact(uuid.uuid4().bytes), meta(0.8 + number / 100, f"2026-1{number}")
        )
    release(store, MODEL, 1)
    _tick(times)
    release(store, MODEL, 2)
    _tick(times)
    release(store, MODEL, 3)
    _tick(times)
    store.rollback(MODEL, reason="p99 regressed")  # back to v2; v3 is rolled away from
    _tick(times)
    store.transition(MODEL, 4, Stage.STAGING, reason="candidate")
    store.record_check(MODEL, 4, "canary", passed=False, evidence={"decision": "inferior"})
    store.set_aliases(MODEL, {"challenger": 4, "shadow": 3}, reason="compare")
    store.set_aliases(MODEL, {"shadow": None}, reason="done")
    store.update_version(MODEL, 2, tags={"reviewed": "yes", "team": None}, description="v2")
    store.set_policy(
        MODEL, ReleasePolicy.parse({"staging": ["auc >= 0.5"]}), reason="a floor on auc"
    )
    store.create_app_release(APP, APP_RELEASE, Signature.model_validate(_SIGNATURE))
    store.bind_app_release(APP, APP_RELEASE, MODEL, follow="production", reason="go live")

    store.register(OTHER, artifact(b"churn-1"), meta(0.7, "2026-09", commit="c0ffee1"))
    replicate_everywhere(store, OTHER, 1)
    make_releasable(store, OTHER, 1, canary=False)
    _tick(times)

    secrets: dict[str, str] = {}
    for name, role, scopes in [
        ("ci", Role.DEPLOYER, ("payments/*",)),
        ("reader", Role.READER, ("*",)),
        ("old", Role.ADMIN, ("*",)),
    ]:
        secrets[name] = store.create_token(name, role, scopes=scopes)[1]
    store.revoke_token("old")
    removed, _ = store.add_webhook("https://hooks.example.com/gone", ["*"], model="payments/*")
    store.remove_webhook(removed.id)
    # what a dispatcher does: lease the subscriptions and queue their deliveries
    for held in store.claim_webhooks("dispatcher-1", timedelta(minutes=5)):
        store.queue_deliveries(held.webhook.id, "dispatcher-1")
    store.heartbeat(
        Heartbeat(
            resolver_id="resolver-1",
            model=MODEL,
            ref=f"{MODEL}@production",
            region="eu",
            host="serving-1",
            pid=4242,
            version=2,
            generation=store.get_model(MODEL).generation,
            seq=store.latest_seq(),
            started_at=times[0],
            seen_at=times[-1],
        )
    )
    return World(times=tuple(times), token_secrets=secrets)


def answers(store: SqlStore, world: World) -> dict[str, Any]:
    """Every answer a caller can get from the registry, as plain data."""
    names = [m.name for m in store.list_models()]
    per_version = {
        f"{name} v{mv.version}": {
            "version": mv,
            "replicas": store.replicas(name, mv.version),
            "checks": store.checks(name, mv.version),
            "approvals": store.approval_status(name, mv.version),
        }
        for name in names
        for mv in store.list_versions(name)
    }
    return {
        "models": store.list_models(),
        "history": {name: store.history(name) for name in names},
        "production_at": {
            name: [store.production_at(name, t) for t in world.times] for name in names
        },
        "resolve": {
            ref: store.resolve(MODEL, ref) for ref in ("production", "latest", "challenger", 1)
        },
        "versions": per_version,
        "policy": {name: store.get_policy(name) for name in names},
        "policy_history": {name: store.policy_history(name) for name in names},
        "app_releases": store.list_app_releases(),
        "app_release": store.get_app_release(APP, APP_RELEASE),
        "app_resolves": store.resolve_app_release(APP, APP_RELEASE),
        "search": {
            text: store.search(text)
            for text in ("", "metrics.auc > 0.82", "tags.team = 'payments'", "stage = 'Production'")
        },
        "lineage": [
            store.lineage_impact(dataset="transactions"),
            store.lineage_impact(dataset="transactions@2026-12"),
            store.lineage_impact(commit="c0ffee"),
            store.lineage_impact(pipeline="fe-2.3"),
        ],
        "tokens": store.list_tokens(),
        "webhooks": store.list_webhooks(),
        "deliveries": {w.id: store.webhook_deliveries(w.id) for w in store.list_webhooks()},
        "events": store.events(limit=10_000),
        "fleet": store.fleet(),
        "latest_seq": store.latest_seq(),
        "promotion_reasons": store.check_promotion(MODEL, 4),
    }


def without_times(change: PointerChange) -> list[dict[str, Any]]:
    """A pointer change's events without their wall-clock time (two rollbacks made a few
    milliseconds apart are the same change)."""
    return [event.model_dump(exclude={"at"}) for event in change.events]


# ---------------------------------------------------------------- registries


def _registries(folder: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """``make(backend)``: a new, migrated, empty registry on "sqlite" or "postgres" (a
    fresh schema of the session's database), dropped when the generator finishes."""
    dropped: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{folder / f'reg-{uuid.uuid4().hex[:8]}.db'}"
        else:
            database = request.getfixturevalue("postgres_database")
            url = database.create_schema("backup")
            dropped.append(url)
        SqlStore(url, actor="migrate").close()
        return url

    yield make
    if dropped:
        database = request.getfixturevalue("postgres_database")
        for url in dropped:
            database.drop_schema(url)


@pytest.fixture
def registry_urls(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """``make(backend)``: a new, migrated, empty registry on "sqlite" or "postgres" (a
    fresh schema of the session's database), dropped at teardown."""
    yield from _registries(tmp_path, request)


PAIRS = [
    pytest.param(("sqlite", "sqlite"), id="sqlite-sqlite"),
    pytest.param(("postgres", "postgres"), id="postgres-postgres", marks=pytest.mark.postgres),
    pytest.param(("sqlite", "postgres"), id="sqlite-postgres", marks=pytest.mark.postgres),
    pytest.param(("postgres", "sqlite"), id="postgres-sqlite", marks=pytest.mark.postgres),
]


@dataclass
class Restored:
    source: SqlStore
    target: SqlStore
    world: World
    made: BackupInfo
    restored: BackupInfo
    path: Path
    target_url: str
    source_backend: str


def _restored(
    backends: tuple[str, str], make: Callable[[str], str], folder: Path
) -> Iterator[Restored]:
    """A rich registry on one backend, backed up and restored into an empty one."""
    source_backend, target_backend = backends
    source_url, target_url = make(source_backend), make(target_backend)
    with SqlStore(source_url, actor="builder") as source:
        world = build_world(source)
        path = folder / "registry.backup"
        made = backup(source_url, path)
        restored_info = restore(path, target_url)
        with SqlStore(target_url, actor="builder") as target:
            yield Restored(
                source, target, world, made, restored_info, path, target_url, source_backend
            )


@pytest.fixture(params=PAIRS)
def restored(
    request: pytest.FixtureRequest, registry_urls: Callable[[str], str], tmp_path: Path
) -> Iterator[Restored]:
    """A restore of its own, for a test that writes to the source or the target."""
    yield from _restored(request.param, registry_urls, tmp_path)


@pytest.fixture(scope="module", params=PAIRS)
def restored_once(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Restored]:
    """One restore per backend pair for the tests that only read it (building the world
    and backing it up is most of each test's time)."""
    folder = tmp_path_factory.mktemp("restored")
    for make in _registries(folder, request):
        yield from _restored(request.param, make, folder)


# ---------------------------------------------------------------- round trips


def test_a_restored_registry_gives_every_answer_the_source_gives(restored_once: Restored) -> None:
    before = answers(restored_once.source, restored_once.world)

    after = answers(restored_once.target, restored_once.world)

    for key in before:
        assert after[key] == before[key], key


def test_the_world_exercises_what_a_backup_must_carry(restored_once: Restored) -> None:
    """Guards the round-trip test against an empty world: each answer has content."""
    got = answers(restored_once.target, restored_once.world)
    assert got["production_at"][MODEL] == [None, 1, 2, 3, 2, 2]
    assert {e.kind for e in got["events"]} >= {
        "model.created",
        "version.registered",
        "stage",
        "alias",
        "rollback",
        "tags",
        "policy",
        "binding",
    }
    assert [t.name for t in got["tokens"]] == ["ci", "old", "reader"]
    assert [w.url for w in got["webhooks"]] == [
        "https://hooks.example.com/all",
        "https://hooks.example.com/fraud",
    ]
    assert got["app_resolves"] == (MODEL, 2)
    assert got["policy"][MODEL].version == 1
    assert len(got["versions"][f"{MODEL} v2"]["replicas"]) >= 1
    assert got["lineage"][2] and got["lineage"][1]


def test_backup_info_counts_the_rows_of_every_table(restored_once: Restored) -> None:
    made, verified = restored_once.made, verify(restored_once.path)

    assert (
        made.source == {"sqlite": "sqlite", "postgres": "postgresql"}[restored_once.source_backend]
    )
    assert verified.tables == made.tables == restored_once.restored.tables
    assert verified.schema == made.schema
    assert made.tables and all(count >= 0 for count in made.tables.values())
    assert sum(made.tables.values()) > 0
    assert made.created_at.tzinfo is not None
    assert abs(made.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert verified.path == restored_once.path


def test_a_rollback_after_restore_makes_the_same_change_as_on_the_source(
    restored: Restored,
) -> None:
    on_source = restored.source.rollback(MODEL, reason="compare")
    on_target = restored.target.rollback(MODEL, reason="compare")

    assert on_target.generation == on_source.generation
    assert without_times(on_target) == without_times(on_source)
    assert restored.target.resolve(MODEL, "production") == restored.source.resolve(
        MODEL, "production"
    )


def test_the_restored_registry_keeps_working(restored: Restored) -> None:
    source, target = restored.source, restored.target
    last_seq, last_version = source.latest_seq(), source.get_model(MODEL).latest_version

    mv = target.register(MODEL, artifact(b"after-restore"), meta(0.9, "2027-01"))

    assert mv.version == last_version + 1
    new_events = target.events(since=last_seq)
    assert [e.seq for e in new_events] == list(range(last_seq + 1, last_seq + 1 + len(new_events)))
    assert new_events[0].kind == "version.registered"
    # ids of other tables continue too: a new token, webhook, check and app release
    target.create_token("after", Role.READER)
    hook, _ = target.add_webhook("https://hooks.example.com/after", ["*"])
    assert hook.id > max(w.id for w in source.list_webhooks())
    target.record_check(MODEL, mv.version, "health", region="eu", passed=True, evidence={})
    target.create_app_release(APP, "2.0.0", Signature.model_validate(_SIGNATURE))
    with pytest.raises(Conflict):
        target.create_token("ci", Role.READER)  # names survive: still taken


def test_a_token_made_before_the_backup_still_authenticates(restored_once: Restored) -> None:
    for name in ("ci", "reader"):
        token = restored_once.target.authenticate(restored_once.world.token_secrets[name])
        assert token == restored_once.source.authenticate(restored_once.world.token_secrets[name])
        assert token.name == name
    from registry.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        restored_once.target.authenticate(restored_once.world.token_secrets["old"])  # revoked


# ---------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def sqlite_backup_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of the world on SQLite, made once for the module."""
    folder = tmp_path_factory.mktemp("good-backup")
    url = f"sqlite:///{folder / 'reg.db'}"
    with SqlStore(url, actor="builder") as store:
        build_world(store)
    path = folder / "good.backup"
    backup(url, path)
    return path


@pytest.fixture
def sqlite_backup(sqlite_backup_once: Path, tmp_path: Path) -> Path:
    """A copy of the module's good backup, for this test alone."""
    path = tmp_path / "good.backup"
    shutil.copyfile(sqlite_backup_once, path)
    return path


def _is_empty(url: str) -> bool:
    with SqlStore(url, actor="check") as store:
        return (
            store.list_models() == []
            and store.events() == []
            and store.latest_seq() == 0
            and store.list_tokens() == []
            and store.list_webhooks() == []
            and store.list_app_releases() == []
        )


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_restore_into_a_registry_that_holds_anything_is_a_conflict_and_changes_nothing(
    backend: str, registry_urls: Callable[[str], str], sqlite_backup: Path
) -> None:
    target_url = registry_urls(backend)
    with SqlStore(target_url, actor="someone") as target:
        target.register("mine", artifact(b"mine"), VersionCreate())
        before = answers_light(target)

        with pytest.raises(Conflict):
            restore(sqlite_backup, target_url)

        assert answers_light(target) == before


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_restore_into_a_registry_with_only_a_token_is_a_conflict(
    backend: str, registry_urls: Callable[[str], str], sqlite_backup: Path
) -> None:
    target_url = registry_urls(backend)
    with SqlStore(target_url, actor="someone") as target:
        target.create_token("admin", Role.ADMIN)

        with pytest.raises(Conflict):
            restore(sqlite_backup, target_url)

        assert [t.name for t in target.list_tokens()] == ["admin"]
        assert target.list_models() == [] and target.latest_seq() == 0


def answers_light(store: SqlStore) -> dict[str, Any]:
    return {
        "models": store.list_models(),
        "versions": store.list_versions("mine"),
        "events": store.events(),
        "tokens": store.list_tokens(),
    }


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    import io

    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_backup_holds_a_manifest_its_checksum_and_one_jsonl_per_table(
    sqlite_backup: Path,
) -> None:
    members = _members(sqlite_backup)

    assert {"manifest.json", "manifest.sha256"} <= set(members)
    tables = [n for n in members if n.startswith("tables/")]
    assert tables and all(n.endswith(".jsonl") for n in tables)
    manifest = json.loads(members["manifest.json"])
    assert isinstance(manifest, dict)
    info = verify(sqlite_backup)
    assert set(info.tables) == {n.removeprefix("tables/").removesuffix(".jsonl") for n in tables}
    for table, count in info.tables.items():
        lines = members[f"tables/{table}.jsonl"].splitlines()
        assert len([line for line in lines if line.strip()]) == count, table


Corruption = Callable[[Path, Path], None]


def _data_end(path: Path) -> int:
    """Where the last member's bytes end (a tar is zero-padded after that)."""
    with tarfile.open(path) as tar:
        return max(m.offset_data + m.size for m in tar.getmembers())


def _truncate(fraction: float) -> Corruption:
    """Cut at ``fraction`` of the archive's content (not of its zero padding)."""

    def corrupt(good: Path, bad: Path) -> None:
        bad.write_bytes(good.read_bytes()[: int(_data_end(good) * fraction)])

    return corrupt


def _truncate_tail(cut: int) -> Corruption:
    """Cut ``cut`` bytes before the end of the last member's content."""

    def corrupt(good: Path, bad: Path) -> None:
        bad.write_bytes(good.read_bytes()[: _data_end(good) - cut])

    return corrupt


def _truncate_before_last_member(good: Path, bad: Path) -> None:
    """Whole members only: the file ends just before the last member's header."""
    with tarfile.open(good) as tar:
        last = max(tar.getmembers(), key=lambda m: m.offset)
    bad.write_bytes(good.read_bytes()[: last.offset])


def _flip_in_table(good: Path, bad: Path) -> None:
    """One byte of a table member changed, inside the tar (which stays well-formed)."""
    members = _members(good)
    name = max((n for n in members if n.startswith("tables/")), key=lambda n: len(members[n]))
    data = bytearray(members[name])
    index = data.index(b'"') + 1  # inside a JSON key or string: the file stays valid JSON-ish
    data[index] = ord("X") if data[index] != ord("X") else ord("Y")
    members[name] = bytes(data)
    _write_tar(bad, members)


def _flip_raw_byte(good: Path, bad: Path) -> None:
    """One byte flipped in the file itself, in the middle of a table member's data."""
    data = bytearray(good.read_bytes())
    with tarfile.open(good) as tar:
        member = max(
            (m for m in tar.getmembers() if m.name.startswith("tables/")), key=lambda m: m.size
        )
    data[member.offset_data + member.size // 2] ^= 0x01
    bad.write_bytes(bytes(data))


def _tamper_manifest(good: Path, bad: Path) -> None:
    """The manifest edited (a row count raised) without fixing its checksum."""
    members = _members(good)
    manifest = json.loads(members["manifest.json"])
    text = json.dumps(manifest)
    members["manifest.json"] = text.replace("1", "2", 1).encode()
    assert members["manifest.json"] != json.dumps(manifest).encode()
    _write_tar(bad, members)


def _tamper_manifest_and_checksum(good: Path, bad: Path) -> None:
    """A table member edited and the manifest's per-table checksum left alone, but the
    manifest's own checksum recomputed: the table check must still catch it."""

    members = _members(good)
    name = next(n for n in members if n.startswith("tables/") and members[n].strip())
    members[name] = members[name] + members[name].splitlines(keepends=True)[0]  # a row twice
    # the manifest is unchanged, so its checksum still matches: only the table check is left
    _write_tar(bad, members)


def _drop_table_member(good: Path, bad: Path) -> None:
    members = _members(good)
    name = next(n for n in members if n.startswith("tables/"))
    del members[name]
    _write_tar(bad, members)


def _other_schema_head(good: Path, bad: Path) -> None:
    """A manifest naming a schema head this code does not know, checksum recomputed."""
    import hashlib

    members = _members(good)
    manifest = json.loads(members["manifest.json"])
    assert "schema" in manifest, sorted(manifest)
    manifest["schema"] = "0000deadbeef"
    old_digest = hashlib.sha256(members["manifest.json"]).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    digest = hashlib.sha256(members["manifest.json"]).hexdigest()
    old = members["manifest.sha256"].decode()
    assert old_digest in old, old
    members["manifest.sha256"] = old.replace(old_digest, digest).encode()
    _write_tar(bad, members)


def _not_a_tar(good: Path, bad: Path) -> None:
    bad.write_text("this is not a registry backup\n" * 50)


def _empty(good: Path, bad: Path) -> None:
    bad.write_bytes(b"")


def _a_tar_of_something_else(good: Path, bad: Path) -> None:
    _write_tar(bad, {"README": b"hello", "data.csv": b"a,b\n1,2\n"})


CORRUPTIONS = [
    pytest.param(_truncate(0.01), id="truncated-1%"),
    pytest.param(_truncate(0.5), id="truncated-50%"),
    pytest.param(_truncate(0.9), id="truncated-90%"),
    pytest.param(_truncate_tail(1), id="truncated-last-byte"),
    pytest.param(_truncate_tail(40), id="truncated-in-last-member"),
    pytest.param(_truncate_before_last_member, id="truncated-before-last-member"),
    pytest.param(_flip_in_table, id="flipped-byte-in-table"),
    pytest.param(_flip_raw_byte, id="flipped-raw-byte"),
    pytest.param(_tamper_manifest, id="tampered-manifest"),
    pytest.param(_tamper_manifest_and_checksum, id="tampered-table-and-manifest-checksum"),
    pytest.param(_drop_table_member, id="missing-table"),
    pytest.param(_other_schema_head, id="other-schema-head"),
    pytest.param(_not_a_tar, id="not-a-tar"),
    pytest.param(_empty, id="empty"),
    pytest.param(_a_tar_of_something_else, id="unknown-format"),
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_verify_refuses_a_corrupt_file_naming_it(
    corrupt: Corruption, sqlite_backup: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.backup"
    corrupt(sqlite_backup, bad)
    assert bad.read_bytes() != sqlite_backup.read_bytes()

    with pytest.raises(InvalidInput) as refused:
        verify(bad)

    message = str(refused.value)
    assert str(bad) in message or bad.name in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_restore_refuses_a_corrupt_file_and_leaves_the_target_empty(
    corrupt: Corruption,
    backend: str,
    sqlite_backup: Path,
    registry_urls: Callable[[str], str],
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.backup"
    corrupt(sqlite_backup, bad)
    target_url = registry_urls(backend)

    with pytest.raises(InvalidInput) as refused:
        restore(bad, target_url)

    assert bad.name in str(refused.value)
    assert _is_empty(target_url)
    restore(sqlite_backup, target_url)  # the target is still usable for a good one
    assert not _is_empty(target_url)


def test_verify_of_a_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="nothing-here"):
        verify(tmp_path / "nothing-here.backup")


def test_a_good_backup_verifies_and_the_copy_is_byte_stable(
    sqlite_backup: Path, tmp_path: Path
) -> None:
    copy_path = tmp_path / "copy.backup"
    copy_path.write_bytes(sqlite_backup.read_bytes())

    assert verify(copy_path).tables == verify(sqlite_backup).tables
