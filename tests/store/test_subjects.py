"""Data subjects (#12 item 3): subject manifests of dataset versions, which versions used a
subject's data and which of them serve, erasure requests, and the rules they set (no
release of such a version unless justified; a retrain on clean data closes the item)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import ArtifactRef, Signature, Stage, VersionCreate
from registry.store.base import RegistryStore

from .support import artifact, promote, snapshot

SIGNATURE = {"features": [{"name": "amount", "dtype": "float64"}]}
SCHEMA = Signature.model_validate(SIGNATURE)


def key(subject: str) -> str:
    """A subject key as ``registry.subjects`` makes one (any 64 lowercase hex digits)."""
    return hashlib.sha256(subject.encode()).hexdigest()


ALICE, BOB, SUBJECT, CAROL = key("alice"), key("bob"), key("subject-s"), key("carol")
DORA = key("dora")  # only in d1, which only fraud v1 (never live) used
# The subject arrives in d2 and is gone from d4 on: d2 and d3 hold it, d1 and d4 do not.
SNAPSHOTS = {
    "d1": [ALICE, BOB, DORA],
    "d2": [ALICE, BOB, SUBJECT],
    "d3": [ALICE, SUBJECT],
    "d4": [ALICE, CAROL],
}


def manifest_ref(dataset: str, version: str, subjects: list[str]) -> ArtifactRef:
    body = "\n".join(sorted(subjects)).encode()
    digest = hashlib.sha256(body + f"{dataset}@{version}".encode()).hexdigest()
    return ArtifactRef(
        uri=f"file:///manifests/{digest}", sha256=digest, size=len(body), format="subjects"
    )


def record_snapshots(store: RegistryStore, dataset: str = "tx") -> None:
    for version, subjects in SNAPSHOTS.items():
        store.record_subject_manifest(
            dataset, version, manifest_ref(dataset, version, subjects), subjects
        )


def trained_on(*datasets: str) -> VersionCreate:
    refs = [{"name": d.split("@")[0], "version": d.split("@")[1]} for d in datasets]
    return VersionCreate.parse({"signature": SIGNATURE, "lineage": {"datasets": refs}})


def register(store: RegistryStore, name: str, *datasets: str) -> int:
    data = f"{name}{datasets}{len(store.events(limit=10_000))}".encode()
    return store.register(name, artifact(data), trained_on(*datasets)).version


def crown(store: RegistryStore, name: str, version: int, alias: str = "champion") -> None:
    """Give a version a protected alias through the gate (Staging, the facts, the move)."""
    from release_facts import make_releasable

    store.transition(name, version, Stage.STAGING)
    make_releasable(store, name, version)
    store.set_aliases(name, {alias: version})


@pytest.fixture
def indexed(store: RegistryStore) -> RegistryStore:
    """tx@d1..d4 with manifests; fraud v1 (d1), v2 (d2, Production), v3 (d3, champion),
    v4 (d3, pinned by checkout@2.3), v5 (d2, not live); churn v1 (d4, Production)."""
    record_snapshots(store)
    assert register(store, "fraud", "tx@d1") == 1
    promote(store, "fraud", register(store, "fraud", "tx@d2"))
    crown(store, "fraud", register(store, "fraud", "tx@d3"))
    store.create_app_release("checkout", "2.3", SCHEMA)
    store.bind_app_release("checkout", "2.3", "fraud", version=register(store, "fraud", "tx@d3"))
    assert register(store, "fraud", "tx@d2") == 5
    promote(store, "churn", register(store, "churn", "tx@d4"))
    return store


# ---------------------------------------------------------------- manifests


def test_a_manifest_reads_back_as_recorded(store: RegistryStore) -> None:
    ref = manifest_ref("tx", "d1", [ALICE, BOB])

    made = store.record_subject_manifest("tx", "d1", ref, [ALICE, BOB, ALICE])

    assert (made.dataset, made.version, made.sha256, made.uri) == ("tx", "d1", ref.sha256, ref.uri)
    assert made.subjects == 2  # distinct keys
    assert made.recorded_by == store.actor
    assert store.subject_manifest("tx", "d1") == made


def test_recording_the_same_manifest_again_returns_the_stored_one(store: RegistryStore) -> None:
    ref = manifest_ref("tx", "d1", [ALICE])
    first = store.record_subject_manifest("tx", "d1", ref, [ALICE])

    again = store.record_subject_manifest("tx", "d1", ref, [ALICE])

    assert again == first
    assert [d.version for d in store.subject_lineage(ALICE).datasets] == ["d1"]


def test_another_manifest_for_a_recorded_version_is_a_conflict(store: RegistryStore) -> None:
    first = store.record_subject_manifest("tx", "d1", manifest_ref("tx", "d1", [ALICE]), [ALICE])

    with pytest.raises(Conflict, match="already has a subject manifest"):
        store.record_subject_manifest("tx", "d1", manifest_ref("tx", "d1", [BOB]), [BOB])

    assert store.subject_manifest("tx", "d1") == first
    assert store.subject_lineage(BOB).datasets == ()


def test_a_dataset_version_without_a_manifest_is_not_found(store: RegistryStore) -> None:
    with pytest.raises(NotFound, match="tx@d9 has no subject manifest"):
        store.subject_manifest("tx", "d9")


@pytest.mark.parametrize(
    "subjects",
    [
        [ALICE, "not-a-key"],
        [ALICE, ALICE.upper()],
        [ALICE, ALICE[:-1]],
        [ALICE, "nan"],
        [ALICE, 12],
        [ALICE, None],
        ALICE,  # one string, not a list
    ],
    ids=["garbage", "uppercase", "short", "nan", "number", "none", "string"],
)
def test_a_bad_key_refuses_the_whole_manifest(store: RegistryStore, subjects: object) -> None:
    with pytest.raises(InvalidInput, match="subject key"):
        store.record_subject_manifest(
            "tx",
            "d1",
            manifest_ref("tx", "d1", [ALICE]),
            subjects,  # type: ignore[arg-type]
        )

    with pytest.raises(NotFound):
        store.subject_manifest("tx", "d1")
    assert store.subject_lineage(ALICE).datasets == ()


@pytest.mark.parametrize(("dataset", "version"), [("", "d1"), ("tx", ""), ("tx" * 200, "d1")])
def test_a_bad_dataset_version_is_invalid(store: RegistryStore, dataset: str, version: str) -> None:
    with pytest.raises(InvalidInput, match="invalid dataset version"):
        store.record_subject_manifest(dataset, version, manifest_ref("tx", "d1", [ALICE]), [ALICE])


def test_an_empty_manifest_is_a_dataset_version_with_no_subjects(store: RegistryStore) -> None:
    store.record_subject_manifest("tx", "d1", manifest_ref("tx", "d1", [ALICE]), [ALICE])

    store.record_subject_manifest("tx", "d2", manifest_ref("tx", "d2", []), [])
    store.record_subject_manifest("tx", "d3", manifest_ref("tx", "d3", [ALICE]), [ALICE])

    assert [d.version for d in store.subject_lineage(ALICE).datasets] == ["d1", "d3"]


# ---------------------------------------------------------------- lineage


def test_lineage_follows_a_subject_across_dataset_versions(store: RegistryStore) -> None:
    record_snapshots(store)

    held = {s: [d.version for d in store.subject_lineage(s).datasets] for s in SNAPSHOTS["d2"]}

    assert held == {ALICE: ["d1", "d2", "d3", "d4"], BOB: ["d1", "d2"], SUBJECT: ["d2", "d3"]}
    assert [d.version for d in store.subject_lineage(CAROL).datasets] == ["d4"]


def test_a_subject_that_returns_is_held_again(store: RegistryStore) -> None:
    record_snapshots(store)
    store.record_subject_manifest("tx", "d5", manifest_ref("tx", "d5", [SUBJECT]), [SUBJECT])

    assert [d.version for d in store.subject_lineage(SUBJECT).datasets] == ["d2", "d3", "d5"]
    assert [d.version for d in store.subject_lineage(ALICE).datasets] == ["d1", "d2", "d3", "d4"]


def test_datasets_are_indexed_apart(store: RegistryStore) -> None:
    record_snapshots(store, "tx")
    store.record_subject_manifest(
        "customers", "d1", manifest_ref("customers", "d1", [SUBJECT]), [SUBJECT]
    )

    held = [(d.dataset, d.version) for d in store.subject_lineage(SUBJECT).datasets]

    assert held == [("customers", "d1"), ("tx", "d2"), ("tx", "d3")]


def test_lineage_names_the_versions_trained_on_the_data_live_first(
    indexed: RegistryStore,
) -> None:
    found = indexed.subject_lineage(SUBJECT)

    assert found.subject == SUBJECT
    assert [(h.name, h.version, h.live) for h in found.versions] == [
        ("fraud", 2, True),
        ("fraud", 3, True),
        ("fraud", 4, True),
        ("fraud", 5, False),
    ]
    why = {h.version: h.why_live for h in found.versions}
    assert why == {
        2: ("Production",),
        3: ("alias champion (protected)",),
        4: ("release checkout@2.3",),
        5: (),
    }
    assert found.versions[0].datasets == ("tx@d2",)
    assert found.versions[0].in_production and found.versions[0].stage is Stage.PRODUCTION
    assert all(h.retrain_required == () for h in found.versions)


def test_a_subject_nobody_recorded_has_no_lineage(indexed: RegistryStore) -> None:
    found = indexed.subject_lineage(key("nobody"))

    assert (found.datasets, found.versions) == ((), ())


def test_a_release_following_a_pointer_makes_its_version_live(indexed: RegistryStore) -> None:
    indexed.create_app_release("checkout", "2.4", SCHEMA)
    indexed.bind_app_release("checkout", "2.4", "fraud", follow="champion")

    why = {h.version: h.why_live for h in indexed.subject_lineage(SUBJECT).versions}

    assert why[3] == ("alias champion (protected)", "release checkout@2.4")


def test_an_unprotected_alias_does_not_make_a_version_live(indexed: RegistryStore) -> None:
    indexed.set_aliases("fraud", {"candidate": 5})

    hit = next(h for h in indexed.subject_lineage(SUBJECT).versions if h.version == 5)

    assert (hit.live, hit.why_live) == (False, ())


@pytest.mark.parametrize("bad", ["", "x" * 64, SUBJECT.upper(), SUBJECT + "0", "nan"])
def test_lineage_of_a_bad_key_is_invalid(store: RegistryStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid subject key"):
        store.subject_lineage(bad)


# ---------------------------------------------------------------- erasure requests


def test_an_erasure_request_flags_only_the_live_versions(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="Art. 17 request 2026-118")

    assert (request.subject, request.reason, request.requested_by) == (
        SUBJECT,
        "Art. 17 request 2026-118",
        indexed.actor,
    )
    assert [(i.name, i.version, i.state) for i in request.items] == [
        ("fraud", 2, "retrain required"),
        ("fraud", 3, "retrain required"),
        ("fraud", 4, "retrain required"),
    ]
    assert request.open
    assert indexed.erasures() == [request]
    flagged = {h.version: h.retrain_required for h in indexed.subject_lineage(SUBJECT).versions}
    assert flagged == {2: (request.id,), 3: (request.id,), 4: (request.id,), 5: ()}


def test_an_erasure_request_is_an_event_per_affected_model_without_the_reason(
    indexed: RegistryStore,
) -> None:
    before = indexed.latest_seq()

    request = indexed.request_erasure(SUBJECT, reason="the subject's own words")

    new = indexed.events(since=before)
    assert [(e.model, e.kind, e.subject, e.from_value, e.to_value) for e in new] == [
        ("fraud", "erasure.requested", f"erasure #{request.id}", SUBJECT, "v2, v3, v4")
    ]
    assert new[0].reason is None
    assert "the subject's own words" not in new[0].model_dump_json()


def test_a_request_for_a_subject_in_no_live_version_flags_nothing(
    indexed: RegistryStore,
) -> None:
    request = indexed.request_erasure(DORA, reason="ticket 7")

    assert request.items == ()
    assert not request.open
    assert indexed.erasures(open_only=True) == []
    assert indexed.erasures() == [request]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_an_erasure_request_needs_a_reason(indexed: RegistryStore, reason: str | None) -> None:
    before = snapshot(indexed)

    with pytest.raises(InvalidInput, match="needs a reason"):
        indexed.request_erasure(SUBJECT, reason=reason)  # type: ignore[arg-type]

    assert indexed.erasures() == []
    assert snapshot(indexed) == before


@pytest.mark.parametrize("bad", ["", "nan", SUBJECT[:63], SUBJECT.upper()])
def test_an_erasure_request_for_a_bad_key_is_invalid(indexed: RegistryStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid subject key"):
        indexed.request_erasure(bad, reason="x")

    assert indexed.erasures() == []


def test_erasures_of_one_model_list_only_its_items(indexed: RegistryStore) -> None:
    first = indexed.request_erasure(SUBJECT, reason="one")
    second = indexed.request_erasure(CAROL, reason="two")  # churn v1 (d4, Production)

    assert [(r.id, [i.name for i in r.items]) for r in indexed.erasures(model="churn")] == [
        (second.id, ["churn"])
    ]
    assert [r.id for r in indexed.erasures(model="fraud")] == [first.id]
    assert [r.id for r in indexed.erasures(open_only=True)] == [first.id, second.id]
    with pytest.raises(NotFound):
        indexed.erasures(model="nope")


# ---------------------------------------------------------------- closing items


def test_justifying_closes_one_item(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")

    after = indexed.justify_erasure(request.id, "fraud", 4, reason="legal hold until 2027")

    item = next(i for i in after.items if i.version == 4)
    assert (item.state, item.justification, item.closed_by) == (
        "justified",
        "legal hold until 2027",
        indexed.actor,
    )
    assert item.closed_at is not None
    assert after.open  # v2 and v3 still need a retrain
    last = indexed.history("fraud")[-1]
    assert (last.kind, last.version, last.reason) == (
        "erasure.justified",
        4,
        "legal hold until 2027",
    )


def test_justifying_every_item_closes_the_request(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")

    for version in (2, 3, 4):
        indexed.justify_erasure(request.id, "fraud", version, reason="kept by court order")

    assert not indexed.erasures()[0].open
    assert indexed.erasures(open_only=True) == []


@pytest.mark.parametrize(
    ("request_id", "name", "version", "error", "match"),
    [
        (99, "fraud", 2, NotFound, "erasure request #99 not found"),
        (1, "nope", 2, NotFound, "model 'nope' not found"),
        (1, "fraud", 1, NotFound, "does not concern fraud v1"),  # trained on d1
        (1, "churn", 1, NotFound, "does not concern churn v1"),
        (1, "fraud", 42, NotFound, "version 42"),
        (0, "fraud", 2, InvalidInput, "invalid erasure request id"),
        (True, "fraud", 2, InvalidInput, "invalid erasure request id"),
        (1, "fraud", 0, InvalidInput, "invalid version"),
        (1, "Bad Name", 2, InvalidInput, "invalid model name"),
    ],
)
def test_justifying_what_the_request_does_not_concern_is_refused(
    indexed: RegistryStore,
    request_id: int,
    name: str,
    version: int,
    error: type[Exception],
    match: str,
) -> None:
    assert indexed.request_erasure(SUBJECT, reason="ticket 1").id == 1
    before = indexed.erasures()

    with pytest.raises(error, match=match):
        indexed.justify_erasure(request_id, name, version, reason="because")

    assert indexed.erasures() == before


@pytest.mark.parametrize("reason", ["", "  "])
def test_a_justification_needs_a_reason(indexed: RegistryStore, reason: str) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")

    with pytest.raises(InvalidInput, match="needs a reason"):
        indexed.justify_erasure(request.id, "fraud", 2, reason=reason)

    assert indexed.erasures() == [request]


def test_a_retrain_on_clean_data_closes_the_models_items(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")

    clean = register(indexed, "fraud", "tx@d4")

    after = indexed.erasures()[0]
    assert [(i.version, i.state, i.closed_by_version) for i in after.items] == [
        (2, "retrained", clean),
        (3, "retrained", clean),
        (4, "retrained", clean),
    ]
    assert not after.open
    last = indexed.history("fraud")[-1]
    assert (last.kind, last.version, last.subject, last.from_value) == (
        "erasure.retrained",
        clean,
        f"erasure #{request.id}",
        "v2, v3, v4",
    )


@pytest.mark.parametrize(
    "datasets",
    [
        ("tx@d3",),  # still holds the subject
        ("tx@d4", "tx@d2"),  # one of its datasets does
        ("tx@d9",),  # no manifest: nothing says the subject is absent
        ("tx@d4", "other@v1"),
        (),  # no datasets declared at all
    ],
    ids=["holds", "one-holds", "no-manifest", "one-without-manifest", "none"],
)
def test_a_retrain_that_may_hold_the_subject_closes_nothing(
    indexed: RegistryStore, datasets: tuple[str, ...]
) -> None:
    indexed.request_erasure(SUBJECT, reason="ticket 1")

    register(indexed, "fraud", *datasets)

    assert {i.state for i in indexed.erasures()[0].items} == {"retrain required"}


def test_a_retrain_of_another_model_closes_nothing(indexed: RegistryStore) -> None:
    indexed.request_erasure(SUBJECT, reason="ticket 1")

    register(indexed, "churn", "tx@d4")

    assert indexed.erasures(open_only=True)[0].open


# ---------------------------------------------------------------- the gate


def test_a_version_under_erasure_cannot_be_promoted(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")
    indexed.transition("fraud", 5, Stage.STAGING)
    from release_facts import make_releasable

    make_releasable(indexed, "fraud", 5)
    before = snapshot(indexed)

    with pytest.raises(GateRefused, match=f"erasure request #{request.id}") as refused:
        indexed.promote("fraud", 5)

    assert (
        f"version 5 was trained on data of a subject under erasure request #{request.id}: "
        f"retrain without the subject, or `modelreg erasure justify {request.id} fraud 5 "
        "--reason …`"
    ) in refused.value.reasons
    after = snapshot(indexed)
    assert after.versions == before.versions
    assert after.events[-1].kind == "refused"


def test_a_justified_version_may_be_promoted(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")
    indexed.justify_erasure(request.id, "fraud", 5, reason="the subject consented again")

    promote(indexed, "fraud", 5)

    assert indexed.get_model("fraud").production == 5
    item = next(i for i in indexed.erasures()[0].items if i.version == 5)
    assert item.state == "justified"


def test_a_version_under_erasure_cannot_take_a_protected_alias(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")
    indexed.transition("fraud", 5, Stage.STAGING)
    from release_facts import make_releasable

    make_releasable(indexed, "fraud", 5)

    with pytest.raises(GateRefused, match=f"erasure request #{request.id}"):
        indexed.set_aliases("fraud", {"champion": 5})

    assert indexed.get_model("fraud").aliases["champion"] == 3


def test_a_version_under_erasure_cannot_be_bound(indexed: RegistryStore) -> None:
    request = indexed.request_erasure(SUBJECT, reason="ticket 1")
    indexed.create_app_release("checkout", "2.5", SCHEMA)

    with pytest.raises(GateRefused, match=f"erasure request #{request.id}"):
        indexed.bind_app_release("checkout", "2.5", "fraud", version=5)
    with pytest.raises(GateRefused, match=f"erasure request #{request.id}"):
        indexed.bind_app_release("checkout", "2.5", "fraud", follow="production")  # v2

    assert indexed.get_app_release("checkout", "2.5").bindings == ()


def test_a_clean_version_passes_every_gate(indexed: RegistryStore) -> None:
    indexed.request_erasure(SUBJECT, reason="ticket 1")
    clean = register(indexed, "fraud", "tx@d4")

    promote(indexed, "fraud", clean)
    indexed.create_app_release("checkout", "2.5", SCHEMA)
    indexed.bind_app_release("checkout", "2.5", "fraud", version=clean)

    assert indexed.get_model("fraud").production == clean


def test_a_rollback_onto_a_version_under_erasure_is_refused(
    make_store: Callable[..., RegistryStore],
) -> None:
    from release_facts import replicate_everywhere

    store = make_store()
    record_snapshots(store)
    promote(store, "fraud", register(store, "fraud", "tx@d2"))  # holds the subject
    promote(store, "fraud", register(store, "fraud", "tx@d4"))
    replicate_everywhere(store, "fraud", 1)
    request = store.request_erasure(SUBJECT, reason="ticket 1")
    assert request.items == ()  # v1 does not serve now

    with pytest.raises(GateRefused, match=f"erasure request #{request.id}"):
        store.rollback("fraud", reason="v2 misbehaves")

    assert store.get_model("fraud").production == 2
    store.justify_erasure(request.id, "fraud", 1, reason="counsel approved keeping v1 for 30 days")
    store.rollback("fraud", reason="v2 misbehaves")
    assert store.get_model("fraud").production == 1
