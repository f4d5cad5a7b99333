"""The filter language: parsing, SQL semantics (SQLite, and PostgreSQL when configured),
errors and injection safety."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from registry.errors import InvalidInput
from registry.search import And, Comparison, Or, Query, parse, search_statement
from registry.store.sql.schema import (
    aliases_table,
    attributes_table,
    datasets_table,
    metadata,
    models_table,
    versions_table,
)

INJECTION_OR = "x' OR '1'='1"
INJECTION_DROP = "'; DROP TABLE model_version; --"
DEFAULT_ORDER = [6, 5, 4, 3, 2, 1]  # newest registered first (id desc)


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


MODELS = [(1, "churn"), (2, "fraud"), (3, "team/ranker")]
# id, model_id, version, stage, code_commit, created_by, created_at
VERSIONS = [
    (1, 1, 1, "Archived", "abc123", "alice", _at("2024-01-01")),
    (2, 1, 2, "Production", "def456", "bob", _at("2024-02-01")),
    (3, 1, 3, "Staging", None, "alice", _at("2024-03-01")),
    (4, 2, 1, "Production", "abc999", "carol", _at("2024-01-15")),
    (5, 2, 2, "None", "fff000", "bob", _at("2024-03-01")),
    (6, 3, 1, "Staging", None, "alice", _at("2024-04-01T12:30:00")),
]
# version_id, kind, key, text, num
ATTRIBUTES = [
    (1, "metric", "accuracy", None, 0.80),
    (2, "metric", "accuracy", None, 0.90),
    (3, "metric", "accuracy", None, 0.85),
    (4, "metric", "accuracy", None, 0.95),
    (1, "metric", "loss", None, 0.5),
    (2, "metric", "loss", None, 0.3),
    (1, "param", "lr", None, 0.1),
    (2, "param", "lr", None, 0.01),
    (4, "param", "lr", None, 0.01),
    (1, "param", "optimizer", "adam", None),
    (2, "param", "optimizer", "sgd", None),
    (5, "param", "optimizer", "adam", None),
    (1, "tag", "env", "prod", None),
    (2, "tag", "env", "prod", None),
    (3, "tag", "env", "dev", None),
    (4, "tag", "env", "prod", None),
    (5, "tag", "env", "dev", None),
    (4, "tag", "team", "risk", None),
    (3, "tag", "quote", "it's", None),
    (5, "tag", "note", INJECTION_DROP, None),
    (6, "tag", "note", INJECTION_OR, None),
    (5, "tag", "promo", "50%_Off", None),  # like's own wildcards, as data
    (6, "tag", "promo", "a*b?[c]", None),  # GLOB's wildcards, as data
]
ALIASES = [(1, "champion", 2), (1, "challenger", 3), (2, "champion", 4)]
DATASETS = [
    (1, "customers", "2024-01"),
    (2, "customers", "2024-02"),
    (3, "customers", "2024-02"),
    (3, "events", "v1"),
    (4, "transactions", "v7"),
]


def _rows(columns: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(columns.split(), row, strict=True)) for row in rows]


def _seed(connection: sa.Connection) -> None:
    at = _at("2024-01-01")
    model = {"generation": 0, "last_version": 0, "created_at": at, "updated_at": at}
    artifact = {"artifact_uri": "file:///m", "sha256": "0" * 64, "size": 1, "format": "skops"}
    models = _rows("id name", MODELS)
    versions = _rows("id model_id version stage code_commit created_by created_at", VERSIONS)
    connection.execute(models_table.insert(), [row | model for row in models])
    connection.execute(versions_table.insert(), [row | artifact for row in versions])
    connection.execute(attributes_table.insert(), _rows("version_id kind key text num", ATTRIBUTES))
    connection.execute(aliases_table.insert(), _rows("model_id alias version_id", ALIASES))
    connection.execute(datasets_table.insert(), _rows("version_id name version", DATASETS))


@contextmanager
def _sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    path: Path = tmp_path_factory.mktemp("search") / "registry.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@contextmanager
def _postgres_engine() -> Iterator[sa.Engine]:
    """A throw-away schema on the test server, so parallel suites do not collide."""
    url = os.environ.get("MODELREG_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs MODELREG_TEST_POSTGRES_URL")
        pytest.skip("MODELREG_TEST_POSTGRES_URL is not set")
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    schema = f"test_search_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(parsed)
    with admin.begin() as connection:
        connection.execute(sa.schema.CreateSchema(schema))
    engine = sa.create_engine(parsed, connect_args={"options": f"-csearch_path={schema}"})
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(sa.schema.DropSchema(schema, cascade=True))
    admin.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    sqlite_wanted = request.param == "sqlite"
    with _sqlite_engine(tmp_path_factory) if sqlite_wanted else _postgres_engine() as engine:
        metadata.create_all(engine)
        with engine.begin() as connection:
            _seed(connection)
        yield engine


def _ids(engine: sa.Engine, text: str, **limits: int) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(search_statement(text, **limits)).scalars())


def _error(text: str, **kwargs: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        search_statement(text, **kwargs)
    return str(caught.value)


# ---------------------------------------------------------------- fields and operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name like 'team/%'", {6}),
        ("name like 'Team/%'", set()),
        ("name like 'CHURN'", set()),
        ("name not like 'C%'", {1, 2, 3, 4, 5, 6}),
        ("tags.env like 'pr%'", {1, 2, 4}),
        ("tags.env like 'PR%'", set()),
        ("tags.env not like 'PR%'", {1, 2, 3, 4, 5}),
        ("alias like 'CH%'", set()),
        ("dataset like 'Trans%'", set()),
        ("params.optimizer like 'ADAM'", set()),
        ("code.commit like 'ABC%'", set()),
    ],
)
def test_like_compares_with_case_on_every_backend(
    engine: sa.Engine, text: str, expected: set[int]
) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.promo like '50\\%\\_Off'", {5}),
        ("tags.promo like '50\\%\\_off'", set()),
        ("tags.promo like '5\\_%'", set()),  # an escaped _ is an underscore, not any char
        ("tags.promo like '50\\%%'", {5}),
        ("tags.promo like '%\\\\%'", set()),  # an escaped backslash is a backslash
        ("tags.promo like 'a*b?[c]'", {6}),  # *, ? and [ are plain characters
        ("tags.promo like 'a*b?[c%'", {6}),
        ("tags.promo like 'aXb?[c]'", set()),
        ("tags.promo like 'a*bX[c]'", set()),
        ("tags.promo like 'a_b_[c]'", {6}),
        ("tags.promo not like 'a%'", {5}),
    ],
)
def test_like_wildcards_and_escapes_mean_the_same_on_every_backend(
    engine: sa.Engine, text: str, expected: set[int]
) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize("text", ["name like 'team/%'", "tags.env like 'pr%'"])
def test_a_like_prefix_is_an_index_range_on_sqlite(tmp_path: Path, text: str) -> None:
    """GLOB keeps SQLite's LIKE optimisation on ordinary (case-sensitive) indexes."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/plan.db")
    metadata.create_all(engine)

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def _explain(*args: Any) -> tuple[str, Any]:
        statement, parameters = args[2], args[3]
        return f"EXPLAIN QUERY PLAN {statement}", parameters

    try:
        with engine.connect() as connection:
            plan = [str(list(row)[3]) for row in connection.execute(search_statement(text))]
    finally:
        engine.dispose()
    assert any(">?" in step and "<?" in step for step in plan), plan


