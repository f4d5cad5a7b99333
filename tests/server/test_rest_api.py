"""The REST resources over real HTTP against a real ``modelreg server``, on each backend.

One server per module and backend (``module_served``); each test uses model names of
its own. Each resource: its happy path, and the 4xx answers its bad inputs get (never
a 500), with the JSON error body.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from release_facts import make_releasable

from registry.auth import Role

from .conftest import Served

META: dict[str, Any] = {
    "metrics": {"auc": 0.9},
    "signature": {
        "features": [{"name": "amount", "dtype": "float64"}],
        "preprocessing_version": "fe-1",
    },
    "lineage": {
        "datasets": [{"name": "transactions", "version": "2026-11-01"}],
        "feature_pipeline": "fe-1",
        "code": {"commit": "9f1c2ab"},
    },
}


def artifact() -> dict[str, Any]:
    data = uuid.uuid4().bytes
    digest = hashlib.sha256(data).hexdigest()
    return {"uri": f"file:///artifacts/{digest}", "sha256": digest, "size": len(data)}


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api(module_served: Served) -> Iterator[httpx.Client]:
    with module_served.client() as client:
        yield client


@pytest.fixture
def name() -> str:
    return unique()


def register(api: httpx.Client, name: str, **meta: Any) -> dict[str, Any]:
    body = {"artifact": artifact(), "meta": {**META, **meta}}
    response = api.post(f"/versions/{name}", json=body)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The JSON error of a reply that must have ``status`` (and ``code``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    found: dict[str, Any] = response.json()["error"]
    assert found["message"]
    if code is not None:
        assert found["code"] == code
    return found


def generation(api: httpx.Client, name: str) -> int:
    found: int = api.get(f"/models/{name}").json()["generation"]
    return found


def release_through_gates(served: Served, name: str, version: int) -> None:
    """Staging, then the facts the promotion gate reads, then Production, all over HTTP."""
    with served.client() as api:
        staged = api.put(f"/stage/{name}@{version}", json={"stage": "Staging"})
        assert staged.status_code == 200, staged.text
        with served.db("release-pipeline") as db:
            make_releasable(db, name, version)
        promoted = api.put(f"/stage/{name}@{version}", json={"stage": "Production"})
        assert promoted.status_code == 200, promoted.text


# ---------------------------------------------------------------- models


def test_create_get_and_list_models(api: httpx.Client, name: str) -> None:
    made = api.post("/models", json={"name": name, "description": "card fraud", "tags": {"t": "x"}})

    assert made.status_code == 201
    assert (made.json()["name"], made.json()["latest_version"]) == (name, 0)
    got = api.get(f"/models/{name}").json()
    assert (got["description"], got["tags"]) == ("card fraud", {"t": "x"})
    assert name in [m["name"] for m in api.get("/models").json()]


def test_namespaced_model_names_work_in_paths(api: httpx.Client) -> None:
    name = f"payments/{unique()}"
    register(api, name)

    assert api.get(f"/models/{name}").json()["name"] == name
    assert api.get(f"/versions/{name}@1").json()["name"] == name
    assert api.get(f"/resolve/{name}@latest").json() == {"name": name, "version": 1}


def test_creating_a_model_twice_is_409(api: httpx.Client, name: str) -> None:
    api.post("/models", json={"name": name})

    error(api.post("/models", json={"name": name}), 409, "conflict")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Bad Name"},
        {"name": "a\u0000b"},
        {"name": "ok", "colour": "red"},
        {"name": "ok", "tags": {"k": 1}},
        {},
    ],
    ids=["bad-name", "nul", "unknown-field", "tag-not-text", "no-name"],
)
def test_bad_model_bodies_are_4xx(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/models", json=body)

    assert response.status_code in (400, 422)
    error(response, response.status_code)


def test_an_unknown_model_is_404(api: httpx.Client) -> None:
    error(api.get(f"/models/{unique()}"), 404, "not_found")


def test_a_body_that_is_not_json_is_4xx(api: httpx.Client) -> None:
    response = api.post(
        "/models", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert 400 <= response.status_code < 500
    error(response, response.status_code)


def test_a_body_over_the_limit_is_413(api: httpx.Client) -> None:
    response = api.post("/models", json={"name": unique(), "description": "x" * (2 << 20)})

    error(response, 413, "too_large")


# ---------------------------------------------------------------- versions


def test_register_get_list_and_update_versions(api: httpx.Client, name: str) -> None:
    first = register(api, name)
    register(api, name)

    assert (first["version"], first["created_by"], first["metrics"]) == (1, "admin", {"auc": 0.9})
    assert [v["version"] for v in api.get(f"/versions/{name}").json()] == [2, 1]
    assert [v["version"] for v in api.get(f"/versions/{name}", params={"limit": 1}).json()] == [2]
    changed = api.patch(
        f"/versions/{name}@1", json={"tags": {"team": "risk"}, "description": "first"}
    ).json()
    assert (changed["tags"], changed["description"]) == ({"team": "risk"}, "first")
    removed = api.patch(f"/versions/{name}@1", json={"tags": {"team": None}}).json()
    assert removed["tags"] == {}


def test_replaying_a_registration_key_gives_the_same_version(api: httpx.Client, name: str) -> None:
    body = {"artifact": artifact(), "meta": {**META, "idempotency_key": "run-42"}}

    first = api.post(f"/versions/{name}", json=body).json()
    again = api.post(f"/versions/{name}", json=body).json()

    assert first["version"] == again["version"] == 1
    assert [v["version"] for v in api.get(f"/versions/{name}").json()] == [1]


@pytest.mark.parametrize(
    "path",
    ["@abc", "@0", "@-1", "@99999999999", "@1.5", "@"],
)
def test_bad_version_numbers_in_paths_are_4xx(api: httpx.Client, name: str, path: str) -> None:
    register(api, name)

    response = api.get(f"/versions/{name}{path}")

    assert 400 <= response.status_code < 500
    error(response, response.status_code)


def test_an_unknown_version_is_404(api: httpx.Client, name: str) -> None:
    register(api, name)

    error(api.get(f"/versions/{name}@7"), 404, "not_found")


@pytest.mark.parametrize(
    ("meta", "raw"),
    [
        ('{"metrics": {"auc": NaN}}', True),
        ('{"metrics": {"auc": Infinity}}', True),
        ('{"metrics": {"auc": 1' + "0" * 400 + "}}", True),
        ('{"params": {"n": 1' + "0" * 30 + "}}", True),
        (
            '{"lineage": {"datasets": [{"name": "d", "version": "1", "rows": 1' + "0" * 30 + "}]}}",
            True,
        ),
        ('{"tags": {"bad key": "x"}}', True),
        ('{"signature": {"features": []}}', True),
        ('{"description": "a\\u0000b"}', True),
        ('{"unknown": 1}', True),
    ],
    ids=[
        "nan",
        "inf",
        "huge-metric",
        "huge-param",
        "huge-rows",
        "bad-tag",
        "no-features",
        "nul",
        "extra",
    ],
)
def test_bad_registration_metadata_is_4xx(
    api: httpx.Client, name: str, meta: str, raw: bool
) -> None:
    art = artifact()
    body = (
        f'{{"artifact": {{"uri": "{art["uri"]}", "sha256": "{art["sha256"]}", "size": 16}}, '
        f'"meta": {meta}}}'
    )

    response = api.post(
        f"/versions/{name}", content=body.encode(), headers={"content-type": "application/json"}
    )

    assert 400 <= response.status_code < 500, response.text
    error(response, response.status_code)
    error(api.get(f"/models/{name}"), 404)


def test_a_size_past_64_bits_is_4xx(api: httpx.Client, name: str) -> None:
    response = api.post(
        f"/versions/{name}", json={"artifact": {**artifact(), "size": 2**64}, "meta": {}}
    )

    error(response, 422, "invalid_request")


# ---------------------------------------------------------------- stages, aliases, rollback


def test_stage_moves_with_expected_generation(api: httpx.Client, name: str) -> None:
    register(api, name)

    moved = api.put(
        f"/stage/{name}@1",
        json={"stage": "staging", "expected_generation": generation(api, name), "reason": "ok"},
    )

    assert moved.status_code == 200
    change = moved.json()
    assert [(e["kind"], e["to_value"], e["reason"]) for e in change["events"]] == [
        ("stage", "Staging", "ok")
    ]
    assert api.get(f"/versions/{name}@1").json()["stage"] == "Staging"


def test_a_stale_expected_generation_is_409_and_moves_nothing(api: httpx.Client, name: str) -> None:
    register(api, name)
    stale = generation(api, name)
    api.put(f"/stage/{name}@1", json={"stage": "Staging"})

    response = api.put(f"/stage/{name}@1", json={"stage": "Archived", "expected_generation": stale})

    error(response, 409, "conflict")
    assert api.get(f"/versions/{name}@1").json()["stage"] == "Staging"


@pytest.mark.parametrize(
    "body",
    [{"stage": "Live"}, {"stage": 3}, {}, {"stage": "Staging", "expected_generation": -1}],
    ids=["unknown", "number", "missing", "negative-generation"],
)
def test_bad_stage_bodies_are_422(api: httpx.Client, name: str, body: dict[str, Any]) -> None:
    register(api, name)

    error(api.put(f"/stage/{name}@1", json=body), 422, "invalid_request")


def test_promotion_without_its_facts_is_refused_with_reasons(api: httpx.Client, name: str) -> None:
    register(api, name)
    api.put(f"/stage/{name}@1", json={"stage": "Staging"})

    refused = error(api.put(f"/stage/{name}@1", json={"stage": "Production"}), 422, "gate_refused")

    assert refused["reasons"]
    assert api.get(f"/models/{name}").json()["production"] is None
    assert api.get(f"/history/{name}").json()[-1]["kind"] == "refused"


def test_promotion_through_the_gates(module_served: Served, api: httpx.Client, name: str) -> None:
    register(api, name)

    release_through_gates(module_served, name, 1)

    assert api.get(f"/models/{name}").json()["production"] == 1
    assert api.get(f"/resolve/{name}@production").json() == {"name": name, "version": 1}


def test_aliases_move_and_delete_in_one_change(api: httpx.Client, name: str) -> None:
    register(api, name)
    register(api, name)

    moved = api.patch(f"/aliases/{name}", json={"moves": {"shadow": 1, "candidate": 2}})
    assert moved.status_code == 200, moved.text
    assert api.get(f"/resolve/{name}@shadow").json()["version"] == 1
    api.patch(f"/aliases/{name}", json={"moves": {"shadow": None}})

    assert api.get(f"/models/{name}").json()["aliases"] == {"candidate": 2}
    error(api.get(f"/resolve/{name}@shadow"), 404)


def test_a_protected_alias_goes_through_the_gate(api: httpx.Client, name: str) -> None:
    register(api, name)

    refused = error(
        api.patch(f"/aliases/{name}", json={"moves": {"champion": 1}}), 422, "gate_refused"
    )

    assert refused["reasons"]
    assert api.get(f"/models/{name}").json()["aliases"] == {}


@pytest.mark.parametrize(
    "moves",
    [{"Bad": 1}, {"x": 0}, {"x": "one"}, {"latest": 1}],
    ids=["name", "zero", "text", "reserved"],
)
def test_bad_alias_moves_are_4xx(api: httpx.Client, name: str, moves: dict[str, Any]) -> None:
    register(api, name)

    response = api.patch(f"/aliases/{name}", json={"moves": moves})

    assert response.status_code in (400, 422)
    error(response, response.status_code)


def test_rollback_puts_back_the_previous_version(
    module_served: Served, api: httpx.Client, name: str
) -> None:
    for version in (1, 2):
        register(api, name)
        release_through_gates(module_served, name, version)

    rolled = api.post(f"/rollback/{name}", json={"reason": "bad canary"})

    assert rolled.status_code == 200, rolled.text
    [event] = rolled.json()["events"]
    assert (event["kind"], event["details"]["invalidate"]) == ("rollback", True)
    assert api.get(f"/models/{name}").json()["production"] == 1


def test_a_rollback_needs_a_reason(api: httpx.Client, name: str) -> None:
    register(api, name)

    error(api.post(f"/rollback/{name}", json={}), 422, "invalid_request")


def test_nothing_to_roll_back_to_is_a_4xx(api: httpx.Client, name: str) -> None:
    register(api, name)

    response = api.post(f"/rollback/{name}", json={"reason": "nothing serves"})

    assert response.status_code in (409, 422)
    error(response, response.status_code)


def test_an_idempotent_rollback_replayed_rolls_back_once(
    module_served: Served, api: httpx.Client, name: str
) -> None:
    for version in (1, 2, 3):
        register(api, name)
        release_through_gates(module_served, name, version)
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = api.post(f"/rollback/{name}", json={"reason": "page"}, headers=headers)
    again = api.post(f"/rollback/{name}", json={"reason": "page"}, headers=headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replay") == "true"
    assert api.get(f"/models/{name}").json()["production"] == 2
    kinds = [e["kind"] for e in api.get(f"/history/{name}").json()]
    assert kinds.count("rollback") == 1


# ---------------------------------------------------------------- resolve


def test_resolve_numbers_stages_latest_and_aliases(api: httpx.Client, name: str) -> None:
    register(api, name)
    register(api, name)
    api.put(f"/stage/{name}@1", json={"stage": "Staging"})
    api.patch(f"/aliases/{name}", json={"moves": {"shadow": 2}})

    resolved = {
        ref: api.get(f"/resolve/{name}@{ref}").json()["version"]
        for ref in ("1", "latest", "staging", "Staging", "shadow")
    }

    assert resolved == {"1": 1, "latest": 2, "staging": 1, "Staging": 1, "shadow": 2}


@pytest.mark.parametrize(
    ("ref", "status"),
    [("9", 404), ("nothing", 404), ("99999999999999999999", 400), ("\u0663", 400), ("\u00b2", 400)],
    ids=["missing-number", "missing-alias", "huge", "arabic-digit", "superscript"],
)
def test_refs_that_do_not_resolve(api: httpx.Client, name: str, ref: str, status: int) -> None:
    register(api, name)

    error(api.get(f"/resolve/{name}@{ref}"), status)


def test_resolving_an_invalid_model_name_is_400(api: httpx.Client) -> None:
    error(api.get("/resolve/a%00b@1"), 400, "invalid_input")


# ---------------------------------------------------------------- policy


def test_policy_default_set_and_history(api: httpx.Client, name: str) -> None:
    register(api, name)
    default = api.get(f"/policy/{name}").json()
    assert (default["version"], default["policy"]["staging"]) == (0, [])

    document = {"staging": ["auc >= 0.75", "auc >= production.auc - 0.01"], "regions": ["us-east"]}
    stored = api.put(f"/policy/{name}", json={"policy": document, "reason": "tighten"})

    assert stored.status_code == 200, stored.text
    assert stored.json()["policy"]["staging"] == document["staging"]
    assert api.get(f"/policy/{name}").json()["version"] == 1
    history = api.get(f"/policy-history/{name}").json()
    assert [(r["version"], r["reason"], r["actor"]) for r in history] == [(1, "tighten", "admin")]


@pytest.mark.parametrize(
    "body",
    [
        '{"policy": {"staging": ["auc >> 1"]}, "reason": "x"}',
        '{"policy": {"required": ["magic"]}, "reason": "x"}',
        '{"policy": {"canary": {"alpha": NaN}}, "reason": "x"}',
        '{"policy": {"regions": []}, "reason": "x"}',
        '{"policy": "required: []", "reason": "x"}',
        '{"policy": {}}',
    ],
    ids=["bad-rule", "unknown-gate", "nan-alpha", "no-regions", "not-a-mapping", "no-reason"],
)
def test_a_policy_that_fails_validation_is_4xx(api: httpx.Client, name: str, body: str) -> None:
    register(api, name)

    response = api.put(
        f"/policy/{name}", content=body.encode(), headers={"content-type": "application/json"}
    )

    assert response.status_code in (400, 422), response.text
    error(response, response.status_code)
    assert api.get(f"/policy/{name}").json()["version"] == 0


# ---------------------------------------------------------------- approvals and refusals


def test_approvals_from_someone_other_than_the_registrant(
    module_served: Served, api: httpx.Client, name: str
) -> None:
    register(api, name)
    approver = unique("approver")
    secret = module_served.token(approver, Role.DEPLOYER)

    with module_served.client(secret) as other:
        approved = other.post(f"/approvals/{name}@1", json={"reason": "looked at the canary"})
    status = api.get(f"/approvals/{name}@1").json()

    assert approved.status_code == 200, approved.text
    assert (approved.json()["kind"], approved.json()["recorded_by"]) == ("approval", approver)
    assert (status["approvers"], status["registrant"]) == ([approver], "admin")


def test_the_registrant_cannot_approve_its_own_version(api: httpx.Client, name: str) -> None:
    register(api, name)

    error(api.post(f"/approvals/{name}@1", json={"reason": "mine"}), 409, "conflict")


def test_an_approval_request_is_logged(api: httpx.Client, name: str) -> None:
    register(api, name)

    response = api.post(f"/approval-requests/{name}@1", json={"needed": 2})

    assert (response.status_code, response.content) == (204, b"")
    assert api.get(f"/history/{name}").json()[-1]["kind"] == "approval"
    error(api.post(f"/approval-requests/{name}@1", json={"needed": 0}), 422)


def test_the_promotion_check_is_a_dry_run(api: httpx.Client, name: str) -> None:
    register(api, name)
    before = api.get(f"/history/{name}").json()

    check = api.get(f"/promotion-check/{name}@1", params={"target": "Production"})

    assert check.status_code == 200
    assert check.json()["reasons"]
    assert api.get(f"/history/{name}").json() == before


def test_a_recorded_refusal_is_history(api: httpx.Client, name: str) -> None:
    register(api, name)

    refused = api.post(
        f"/refusals/{name}@1", json={"reasons": ["canary lost"], "gate": "canary"}
    ).json()

    assert refused["reasons"] == ["canary lost"]
    assert "canary lost" in refused["message"]
    last = api.get(f"/history/{name}").json()[-1]
    assert (last["kind"], last["details"]["gate"], last["details"]["reasons"]) == (
        "refused",
        "canary",
        ["canary lost"],
    )
    error(api.post(f"/refusals/{name}@1", json={"reasons": []}), 422)


# ---------------------------------------------------------------- replicas and checks


def test_replicas_readiness_and_checks(api: httpx.Client, name: str) -> None:
    version = register(api, name)
    sha, size = version["artifact"]["sha256"], version["artifact"]["size"]

    put = api.put(
        f"/replicas/{name}@1/us-east",
        json={"state": "verified", "uri": "file:///r/x", "sha256": sha, "size": size},
    )
    api.put(f"/replicas/{name}@1/eu-west", json={"state": "failed", "error": "timeout\nagain"})

    assert (put.status_code, put.json()["state"]) == (200, "verified")
    regions = [(r["region"], r["state"]) for r in api.get(f"/replicas/{name}@1").json()]
    assert regions == [("eu-west", "failed"), ("us-east", "verified")]
    ready = api.get(f"/ready/{name}@1", params={"region": ["us-east", "eu-west", "ap-south"]})
    assert ready.json() == {"missing": ["eu-west", "ap-south"]}
    error(api.get(f"/ready/{name}@1"), 400, "invalid_input")

    api.post(f"/checks/{name}@1", json={"kind": "health", "region": "us-east", "passed": False})
    api.post(
        f"/checks/{name}@1",
        json={"kind": "health", "region": "us-east", "passed": True, "evidence": {"p99": 3.1}},
    )
    api.post(f"/checks/{name}@1", json={"kind": "canary", "passed": True, "evidence": {}})
    health = api.get(f"/checks/{name}@1", params={"kind": "health"}).json()
    assert [c["passed"] for c in health] == [False, True]
    assert len(api.get(f"/checks/{name}@1").json()) == 3
    latest = api.get(f"/latest-checks/{name}@1", params={"kind": "health"}).json()
    assert list(latest) == ["us-east"]
    assert latest["us-east"]["evidence"] == {"p99": 3.1}
    canary = api.get(f"/latest-checks/{name}@1", params={"kind": "canary"}).json()
    assert list(canary) == [""]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/replicas/{name}@1/us-east", '{"state": "lost"}'),
        ("/replicas/{name}@1/us-east", '{"state": "verified"}'),
        ("/replicas/{name}@1/Bad_Region", '{"state": "pending"}'),
        ("/replicas/{name}@1/us-east", '{"state": "verified", "sha256": "x", "size": -1}'),
        ("/checks/{name}@1", '{"kind": "health", "passed": true, "evidence": {"x": NaN}}'),
        ("/checks/{name}@1", '{"kind": "Bad Kind", "passed": true}'),
        ("/checks/{name}@1", '{"kind": "health", "passed": "maybe"}'),
        ("/checks/{name}@1", '{"kind": "health", "passed": true, "evidence": [1]}'),
    ],
    ids=[
        "unknown-state",
        "verified-without-sha",
        "bad-region",
        "negative-size",
        "nan-evidence",
        "bad-kind",
        "passed-not-bool",
        "evidence-not-object",
    ],
)
def test_bad_release_records_are_4xx(api: httpx.Client, name: str, path: str, body: str) -> None:
    register(api, name)
    method = "PUT" if path.startswith("/replicas") else "POST"

    response = api.request(
        method,
        path.format(name=name),
        content=body.encode(),
        headers={"content-type": "application/json"},
    )

    assert response.status_code in (400, 422), response.text
    error(response, response.status_code)


def test_latest_checks_need_a_kind(api: httpx.Client, name: str) -> None:
    register(api, name)

    error(api.get(f"/latest-checks/{name}@1"), 422, "invalid_request")


# ---------------------------------------------------------------- app releases

SCHEMA = {"features": [{"name": "amount", "dtype": "float64"}], "preprocessing_version": "fe-1"}


def test_app_releases_bind_and_resolve(api: httpx.Client, name: str) -> None:
    app = f"shop/{unique('app')}"
    register(api, name)
    made = api.post(
        "/app-releases", json={"app": app, "release": "1.0.0", "feature_schema": SCHEMA}
    )
    assert made.status_code == 201, made.text

    bound = api.put(f"/app-releases/{app}/1.0.0/bindings/{name}", json={"version": 1})

    assert bound.status_code == 200, bound.text
    assert [(b["model"], b["version"]) for b in bound.json()["bindings"]] == [(name, 1)]
    assert api.get(f"/app-releases/{app}/1.0.0").json()["release"] == "1.0.0"
    assert [r["app"] for r in api.get("/app-releases", params={"app": app}).json()] == [app]
    resolved = api.get(f"/app-releases/{app}/1.0.0/resolve", params={"model": name})
    assert resolved.json() == {"name": name, "version": 1}


def test_binding_a_version_whose_signature_differs_is_refused(api: httpx.Client, name: str) -> None:
    app = unique("app")
    register(api, name)
    other = {"features": [{"name": "country", "dtype": "category"}]}
    api.post("/app-releases", json={"app": app, "release": "2.0", "feature_schema": other})

    refused = error(
        api.put(f"/app-releases/{app}/2.0/bindings/{name}", json={"version": 1}),
        422,
        "gate_refused",
    )

    assert refused["reasons"]
    assert api.get(f"/app-releases/{app}/2.0").json()["bindings"] == []


def test_app_release_errors(api: httpx.Client, name: str) -> None:
    app = unique("app")
    body = {"app": app, "release": "1.0", "feature_schema": SCHEMA}
    api.post("/app-releases", json=body)

    error(api.post("/app-releases", json=body), 409, "conflict")
    error(api.get(f"/app-releases/{app}/9.9"), 404, "not_found")
    error(api.get(f"/app-releases/{app}/1.0/resolve"), 404, "not_found")
    error(api.put(f"/app-releases/{app}/1.0/bindings/{name}", json={}), 400, "invalid_input")
    bad_schema = {
        **body,
        "release": "2.0",
        "feature_schema": {"features": [{"name": "a", "dtype": "money"}]},
    }
    error(api.post("/app-releases", json=bad_schema), 422, "invalid_request")
    error(api.post("/app-releases", json={**body, "app": "Bad App", "release": "3"}), 400)


# ---------------------------------------------------------------- queries


def test_history_and_production_at(module_served: Served, api: httpx.Client, name: str) -> None:
    register(api, name)
    release_through_gates(module_served, name, 1)
    events = api.get(f"/history/{name}").json()
    promoted_at = events[-1]["at"]

    assert [e["kind"] for e in events][:2] == ["model.created", "version.registered"]
    at = api.get(f"/production-at/{name}", params={"at": promoted_at}).json()
    before = api.get(f"/production-at/{name}", params={"at": "2000-01-01T00:00:00Z"}).json()
    assert (at, before) == ({"version": 1}, {"version": None})


@pytest.mark.parametrize(
    ("at", "status"),
    [("yesterday", 422), ("2026-13-01T00:00:00Z", 422), ("2026-01-01T00:00:00", 400), ("", 422)],
    ids=["words", "month-13", "naive", "empty"],
)
def test_production_at_needs_an_iso_time_with_a_zone(
    api: httpx.Client, name: str, at: str, status: int
) -> None:
    register(api, name)

    error(api.get(f"/production-at/{name}", params={"at": at}), status)


def test_search_and_its_bad_filters(api: httpx.Client, name: str) -> None:
    team = uuid.uuid4().hex[:8]
    register(api, name, tags={"team": team}, metrics={"auc": 0.95})
    register(api, name, tags={"team": team}, metrics={"auc": 0.5})

    found = api.get("/search", params={"filter": f"tags.team = '{team}' and metrics.auc > 0.9"})

    assert [(v["name"], v["version"]) for v in found.json()] == [(name, 1)]
    error(api.get("/search", params={"filter": "metrics.auc >"}), 400, "invalid_input")
    error(api.get("/search", params={"filter": "name = 'a\u0000'"}), 422)
    error(api.get("/search", params={"limit": 0}), 422, "invalid_request")


def test_lineage_impact(api: httpx.Client, name: str) -> None:
    dataset = unique("ds")
    register(
        api,
        name,
        lineage={"datasets": [{"name": dataset, "version": "v1"}], "code": {"commit": "abcdef1"}},
    )

    hits = api.get("/lineage/impact", params={"dataset": f"{dataset}@v1"}).json()

    assert [(h["name"], h["version"], h["in_production"]) for h in hits] == [(name, 1, False)]
    assert api.get("/lineage/impact", params={"dataset": unique("none")}).json() == []


# ---------------------------------------------------------------- the fleet


def test_heartbeats_and_the_fleet(api: httpx.Client, name: str) -> None:
    beat = {
        "resolver_id": unique("r"),
        "model": name,
        "ref": f"{name}@production",
        "region": "us-east",
        "host": "web-1",
        "pid": 42,
        "version": 3,
        "generation": 7,
        "seq": 99,
        "started_at": "2026-11-01T10:00:00Z",
        "seen_at": "2026-11-01T10:05:00+01:00",
    }

    sent = api.post("/heartbeats", json=beat)

    assert (sent.status_code, sent.content) == (204, b"")
    [seen] = api.get("/fleet", params={"model": name}).json()
    assert (seen["resolver_id"], seen["version"], seen["seen_at"]) == (
        beat["resolver_id"],
        3,
        "2026-11-01T09:05:00Z",
    )
    for bad in ({**beat, "pid": 2**40}, {**beat, "seen_at": "noon"}, {**beat, "host": "a\u0000"}):
        error(api.post("/heartbeats", json=bad), 422, "invalid_request")


# ---------------------------------------------------------------- tokens and roles


def test_tokens_create_list_and_revoke(module_served: Served, api: httpx.Client) -> None:
    token_name = unique("ci")

    made = api.post(
        "/tokens", json={"name": token_name, "role": "deployer", "scopes": ["payments/*"]}
    )

    assert made.status_code == 201, made.text
    token, secret = made.json()["token"], made.json()["secret"]
    assert (token["role"], token["scopes"], token["created_by"]) == (
        "deployer",
        ["payments/*"],
        "admin",
    )
    assert token_name in [t["name"] for t in api.get("/tokens").json()]
    with module_served.client(secret) as ci:
        assert ci.get("/whoami").json()["name"] == token_name
        error(ci.get("/tokens"), 403, "forbidden")
        revoked = api.delete(f"/tokens/{token_name}")
        assert revoked.json()["revoked_by"] == "admin"
        error(ci.get("/models"), 401, "unauthenticated")


def test_token_errors(api: httpx.Client) -> None:
    taken = unique("t")
    api.post("/tokens", json={"name": taken, "role": "reader"})

    error(api.post("/tokens", json={"name": taken, "role": "reader"}), 409, "conflict")
    error(api.post("/tokens", json={"name": unique(), "role": "boss"}), 422, "invalid_request")
    error(api.post("/tokens", json={"name": "Bad Name", "role": "reader"}), 400, "invalid_input")
    error(api.post("/tokens", json={"name": unique(), "role": "reader", "scopes": []}), 400)
    error(api.delete(f"/tokens/{unique()}"), 404, "not_found")


def test_every_route_needs_a_token(module_served: Served, name: str) -> None:
    with httpx.Client(base_url=f"{module_served.url}/api/v1") as anonymous:
        for path in ("/models", f"/models/{name}", f"/history/{name}", "/fleet", "/tokens"):
            found = error(anonymous.get(path), 401, "unauthenticated")
            assert "MODELREG_TOKEN" in found["message"]


def test_a_reader_may_read_but_not_write(
    module_served: Served, api: httpx.Client, name: str
) -> None:
    register(api, name)
    secret = module_served.token(unique("reader"), Role.READER)

    with module_served.client(secret) as reader:
        assert reader.get(f"/versions/{name}@1").status_code == 200
        error(reader.post(f"/versions/{name}", json={"artifact": artifact()}), 403, "forbidden")
        error(reader.put(f"/stage/{name}@1", json={"stage": "Staging"}), 403, "forbidden")

    assert [v["version"] for v in api.get(f"/versions/{name}").json()] == [1]


def test_force_needs_an_admin(module_served: Served, api: httpx.Client, name: str) -> None:
    register(api, name)
    api.put(f"/stage/{name}@1", json={"stage": "Staging"})
    secret = module_served.token(unique("deployer"), Role.DEPLOYER)

    with module_served.client(secret) as deployer:
        body = {"stage": "Production", "force": True, "reason": "break glass"}
        error(deployer.put(f"/stage/{name}@1", json=body), 403, "forbidden")
    forced = api.put(f"/stage/{name}@1", json=body)

    assert forced.status_code == 200, forced.text
    assert forced.json()["events"][-1]["details"]["forced"] is True


# ---------------------------------------------------------------- OpenAPI


def test_openapi_documents_every_resource_with_its_shapes(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]

    for path in (
        "/api/v1/models",
        "/api/v1/versions/{name}@{version}",
        "/api/v1/stage/{name}@{version}",
        "/api/v1/aliases/{name}",
        "/api/v1/rollback/{name}",
        "/api/v1/resolve/{name}@{ref}",
        "/api/v1/policy/{name}",
        "/api/v1/latest-checks/{name}@{version}",
        "/api/v1/app-releases/{app}/{release}/bindings/{model}",
        "/api/v1/production-at/{name}",
        "/api/v1/lineage/impact",
        "/api/v1/heartbeats",
        "/api/v1/tokens/{name}",
    ):
        assert path in paths, path
    ok = paths["/api/v1/versions/{name}@{version}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/ModelVersion")
    assert "PointerChange" in spec["components"]["schemas"]
    assert "PolicyDocument" in spec["components"]["schemas"]
