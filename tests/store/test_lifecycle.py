"""A model's own tags and description, renaming, and deleting what never served.

The contract suite: each test runs on SQLite, PostgreSQL and over HTTP (``store``).
What serves, or ever served, cannot be renamed away or deleted; everything that is
deleted leaves its trace in the log.
"""

from __future__ import annotations

import pytest

from registry.errors import Conflict, InvalidInput, NotFound
from registry.models import Signature, Stage
from registry.store.sql import SqlStore

from .support import promote, register_versions, serve_in_turn, snapshot

SCHEMA = Signature.model_validate({"features": [{"name": "amount", "dtype": "float64"}]})


def test_model_tags_and_description_change_and_are_recorded(store: SqlStore) -> None:
    store.create_model("fraud", tags={"team": "payments"})
    changed = store.update_model("fraud", tags={"team": "risk", "tier": "1"}, description="d")
    assert changed.tags == {"team": "risk", "tier": "1"}
    assert changed.description == "d"
    removed = store.update_model("fraud", tags={"tier": None, "absent": None})
    assert removed.tags == {"team": "risk"}
    assert store.get_model("fraud").tags == {"team": "risk"}
    kinds = [(e.kind, e.subject, e.from_value, e.to_value) for e in store.history("fraud")[1:]]
    assert kinds == [
        ("tags", "team", "payments", "risk"),
        ("tags", "tier", None, "1"),
        ("description", None, None, "d"),
        ("tags", "tier", "1", None),
    ]


def test_updating_an_unknown_model_or_a_bad_key_changes_nothing(store: SqlStore) -> None:
    store.create_model("fraud")
    before = snapshot(store)
    with pytest.raises(NotFound):
        store.update_model("nope", tags={"a": "b"})
    with pytest.raises(InvalidInput):
        store.update_model("fraud", tags={"bad key": "b"})
    assert snapshot(store) == before


def test_a_rename_keeps_versions_history_and_pointers(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)
    store.update_model("fraud", description="before the rename")
    renamed = store.rename_model("fraud", "fraud-v2")
    assert renamed.name == "fraud-v2" and renamed.latest_version == 2
    assert renamed.description == "before the rename"
    assert [v.version for v in store.list_versions("fraud-v2")] == [2, 1]
    with pytest.raises(NotFound):
        store.get_model("fraud")
    history = store.history("fraud-v2")
    assert [e.kind for e in history][:3] == [
        "model.created",
        "version.registered",
        "version.registered",
    ]
    assert (history[-1].kind, history[-1].from_value, history[-1].to_value) == (
        "model.renamed",
        "fraud",
        "fraud-v2",
    )
    register_versions(store, "fraud", 1)  # the old name is free
    assert store.get_model("fraud").latest_version == 1


def test_a_renamed_models_event_pages_keep_the_events_under_its_old_name(
    store: SqlStore,
) -> None:
    """``events(model=NEW)`` follows the model, not the name written on each event: the
    history a renamed model shows starts at its creation. A name no model holds any more
    still finds what was written under it; a new model taking the old name starts afresh."""
    register_versions(store, "fraud", 2)
    store.transition("fraud", 1, Stage.STAGING)
    store.rename_model("fraud", "fraud-v2")
    ours = store.history("fraud-v2")
    assert store.events(model="fraud-v2") == ours
    assert store.events(model="fraud-v2", kinds=["stage", "model.renamed"], newest=True) == [
        e for e in ours if e.kind in ("stage", "model.renamed")
    ]
    assert [e.seq for e in store.events(model="fraud")] == [
        e.seq for e in ours if e.model == "fraud"
    ]  # no model is called fraud now: what was written under the name
    register_versions(store, "fraud", 1)  # the old name taken again
    assert [e.kind for e in store.events(model="fraud")] == ["model.created", "version.registered"]


def test_a_model_that_serves_cannot_be_renamed(store: SqlStore) -> None:
    serve_in_turn(store, "fraud", 1)
    register_versions(store, "churn", 1)
    before = snapshot(store)
    with pytest.raises(Conflict, match="serves in Production"):
        store.rename_model("fraud", "fraud-v2")
    with pytest.raises(Conflict, match="already exists"):
        store.rename_model("churn", "fraud")
    with pytest.raises(InvalidInput):
        store.rename_model("churn", "Not A Name")
    assert snapshot(store) == before