def test_a_pattern_ending_in_a_lone_backslash_is_refused() -> None:
    assert "cannot end with a lone" in _error("name like 'abc\\'")
    assert parse("name like 'abc\\\\'").where == Comparison("name", "like", "abc\\\\")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = 'churn'", {1, 2, 3}),
        ("name != 'churn'", {4, 5, 6}),
        ("name > 'd'", {4, 5, 6}),
        ("name like 'team/%'", {6}),
        ("name not like 'c%'", {4, 5, 6}),
        ("name in ('fraud', 'team/ranker')", {4, 5, 6}),
        ("name not in ('fraud')", {1, 2, 3, 6}),
        ("version = 2", {2, 5}),
        ("version != 1", {2, 3, 5}),
        ("version >= 2", {2, 3, 5}),
        ("version < 2", {1, 4, 6}),
        ("version <= +1", {1, 4, 6}),
        ("version > -1", {1, 2, 3, 4, 5, 6}),
        ("version in (1, 3)", {1, 3, 4, 6}),
        ("code.commit = 'abc123'", {1}),
        ("code.commit like 'abc%'", {1, 4}),
        ("code.commit != 'abc123'", {2, 4, 5}),
        ("created_by = 'alice'", {1, 3, 6}),
        ('created_by in ("bob", "carol")', {2, 4, 5}),
    ],
)
def test_column_fields(engine: sa.Engine, text: str, expected: set[int]) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stage = 'production'", {2, 4}),
        ("stage = 'STAGING'", {3, 6}),
        ("stage != 'None'", {1, 2, 3, 4, 6}),
        ("stage in ('archived', 'none')", {1, 5}),
        ("stage not in ('Production', 'staging')", {1, 5}),
    ],
)
def test_stage_names_are_case_insensitive(engine: sa.Engine, text: str, expected: set[int]) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("created_at >= '2024-03-01'", {3, 5, 6}),
        ("created_at < '2024-02-01T00:00:00Z'", {1, 4}),
        ("created_at <= '2024-01-15'", {1, 4}),
        ("created_at > '2024-04-01 12:00'", {6}),
        ("created_at = '2024-04-01T14:30:00+02:00'", {6}),
        ("created_at in ('2024-01-01', '2024-01-15')", {1, 4}),
    ],
)
def test_created_at_takes_iso_dates_naive_meaning_utc(
    engine: sa.Engine, text: str, expected: set[int]
) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alias = 'champion'", {2, 4}),
        ("alias in ('challenger')", {3}),
        ("alias like 'ch%'", {2, 3, 4}),
        ("alias > 'challenger'", {2, 4}),
        ("alias != 'champion'", {1, 3, 5, 6}),
        ("alias not in ('champion', 'challenger')", {1, 5, 6}),
        ("alias not like 'champ%'", {1, 3, 5, 6}),
    ],
)
def test_alias_negations_include_versions_without_the_alias(
    engine: sa.Engine, text: str, expected: set[int]
) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.env = 'prod'", {1, 2, 4}),
        ("tags.env < 'e'", {3, 5}),
        ("tags.env in ('dev')", {3, 5}),
        ("tags.env like 'pr%'", {1, 2, 4}),
        ("tags.team = 'risk'", {4}),
        ("tags.missing = 'x'", set()),
        ("tags.quote = 'it''s'", {3}),
        ('tags.quote = "it\'s"', {3}),
    ],
)
def test_tags(engine: sa.Engine, text: str, expected: set[int]) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.env != 'prod'", {3, 5}),
        ("tags.env not in ('dev')", {1, 2, 4}),
        ("tags.env not like 'pr%'", {3, 5}),
        ("metrics.accuracy != 0.9", {1, 3, 4}),
        ("metrics.accuracy not in (0.8, 0.95)", {2, 3}),
        ("params.lr != 0.01", {1}),
        ("params.optimizer != 'adam'", {2}),
    ],
)
def test_attribute_negations_need_the_key(engine: sa.Engine, text: str, expected: set[int]) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.accuracy > 0.85", {2, 4}),
        ("metrics.accuracy >= 0.85", {2, 3, 4}),
        ("metrics.accuracy < 0.9", {1, 3}),
        ("metrics.accuracy = 0.9", {2}),
        ("metrics.accuracy > 9.2e-1", {4}),
        ("metrics.accuracy in (0.8, 0.95)", {1, 4}),
        ("metrics.loss <= 1", {1, 2}),
        ("metrics.missing > 0", set()),
    ],
)
def test_metrics(engine: sa.Engine, text: str, expected: set[int]) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.lr = 0.01", {2, 4}),
        ("params.lr < 1e-1", {2, 4}),
        ("params.optimizer = 'adam'", {1, 5}),
        ("params.optimizer like 's%'", {2}),
        ("params.optimizer in ('sgd', 1)", {2}),
        ("params.lr not in (0.1, 'adam')", {2, 4}),
        ("params.lr = '0.01'", set()),
    ],
)
def test_params_compare_numbers_and_strings(
    engine: sa.Engine, text: str, expected: set[int]
) -> None:
    assert set(_ids(engine, text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dataset = 'customers'", {1, 2, 3}),
        ("dataset = 'customers@2024-02'", {2, 3}),
        ("dataset = 'customers@2099'", set()),
        ("dataset in ('events@v1', 'transactions')", {3, 4}),
        ("dataset like 'trans%'", {4}),
        ("dataset != 'customers'", {4, 5, 6}),
        ("dataset not in ('customers@2024-01', 'transactions@v7')", {2, 3, 5, 6}),
        ("dataset not like 'c%'", {4, 5, 6}),
    ],
)
def test_dataset_by_name_or_name_at_version(
    engine: sa.Engine, text: str, expected: set[int]
) -> None:
    assert set(_ids(engine, text)) == expected


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = 'fraud' or name = 'churn' and version = 1", {1, 4, 5}),
        ("(name = 'fraud' or name = 'churn') and version = 1", {1, 4}),
        ("name = 'churn' and (version = 1 or version = 3)", {1, 3}),
        ("((name = 'churn'))", {1, 2, 3}),
        ("NAME = 'churn' AND Version = 1 Or TAGS.team = 'risk'", {1, 4}),
        ("name NOT IN ('churn')", {4, 5, 6}),
    ],
)
def test_and_binds_tighter_than_or(engine: sa.Engine, text: str, expected: set[int]) -> None:
    assert set(_ids(engine, text)) == expected


