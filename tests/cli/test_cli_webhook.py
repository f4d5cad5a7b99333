"""``modelreg webhook`` against a database, on SQLite and PostgreSQL: subscriptions,
one-line errors, and ``deliver`` (one pass, no server) sending to a real receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cli_harness import MODEL, Harness
from webhook_receiver import Receiver, wait_until

from registry.webhooks import event_type


@pytest.fixture
def registry_url(backend_url: str) -> str:
    return backend_url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    up = Receiver().up()
    yield up
    up.down()


def _add(reg: Harness, url: str, events: str = "registered", *extra: str) -> tuple[int, str]:
    made = reg.json("webhook", "add", url, "--events", events, *extra)
    return int(made["webhook"]["id"]), str(made["secret"])


def test_deliver_sends_new_events_in_order_signed(reg: Harness, receiver: Receiver) -> None:
    reg.register()
    hook, secret = _add(reg, receiver.url(), "registered,promoted", "--model", MODEL)
    reg.register()
    reg.promote(2)
    with reg.store() as store:
        expected = [
            e for e in store.events() if e.seq > 2 and event_type(e) in ("registered", "promoted")
        ]

    report = reg.json("webhook", "deliver")
    again = reg.json("webhook", "deliver")

    assert report == {"webhooks": 1, "queued": 2, "delivered": 2, "failed": 0}
    assert again == {"webhooks": 1, "queued": 0, "delivered": 0, "failed": 0}
    assert [r.event_id for r in receiver.requests] == [e.seq for e in expected]
    assert [r.event_type for r in receiver.requests] == ["registered", "promoted"]
    assert all(r.signed_by(secret) for r in receiver.requests)
    shown = reg.json("webhook", "deliveries", str(hook))
    assert [(d["status"], d["attempts"], d["last_status"]) for d in shown] == [
        ("delivered", 1, 204),
        ("delivered", 1, 204),
    ]


def test_a_pass_stops_at_a_failing_event_and_a_later_pass_goes_on(reg: Harness) -> None:
    receiver = Receiver()  # down: its port is closed
    hook, _ = _add(reg, receiver.url())
    reg.register()
    reg.register()

    failed = reg.json("webhook", "deliver", "--max-backoff", "0.05")
    pending = reg.json("webhook", "deliveries", str(hook))
    receiver.up()
    try:
        # The retry is due within the backoff cap; a pass before that sends nothing.
        delivered = wait_until(
            lambda: reg.json("webhook", "deliver", "--max-backoff", "0.05"),
            lambda report: report["delivered"] > 0,
        )
    finally:
        receiver.down()

    assert (failed["delivered"], failed["failed"]) == (0, 1)
    assert [(d["status"], d["attempts"]) for d in pending] == [("pending", 1), ("pending", 0)]
    assert "Connect" in pending[0]["last_error"]
    assert delivered["delivered"] == 2
    assert [r.event_id for r in receiver.requests] == [d["seq"] for d in pending]


def test_deliver_leaves_a_webhook_another_dispatcher_holds(
    reg: Harness, receiver: Receiver
) -> None:
    _add(reg, receiver.url())
    reg.register()
    with reg.store() as store:
        store.claim_webhooks("a-running-server", timedelta(seconds=60))

    report = reg.json("webhook", "deliver")

    assert report == {"webhooks": 0, "queued": 0, "delivered": 0, "failed": 0}
    assert receiver.requests == []


def test_replay_queues_delivered_events_again(reg: Harness, receiver: Receiver) -> None:
    hook, _ = _add(reg, receiver.url())
    for _ in range(3):
        reg.register()
    reg.json("webhook", "deliver")
    first = [r.event_id for r in receiver.requests]

    replayed = reg.json("webhook", "replay", str(hook), "--from", str(first[1]))
    reg.json("webhook", "deliver")

    assert replayed == {"webhook": hook, "from_seq": first[1], "queued": 2}
    assert [r.event_id for r in receiver.requests] == first + first[1:]


def test_list_and_remove(reg: Harness) -> None:
    kept, _ = _add(reg, "https://hooks.example/kept", "promoted,rolled_back", "--model", "pay/*")
    gone, _ = _add(reg, "https://hooks.example/gone")

    removed = reg.json("webhook", "remove", str(gone))
    listed = reg.json("webhook", "list")

    assert removed["id"] == gone and removed["removed_at"] is not None
    assert [(w["id"], w["url"], w["events"], w["model"]) for w in listed] == [
        (kept, "https://hooks.example/kept", ["promoted", "rolled_back"], "pay/*")
    ]


def test_the_human_output_names_the_webhook_and_each_delivery(
    reg: Harness, receiver: Receiver
) -> None:
    added = reg.run("webhook", "add", receiver.url(), "--events", "registered")
    reg.register()
    reg.run("webhook", "deliver")
    listed = reg.run("webhook", "list")
    shown = reg.run("webhook", "deliveries", "1")

    assert added.exit_code == 0
    first, secret = added.stdout.splitlines()
    assert first == f"webhook 1 added: registered events to {receiver.url()}"
    assert secret.startswith("whsec_")
    assert receiver.url() in listed.stdout
    assert secret not in listed.stdout
    row = shown.stdout.splitlines()[-1]
    assert MODEL in row and "registered" in row and "delivered" in row and "HTTP 204" in row


@pytest.mark.parametrize(
    ("args", "code", "complaint"),
    [
        (("add", "ftp://x/y", "--events", "promoted"), 2, "invalid webhook URL"),
        (("add", "https://h.example/", "--events", "deployed"), 2, "unknown webhook event type"),
        (("add", "https://h.example/", "--events", ","), 2, "at least one event type"),
        (("add", "https://h.example/", "--events", "*", "--model", "A B"), 2, "invalid model"),
        (("add", "https://h.example/"), 2, "Missing option '--events'"),
        (("remove", "7"), 3, "no webhook 7"),
        (("remove", "0"), 2, "0 is not in the range"),
        (("deliveries", "7"), 3, "no webhook 7"),
        (("deliveries", "1", "--limit", "5000"), 2, "5000 is not in the range"),
        (("replay", "7", "--from", "1"), 3, "no webhook 7"),
        (("replay", "1"), 2, "Missing option '--from'"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    reg: Harness, args: tuple[str, ...], code: int, complaint: str
) -> None:
    message = reg.fail("webhook", *args, code=code)

    assert complaint in message


def test_a_removed_webhook_cannot_be_replayed(reg: Harness) -> None:
    hook, _ = _add(reg, "https://hooks.example/")
    reg.json("webhook", "remove", str(hook))

    message = reg.fail("webhook", "replay", str(hook), "--from", "0", code=4)

    assert "was removed" in message


def test_deliver_against_a_server_url_is_refused_without_calling_it(tmp_path: Path) -> None:
    refused = Harness("http://127.0.0.1:9", tmp_path)  # nothing listens there

    message = refused.fail("webhook", "deliver", code=2)

    assert "runs against a database" in message
    assert "a registry server delivers its own webhooks" in message


@pytest.mark.parametrize("status", [301, 404, 500])
def test_an_answer_other_than_2xx_is_a_failed_attempt(
    reg: Harness, receiver: Receiver, status: int
) -> None:
    receiver.fail_next(1, status)
    hook, _ = _add(reg, receiver.url())
    reg.register()

    report = reg.json("webhook", "deliver")

    assert (report["delivered"], report["failed"]) == (0, 1)
    (shown,) = reg.json("webhook", "deliveries", str(hook))
    assert (shown["status"], shown["last_status"], shown["last_error"]) == (
        "pending",
        status,
        f"HTTP {status}",
    )
