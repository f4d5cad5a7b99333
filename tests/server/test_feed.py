"""The event feed over HTTP, against a real server process on both backends: pages from
a sequence number, long-polls that return with the event that commits, server-sent
events in order and resumable, many subscribers at once, tokens required, and a clean
end when the server stops.

Events are made straight in the database (another process's writes, as a second server
or the CLI would make them): the server hears of them through its feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from registry.models import ArtifactRef, Event, Stage
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore

from .conftest import Served

TIMEOUT_S = 30.0


def _register(db: SqlStore, model: str, count: int) -> list[Event]:
    """``count`` new versions of ``model``: the events they appended, oldest first."""
    before = db.latest_seq()
    for _ in range(count):
        digest = hashlib.sha256(f"{model}-{db.latest_seq()}".encode()).hexdigest()
        artifact = ArtifactRef(uri=f"file:///a/{digest}", sha256=digest, size=1, format="skops")
        db.register(model, artifact, {})
    return db.events(since=before)


class Stream:
    """One ``GET /events/stream`` read in a thread: its server-sent events, parsed."""

    def __init__(self, served: Served, *, secret: str | None = None, **request: Any) -> None:
        self.frames: queue.Queue[dict[str, str]] = queue.Queue()
        self.opened = threading.Event()
        self.error: BaseException | None = None
        self.ended = threading.Event()
        headers = {
            "Authorization": f"Bearer {secret or served.admin}",
            **request.pop("headers", {}),
        }
        self._client = httpx.Client(base_url=f"{served.url}/api/v1", headers=headers, timeout=None)
        self._request = request
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.opened.wait(TIMEOUT_S), "the stream did not open"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/events/stream", **self._request) as response:
                assert response.status_code == 200, response.read()
                frame: dict[str, str] = {}
                for line in response.iter_lines():
                    if not line:
                        if "data" in frame:
                            self.frames.put(frame)
                        frame = {}
                    elif line.startswith(":"):
                        self.opened.set()  # the server's first comment: it is subscribed
                    else:
                        name, _sep, value = line.partition(": ")
                        frame[name] = value
        except (httpx.HTTPError, AssertionError) as exc:
            self.error = exc
        finally:
            self.opened.set()
            self.ended.set()

    def take(self, count: int) -> list[dict[str, str]]:
        return [self.frames.get(timeout=TIMEOUT_S) for _ in range(count)]

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        stream.close()


def _seqs(frames: list[dict[str, str]]) -> list[int]:
    return [int(f["id"]) for f in frames]


# ---------------------------------------------------------------- pages and long-polls


def test_events_are_paged_from_since(module_served: Served) -> None:
    with module_served.db() as db, module_served.client() as api:
        made = _register(db, "paged", 5)  # model.created + 5 registrations
        _register(db, "paged-other", 1)
        since = made[0].seq - 1
        first = api.get("/events", params={"since": since, "limit": 4}).json()
        rest = api.get("/events", params={"since": first[-1]["seq"], "model": "paged"}).json()
        after = api.get("/events", params={"since": rest[-1]["seq"], "model": "paged"}).json()
    assert [Event.model_validate(e) for e in first + rest] == made
    assert after == []


def test_events_latest_is_the_newest_sequence_number(module_served: Served) -> None:
    with module_served.db() as db, module_served.client() as api:
        made = _register(db, "latest", 2)
        assert api.get("/events/latest").json() == {"seq": made[-1].seq}


def _poll(api: httpx.Client, params: dict[str, Any], out: list[Any]) -> threading.Thread:
    def run() -> None:
        reply = api.get("/events", params=params, timeout=TIMEOUT_S + 30)
        out.append(reply.json())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_long_poll_returns_with_the_event_that_commits(module_served: Served) -> None:
    with module_served.db() as db, module_served.client() as api:
        _register(db, "polled", 1)
        got: list[Any] = []
        waiting = _poll(api, {"since": db.latest_seq(), "wait": TIMEOUT_S}, got)
        waiting.join(0.3)
        assert waiting.is_alive(), f"returned before anything committed: {got}"
        [event] = db.transition("polled", 1, Stage.STAGING).events
        waiting.join(TIMEOUT_S)
    assert [Event.model_validate(e) for e in got[0]] == [event]


def test_a_long_poll_for_one_model_waits_past_the_others(module_served: Served) -> None:
    with module_served.db() as db, module_served.client() as api:
        _register(db, "mine", 1)
        _register(db, "theirs", 1)
        got: list[Any] = []
        params = {"since": db.latest_seq(), "wait": TIMEOUT_S, "model": "mine"}
        waiting = _poll(api, params, got)
        waiting.join(0.2)
        db.transition("theirs", 1, Stage.STAGING)
        waiting.join(0.3)
        assert waiting.is_alive(), f"another model's event ended the wait: {got}"
        [event] = db.transition("mine", 1, Stage.STAGING).events
        waiting.join(TIMEOUT_S)
    assert [Event.model_validate(e) for e in got[0]] == [event]


def test_a_long_poll_with_nothing_new_answers_an_empty_page(module_served: Served) -> None:
    with module_served.db() as db, module_served.client() as api:
        reply = api.get("/events", params={"since": db.latest_seq() + 1000, "wait": 0.2})
    assert (reply.status_code, reply.json()) == (200, [])


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        ("/events", {"since": -1}, {}),
        ("/events", {"since": "one"}, {}),
        ("/events", {"since": 2**64}, {}),
        ("/events", {"limit": 0}, {}),
        ("/events", {"limit": 10_001}, {}),
        ("/events", {"wait": -1}, {}),
        ("/events", {"wait": "soon"}, {}),
        ("/events", {"model": "Not A Name"}, {}),
        ("/events", {"model": "Not A Name", "wait": 1}, {}),
        ("/events/stream", {"since": -5}, {}),
        ("/events/stream", {"model": "Not A Name"}, {}),
        ("/events/stream", {}, {"Last-Event-ID": "abc"}),
        ("/events/stream", {}, {"Last-Event-ID": "-3"}),
    ],
)
def test_a_malformed_feed_request_is_a_4xx_with_the_error_body(
    module_served: Served, path: str, params: dict[str, Any], headers: dict[str, str]
) -> None:
    with module_served.client() as api:
        reply = api.get(path, params=params, headers=headers)
    assert 400 <= reply.status_code < 500, reply.text
    assert reply.json()["error"]["code"] in {"invalid_input", "invalid_request"}


@pytest.mark.parametrize("path", ["/events", "/events/latest", "/events/stream"])
@pytest.mark.parametrize("authorization", [None, "Bearer mrt_not-a-token", "Basic abc"])
def test_the_feed_needs_a_valid_token(
    module_served: Served, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = httpx.get(f"{module_served.url}/api/v1{path}", headers=headers, timeout=TIMEOUT_S)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "unauthenticated"


def test_a_reader_token_may_follow_the_feed(module_served: Served, streams: list[Stream]) -> None:
    reader = module_served.token("feed-reader", "reader")
    with module_served.db() as db:
        _register(db, "read-only", 1)
        streams.append(stream := Stream(module_served, secret=reader))
        [event] = db.transition("read-only", 1, Stage.STAGING).events
        [frame] = stream.take(1)
    assert int(frame["id"]) == event.seq


# ---------------------------------------------------------------- server-sent events


def test_the_stream_delivers_events_in_order_as_they_commit(
    module_served: Served, streams: list[Stream]
) -> None:
    with module_served.db() as db:
        streams.append(stream := Stream(module_served))  # from now
        made = _register(db, "streamed", 4)
        made += db.transition("streamed", 2, Stage.STAGING).events
        frames = stream.take(len(made))
    assert _seqs(frames) == [e.seq for e in made]
    assert [f["event"] for f in frames] == [e.kind for e in made]
    assert [Event.model_validate_json(f["data"]) for f in frames] == made


def test_the_stream_resumes_from_last_event_id_without_gaps_or_repeats(
    module_served: Served, streams: list[Stream]
) -> None:
    with module_served.db() as db:
        made = _register(db, "resumed", 5)
        since = made[0].seq - 1
        streams.append(first := Stream(module_served, params={"since": since}))
        head = first.take(3)
        first.close()
        made += _register(db, "resumed", 2)
        # A reconnecting EventSource sends the header with its original URL: the header wins.
        resume = {"Last-Event-ID": head[-1]["id"]}
        streams.append(second := Stream(module_served, params={"since": since}, headers=resume))
        tail = second.take(len(made) - 3)
        made += db.transition("resumed", 1, Stage.STAGING).events
        tail += second.take(1)
    assert _seqs(head + tail) == [e.seq for e in made]
    assert second.frames.empty()


def test_a_subscriber_older_than_the_feed_reads_the_database(
    served: Served, streams: list[Stream]
) -> None:
    with served.db() as db:
        made = _register(db, "older", 3)
        served.server.restart()  # the new process's feed remembers nothing before now
        with served.client() as api:
            page = api.get("/events", params={"since": 0, "wait": 5}).json()
        streams.append(stream := Stream(served, params={"since": 0}))
        old = stream.take(len(made))
        made += db.transition("older", 1, Stage.STAGING).events
        new = stream.take(1)
    assert [Event.model_validate(e) for e in page] == made[:-1]
    assert _seqs(old + new) == [e.seq for e in made]


def test_fifty_subscribers_all_get_a_promotion(module_served: Served) -> None:
    subscribers = 50
    with module_served.db() as db:
        model = "fanned-out"
        _register(db, model, 1)
        db.set_policy(model, ReleasePolicy(required=()), reason="no gates: the feed is tested")
        db.transition(model, 1, Stage.STAGING)
        subscribed = threading.Semaphore(0)

        async def follow(client: httpx.AsyncClient) -> Event:
            async with client.stream("GET", "/events/stream") as response:
                assert response.status_code == 200
                data = None
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        subscribed.release()
                    elif line.startswith("data: "):
                        data = Event.model_validate_json(line.removeprefix("data: "))
                    elif not line and data is not None and data.to_value == "Production":
                        return data
            raise AssertionError("the stream ended before the promotion")

        async def fleet() -> list[Event]:
            headers = {"Authorization": f"Bearer {module_served.admin}"}
            limits = httpx.Limits(max_connections=subscribers + 5)
            async with httpx.AsyncClient(
                base_url=f"{module_served.url}/api/v1", headers=headers, limits=limits, timeout=None
            ) as client:
                tasks = [asyncio.create_task(follow(client)) for _ in range(subscribers)]
                for _ in range(subscribers):
                    assert await asyncio.to_thread(subscribed.acquire, timeout=TIMEOUT_S)
                await asyncio.to_thread(db.transition, model, 1, Stage.PRODUCTION)
                async with asyncio.timeout(TIMEOUT_S):
                    return await asyncio.gather(*tasks)

        got = asyncio.run(fleet())
        [promotion] = [e for e in db.history(model) if e.to_value == "Production"]
    assert got == [promotion] * subscribers


def test_the_stream_ends_cleanly_when_the_server_stops(
    served: Served, streams: list[Stream]
) -> None:
    streams.append(stream := Stream(served))
    served.server.stop()  # SIGTERM: uvicorn's graceful shutdown
    assert stream.ended.wait(TIMEOUT_S)
    assert stream.error is None  # the body ended properly, not a connection torn down
    log = served.server.log.read_text()
    assert "timeout graceful shutdown exceeded" not in log, log


def test_each_event_is_sent_as_one_json_line(module_served: Served, streams: list[Stream]) -> None:
    with module_served.db() as db:
        streams.append(stream := Stream(module_served))
        _register(db, "one-line", 1)
        db.transition("one-line", 1, Stage.STAGING, reason="two\nlines: and a colon")
        frames = stream.take(3)
    assert json.loads(frames[-1]["data"])["reason"] == "two\nlines: and a colon"