def test_parse_builds_the_tree_without_sql() -> None:
    query = parse("name = 'a' or version in (1, 2) and stage = 'staging' order by version limit 5")
    assert query == Query(
        where=Or(
            (
                Comparison("name", "=", "a"),
                And(
                    (
                        Comparison("version", "in", (1, 2)),
                        Comparison("stage", "=", "Staging"),
                    )
                ),
            )
        ),
        order_by=(("version", False),),
        limit=5,
    )


@pytest.mark.parametrize("text", ["", "   ", "order by name", "limit 3"])
def test_empty_filter_has_no_where(text: str) -> None:
    assert parse(text).where is None


def test_empty_filter_matches_everything(engine: sa.Engine) -> None:
    assert _ids(engine, "") == DEFAULT_ORDER


def test_thirty_two_levels_of_parentheses_are_allowed(engine: sa.Engine) -> None:
    assert set(_ids(engine, "(" * 32 + "name = 'fraud'" + ")" * 32)) == {4, 5}


# ---------------------------------------------------------------- order and limit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order by version", [6, 4, 1, 5, 2, 3]),
        ("order by version asc", [6, 4, 1, 5, 2, 3]),
        ("order by name, version desc", [3, 2, 1, 5, 4, 6]),
        ("order by stage", [1, 5, 4, 2, 6, 3]),
        ("order by created_by", [6, 3, 1, 5, 2, 4]),
        ("order by created_at asc", [1, 4, 2, 5, 3, 6]),
        ("ORDER BY Version DESC LIMIT 2", [3, 5]),
    ],
)
def test_order_by_columns_with_id_desc_tiebreak(
    engine: sa.Engine, text: str, expected: list[int]
) -> None:
    assert _ids(engine, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order by metrics.accuracy desc", [4, 2, 3, 1, 6, 5]),
        ("order by metrics.accuracy asc", [1, 3, 2, 4, 6, 5]),
        ("order by params.lr", [4, 2, 1, 6, 5, 3]),
        ("order by params.optimizer", [5, 1, 2, 6, 4, 3]),
        ("order by code.commit", [1, 4, 2, 5, 6, 3]),
        ("order by code.commit desc", [5, 2, 4, 1, 6, 3]),
    ],
)
def test_missing_values_sort_last_both_ways(
    engine: sa.Engine, text: str, expected: list[int]
) -> None:
    assert _ids(engine, text) == expected


