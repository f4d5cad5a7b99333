"""The CLI against a real ``modelreg server``: ``--registry http://…`` (or ``MODELREG_URL``)
and ``MODELREG_TOKEN``.

One server per module and backend; each test works on a model of its own. Commands
whose exit code and message matter run as real processes; the rest in-process. The
CLI claims to be ``claimed-user@laptop`` ($MODELREG_USER) throughout: the log must
name the token instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from release_facts import make_releasable
from server.conftest import Served, free_port, module_served
from server.remote_cli import RemoteCli

from registry.store.http import HttpStore

__all__ = ["module_served"]  # the fixture, imported for this module's tests

POLICY = """\
required: [replicas, health, canary, signature]
staging: [auc >= 0.5]
regions: [us-east, eu-west, ap-south]
"""
SCHEMA = """\
{"features": [{"name": "amount", "dtype": "float64"},
              {"name": "merchant_category", "dtype": "category"}],
 "preprocessing_version": "fe-2.3"}
"""


@dataclass(frozen=True)
class Team:
    """The server and one token per role (token names: alice, ci, bob, admin)."""

    served: Served
    scientist: str
    deployer: str
    reader: str

    @property
    def admin(self) -> str:
        return self.served.admin

    def store(self, secret: str) -> HttpStore:
        return HttpStore(self.served.url, token=secret)


@pytest.fixture(scope="module")
def team(module_served: Served) -> Team:
    return Team(
        module_served,
        scientist=module_served.token("alice", "data-scientist"),
        deployer=module_served.token("ci", "deployer"),
        reader=module_served.token("bob", "reader"),
    )


@pytest.fixture
def name() -> str:
    return f"fraud-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def user(team: Team, tmp_path: Path) -> RemoteCli:
    """A data scientist's CLI (token alice) with a home of its own."""
    return RemoteCli(team.served.url, tmp_path / "home", team.scientist)


def _registered(user: RemoteCli, name: str, count: int = 1) -> list[int]:
    return [int(user.json(*user.register_args(name))["version"]) for _ in range(count)]


def _staged(team: Team, user: RemoteCli, name: str, version: int) -> None:
    user.json("promote", name, str(version), "--stage", "Staging", token=team.deployer)


def test_register_promote_and_rollback_through_the_server_are_logged_as_the_tokens(
    team: Team, user: RemoteCli, name: str
) -> None:
    for expected in (1, 2):
        done = user.run(*user.register_args(name))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"registered {name} version {expected} (sha256 ")
    _staged(team, user, name, 1)

    refused = user.fail("promote", name, "1", "--reason", "ship", code=4, token=team.deployer)

    assert refused.startswith(f"error: promotion gate refused {name} v1 to Production: ")
    for gate in ("replica not verified", "no health check", "no canary result"):
        assert gate in refused
    with team.store(team.deployer) as pipeline:  # what the release pipeline records
        make_releasable(pipeline, name, 1)
        user.json("promote", name, "1", "--reason", "ship", token=team.deployer)
        _staged(team, user, name, 2)
        make_releasable(pipeline, name, 2)
    user.json("promote", name, "2", "--reason", "ship", token=team.deployer)

    rolled = user.run("rollback", name, "--reason", "2am page", token=team.deployer)

    assert rolled.returncode == 0, rolled.stderr
    assert f"{name}: rollback of Production: version 2 -> 1" in rolled.stdout
    [model] = [m for m in user.json("models", token=team.reader) if m["name"] == name]
    assert model["production"] == 1
    actors = {(e["kind"], e["actor"]) for e in user.json("history", name, "--all")["events"]}
    assert {("version.registered", "alice"), ("stage", "ci"), ("refused", "ci")} <= actors
    assert {actor for _kind, actor in actors} == {"alice", "ci"}  # never $MODELREG_USER
    rollback = [e for e in user.json("history", name)["events"] if e["kind"] == "rollback"]
    assert [(e["actor"], e["reason"]) for e in rollback] == [("ci", "2am page")]


def test_a_reader_token_cannot_promote_one_line_exit_6_and_nothing_changes(
    team: Team, user: RemoteCli, name: str
) -> None:
    _registered(user, name)
    _staged(team, user, name, 1)
    before = user.json("history", name)["events"]

    message = user.fail("promote", name, "1", "--stage", "Archived", code=6, token=team.reader)

    assert "'bob' (reader) may not" in message and "needs deployer" in message
    assert user.json("history", name)["events"] == before


def test_a_data_scientist_cannot_force_a_promotion_past_the_gates(
    team: Team, user: RemoteCli, name: str
) -> None:
    _registered(user, name)

    message = user.fail("promote", name, "1", "--force", "--reason", "now", code=6)

    assert "'alice' (data-scientist) may not" in message
    assert user.json("versions", name)["versions"][0]["stage"] == "None"


def test_a_missing_unknown_or_revoked_token_exits_6_naming_the_problem(
    team: Team, user: RemoteCli
) -> None:
    temp = f"temp-{uuid.uuid4().hex[:6]}"
    made = user.json("token", "create", temp, "--role", "reader", token=team.admin)
    assert user.json("models", token=made["secret"]) is not None
    revoked = user.json("token", "revoke", temp, token=team.admin)
    assert revoked["revoked_at"] is not None

    assert "revoked" in user.fail("models", code=6, token=made["secret"])
    assert "no token" in RemoteCli(user.url, user.home, None).fail("models", code=6)
    unknown = "mrt_" + "0" * 40
    assert user.fail("models", code=6, token=unknown).startswith("error: ")


