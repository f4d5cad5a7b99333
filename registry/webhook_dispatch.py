"""The webhook dispatcher: delivers the outbox of ``webhook_delivery`` rows over HTTP.

For every webhook whose lease it holds, a dispatcher turns new events into delivery
rows (``SqlStore.queue_deliveries``) and sends them strictly in sequence order: it
never sends a later event of a webhook before the earlier one got a 2xx, so a
receiver sees each model's events in order. A failed attempt is retried with
exponential backoff and jitter, capped at ``max_backoff_s``. Delivery is at least
once (a crash after the POST and before the row is marked sends it again): a
receiver dedups on ``X-Modelreg-Event-Id``.

In a server, ``start`` runs one dispatcher per process on a background thread; the
lease (``SqlStore.claim_webhooks``) keeps two processes from delivering one webhook
at once, and a stopped or dead process's webhooks pass to another when its lease
runs out (or at once, when it stops cleanly). Without a server, ``deliver_once``
is one pass (``modelreg webhook deliver``, e.g. from cron).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from registry.config import ServerConfig
from registry.errors import RegistryError
from registry.models import Event
from registry.store.sql import SqlStore
from registry.store.sql.common import utcnow
from registry.store.sql.webhooks import Held
from registry.webhooks import event_type, sign

log = logging.getLogger("registry.webhooks")

ATTEMPT_TIMEOUT_S = 5.0  # a receiver should answer fast and do its work afterwards
BASE_BACKOFF_S = 0.5  # the first retry's delay; it doubles per failed attempt
LEASE = timedelta(seconds=30)  # far longer than an attempt, so a live holder keeps it
POLL_S = 0.2  # how often a dispatcher looks for new events and due retries
SENDERS = 4  # webhooks delivered at once by one dispatcher (one sender per webhook)
USER_AGENT = "modelreg-webhooks/1"
_RNG = random.Random()


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    delivered: bool
    status: int | None = None
    error: str | None = None


@dataclass
class PassReport:
    """What one delivery pass did, across the webhooks it held."""

    webhooks: int = 0  # held by this pass (the others are another dispatcher's)
    queued: int = 0
    delivered: int = 0
    failed: int = 0


def backoff(attempts: int, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failure: doubling from
    ``BASE_BACKOFF_S``, capped at ``cap_s``, half of it random (so receivers coming
    back are not hit by every retry at once)."""
    ceiling = min(cap_s, BASE_BACKOFF_S * 2.0 ** min(max(attempts - 1, 0), 30))
    return ceiling / 2 + (rng or _RNG).uniform(0, ceiling / 2)


def post(client: httpx.Client, url: str, secret: str, event: Event) -> Attempt:
    """Send one event, signed as ``registry.webhooks`` documents."""
    body = event.model_dump_json().encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Modelreg-Event-Id": str(event.seq),
        "X-Modelreg-Event-Type": event_type(event),
        "X-Modelreg-Timestamp": str(timestamp),
        "X-Modelreg-Signature": sign(secret, timestamp, body),
    }
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        what = type(exc).__name__
        return Attempt(False, error=f"{what}: {exc}"[:500] if str(exc) else what)
    if 200 <= response.status_code < 300:
        return Attempt(True, response.status_code)
    return Attempt(False, response.status_code, f"HTTP {response.status_code}")


def new_client(timeout_s: float = ATTEMPT_TIMEOUT_S) -> httpx.Client:
    # No redirects: a receiver that moved answers 3xx, and that is a failed attempt
    # (following it would send the signed body somewhere nobody subscribed). The
    # environment's proxy and CA settings apply, as to any outbound call of the host.
    return httpx.Client(timeout=timeout_s, follow_redirects=False)