def test_filter_with_order_and_limit(engine: sa.Engine) -> None:
    text = "tags.env = 'prod' order by metrics.accuracy desc limit 2"
    assert _ids(engine, text) == [4, 2]


def test_default_order_is_newest_first(engine: sa.Engine) -> None:
    assert _ids(engine, "version >= 1") == DEFAULT_ORDER


def test_limit_caps_the_rows(engine: sa.Engine) -> None:
    assert _ids(engine, "limit 2") == [6, 5]


def test_default_limit_applies_without_limit(engine: sa.Engine) -> None:
    assert _ids(engine, "", default_limit=3) == DEFAULT_ORDER[:3]


def test_limit_may_equal_max_limit(engine: sa.Engine) -> None:
    assert _ids(engine, "limit 5", max_limit=5) == DEFAULT_ORDER[:5]


def test_statement_selects_only_the_version_id() -> None:
    statement = search_statement("name = 'churn'")
    assert [column.name for column in statement.selected_columns] == ["id"]


# ---------------------------------------------------------------- injection


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.note = 'x'' OR ''1''=''1'", {6}),
        ("tags.note = '''; DROP TABLE model_version; --'", {5}),
        ("name = 'x'' OR ''1''=''1'", set()),
        ("name = '''; DROP TABLE model_version; --'", set()),
    ],
)
def test_injection_matches_only_literally(engine: sa.Engine, text: str, expected: set[int]) -> None:
    assert set(_ids(engine, text)) == expected