def test_registering_only_creates_what_the_tokens_scope_allows(
    team: Team, user: RemoteCli, name: str
) -> None:
    scoped = team.served.token(f"payments-{uuid.uuid4().hex[:6]}", "data-scientist", "payments/*")

    allowed = user.run(*user.register_args(f"payments/{name}"), token=scoped)
    denied = user.run(*user.register_args(name), token=scoped)

    assert allowed.returncode == 0, allowed.stderr
    assert denied.returncode == 6 and denied.stdout == ""
    assert denied.stderr.count("\n") == 1 and name in denied.stderr
    assert [m["name"] for m in user.json("models") if m["name"].endswith(name)] == [
        f"payments/{name}"
    ]


def test_every_registry_command_works_through_the_server(
    team: Team, user: RemoteCli, name: str, tmp_path: Path
) -> None:
    v1, v2 = _registered(user, name, 2)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    schema = tmp_path / "schema.json"
    schema.write_text(SCHEMA)
    admin, deployer = team.admin, team.deployer

    assert user.json("policy", "set", name, "--file", str(policy), "--reason", "q4", token=admin)
    assert user.json("policy", "show", name)["policy"]["staging"] == ["auc >= 0.5"]
    _staged(team, user, name, v2)
    user.json("replicate", name, str(v2), token=deployer)  # the client's region folders
    replicas = user.json("replicas", name, str(v2))
    assert {r["region"] for r in replicas["replicas"]} == {"us-east", "eu-west", "ap-south"}
    assert replicas["not_ready"] == []
    assert user.json("verify", name, str(v2), token=deployer)["not_ready"] == []
    approved = user.json("approve", name, str(v2), "--reason", "looks right", token=deployer)
    assert approved["approval"]["recorded_by"] == "ci"
    assert user.json("alias", "set", name, "challenger", str(v2))["generation"] >= 1
    assert user.json("show", name, "challenger")["version"] == v2
    assert user.json("show", name, "latest")["version"] == v2
    user.json("alias", "delete", name, "challenger")
    changed = user.json("diff", name, str(v1), str(v2))
    assert (changed["a"]["version"], changed["b"]["version"], changed["artifact_changed"]) == (
        v1,
        v2,
        True,
    )
    found = user.json("search", f"name = '{name}' and stage = 'Staging'")
    assert [v["version"] for v in found] == [v2]
    impact = user.json("lineage", "impact", "--commit", "9f1c2ab")
    assert {(h["name"], h["version"]) for h in impact} >= {(name, v1), (name, v2)}
    events = user.json("events", "--model", name)
    assert [e["kind"] for e in events][:3] == [
        "model.created",
        "version.registered",
        "version.registered",
    ]
    assert user.json("history", name, "--at", "2030-01-01T00:00:00Z")["production"] is None
    assert user.json("fleet", name)["resolvers"] == []

    app = f"svc-{name}"
    user.json("release", "create", app, "1.0.0", "--schema", str(schema), token=deployer)
    pin = ("--model", name, "--version", str(v2))
    bound = user.json("release", "bind", app, "1.0.0", *pin, token=deployer)
    assert [(b["model"], b["version"], b["bound_by"]) for b in bound["bindings"]] == [
        (name, v2, "ci")
    ]
    assert user.json("release", "show", app, "1.0.0")["created_by"] == "ci"
    assert [r["release"] for r in user.json("release", "list", app)] == ["1.0.0"]
    assert {"alice", "ci", "bob"} <= {t["name"] for t in user.json("token", "list", token=admin)}


def test_the_registry_option_reaches_the_server_whatever_the_environment_says(
    team: Team, user: RemoteCli, name: str, tmp_path: Path
) -> None:
    elsewhere = RemoteCli(f"sqlite:///{tmp_path}/local.db", user.home, team.scientist)
    _registered(user, name)

    listed = elsewhere.json("--registry", team.served.url, "versions", name)["versions"]
    local = elsewhere.json("models")

    assert [v["version"] for v in listed] == [1]
    assert local == []


def test_init_against_a_server_checks_that_it_answers_and_takes_the_token(
    team: Team, user: RemoteCli
) -> None:
    done = user.run("init")

    assert done.returncode == 0, done.stderr
    assert f"registry:  {team.served.url} (a registry server, answering)" in done.stdout
    message = user.fail("init", code=6, token="mrt_not-a-token")
    assert "token" in message


def test_reads_against_a_server_that_is_down_exit_5_naming_its_url(
    user: RemoteCli, name: str
) -> None:
    # Nothing listens there: to a client, a server that is down (test_outages.py kills
    # a real one; this one spares the module's server a restart).
    down = RemoteCli(f"http://127.0.0.1:{free_port()}", user.home, user.token)
    for command in (("models",), ("versions", name), ("history", name), ("show", name, "1")):
        message = down.fail(*command, code=5)
        assert message.startswith(f"error: registry server {down.url} is unreachable: ")