def test_a_version_that_never_served_is_deleted_and_its_deletion_recorded(
    store: SqlStore,
) -> None:
    register_versions(store, "fraud", 3)
    store.update_version("fraud", 2, tags={"k": "v"})
    store.delete_version("fraud", 2)
    assert [v.version for v in store.list_versions("fraud")] == [3, 1]
    with pytest.raises(NotFound):
        store.get_version("fraud", 2)
    last = store.history("fraud")[-1]
    assert (last.kind, last.version, last.from_value) == ("version.deleted", 2, "None")
    assert register_versions(store, "fraud", 1)[0].version == 4  # numbers are never reused
    with pytest.raises(NotFound):
        store.delete_version("fraud", 2)


def test_what_serves_or_served_cannot_be_deleted(store: SqlStore) -> None:
    serve_in_turn(store, "fraud", 2)  # v1 served, then v2 took over: v2 in Production
    register_versions(store, "fraud", 2)  # v3, v4
    store.set_aliases("fraud", {"shadow": 3})
    store.create_app_release("svc", "1.0.0", SCHEMA)
    before = snapshot(store)
    cases = {
        1: "served in Production",
        2: "serves in Production",
        3: "alias 'shadow'",
    }
    for version, why in cases.items():
        with pytest.raises(Conflict, match=why):
            store.delete_version("fraud", version)
    with pytest.raises(Conflict, match="cannot be deleted"):
        store.delete_model("fraud")
    assert snapshot(store) == before
    store.delete_version("fraud", 4)  # never served, no alias: goes
    assert [v.version for v in store.list_versions("fraud")] == [3, 2, 1]


def test_a_bound_version_cannot_be_deleted(store: SqlStore) -> None:
    register_versions(store, "fraud", 2, signature=SCHEMA.model_dump())
    store.create_app_release("svc", "1.0.0", SCHEMA)
    store.bind_app_release("svc", "1.0.0", "fraud", version=1, reason="pin")
    with pytest.raises(Conflict, match="bound by an app release"):
        store.delete_version("fraud", 1)
    with pytest.raises(Conflict, match="bound by an app release"):
        store.delete_model("fraud")
    store.delete_version("fraud", 2)


def test_a_staged_or_aliased_version_cannot_be_deleted_until_its_pointer_moves(
    store: SqlStore,
) -> None:
    """Every pointer holds its version: a stage (Staging too), a protected alias, any alias."""
    register_versions(store, "fraud", 3)
    store.transition("fraud", 1, Stage.STAGING)
    store.set_aliases("fraud", {"champion": 2}, force=True, reason="pin the champion")
    store.set_aliases("fraud", {"shadow": 3})
    before = snapshot(store)
    for version, why in {1: "in Staging", 2: "alias 'champion'", 3: "alias 'shadow'"}.items():
        with pytest.raises(Conflict, match=why):
            store.delete_version("fraud", version)
    assert snapshot(store) == before
    store.transition("fraud", 1, Stage.ARCHIVED, reason="not this one")
    store.set_aliases("fraud", {"shadow": None})
    store.delete_version("fraud", 1)
    store.delete_version("fraud", 3)
    assert [v.version for v in store.list_versions("fraud")] == [2]


def test_a_deleted_model_frees_its_name_and_keeps_its_history(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)
    store.update_model("fraud", tags={"team": "payments"})
    store.set_aliases("fraud", {"shadow": 2})
    store.transition("fraud", 1, Stage.STAGING)
    seq = store.latest_seq()
    store.delete_model("fraud")
    assert "fraud" not in [m.name for m in store.list_models()]
    with pytest.raises(NotFound):
        store.get_model("fraud")
    deleted = store.events(since=seq)
    assert [e.kind for e in deleted] == ["model.deleted"]
    assert deleted[0].model == "fraud" and deleted[0].from_value == "fraud"
    assert len(store.events(limit=10_000)) == seq + 1  # nothing of the log went
    made = store.create_model("fraud")
    assert made.latest_version == 0 and made.tags == {} and made.aliases == {}
    assert [e.kind for e in store.history("fraud")] == ["model.created"]


def test_deleting_a_model_it_cannot_find_changes_nothing(store: SqlStore) -> None:
    promote_target = register_versions(store, "fraud", 1)[0]
    promote(store, "fraud", promote_target.version)
    before = snapshot(store)
    with pytest.raises(NotFound):
        store.delete_model("nope")
    with pytest.raises(NotFound):
        store.delete_version("fraud", 9)
    with pytest.raises(InvalidInput):
        store.delete_model("~deleted/1/fraud")
    assert snapshot(store) == before
