"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis).

A real server on each backend, holding a few models so that generated requests also
reach handlers past the 404s: every operation of ``/api/v1/openapi.json`` gets
schema-conforming (positive) and schema-violating (negative) requests, as an admin
(so writes reach the store) and as a reader (so they meet the guard). No reply may be
a 5xx, every error reply has the API's JSON error shape, and every success matches
the schema published for it.

Bounded and deterministic: a few examples per operation (``EXAMPLES``), a fixed seed
(``derandomize``), no shrinking, no example database. A failure lists each bad reply
with a curl command that reproduces it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from registry.auth import Role
from registry.models import ArtifactRef, Signature, Stage, VersionCreate
from registry.store.sql import SqlStore

from .conftest import ServerProcess

# Examples per operation, generation mode and token: ~40 operations x 4 runs.
EXAMPLES = {Role.ADMIN: 6, Role.READER: 3}
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# The models the pinned requests name (``pin``): real state, so generated bodies meet
# the store's rules (stages, gates, signatures) and not only its 404s.
MODEL, NAMESPACED, APP, RELEASE = "fuzz", "fuzz/model", "fuzz", "r1"
SIGNATURE = {"features": [{"name": "amount", "dtype": "float64"}]}
# An infinite stream: it never answers, so it is not a request/reply to fuzz (the feed
# tests cover its errors).
SKIPPED = {"/api/v1/events/stream"}
# uvicorn refuses a request line longer than its parser takes before the app sees it,
# with this plain-text 400; a URL that long is beyond what clients send (httpx refuses
# a query over 64 KiB), so only such a URL may get it.
PROTOCOL_REFUSAL = "Invalid HTTP request received."
LONG_URL = 64 * 1024


@dataclass(frozen=True)
class Fuzzed:
    url: str
    tokens: dict[Role, str]


