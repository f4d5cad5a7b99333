"""``search_registered_models`` and ``search_model_versions`` through the real MLflow
client: MLflow's filters (the client appends its prompt clause to every model search),
``order_by``, and pages followed by their tokens until every match came exactly once.

SQLite only: the search runs over the store's objects in Python, the same on both
backends (the two-backend modules cover the store's SQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException

from .conftest import SQLITE_ONLY, MlflowServer

pytestmark = SQLITE_ONLY


@dataclass(frozen=True)
class World:
    """Five models ``P-a`` … ``P-e`` (teams payments and risk) and versions of two of
    them, run ids r1 … r5; version 2 of ``P-a`` is tagged validated=yes."""

    prefix: str

    def __call__(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"


@pytest.fixture
def world(mlflow_env: MlflowServer, client: MlflowClient, name: str) -> World:
    made = World(name)
    for suffix, team in zip("abcde", ["payments"] * 3 + ["risk"] * 2, strict=True):
        client.create_registered_model(made(suffix), tags={"team": team})
    for model, runs in ((made("a"), ("r1", "r2", "r3")), (made("b"), ("r4", "r5"))):
        for run in runs:
            client.create_model_version(model, f"runs:/{run}/model", run_id=run)
    client.set_model_version_tag(made("a"), "2", "validated", "yes")
    return made


def _all_pages(search: Callable[..., Any], **query: Any) -> list[list[Any]]:
    """Every page of a search, following ``next_page_token`` to the end."""
    pages = [search(**query)]
    while pages[-1].token:
        assert len(pages) < 50, "the page tokens do not end"
        pages.append(search(**query, page_token=pages[-1].token))
    return [list(p) for p in pages]


def _model_names(client: MlflowClient, text: str) -> list[str]:
    return [m.name for m in client.search_registered_models(filter_string=text)]


def _versions(client: MlflowClient, text: str) -> set[tuple[str, str]]:
    return {(v.name, v.version) for v in client.search_model_versions(text)}


def test_search_registered_models_by_name(client: MlflowClient, world: World) -> None:
    everyone = [world(s) for s in "abcde"]
    assert _model_names(client, f"name = '{world('b')}'") == [world("b")]
    assert _model_names(client, f"name LIKE '{world.prefix}-%'") == everyone
    assert _model_names(client, f"name ILIKE '{world.prefix.upper()}-%'") == everyone
    assert _model_names(client, f"name LIKE '{world.prefix}-_'") == everyone
    assert _model_names(client, f"name LIKE '{world('a')}%'") == [world("a")]
    assert _model_names(client, f"name = '{world('z')}'") == []


def test_search_registered_models_by_tag(client: MlflowClient, world: World) -> None:
    mine = f"name LIKE '{world.prefix}-%'"
    payments = [world(s) for s in "abc"]
    assert _model_names(client, f"tags.team = 'payments' AND {mine}") == payments
    assert _model_names(client, f"{mine} and tag.`team` != 'payments'") == [world("d"), world("e")]
    assert _model_names(client, f"tags.team LIKE 'ri%' AND {mine}") == [world("d"), world("e")]
    assert _model_names(client, f"tags.owner = 'alice' AND {mine}") == []


def test_registered_model_pages_and_order(client: MlflowClient, world: World) -> None:
    everyone = [world(s) for s in "abcde"]
    mine = f"name LIKE '{world.prefix}-%'"

    pages = _all_pages(client.search_registered_models, filter_string=mine, max_results=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m.name for p in pages for m in p] == everyone  # each once, name ascending

    pages = _all_pages(
        client.search_registered_models, filter_string=mine, max_results=3, order_by=["name DESC"]
    )
    assert [len(p) for p in pages] == [3, 2]
    assert [m.name for p in pages for m in p] == everyone[::-1]


def test_search_model_versions_by_name_run_id_number_and_tag(
    client: MlflowClient, world: World
) -> None:
    a, b = world("a"), world("b")
    mine = f"name LIKE '{world.prefix}-%'"
    assert _versions(client, f"name = '{a}'") == {(a, "1"), (a, "2"), (a, "3")}
    assert _versions(client, f"{mine}") == {(a, "1"), (a, "2"), (a, "3"), (b, "1"), (b, "2")}
    assert _versions(client, "run_id IN ('r1', 'r3', 'r5')") >= {(a, "1"), (a, "3"), (b, "2")}
    assert _versions(client, f"run_id IN ('r1', 'r3', 'r5') AND {mine}") == {
        (a, "1"),
        (a, "3"),
        (b, "2"),
    }
    assert _versions(client, f"run_id = 'r4' AND {mine}") == {(b, "1")}
    assert _versions(client, f"name = '{a}' AND version_number > 1") == {(a, "2"), (a, "3")}
    assert _versions(client, f"version_number = 2 AND {mine}") == {(a, "2"), (b, "2")}
    assert _versions(client, f"tags.validated = 'yes' AND {mine}") == {(a, "2")}
    assert _versions(client, f"name = '{world('c')}'") == set()


def test_model_version_pages_and_order(client: MlflowClient, world: World) -> None:
    a, b = world("a"), world("b")
    pages = _all_pages(
        client.search_model_versions,
        filter_string=f"name LIKE '{world.prefix}-%'",
        max_results=2,
        order_by=["name ASC", "version_number DESC"],
    )
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [(v.name, v.version) for p in pages for v in p] == [
        (a, "3"),
        (a, "2"),
        (a, "1"),
        (b, "2"),
        (b, "1"),
    ]


def test_a_page_token_belongs_to_its_query(client: MlflowClient, world: World) -> None:
    first = client.search_model_versions(
        f"name LIKE '{world.prefix}-%'", max_results=2, order_by=["version_number DESC"]
    )
    assert first.token

    with pytest.raises(RestException) as refused:
        client.search_model_versions(
            f"name = '{world('a')}'", max_results=2, page_token=first.token
        )
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_bad_filter_is_invalid_parameter_value(client: MlflowClient, world: World) -> None:
    for text in (f"name = '{world('a')}' OR name = 'x'", "nmae = 'x'", "tags.team = payments"):
        with pytest.raises(RestException) as refused:
            client.search_registered_models(filter_string=text)
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE", text