def test_injection_leaves_the_table_in_place(engine: sa.Engine) -> None:
    _ids(engine, "tags.note = '''; DROP TABLE model_version; --'")
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(versions_table))
        assert count.scalar_one() == len(VERSIONS)


def test_values_are_bound_not_inlined() -> None:
    literal = INJECTION_OR.replace("'", "''")
    compiled = search_statement(f"tags.note = '{literal}'").compile(dialect=sqlite.dialect())
    assert INJECTION_OR not in str(compiled)
    assert INJECTION_OR in compiled.params.values()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "position", "near"),
    [
        ("colour = 'red'", 1, "'colour'"),
        ("version >> 3", 9, "'>>'"),
        ("name = and version = 1", 8, "'and'"),
        ("name = ", 8, "end of filter"),
        ("name = 'churn", 8, '"\'churn"'),
        ("(name = 'churn'", 16, "end of filter"),
        ("name = 'churn')", 15, "')'"),
        ("metrics.accuracy > 'high'", 20, "\"'high'\""),
        ("limit 0", 7, "'0'"),
        ("name = 'churn' churn", 16, "'churn'"),
    ],
)
def test_errors_say_where(text: str, position: int, near: str) -> None:
    assert f"invalid filter at position {position} near {near}: " in _error(text)


def test_unknown_field_lists_the_valid_fields() -> None:
    assert _error("colour = 'red'") == (
        "invalid filter at position 1 near 'colour': unknown field; valid fields are name, "
        "version, stage, alias, dataset, code.commit, created_at, created_by, tags.K, "
        "metrics.K, params.K"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = '1'", "version needs a whole number"),
        ("version = 1.5", "version needs a whole number"),
        ("name = 1", "name needs a string"),
        ("tags.env = 1", "tags.env needs a string"),
        ("metrics.accuracy in (0.5, 'x')", "metrics.accuracy needs a number"),
        ("stage = 'prod'", "unknown stage 'prod'"),
        ("stage like 'Prod%'", "like is not allowed on stage"),
        ("version like '1%'", "like is not allowed on version"),
        ("metrics.accuracy like '0.%'", "like is not allowed on metrics.accuracy"),
        ("name like 1", "expected a quoted pattern after like"),
        ("dataset > 'a'", "dataset supports =, !=, in, not in, like, not like"),
        ("created_at > 'yesterday'", "'yesterday' is not an ISO date or datetime"),
        ("created_at > '0001-01-01T00:00:00+05:00'", "is not an ISO date or datetime"),
        ("tags = 'x'", "tags needs a key such as tags.K"),
        ("metrics.9lives > 1", "metrics needs a key such as metrics.K"),
        ("name in ()", "expected a value"),
        ("name in 'a'", "expected '(' to start the list"),
        ("name in ('a' 'b')", "expected ',' or ')'"),
        ("name not = 'a'", "expected 'in' or 'like'"),
        ("name", "expected an operator"),
        ("and = 1", "expected a field"),
        ("name = 'a' #", "unexpected character"),
        ("name = 'a'; drop table model_version", "unexpected character"),
        ("version = 99999999999999999999", "number out of range"),
        ("metrics.accuracy > 1e999", "number out of range"),
        ("name = 'a\x00'", "NUL and unpaired surrogates are not allowed"),
        ("order name", "expected 'by'"),
        ("order by alias", "cannot order by alias"),
        ("order by tags.env", "cannot order by tags.env"),
        ("order by dataset", "cannot order by dataset"),
        ("order by version limit", "expected a whole number after limit"),
        ("limit 1.5", "expected a whole number after limit"),
        ("limit -1", "limit must be between 1 and 10000"),
        ("limit 10001", "limit must be between 1 and 10000"),
        ("limit 2 limit 3", "expected 'and', 'or', 'order by', 'limit' or the end"),
        ("(" * 33 + "name = 'a'" + ")" * 33, "parentheses nest deeper than 32 levels"),
        ("name = '" + "x" * 4096 + "'", "longer than 4096 characters"),
    ],
)
def test_invalid_filters_raise_invalid_input(text: str, message: str) -> None:
    assert message in _error(text)