@pytest.fixture(scope="module")
def fuzzed(module_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A server without the webhook dispatcher (fuzzed subscriptions would send to
    random URLs), over a registry holding two models and an app release."""
    tokens = {}
    with SqlStore(module_store_url, actor="fuzz-seed") as store:
        for role in EXAMPLES:
            # Unguessable names: a fuzzed DELETE /tokens/{name} must not revoke them.
            _token, tokens[role] = store.create_token(f"fuzz-{role}-{uuid.uuid4().hex}", role)
        for name in (MODEL, NAMESPACED):
            for _ in range(3):
                digest = uuid.uuid4().hex * 2
                artifact = ArtifactRef(uri=f"file:///artifacts/{digest}", sha256=digest, size=3)
                store.register(name, artifact, VersionCreate.parse({"signature": SIGNATURE}))
            store.transition(name, 1, Stage.STAGING)
        store.create_app_release(APP, RELEASE, Signature.model_validate(SIGNATURE))
    log = tmp_path_factory.mktemp("server") / "server.log"
    server = ServerProcess(module_store_url, log, args=["--no-webhooks"]).start()
    try:
        yield Fuzzed(server.url, tokens)
    finally:
        server.stop()


def pin(pair: tuple[Case[Any], bool]) -> Case[Any]:
    """Half the cases name the seeded models and versions instead of random ones."""
    case, pinned = pair
    if pinned and case.path_parameters:
        values = {"name": NAMESPACED, "model": MODEL, "app": APP, "release": RELEASE}
        for key, value in values.items():
            if key in case.path_parameters:
                case.path_parameters[key] = value
        if "version" in case.path_parameters:
            case.path_parameters["version"] = 1
    return case


def modes(operation: Any) -> tuple[GenerationMode, ...]:
    """Both modes, or only positive where nothing can be made invalid: any string is a
    valid path segment, so an operation with only string path parameters has no
    negative case, and Hypothesis would spend hundreds of draws finding that out."""
    typed_path = any(
        p.definition.get("schema", {}).get("type") != "string" for p in operation.path_parameters
    )
    if list(operation.body) or list(operation.query) or list(operation.headers) or typed_path:
        return MODES
    return (GenerationMode.POSITIVE,)


def bad_reply(case: Case[Any], response: Response) -> str | None:
    """Why this reply breaks the API's promise, or None if it keeps it."""
    try:
        case.validate_response(response, checks=[not_a_server_error])
    except FailureGroup:
        return "a server error"
    if response.status_code < 400:
        try:  # a success is what the published schema says it is
            case.validate_response(
                response, checks=[response_schema_conformance, content_type_conformance]
            )
        except FailureGroup as failures:
            found = "; ".join(f.title for f in failures.exceptions)
            return f"a reply that does not match the OpenAPI schema: {found}"
        return None
    text = response.text_lossy()
    if text == PROTOCOL_REFUSAL and len(response.request.url or "") > LONG_URL:
        return None
    return shapeless((response.headers.get("content-type") or [""])[0], text)


def shapeless(content_type: str, text: str) -> str | None:
    """What an error reply lacks of ``{"error": {"code", "message", "reasons"?}}``."""
    if not content_type.startswith("application/json"):
        return f"an error reply that is not JSON ({content_type!r})"
    try:
        found = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return "an error reply without {'error': ...}"
    if not isinstance(found, dict):
        return "'error' is not an object"
    if not (isinstance(found.get("code"), str) and found["code"]):
        return "an error without a code"
    if not (isinstance(found.get("message"), str) and found["message"]):
        return "an error without a message"
    reasons = found.get("reasons", [])
    if not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
        return "error reasons that are not a list of strings"
    return None


# schemathesis's own negative-mode strategies call the random module, which hypothesis
# 6.170 reports once per process (whichever test meets it first: a flaky failure).
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
@pytest.mark.parametrize("role", list(EXAMPLES), ids=str)
def test_no_request_gets_a_server_error_or_a_shapeless_error(fuzzed: Fuzzed, role: Role) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed.tokens[role]}"}
    problems: list[str] = []
    operations = 0

    for result in schema.get_all_operations():
        if isinstance(result, Err):
            problems.append(f"the schema has an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        operations += 1
        for mode in modes(operation):
            _fuzz(operation, mode, EXAMPLES[role], fuzzed.url, headers, problems)

    assert operations >= 40  # the schema is the whole API, not a stub
    assert not problems, "\n".join(problems[:20])


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    base_url: str,
    headers: dict[str, str],
    problems: list[str],
) -> None:
    cases = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans()).map(pin)

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases)
    def run(case: Case[Any]) -> None:
        if case.query and "wait" in case.query:
            case.query["wait"] = 0  # a long-poll would hold the run for up to a minute
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        problem = bad_reply(case, response)
        if problem:
            curl = case.as_curl_command(headers={"Authorization": "Bearer $TOKEN"})
            problems.append(f"{operation.label} [{mode.value}] {response.status_code}: {problem}")
            problems.append(f"    {curl[:2000]}")
            problems.append(f"    -> {response.text_lossy()[:500]}")

    # No example at all: an operation without parameters has no negative case.
    with contextlib.suppress(Unsatisfiable):
        run()


