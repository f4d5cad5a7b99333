"""Human sign-off on Staging -> Production: N approvals from people other than the
version's registrant, recorded as checks and events, read by the promotion gate."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from release_facts import make_releasable

from registry.errors import Conflict, GateRefused, InvalidInput
from registry.models import Stage
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore

from .support import register_versions

MakeStore = Callable[..., SqlStore]


def _needing(approvals: int) -> ReleasePolicy:
    return ReleasePolicy.parse({"approvals": {"required": approvals}})


@pytest.fixture
def alice(make_store: MakeStore) -> SqlStore:
    """The registrant: fraud v1, staged and releasable, under a policy that needs two
    approvals."""
    store = make_store(actor="alice")
    store.set_policy("fraud", _needing(2), reason="four eyes")
    register_versions(store, "fraud", 1)
    store.transition("fraud", 1, Stage.STAGING)
    make_releasable(store, "fraud", 1)
    return store


def test_promotion_without_approvals_is_refused(alice: SqlStore) -> None:
    with pytest.raises(GateRefused) as raised:
        alice.promote("fraud", 1)

    assert raised.value.reasons == (
        "needs 2 approval(s) from someone other than the registrant (alice); has 0 (none)",
    )


def test_enough_approvals_let_it_through(alice: SqlStore, make_store: MakeStore) -> None:
    make_store(actor="bob").approve("fraud", 1, reason="looked at the canary")
    make_store(actor="carol").approve("fraud", 1, reason="ok")

    alice.promote("fraud", 1)

    assert alice.get_model("fraud").production == 1


def test_one_approval_of_two_is_not_enough(alice: SqlStore, make_store: MakeStore) -> None:
    make_store(actor="bob").approve("fraud", 1, reason="ok")

    with pytest.raises(GateRefused, match=r"has 1 \(bob\)"):
        alice.promote("fraud", 1)


def test_two_approvals_by_one_person_count_once(alice: SqlStore, make_store: MakeStore) -> None:
    bob = make_store(actor="bob")
    bob.approve("fraud", 1, reason="ok")
    bob.approve("fraud", 1, reason="really ok")

    with pytest.raises(GateRefused, match=r"has 1 \(bob\)"):
        alice.promote("fraud", 1)
    assert len(alice.checks("fraud", 1, "approval")) == 2


def test_the_registrants_own_approval_is_a_conflict(alice: SqlStore) -> None:
    history = alice.history("fraud")

    with pytest.raises(Conflict, match="alice registered fraud v1"):
        alice.approve("fraud", 1, reason="trust me")

    assert alice.checks("fraud", 1, "approval") == []
    assert alice.history("fraud") == history


def test_an_approval_cannot_be_recorded_as_a_plain_check(alice: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="approve"):
        alice.record_check("fraud", 1, "approval", passed=True, evidence={"reason": "me"})

    assert alice.checks("fraud", 1, "approval") == []


def test_an_approval_is_a_check_and_an_event(alice: SqlStore, make_store: MakeStore) -> None:
    check = make_store(actor="bob").approve("fraud", 1, reason="canary looks fine")

    assert alice.checks("fraud", 1, "approval") == [check]
    assert (check.recorded_by, check.passed, check.evidence) == (
        "bob",
        True,
        {"reason": "canary looks fine"},
    )
    event = alice.history("fraud")[-1]
    assert (event.kind, event.version, event.actor, event.reason) == (
        "approval",
        1,
        "bob",
        "canary looks fine",
    )


@pytest.mark.parametrize("reason", ["", " "], ids=repr)
def test_an_approval_needs_a_reason(alice: SqlStore, make_store: MakeStore, reason: str) -> None:
    with pytest.raises(InvalidInput, match="needs a reason"):
        make_store(actor="bob").approve("fraud", 1, reason=reason)


def test_a_version_in_production_has_nothing_to_approve(
    alice: SqlStore, make_store: MakeStore
) -> None:
    alice.promote("fraud", 1, force=True, reason="hotfix")

    with pytest.raises(Conflict, match="nothing to approve"):
        make_store(actor="bob").approve("fraud", 1, reason="late")


def test_approval_status_counts_people_other_than_the_registrant(
    alice: SqlStore, make_store: MakeStore
) -> None:
    bob = make_store(actor="bob")
    bob.approve("fraud", 1, reason="ok")
    bob.approve("fraud", 1, reason="again")

    status = alice.approval_status("fraud", 1)

    assert (status.needed, status.approvers, status.registrant, status.missing) == (
        2,
        ("bob",),
        "alice",
        1,
    )


def test_a_policy_without_approvals_needs_none(make_store: MakeStore) -> None:
    store = make_store(actor="alice")
    register_versions(store, "fraud", 1)
    store.transition("fraud", 1, Stage.STAGING)
    make_releasable(store, "fraud", 1)

    store.promote("fraud", 1)

    assert store.approval_status("fraud", 1).needed == 0
    assert store.get_model("fraud").production == 1


def test_a_forced_promotion_lists_the_approval_it_skipped(alice: SqlStore) -> None:
    change = alice.promote("fraud", 1, force=True, reason="hotfix")

    details = change.events[-1].details
    assert "approval" in details.skipped
    assert details.reasons == (
        "needs 2 approval(s) from someone other than the registrant (alice); has 0 (none)",
    )
