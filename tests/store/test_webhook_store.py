"""Webhook subscriptions and their outbox, on SQLite and PostgreSQL: add, list and
remove; validation; where a new subscription starts; queueing behind a lease;
attempts; deliveries listing; replays."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from registry.errors import Conflict, InvalidInput, NotFound
from registry.store.sql import SqlStore
from registry.webhooks import event_type

from .support import artifact, promote, register_versions

LEASE = timedelta(seconds=30)
OWNER = "dispatcher-1"


def _queue_all(store: SqlStore, webhook_id: int, owner: str = OWNER) -> int:
    """What a dispatcher does before sending: hold the lease, queue every new event."""
    assert webhook_id in {h.webhook.id for h in store.claim_webhooks(owner, LEASE)}
    total = 0
    while (result := store.queue_deliveries(webhook_id, owner)).scanned:
        total += result.queued
    return total


def _deliver_all(store: SqlStore, webhook_id: int) -> list[int]:
    """Mark every pending delivery delivered, oldest first; their seqs."""
    seqs = []
    while (due := store.next_delivery(webhook_id, OWNER)) is not None:
        assert store.record_attempt(due, delivered=True, status=204)
        seqs.append(due.event.seq)
    return seqs


# ---------------------------------------------------------------- subscriptions


def test_an_added_webhook_is_listed_without_its_secret(store: SqlStore) -> None:
    made, secret = store.add_webhook("https://hooks.example/a", ["promoted", "rolled_back"])
    other, other_secret = store.add_webhook("http://127.0.0.1:9/b", ["*"], model="payments/*")

    assert store.list_webhooks() == [made, other]
    assert made.events == ("promoted", "rolled_back")
    assert (made.model, other.model, other.events) == (None, "payments/*", ("*",))
    assert made.created_by == "tester"
    assert secret != other_secret
    assert len(secret) >= 32
    assert secret not in made.model_dump_json()


def test_event_types_are_deduplicated_and_a_star_takes_every_type(store: SqlStore) -> None:
    repeated, _ = store.add_webhook("https://h.example/", ["registered", " registered", "refused"])
    everything, _ = store.add_webhook("https://h.example/", ["promoted", "*"])

    assert repeated.events == ("registered", "refused")
    assert everything.events == ("*",)


@pytest.mark.parametrize(
    ("url", "events", "model", "complaint"),
    [
        ("ftp://h.example/x", ["promoted"], None, "invalid webhook URL"),
        ("hooks.example/x", ["promoted"], None, "invalid webhook URL"),
        ("https://h.example/" + "x" * 2100, ["promoted"], None, "invalid webhook URL"),
        ("https://h.example/\x00x", ["promoted"], None, "invalid webhook URL"),
        ("https://h.example/x", [], None, "at least one event type"),
        ("https://h.example/x", [" "], None, "at least one event type"),
        ("https://h.example/x", ["deployed"], None, "unknown webhook event type 'deployed'"),
        ("https://h.example/x", ["promoted"], "Fraud Model", "invalid model name"),
        ("https://h.example/x", ["promoted"], "a/b/*", "invalid model filter"),
        ("https://h.example/x", ["promoted"], "*/*", "invalid model filter"),
    ],
)
def test_an_invalid_subscription_is_refused_and_nothing_is_stored(
    store: SqlStore, url: str, events: list[str], model: str | None, complaint: str
) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        store.add_webhook(url, events, model=model)

    assert store.list_webhooks() == []


def test_a_removed_webhook_is_no_longer_listed_and_removing_again_changes_nothing(
    store: SqlStore,
) -> None:
    kept, _ = store.add_webhook("https://h.example/kept", ["*"])
    gone, _ = store.add_webhook("https://h.example/gone", ["*"])

    removed = store.remove_webhook(gone.id)
    again = store.remove_webhook(gone.id)

    assert removed.removed_at is not None
    assert again == removed
    assert store.list_webhooks() == [kept]


def test_unknown_webhook_ids_are_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="no webhook 42"):
        store.remove_webhook(42)
    with pytest.raises(NotFound, match="no webhook 42"):
        store.webhook_deliveries(42)
    with pytest.raises(NotFound, match="no webhook 42"):
        store.replay_webhook(42, from_seq=1)


@pytest.mark.parametrize("bad", [0, -1, 2**31, True])
def test_an_impossible_webhook_id_is_invalid_input(store: SqlStore, bad: int) -> None:
    with pytest.raises(InvalidInput, match="invalid webhook id"):
        store.remove_webhook(bad)


# ---------------------------------------------------------------- where deliveries start


def test_a_new_webhook_starts_after_the_latest_event(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)
    start = store.latest_seq()

    made, _ = store.add_webhook("https://h.example/", ["*"])
    register_versions(store, "fraud", 1)
    queued = _queue_all(store, made.id)

    assert made.cursor == start > 0
    assert queued == 1
    assert [d.seq for d in store.webhook_deliveries(made.id)] == [store.latest_seq()]


def test_queueing_takes_the_event_types_and_models_the_webhook_wants(store: SqlStore) -> None:
    register_versions(store, "payments/fraud", 1)
    register_versions(store, "payments/churn", 1)
    register_versions(store, "search/rank", 1)
    one, _ = store.add_webhook("https://h.example/1", ["promoted"], model="payments/fraud")
    team, _ = store.add_webhook(
        "https://h.example/2", ["registered", "promoted"], model="payments/*"
    )
    every, _ = store.add_webhook("https://h.example/3", ["*"])
    start = store.latest_seq()

    for name in ("payments/fraud", "payments/churn", "search/rank"):
        register_versions(store, name, 1)
        promote(store, name, 2)
    for hook in (one, team, every):
        _queue_all(store, hook.id)

    events = store.events(since=start)
    kinds = {(d.model, d.event_type) for d in store.webhook_deliveries(one.id)}
    assert kinds == {("payments/fraud", "promoted")}
    assert [(d.model, d.event_type) for d in store.webhook_deliveries(team.id)] == [
        (e.model, event_type(e))
        for e in events
        if e.model.startswith("payments/") and event_type(e) in ("registered", "promoted")
    ]
    assert [d.seq for d in store.webhook_deliveries(every.id)] == [e.seq for e in events]


def test_queueing_moves_the_cursor_in_batches_and_never_queues_an_event_twice(
    store: SqlStore,
) -> None:
    made, _ = store.add_webhook("https://h.example/", ["registered"])
    register_versions(store, "fraud", 5)  # model_created + 5 registered
    store.claim_webhooks("d1", LEASE)

    first = store.queue_deliveries(made.id, "d1", limit=4)
    second = store.queue_deliveries(made.id, "d1", limit=4)
    third = store.queue_deliveries(made.id, "d1", limit=4)

    assert (first.scanned, first.queued, first.cursor) == (4, 3, made.cursor + 4)
    assert (second.scanned, second.queued, second.cursor) == (2, 2, made.cursor + 6)
    assert (third.scanned, third.queued) == (0, 0)
    assert store.list_webhooks()[0].cursor == made.cursor + 6
    seqs = [d.seq for d in store.webhook_deliveries(made.id)]
    assert seqs == sorted(set(seqs)) and len(seqs) == 5


# ---------------------------------------------------------------- leases


def test_a_held_lease_keeps_a_second_dispatcher_out_until_it_is_released(
    store: SqlStore,
) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])
    register_versions(store, "fraud", 1)

    held = store.claim_webhooks("d1", LEASE)
    shut_out = store.claim_webhooks("d2", LEASE)
    nothing = store.queue_deliveries(made.id, "d2")
    store.release_webhooks("d1")
    taken_over = store.claim_webhooks("d2", LEASE)

    assert [h.webhook.id for h in held] == [made.id]
    assert shut_out == []
    assert (nothing.scanned, nothing.queued) == (0, 0)
    assert store.webhook_deliveries(made.id) == []
    assert [h.webhook.id for h in taken_over] == [made.id]


def test_an_expired_lease_passes_to_another_dispatcher(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])
    store.claim_webhooks("dead", timedelta(seconds=-1))  # a holder that stopped renewing

    taken_over = store.claim_webhooks("alive", LEASE)

    assert [h.webhook.id for h in taken_over] == [made.id]
    assert store.webhook_leases() == [(made.id, "alive", taken_over[0].lease_until)]
    assert store.claim_webhooks("dead", LEASE) == []


def test_the_holder_renews_its_lease_and_gets_the_signing_secret(store: SqlStore) -> None:
    _made, secret = store.add_webhook("https://h.example/", ["*"])

    first = store.claim_webhooks("d1", LEASE)
    renewed = store.claim_webhooks("d1", LEASE)

    assert renewed[0].lease_until >= first[0].lease_until
    assert renewed[0].secret == secret


def test_dispatchers_claiming_at_once_never_share_a_webhook(
    store: SqlStore, make_store: Callable[..., SqlStore]
) -> None:
    made = [store.add_webhook(f"https://h.example/{i}", ["*"])[0].id for i in range(10)]
    claimers = [make_store(f"server-{i}") for i in range(4)]
    held: dict[str, set[int]] = {}
    start = threading.Barrier(len(claimers))

    def claim(owner: str, claimer: SqlStore) -> None:
        start.wait()
        held[owner] = {h.webhook.id for h in claimer.claim_webhooks(owner, LEASE)}

    threads = [threading.Thread(target=claim, args=(f"d{i}", s)) for i, s in enumerate(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    claimed = [webhook for ids in held.values() for webhook in ids]
    assert sorted(claimed) == made  # every webhook once: no two holders
    owners = {webhook: owner for webhook, owner, _until in store.webhook_leases()}
    assert all(webhook in held[owners[webhook]] for webhook in made)


def test_only_the_lease_holder_gets_a_delivery_to_send_and_only_while_it_lasts(
    store: SqlStore,
) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])
    register_versions(store, "fraud", 1)
    _queue_all(store, made.id, owner="stalled")
    store.claim_webhooks("stalled", timedelta(seconds=-1))  # it stopped renewing
    store.claim_webhooks("successor", LEASE)

    assert store.next_delivery(made.id, "stalled") is None
    assert store.next_delivery(made.id, "successor") is not None
    assert store.next_delivery(made.id, "successor", margin=LEASE * 2) is None


def test_a_removed_webhook_is_neither_claimed_nor_queued(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])
    store.claim_webhooks("d1", LEASE)
    store.remove_webhook(made.id)
    register_versions(store, "fraud", 1)

    assert store.claim_webhooks("d1", LEASE) == []
    assert store.queue_deliveries(made.id, "d1").queued == 0
    assert store.webhook_leases() == []


# ---------------------------------------------------------------- attempts


def test_the_oldest_pending_delivery_comes_first_and_stays_first_until_delivered(
    store: SqlStore,
) -> None:
    made, _ = store.add_webhook("https://h.example/", ["registered"])
    register_versions(store, "fraud", 3)
    _queue_all(store, made.id)
    first = store.next_delivery(made.id, OWNER)
    assert first is not None

    later = first.next_attempt_at + timedelta(seconds=5)
    failed = store.record_attempt(first, delivered=False, status=503, retry_at=later)
    retry = store.next_delivery(made.id, OWNER)

    assert failed
    assert retry is not None
    assert (retry.event.seq, retry.attempts, retry.next_attempt_at) == (first.event.seq, 1, later)
    assert retry.event == store.events(since=first.event.seq - 1, limit=1)[0]
    shown = store.webhook_deliveries(made.id)[0]
    assert (shown.status, shown.attempts, shown.last_status, shown.last_error) == (
        "pending",
        1,
        503,
        "HTTP 503",
    )


def test_a_delivered_attempt_is_recorded_and_the_next_event_comes_up(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["registered"])
    register_versions(store, "fraud", 2)
    _queue_all(store, made.id)
    failing = store.next_delivery(made.id, OWNER)
    assert failing is not None
    store.record_attempt(failing, delivered=False, error="ConnectError: refused")
    due = store.next_delivery(made.id, OWNER)
    assert due is not None

    assert store.record_attempt(due, delivered=True, status=200)
    assert not store.record_attempt(due, delivered=True, status=200)
    assert not store.record_attempt(failing, delivered=True, status=200)  # a stale read

    first, second = store.webhook_deliveries(made.id)
    assert (first.status, first.attempts, first.last_status, first.last_error) == (
        "delivered",
        2,
        200,
        None,
    )
    assert first.delivered_at is not None
    assert (second.status, second.attempts) == ("pending", 0)
    after = store.next_delivery(made.id, OWNER)
    assert after is not None and after.event.seq == second.seq


def test_deliveries_are_listed_in_event_order_after_since_up_to_limit(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])
    register_versions(store, "fraud", 4)
    _queue_all(store, made.id)
    seqs = [d.seq for d in store.webhook_deliveries(made.id)]

    page = store.webhook_deliveries(made.id, since=seqs[1], limit=2)

    assert seqs == sorted(seqs) and len(seqs) == 5
    assert [d.seq for d in page] == seqs[2:4]


@pytest.mark.parametrize(
    ("since", "limit", "complaint"),
    [(-1, 10, "since must be"), (0, 0, "limit must be"), (0, 1001, "limit must be")],
)
def test_an_out_of_range_deliveries_query_is_invalid_input(
    store: SqlStore, since: int, limit: int, complaint: str
) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])

    with pytest.raises(InvalidInput, match=complaint):
        store.webhook_deliveries(made.id, since=since, limit=limit)


def test_removing_a_webhook_drops_its_pending_deliveries_and_keeps_the_delivered(
    store: SqlStore,
) -> None:
    made, _ = store.add_webhook("https://h.example/", ["registered"])
    register_versions(store, "fraud", 3)
    _queue_all(store, made.id)
    due = store.next_delivery(made.id, OWNER)
    assert due is not None
    store.record_attempt(due, delivered=True, status=204)

    store.remove_webhook(made.id)

    assert [(d.seq, d.status) for d in store.webhook_deliveries(made.id)] == [
        (due.event.seq, "delivered")
    ]
    assert store.next_delivery(made.id, OWNER) is None


# ---------------------------------------------------------------- replays


def test_a_replay_queues_every_wanted_event_from_the_seq_again(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["registered"], model="fraud")
    register_versions(store, "fraud", 4)
    register_versions(store, "other", 2)
    _queue_all(store, made.id)
    delivered = _deliver_all(store, made.id)

    queued = store.replay_webhook(made.id, from_seq=delivered[1])

    assert queued == 3
    again = store.webhook_deliveries(made.id)
    assert [(d.seq, d.status, d.attempts) for d in again] == [
        (delivered[0], "delivered", 1),
        *((seq, "pending", 0) for seq in delivered[1:]),
    ]
    assert _deliver_all(store, made.id) == delivered[1:]


def test_a_replay_from_before_the_subscription_takes_the_older_events_too(
    store: SqlStore,
) -> None:
    register_versions(store, "fraud", 2)
    made, _ = store.add_webhook("https://h.example/", ["registered"])

    queued = store.replay_webhook(made.id, from_seq=0)

    assert queued == 2
    assert [d.seq for d in store.webhook_deliveries(made.id)] == [
        e.seq for e in store.events() if e.kind == "version.registered"
    ]


def test_a_replay_leaves_events_past_the_cursor_to_the_dispatcher(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["registered"])
    register_versions(store, "fraud", 2)

    queued = store.replay_webhook(made.id, from_seq=0)
    then = _queue_all(store, made.id)

    assert (queued, then) == (0, 2)
    assert len(store.webhook_deliveries(made.id)) == 2


def test_an_attempt_in_flight_during_a_replay_leaves_the_event_pending(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["registered"])
    register_versions(store, "fraud", 1)
    _queue_all(store, made.id)
    in_flight = store.next_delivery(made.id, OWNER)
    assert in_flight is not None

    store.replay_webhook(made.id, from_seq=in_flight.event.seq)
    recorded = store.record_attempt(in_flight, delivered=True, status=204)

    assert not recorded
    assert [d.status for d in store.webhook_deliveries(made.id)] == ["pending"]


def test_a_removed_webhook_cannot_be_replayed(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])
    store.remove_webhook(made.id)

    with pytest.raises(Conflict, match="was removed"):
        store.replay_webhook(made.id, from_seq=0)


def test_a_negative_replay_seq_is_invalid_input(store: SqlStore) -> None:
    made, _ = store.add_webhook("https://h.example/", ["*"])

    with pytest.raises(InvalidInput, match="from_seq must be"):
        store.replay_webhook(made.id, from_seq=-1)


def test_erasure_events_reach_a_webhook_subscribed_to_erasure(store: SqlStore) -> None:
    """The erasure events are a type a subscription can ask for, not only ``*``'s."""
    hook, _ = store.add_webhook("https://h.example/dpo", ["erasure"], model="payments/*")
    key = "ab" * 32
    store.record_subject_manifest("transactions", "v1", artifact(b"manifest"), [key])
    lineage = {"datasets": [{"name": "transactions", "version": "v1"}]}
    for name in ("payments/fraud", "search/rank"):
        register_versions(store, name, 1, lineage=lineage)
        promote(store, name, 1)
    store.request_erasure(key, reason="art. 17")
    _queue_all(store, hook.id)
    got = [(d.model, d.event_type) for d in store.webhook_deliveries(hook.id)]
    assert got == [("payments/fraud", "erasure")]