# ---------------------------------------------------------------- what the schema omits
# The schema declares neither the headers a client sends on writes nor bodies that are
# not JSON, so the fuzzer never sends them: these are the edges it cannot reach.
_REGISTRATION = json.dumps(
    {"artifact": {"uri": "file:///x", "sha256": "a" * 64, "size": 1}}
).encode()
_JSON = {"Content-Type": "application/json"}
EDGES = (
    [
        pytest.param(
            "POST",
            f"/versions/{MODEL}",
            {**_JSON, "X-Modelreg-Origin": origin},
            _REGISTRATION,
            id=f"origin-{name}",
        )
        for name, origin in [
            ("junk", "junk"),
            ("array", "[]"),
            ("null", "null"),
            ("string", '"text"'),
            ("number-field", '{"flow": 1}'),
            ("nul", '{"flow": "a\\u0000b"}'),
            ("lone-surrogate", '{"url": "\\ud800"}'),
            ("too-long", '{"flow": "' + "a" * 5000 + '"}'),
        ]
    ]
    + [
        pytest.param(
            "PATCH",
            f"/aliases/{MODEL}",
            {**_JSON, "Idempotency-Key": key},
            b'{"moves": {"fuzz-edge": 999}}',
            id=f"idempotency-key-{i}",
        )
        for i, key in enumerate(["", "k" * 10_000, b"\xff", "k k"])
    ]
    + [
        pytest.param("POST", f"/versions/{MODEL}", _JSON, body, id=name)
        for name, body in [
            ("not-utf8", b"\xff\xfe{"),
            ("truncated", _REGISTRATION[:-3]),
            ("deep-nesting", b"[" * 100_000),
            ("huge-number", _REGISTRATION.replace(b'"size": 1', b'"size": 1e400')),
            ("nan", _REGISTRATION.replace(b'"size": 1', b'"size": NaN')),
            ("big-int", _REGISTRATION.replace(b'"size": 1', b'"size": 99999999999999999999999')),
            ("empty", b""),
            ("array", b"[]"),
        ]
    ]
    + [
        pytest.param("POST", f"/versions/{MODEL}", {"Content-Type": ctype}, _REGISTRATION, id=ctype)
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
    ]
    + [
        pytest.param("GET", path, {}, None, id=path)
        for path in (
            "/models/%00",
            "/models/%FF%FE",
            "/resolve/%00@1",
            f"/resolve/{MODEL}@%00",
            "/versions/x@99999999999999999999",
            "/webhooks/99999999999999999999/deliveries",
            "/webhooks/1/deliveries?since=99999999999999999999",
            "/app-releases/%00/r1/resolve",
            "/events?since=99999999999999999999",
            "/events?wait=nan",
            "/events/stream?since=-1",
            "/production-at/x?at=99999-01-01T00:00:00Z",
            "/nowhere",
        )
    ]
    + [
        pytest.param(
            "GET", "/events/stream", {"Last-Event-ID": value}, None, id=f"last-event-id-{i}"
        )
        for i, value in enumerate(["junk", "-1", "99999999999999999999", "1.5"])
    ]
    + [
        pytest.param("DELETE", "/models", {}, None, id="method"),
    ]
)


@pytest.mark.parametrize(("method", "path", "headers", "content"), EDGES)
def test_what_the_schema_omits_gets_a_json_4xx(
    fuzzed: Fuzzed,
    method: str,
    path: str,
    headers: dict[str, str | bytes],
    content: bytes | None,
) -> None:
    sent = [(b"Authorization", f"Bearer {fuzzed.tokens[Role.ADMIN]}".encode())]
    sent += [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers.items()]
    with httpx.Client(base_url=f"{fuzzed.url}/api/v1", timeout=30) as client:
        response = client.request(method, path, headers=sent, content=content)
    assert 400 <= response.status_code < 500, response.text
    assert shapeless(response.headers.get("content-type", ""), response.text) is None, response.text


def test_an_origin_that_cannot_be_stored_is_refused_before_the_write(fuzzed: Fuzzed) -> None:
    """A lone surrogate in ``X-Modelreg-Origin`` once went into the event log: the write
    answered 500 after it committed, and every later read of that event (history, the
    feed, the server's feed follower) failed to serialise it."""
    auth = {"Authorization": f"Bearer {fuzzed.tokens[Role.ADMIN]}"}
    name = f"fuzz-origin-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=f"{fuzzed.url}/api/v1", headers=auth, timeout=30) as client:
        since = client.get("/events/latest").json()["seq"]
        refused = client.post(
            f"/versions/{name}",
            headers={**_JSON, "X-Modelreg-Origin": '{"url": "\\ud800"}'},
            content=_REGISTRATION,
        )
        assert refused.status_code == 400, refused.text
        assert "x-modelreg-origin" in refused.json()["error"]["message"]
        assert client.get(f"/models/{name}").status_code == 404
        feed = client.get("/events", params={"since": since})
        assert feed.status_code == 200, feed.text
        assert not [e for e in feed.json() if e["model"] == name]
