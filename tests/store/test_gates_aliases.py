"""Protected aliases (by default ``production`` and ``champion``) move only through the
promotion gate; the others are free pointers."""

from __future__ import annotations

import pytest
from release_facts import make_releasable

from registry.errors import GateRefused, InvalidInput
from registry.models import Stage
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore

from .support import register_versions, snapshot

UNREPLICATED_REASONS = (
    "replica not verified in us-east (no replica), eu-west (no replica), ap-south (no replica)",
    "no health check in us-east, eu-west, ap-south",
    "no canary result",
)


@pytest.fixture
def staged(store: SqlStore) -> SqlStore:
    """fraud v1 and v2 in Staging, with nothing recorded for the gates."""
    register_versions(store, "fraud", 2)
    for version in (1, 2):
        store.transition("fraud", version, Stage.STAGING)
    return store


def test_champion_is_refused_for_an_unreleasable_version(staged: SqlStore) -> None:
    with pytest.raises(GateRefused) as raised:
        staged.set_aliases("fraud", {"champion": 1}, reason="try")

    assert raised.value.reasons == UNREPLICATED_REASONS
    assert staged.get_model("fraud").aliases == {}


def test_a_refused_alias_is_a_refused_event(staged: SqlStore) -> None:
    generation = staged.get_model("fraud").generation

    with pytest.raises(GateRefused):
        staged.set_aliases("fraud", {"champion": 1}, reason="try")

    event = staged.history("fraud")[-1]
    assert (event.kind, event.version, event.subject, event.reason) == (
        "refused",
        1,
        "champion",
        "try",
    )
    assert (event.details.gate, event.details.reasons) == ("alias", UNREPLICATED_REASONS)
    assert staged.get_model("fraud").generation == generation


def test_champion_moves_to_a_releasable_version(staged: SqlStore) -> None:
    make_releasable(staged, "fraud", 1)

    change = staged.set_aliases("fraud", {"champion": 1})

    assert staged.get_model("fraud").aliases == {"champion": 1}
    assert [(e.kind, e.subject, e.to_value, e.details.empty) for e in change.events] == [
        ("alias", "champion", "1", True)
    ]


def test_champion_takes_only_a_staging_or_production_version(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)
    make_releasable(store, "fraud", 1)

    with pytest.raises(GateRefused) as raised:
        store.set_aliases("fraud", {"champion": 1})

    assert raised.value.reasons == (
        "v1 is in None: a protected alias takes a Staging or Production version",
    )


def test_an_unprotected_alias_moves_without_a_gate(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)  # in None, nothing replicated

    store.set_aliases("fraud", {"shadow": 1})

    assert store.get_model("fraud").aliases == {"shadow": 1}
    assert store.history("fraud")[-1].kind == "alias"


def test_a_refused_protected_alias_stops_the_whole_change(staged: SqlStore) -> None:
    before = snapshot(staged)

    with pytest.raises(GateRefused):
        staged.set_aliases("fraud", {"shadow": 2, "champion": 1})

    assert snapshot(staged).versions == before.versions
    assert staged.get_model("fraud").aliases == {}


def test_force_with_a_reason_moves_champion_and_records_it(staged: SqlStore) -> None:
    change = staged.set_aliases("fraud", {"champion": 1}, force=True, reason="INC-7")

    assert staged.get_model("fraud").aliases == {"champion": 1}
    (event,) = change.events
    assert event.details.forced
    assert event.details.skipped == ("stage", "replicas", "health", "canary", "signature")
    assert event.details.reasons == UNREPLICATED_REASONS
    assert event.reason == "INC-7"


def test_force_marks_only_the_protected_aliases_it_overrode(staged: SqlStore) -> None:
    change = staged.set_aliases("fraud", {"champion": 1, "shadow": 2}, force=True, reason="INC-7")

    assert {e.subject: e.details.forced for e in change.events} == {
        "champion": True,
        "shadow": False,
    }


@pytest.mark.parametrize("reason", [None, " "], ids=repr)
def test_force_without_a_reason_is_invalid_input(staged: SqlStore, reason: str | None) -> None:
    before = snapshot(staged)

    with pytest.raises(InvalidInput, match="needs a reason"):
        staged.set_aliases("fraud", {"champion": 1}, force=True, reason=reason)

    assert snapshot(staged) == before


@pytest.fixture
def crowned(staged: SqlStore) -> SqlStore:
    """champion → v1, through the gate."""
    make_releasable(staged, "fraud", 1)
    staged.set_aliases("fraud", {"champion": 1})
    return staged


def test_deleting_a_protected_alias_is_refused(crowned: SqlStore) -> None:
    with pytest.raises(GateRefused, match="removing it needs --force") as raised:
        crowned.set_aliases("fraud", {"champion": None})

    assert crowned.get_model("fraud").aliases == {"champion": 1}
    event = crowned.history("fraud")[-1]
    assert (event.kind, event.subject, event.details.reasons) == (
        "refused",
        "champion",
        raised.value.reasons,
    )


def test_deleting_a_protected_alias_with_force_is_recorded(crowned: SqlStore) -> None:
    change = crowned.set_aliases("fraud", {"champion": None}, force=True, reason="retire")

    assert crowned.get_model("fraud").aliases == {}
    (event,) = change.events
    assert (event.kind, event.from_value, event.to_value) == ("alias", "1", None)
    assert event.details.forced


def test_deleting_an_unprotected_alias_needs_no_force(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)
    store.set_aliases("fraud", {"shadow": 1})

    store.set_aliases("fraud", {"shadow": None})

    assert store.get_model("fraud").aliases == {}


@pytest.fixture
def blue_protected(staged: SqlStore) -> SqlStore:
    """A policy that protects ``blue`` (and ``production``) but not ``champion``."""
    staged.set_policy(
        "fraud",
        ReleasePolicy.parse({"protected_aliases": ["production", "blue"]}),
        reason="blue/green serving",
    )
    return staged


def test_a_policy_protects_a_custom_alias(blue_protected: SqlStore) -> None:
    with pytest.raises(GateRefused) as raised:
        blue_protected.set_aliases("fraud", {"blue": 1})

    assert raised.value.reasons == UNREPLICATED_REASONS
    assert blue_protected.history("fraud")[-1].subject == "blue"


def test_an_alias_the_policy_does_not_protect_moves_freely(blue_protected: SqlStore) -> None:
    blue_protected.set_aliases("fraud", {"champion": 1})

    assert blue_protected.get_model("fraud").aliases == {"champion": 1}