class Dispatcher:
    """Delivers the webhooks it holds the lease of, from ``store`` (the root SqlStore)."""

    def __init__(
        self,
        store: SqlStore,
        *,
        max_backoff_s: float,
        timeout_s: float = ATTEMPT_TIMEOUT_S,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.max_backoff_s = max_backoff_s
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.client = new_client(timeout_s)
        self.timeout_s = timeout_s
        self._held: dict[int, Held] = {}
        self._stop = threading.Event()

    # ------------------------------------------------------------ one pass

    def claim(self) -> list[Held]:
        held = self.store.claim_webhooks(self.owner, LEASE)
        self._held = {h.webhook.id: h for h in held}
        return held

    def queue(self, webhook_id: int) -> int:
        """Every event after the webhook's cursor, as delivery rows; how many."""
        total = 0
        while True:
            result = self.store.queue_deliveries(webhook_id, self.owner)
            total += result.queued
            if result.scanned == 0:
                return total

    def drain(self, webhook_id: int) -> tuple[int, int]:
        """Send the webhook's due deliveries in sequence order until one fails or the
        next is not due yet; (delivered, failed)."""
        delivered = 0
        while not self._stop.is_set():
            held = self._held.get(webhook_id)
            if held is None:
                break
            # Only while this dispatcher's lease outlasts an attempt (the database says,
            # not our memory of it: a stalled process may have lost it meanwhile).
            margin = timedelta(seconds=self.timeout_s * 2)
            due = self.store.next_delivery(webhook_id, self.owner, margin=margin)
            if due is None or due.next_attempt_at > utcnow():
                break
            attempt = post(self.client, held.webhook.url, held.secret, due.event)
            retry_at = None
            if not attempt.delivered:
                delay = backoff(due.attempts + 1, self.max_backoff_s)
                retry_at = utcnow() + timedelta(seconds=delay)
            self.store.record_attempt(
                due,
                delivered=attempt.delivered,
                status=attempt.status,
                error=attempt.error,
                retry_at=retry_at,
            )
            if not attempt.delivered:
                log.info(
                    "webhook %s: event %s failed: %s", webhook_id, due.event.seq, attempt.error
                )
                return delivered, 1
            delivered += 1
        return delivered, 0

    def run_once(self) -> PassReport:
        """Claim, queue and send what is due, then give the leases back."""
        report = PassReport()
        try:
            for held in self.claim():
                report.webhooks += 1
                report.queued += self.queue(held.webhook.id)
                while True:
                    delivered, failed = self.drain(held.webhook.id)
                    report.delivered += delivered
                    report.failed += failed
                    if failed or not delivered:
                        break
                    self.claim()  # drain stops short of the lease's end: renew, go on
        finally:
            self.store.release_webhooks(self.owner)
        return report

    # ------------------------------------------------------------ in a server

    def start(self) -> None:
        self._senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="modelreg-webhook")
        self._sending: dict[int, Future[tuple[int, int]]] = {}
        self._thread = threading.Thread(target=self._run, name="modelreg-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 5)
        self._senders.shutdown(wait=True, cancel_futures=True)
        try:
            self.store.release_webhooks(self.owner)
        except RegistryError as exc:
            log.warning("webhook leases not released (they expire by themselves): %s", exc)
        self.client.close()

    def _run(self) -> None:
        renew_at = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= renew_at or self._unclaimed():
                    self.claim()
                    renew_at = time.monotonic() + LEASE.total_seconds() / 3
                self._tick()
            except RegistryError as exc:  # the database is down or locked: try again later
                log.warning("webhook dispatcher: %s", exc)
            except Exception:  # a bug must not end deliveries for the server's lifetime
                log.exception("webhook dispatcher failed; retrying")
            self._stop.wait(POLL_S)

    def _unclaimed(self) -> bool:
        """A webhook nobody holds (new, or its holder's lease ran out), or one of ours
        that is gone: claim now rather than at the next renewal."""
        now = utcnow()
        leases = self.store.webhook_leases()
        if {i for i, owner, _until in leases if owner == self.owner} != set(self._held):
            return True
        return any(owner is None or until is None or until < now for _i, owner, until in leases)

    def _tick(self) -> None:
        latest = self.store.latest_seq()
        for webhook_id, held in list(self._held.items()):
            running = self._sending.get(webhook_id)
            if running is not None and not running.done():
                continue  # one sender per webhook: that is what keeps events in order
            if running is not None and running.exception() is not None:
                log.warning("webhook %s: sending failed: %s", webhook_id, running.exception())
            if latest > held.webhook.cursor:
                self.queue(webhook_id)
                cursor = held.webhook.model_copy(update={"cursor": latest})
                self._held[webhook_id] = Held(cursor, held.secret, held.lease_until)
            self._sending[webhook_id] = self._senders.submit(self.drain, webhook_id)


def start(app: Any, config: ServerConfig) -> Callable[[], None]:
    """The server's service: a dispatcher on ``app.state.store`` unless webhooks are off."""
    if not config.webhooks:
        return lambda: None
    dispatcher = Dispatcher(app.state.store, max_backoff_s=config.webhook_max_backoff_s)
    dispatcher.start()
    return dispatcher.stop


def deliver_once(
    store: SqlStore, *, max_backoff_s: float = 300.0, timeout_s: float = ATTEMPT_TIMEOUT_S
) -> PassReport:
    """One delivery pass over a local registry: what a server's dispatcher does
    continuously. Webhooks another dispatcher holds are left to it."""
    dispatcher = Dispatcher(store, max_backoff_s=max_backoff_s, timeout_s=timeout_s)
    try:
        return dispatcher.run_once()
    finally:
        dispatcher.client.close()