def test_limit_above_max_limit_is_refused() -> None:
    assert "limit must be between 1 and 5" in _error("limit 6", max_limit=5)


def test_error_messages_are_one_line() -> None:
    assert "\n" not in _error("name = 'multi\nline")


# ---------------------------------------------------------------- properties

DIALECTS = (sqlite.dialect(), postgresql.dialect())
SAFE = settings(max_examples=200, deadline=None)
TOKENS = [
    "name", "version", "stage", "alias", "dataset", "code.commit", "created_at",
    "created_by", "tags.env", "metrics.accuracy", "params.lr", "colour", "and", "or",
    "not", "in", "like", "order", "by", "asc", "desc", "limit", "(", ")", ",", "=",
    "!=", "<", "<=", ">", ">=", "'prod'", "'production'", "'2024-01-01'", "1", "0",
    "-2.5e3", "99999999999999999999", "'", '"', "''",
]  # fmt: skip


@SAFE
@given(st.text(max_size=200))
def test_any_text_gives_a_statement_or_invalid_input(text: str) -> None:
    try:
        statement = search_statement(text)
    except InvalidInput:
        return
    assert isinstance(statement, sa.Select)


@SAFE
@given(st.lists(st.sampled_from(TOKENS), max_size=16).map(" ".join))
def test_token_soup_runs_or_raises_invalid_input(engine: sa.Engine, text: str) -> None:
    try:
        statement = search_statement(text)
    except InvalidInput:
        return
    with engine.connect() as connection:
        connection.execute(statement).all()


NASTY = st.text(
    alphabet=st.one_of(
        st.sampled_from("'\";\\%_-@ \n\t()=<>,"),
        st.characters(codec="utf-8", exclude_characters="\x00"),
    ),
    max_size=12,
)
MARKED = NASTY.map(lambda s: f"\u27e6{s}\u27e7")  # brackets that no SQL text contains


def _quoted(value: str, quote: str) -> str:
    return quote + value.replace(quote, quote * 2) + quote


@st.composite
def _string_literal(draw: st.DrawFn) -> str:
    return _quoted(draw(MARKED), draw(st.sampled_from("'\"")))


NUMBER = st.one_of(
    st.integers(-(2**62), 2**62).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
TEXT_FIELD = st.sampled_from(
    ["name", "code.commit", "created_by", "alias", "tags.env", "tags.note", "params.optimizer"]
)
NUMBER_FIELD = st.sampled_from(["metrics.accuracy", "metrics.loss", "params.lr"])
ORDERING = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


def _list(literal: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    items = st.lists(literal, min_size=1, max_size=3).map(", ".join)
    return st.tuples(st.sampled_from(["in", "not in"]), items).map(lambda t: f"{t[0]} ({t[1]})")


def _like() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["like", "not like"]), _string_literal()).map(" ".join)


def _stage_literal() -> st.SearchStrategy[str]:
    names = st.sampled_from(["None", "Staging", "Production", "Archived"])
    return st.tuples(names, st.booleans()).map(lambda t: f"'{t[0].upper() if t[1] else t[0]}'")


def _time_literal() -> st.SearchStrategy[str]:
    moments = st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1)).map(datetime.isoformat)
    zones = st.sampled_from(["", "Z", "+00:00", "-07:30"])
    return st.tuples(moments, zones).map(lambda t: f"'{t[0]}{t[1]}'")


def _compare(field: st.SearchStrategy[str], tail: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(field, tail).map(" ".join)


def _op_value(literal: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(ORDERING, literal).map(" ".join)


def _text_comparison() -> st.SearchStrategy[str]:
    tail = st.one_of(_op_value(_string_literal()), _list(_string_literal()), _like())
    return _compare(TEXT_FIELD, tail)


def _number_comparison() -> st.SearchStrategy[str]:
    return _compare(NUMBER_FIELD, st.one_of(_op_value(NUMBER), _list(NUMBER)))


def _version_comparison() -> st.SearchStrategy[str]:
    versions = st.integers(-9, 10**6).map(str)
    return _compare(st.just("version"), st.one_of(_op_value(versions), _list(versions)))


def _stage_comparison() -> st.SearchStrategy[str]:
    tail = st.one_of(_op_value(_stage_literal()), _list(_stage_literal()))
    return _compare(st.just("stage"), tail)


def _time_comparison() -> st.SearchStrategy[str]:
    tail = st.one_of(_op_value(_time_literal()), _list(_time_literal()))
    return _compare(st.just("created_at"), tail)


def _dataset_comparison() -> st.SearchStrategy[str]:
    equality = st.tuples(st.sampled_from(["=", "!="]), _string_literal()).map(" ".join)
    tail = st.one_of(equality, _list(_string_literal()), _like())
    return _compare(st.just("dataset"), tail)


COMPARISON = st.one_of(
    _text_comparison(),
    _number_comparison(),
    _version_comparison(),
    _stage_comparison(),
    _time_comparison(),
    _dataset_comparison(),
)
EXPR = st.recursive(
    COMPARISON,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or", "AND", "Or"]), inner).map(" ".join),
        inner.map(lambda e: f"({e})"),
    ),
    max_leaves=6,
)
SORTABLE = ["name", "version", "stage", "created_at", "code.commit", "metrics.loss", "params.lr"]
ORDER_KEY = st.tuples(st.sampled_from(SORTABLE), st.sampled_from(["", " asc", " desc"]))
ORDER = st.lists(ORDER_KEY.map("".join), min_size=1, max_size=3).map(
    lambda keys: " order by " + ", ".join(keys)
)
FILTER = st.tuples(
    st.one_of(st.just(""), EXPR),
    st.one_of(st.just(""), ORDER),
    st.one_of(st.just(""), st.integers(1, 10_000).map(lambda n: f" limit {n}")),
).map("".join)


@SAFE
@given(FILTER)
def test_valid_filters_compile_run_and_bind_every_value(engine: sa.Engine, text: str) -> None:
    statement = search_statement(text)
    for dialect in DIALECTS:
        sql = str(statement.compile(dialect=dialect))
        assert "\u27e6" not in sql
        assert "\u27e7" not in sql
    with engine.connect() as connection:
        connection.execute(statement).all()


@SAFE
@given(NASTY.filter(lambda s: "\x00" not in s), st.sampled_from("'\""))
def test_quoted_strings_read_back_exactly(value: str, quote: str) -> None:
    where = parse(f"name = {_quoted(value, quote)}").where
    assert where == Comparison("name", "=", value)


def test_marked_values_reach_the_bound_parameters() -> None:
    statement = search_statement("tags.note = '\u27e6a''b\u27e7' or name like '\u27e6%\u27e7'")
    params = statement.compile(dialect=sqlite.dialect()).params.values()
    assert {"\u27e6a'b\u27e7", "\u27e6%\u27e7"} <= set(params)


def test_position_counts_from_one() -> None:
    assert re.search(r"at position 1 near '\)'", _error(")"))


# A conjunction with an attribute equality is driven from that attribute's index
# (newest first, other conditions probed per version); every other filter takes the
# general plan. Both must return the same versions.
DRIVERS = st.sampled_from(
    [
        "tags.env = 'prod'",
        "tags.env in ('dev', 'prod')",
        "tags.team = 'risk'",
        "params.optimizer = 'adam'",
        "params.lr = 0.01",
        "params.lr in (0.1, 0.01)",
        "metrics.accuracy = 0.9",
        "tags.missing = 'x'",
    ]
)


@SAFE
@given(DRIVERS, st.one_of(st.just(""), EXPR))
def test_a_driving_equality_returns_what_the_general_plan_returns(
    engine: sa.Engine, driver: str, rest: str
) -> None:
    text = f"{driver} and ({rest})" if rest else driver
    driven = _ids(engine, text)
    general = _ids(engine, f"{text} order by version")  # an order by never drives
    assert driven == sorted(general, reverse=True)


def test_an_equality_in_a_conjunction_drives_the_query() -> None:
    sql = str(search_statement("metrics.accuracy > 0.8 and tags.env = 'prod'"))
    assert "driver" in sql
    assert "EXISTS" in sql
    assert "driver" not in str(search_statement("tags.env = 'prod' or version = 1"))
