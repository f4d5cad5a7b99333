"""MLflow registry search over modelreg objects: filters, the prompt tag, order, pages and
refusals, on hand-built ``RegisteredModel`` and ``ModelVersion`` objects, and the same
filters and orders checked against MLflow's own matcher (``mlflow.utils.search_utils``)."""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.entities.model_registry import ModelVersion as MlflowVersion
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.entities.model_registry import RegisteredModel as MlflowModel
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils

from registry.errors import InvalidInput
from registry.mlflow_api.search import (
    IS_PROMPT_TAG,
    MAX_FILTER_LENGTH,
    LikePattern,
    page,
    parse_model_filter,
    parse_version_filter,
    query_key,
    sort_models,
    sort_versions,
)
from registry.models import ArtifactRef, Event, ModelVersion, RegisteredModel, Stage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROMPT = f"tag.`{IS_PROMPT_TAG}`"


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _model(
    name: str, tags: dict[str, str], created: int, updated: int | None = None
) -> RegisteredModel:
    event = None
    if updated is not None:
        event = Event(
            seq=updated, at=_at(updated), model=name, version=None, kind="tags", actor="t",
            generation=1,
        )  # fmt: skip
    return RegisteredModel(
        name=name, tags=tags, generation=1, latest_version=1, created_at=_at(created),
        updated_at=None if updated is None else _at(updated), last_event=event,
    )  # fmt: skip


# name, tags, created (min), last event (min): creation, update and name orders all differ,
# with ties on creation (fraud-ranker, churn) and on update (churn, team/ranker).
MODELS = [
    _model("fraud-detector", {"team": "payments", "env": "prod"}, created=3, updated=9),
    _model("fraud-ranker", {"team": "Payments"}, created=1, updated=4),
    _model(
        "churn",
        {"note": "it's", "path": "C:\\dir", "pct": "50%", "owner.email": "a@b"},
        created=1,
        updated=7,
    ),
    _model("team/ranker", {IS_PROMPT_TAG: "false"}, created=5, updated=None),  # updated = 5
    _model("welcome-prompt", {IS_PROMPT_TAG: "true"}, created=2, updated=7),
]
NOT_PROMPTS = ["fraud-detector", "fraud-ranker", "churn", "team/ranker"]


def _version(
    name: str, version: int, created: int, run_id: str | None, tags: dict[str, str] | None = None
) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=version,
        stage=Stage.NONE,
        artifact=ArtifactRef(uri=f"s3://bucket/{name}/{version}", sha256="0" * 64, size=1),
        tags=tags or {},
        run_id=run_id,
        created_by="t",
        created_at=_at(created),
    )


VERSIONS = [
    _version("fraud", 1, created=1, run_id="r1", tags={"stage": "old"}),
    _version("fraud", 2, created=4, run_id="r2"),
    _version("fraud", 3, created=6, run_id=None, tags={"stage": "New"}),
    _version("churn", 1, created=4, run_id="r1", tags={IS_PROMPT_TAG: "false"}),
    _version("churn", 2, created=6, run_id="r3"),
    _version("greeting", 1, created=2, run_id="r2", tags={IS_PROMPT_TAG: "true"}),
]


def _names(text: str | None) -> list[str]:
    matches = parse_model_filter(text)
    return [m.name for m in MODELS if matches(m)]


def _versions(text: str | None) -> list[str]:
    matches = parse_version_filter(text)
    return [f"{v.name}/{v.version}" for v in VERSIONS if matches(v)]


# ---------------------------------------------------------------- registered models


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, NOT_PROMPTS),
        ("", NOT_PROMPTS),
        ("   ", NOT_PROMPTS),
        ("name = 'churn'", ["churn"]),
        ('name = "churn"', ["churn"]),
        ("attribute.name = 'churn'", ["churn"]),
        ("name = 'Churn'", []),
        ("name != 'churn'", ["fraud-detector", "fraud-ranker", "team/ranker"]),
        ("name LIKE 'fraud%'", ["fraud-detector", "fraud-ranker"]),
        ("name LIKE 'FRAUD%'", []),
        ("name ILIKE 'FRAUD%'", ["fraud-detector", "fraud-ranker"]),
        ("name ILIKE '%RANK%'", ["fraud-ranker", "team/ranker"]),
        ("name LIKE 'chur_'", ["churn"]),
        ("name LIKE 'chu_'", []),
        ("name LIKE 'churn'", ["churn"]),
        ("name like '%r'", ["fraud-detector", "fraud-ranker", "team/ranker"]),
        ("name LIKE '%'", NOT_PROMPTS),
        ("name IN ('churn', 'fraud-ranker', 'missing')", ["fraud-ranker", "churn"]),
        ("name NOT IN ('churn', 'fraud-ranker')", ["fraud-detector", "team/ranker"]),
        ("name not in ('churn')", ["fraud-detector", "fraud-ranker", "team/ranker"]),
        ("tags.team = 'payments'", ["fraud-detector"]),
        ("tag.team = 'payments'", ["fraud-detector"]),
        ("tags.`team` = 'payments'", ["fraud-detector"]),
        ("tags.team != 'payments'", ["fraud-ranker"]),  # churn has no team tag
        ("tags.team LIKE 'Pay%'", ["fraud-ranker"]),
        ("tags.team ILIKE 'PAY%'", ["fraud-detector", "fraud-ranker"]),
        ("tags.`owner.email` = 'a@b'", ["churn"]),
        ("tags.owner.email = 'a@b'", ["churn"]),
        ("tags.note = 'it''s'", ["churn"]),
        ('tags.note = "it\'s"', ["churn"]),
        ("tags.path = 'C:\\dir'", ["churn"]),
        ("tags.pct LIKE '50%'", ["churn"]),
        ("tags.pct LIKE '50\\%'", []),  # no escape character: the backslash is literal
        ("tags.missing != 'x'", []),
        ("name LIKE 'fraud%' AND tags.env = 'prod'", ["fraud-detector"]),
        ("name like 'fraud%' and tags.team ilike 'payments'", ["fraud-detector", "fraud-ranker"]),
        ("name = 'churn' AND name = 'fraud-ranker'", []),
        ("name='churn'AND tags.note='it''s'", ["churn"]),
    ],
)
def test_model_filter_matches(text: str | None, expected: list[str]) -> None:
    assert _names(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # What the MLflow client appends to every registered-model search.
        (f"{PROMPT} != 'true'", NOT_PROMPTS),
        (f"name ILIKE '%fraud%' AND {PROMPT} != 'true'", ["fraud-detector", "fraud-ranker"]),
        (f"tags.`{IS_PROMPT_TAG}` = 'false'", NOT_PROMPTS),
        (f"{PROMPT} = 'true'", ["welcome-prompt"]),
        (f"{PROMPT} = 'TRUE'", []),  # asks for prompts, but the value compares with case
        (f"{PROMPT} != 'false'", ["welcome-prompt"]),  # asks for prompts: the tag must be there
        (f"{PROMPT} LIKE 'f%'", NOT_PROMPTS),  # not a request for prompts: ignored
        (f"name = 'welcome-prompt' AND {PROMPT} != 'true'", []),
    ],
)
def test_prompt_tag_clause_on_models_with_and_without_the_tag(
    text: str, expected: list[str]
) -> None:
    assert _names(text) == expected


# ---------------------------------------------------------------- model versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ["fraud/1", "fraud/2", "fraud/3", "churn/1", "churn/2"]),
        ("name = 'fraud'", ["fraud/1", "fraud/2", "fraud/3"]),
        ("name ILIKE 'FR%'", ["fraud/1", "fraud/2", "fraud/3"]),
        ("name IN ('churn')", ["churn/1", "churn/2"]),
        ("version_number = 2", ["fraud/2", "churn/2"]),
        ("version_number = '2'", ["fraud/2", "churn/2"]),
        ("version_number != 2", ["fraud/1", "fraud/3", "churn/1"]),
        ("version_number < 2", ["fraud/1", "churn/1"]),
        ("version_number <= 2", ["fraud/1", "fraud/2", "churn/1", "churn/2"]),
        ("version_number > 2", ["fraud/3"]),
        ("version_number >= 2", ["fraud/2", "fraud/3", "churn/2"]),
        ("version_number > -1 AND version_number < +2", ["fraud/1", "churn/1"]),
        ("attribute.version_number = 3", ["fraud/3"]),
        ("run_id = 'r1'", ["fraud/1", "churn/1"]),
        ("run_id != 'r1'", ["fraud/2", "churn/2"]),  # fraud/3 has no run id
        ("run_id IN ('r1', 'r3')", ["fraud/1", "churn/1", "churn/2"]),
        ("run_id NOT IN ('r1')", ["fraud/2", "churn/2"]),
        ("run_id LIKE 'r%'", ["fraud/1", "fraud/2", "churn/1", "churn/2"]),
        ("source_path = 's3://bucket/churn/2'", ["churn/2"]),
        ("source_path LIKE 's3://bucket/fraud/%'", ["fraud/1", "fraud/2", "fraud/3"]),
        ("tags.stage = 'old'", ["fraud/1"]),
        ("tags.stage ILIKE 'new'", ["fraud/3"]),
        ("tags.stage != 'old'", ["fraud/3"]),
        ("name = 'fraud' AND version_number >= 2 AND run_id = 'r2'", ["fraud/2"]),
        (f"{PROMPT} != 'true'", ["fraud/1", "fraud/2", "fraud/3", "churn/1", "churn/2"]),
        (f"name = 'churn' AND {PROMPT} = 'false'", ["churn/1", "churn/2"]),
        (f"{PROMPT} = 'true'", ["greeting/1"]),
    ],
)
def test_version_filter_matches(text: str | None, expected: list[str]) -> None:
    assert _versions(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("name = 'churn'", "churn"),
        (f"name = 'churn' AND {PROMPT} != 'true'", "churn"),
        ("tags.team = 'a' AND name = \"fraud\"", "fraud"),
        ("attribute.name = 'fraud'", "fraud"),
        ("name LIKE 'churn'", None),
        ("name != 'churn'", None),
        ("name IN ('churn')", None),
        ("tags.name = 'churn'", None),
    ],
)
def test_exact_name_is_the_pinned_name(text: str | None, expected: str | None) -> None:
    assert parse_model_filter(text).exact_name == expected
    assert parse_version_filter(text).exact_name == expected


# ---------------------------------------------------------------- refusals

# Both searches refuse these: malformed text, SQL fragments, unsupported grammar.
MALFORMED = [
    ("name = 'x' OR name = 'y'", "OR is not supported"),
    ("name = 'x' OR 1=1", "OR is not supported"),
    ("x' OR '1'='1", "unknown"),
    ("name = 'x' OR '1'='1'", "OR is not supported"),
    ("name = '' OR ''=''", "OR is not supported"),
    ("name = 'x'; DROP TABLE registered_models", "';' is not allowed"),
    ("'; DROP TABLE model_version; --", "unterminated string"),
    ("name = 'x' -- comment", "unexpected character '-'"),
    ("name = 'x' /* c */", "unexpected character '/'"),
    ("name = 'x' UNION SELECT name FROM users", "expected AND"),
    ("name = 'x' UNION SELECT * FROM users", "unexpected character '*'"),
    ("tags.a = 'b' AND 1=1", "expected an attribute"),
    ("name = 'x' AND", "expected an attribute"),
    ("AND name = 'x'", "expected an attribute"),
    ("name = 'x' AND AND name = 'y'", "expected an attribute"),
    ("name = 'x' name = 'y'", "expected AND"),
    ("name = 'x", "unterminated string"),
    ('name = "x', "unterminated string"),
    ("tags.`team = 'x'", "unterminated or empty backquoted"),
    ("tags.`` = 'x'", "unterminated or empty backquoted"),
    ("(name = 'x')", "parentheses are not supported"),
    ("name = 'x' AND (tags.a = 'b')", "parentheses are not supported"),
    ("NOT name = 'x'", "expected an attribute"),
    ("owner = 'x'", "unknown"),
    ("tags = 'x'", "unknown"),
    ("attribute.owner = 'x'", "unknown"),
    ("params.alpha = '1'", "unknown"),
    ("metrics.auc > 0.5", "unknown"),
    ("name == 'x'", "unknown operator"),
    ("name <> 'x'", "unknown operator"),
    ("name =! 'x'", "unknown operator"),
    ("name > 'x'", "name supports =, !=, LIKE, ILIKE, IN, NOT IN"),
    ("tags.a IN ('b')", "tags.a supports =, !=, LIKE, ILIKE"),
    ("tags.a > 'b'", "tags.a supports"),
    ("tags.a IS NULL", "IS NULL and IS NOT NULL are not supported"),
    ("tags.a IS NOT NULL", "IS NULL and IS NOT NULL are not supported"),
    ("name NOT LIKE 'x'", "expected IN after NOT"),
    ("name", "expected an operator"),
    ("name 'x'", "expected an operator"),
    ("= 'x'", "expected an attribute"),
    ("'x' = name", "expected an attribute"),
    ("name = x", "needs a quoted string"),
    ("name = 1", "needs a quoted string"),
    ("tags.a = 1", "needs a quoted string"),
    ("name = ", "needs a quoted string"),
    ("name IN ()", "needs a quoted string"),
    ("name IN ('a',)", "needs a quoted string"),
    ("name IN ('a'", "expected ',' or ')'"),
    ("name IN ('a' 'b')", "expected ',' or ')'"),
    ("name IN 'a'", "expected '('"),
    ("name IN (1, 2)", "needs a quoted string"),
    ("name = 'a\x00'", "control characters"),
    ("name = 'a\x1b[31m'", "control characters"),
    ("name = '\ud800'", "control characters"),
    ("*", "unexpected character '*'"),
    ("name = 'x' & name = 'y'", "unexpected character '&'"),
    ("tags.\"a\" = 'x'", "unexpected character '.'"),
    ("tags." + "k" * 251 + " = 'x'", "tag key longer than 250"),
    ("name = '" + "x" * MAX_FILTER_LENGTH + "'", f"longer than {MAX_FILTER_LENGTH}"),
]
VERSION_ONLY_MALFORMED = [
    ("version_number = 1.5", "needs a whole number"),
    ("version_number = 1e3", "needs a whole number"),
    ("version_number = 'abc'", "needs a whole number"),
    ("version_number = '1 OR 1=1'", "needs a whole number"),
    ("version_number = x", "needs a whole number"),
    ("version_number = 99999999999999999999", "needs a whole number"),
    ("version_number = 9999999999999999999", "out of range"),
    ("version_number LIKE '1'", "version_number supports =, !=, <, <=, >, >="),
    ("version_number IN (1)", "version_number supports"),
    ("source_path IN ('a')", "source_path supports =, !=, LIKE, ILIKE"),
    ("run_id IS NOT NULL", "IS NULL"),
    ("run_id = r1", "needs a quoted string"),
    ("creation_timestamp > 0", "unknown model version attribute"),
    ("source = 'x'", "unknown model version attribute"),
]
MODEL_ONLY_MALFORMED = [
    ("version_number = 1", "unknown registered model attribute"),
    ("run_id = 'r1'", "unknown registered model attribute"),
    ("source_path = 'x'", "unknown registered model attribute"),
]


def _refused(parse: object, text: str, fragment: str) -> None:
    assert callable(parse)
    with pytest.raises(InvalidInput) as caught:
        parse(text)
    message = str(caught.value)
    assert "\n" not in message
    assert fragment in message


@pytest.mark.parametrize(("text", "fragment"), MALFORMED + MODEL_ONLY_MALFORMED)
def test_model_filter_refuses(text: str, fragment: str) -> None:
    _refused(parse_model_filter, text, fragment)


@pytest.mark.parametrize(("text", "fragment"), MALFORMED + VERSION_ONLY_MALFORMED)
def test_version_filter_refuses(text: str, fragment: str) -> None:
    _refused(parse_version_filter, text, fragment)


def test_refusal_names_the_position() -> None:
    with pytest.raises(InvalidInput, match=r"at position 12 near 'OR': OR is not supported"):
        parse_model_filter("name = 'x' OR 1=1")


@pytest.mark.parametrize("value", [5, b"name = 'x'", ["name = 'x'"]])
def test_a_filter_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        parse_model_filter(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------- LIKE


def _like_reference(pattern: str, text: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, text, flags) is not None


@settings(max_examples=400, deadline=None)
@given(st.text("ab%_A\n", max_size=8), st.text("abAB\n", max_size=10), st.booleans())
def test_like_agrees_with_a_regex_reference(pattern: str, text: str, ignore_case: bool) -> None:
    like = LikePattern.compile(pattern, ignore_case=ignore_case)
    assert like.matches(text) == _like_reference(pattern, text, ignore_case)


def test_like_with_many_wildcards_stays_linear() -> None:
    # A backtracking regex needs about C(2000, 40) steps here; the pytest timeout would fire.
    like = LikePattern.compile("%a" * 40 + "%b", ignore_case=False)
    assert not like.matches("a" * 2000)
    assert like.matches("a" * 2000 + "b")


# ---------------------------------------------------------------- order


# Expected orders are space-separated names; names hold no spaces.
@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ([], "churn fraud-detector fraud-ranker team/ranker welcome-prompt"),
        (None, "churn fraud-detector fraud-ranker team/ranker welcome-prompt"),
        (["name ASC"], "churn fraud-detector fraud-ranker team/ranker welcome-prompt"),
        (["name DESC"], "welcome-prompt team/ranker fraud-ranker fraud-detector churn"),
        (["`name` desc"], "welcome-prompt team/ranker fraud-ranker fraud-detector churn"),
        # created 3, 1, 1, 5, 2: the tie on 1 breaks by name ASC either way.
        (["creation_timestamp"], "churn fraud-ranker welcome-prompt fraud-detector team/ranker"),
        (
            ["creation_timestamp ASC"],
            "churn fraud-ranker welcome-prompt fraud-detector team/ranker",
        ),
        (
            ["creation_timestamp DESC"],
            "team/ranker fraud-detector welcome-prompt churn fraud-ranker",
        ),
        (
            ["creation_timestamp DESC", "name DESC"],
            "team/ranker fraud-detector welcome-prompt fraud-ranker churn",
        ),
        # updated 9, 4, 7, 5 (no event: its creation), 7.
        (
            ["last_updated_timestamp"],
            "fraud-ranker team/ranker churn welcome-prompt fraud-detector",
        ),
        (
            ["last_updated_timestamp DESC"],
            "fraud-detector churn welcome-prompt team/ranker fraud-ranker",
        ),
        (["timestamp DESC"], "fraud-detector churn welcome-prompt team/ranker fraud-ranker"),
        (
            ["last_updated_timestamp ASC", "name DESC"],
            "fraud-ranker team/ranker welcome-prompt churn fraud-detector",
        ),
        (
            ["name ASC", "creation_timestamp DESC"],
            "churn fraud-detector fraud-ranker team/ranker welcome-prompt",
        ),
    ],
)
def test_sort_models(order_by: list[str] | None, expected: str) -> None:
    assert [m.name for m in sort_models(MODELS, order_by)] == expected.split()


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        # MLflow's SQL store default: last_updated_timestamp DESC, name ASC, version DESC.
        # created: fraud 1, 4, 6; churn 4, 6; greeting 2.
        ([], "churn/2 fraud/3 churn/1 fraud/2 greeting/1 fraud/1"),
        (["name ASC"], "churn/2 churn/1 fraud/3 fraud/2 fraud/1 greeting/1"),
        (["name DESC"], "greeting/1 fraud/3 fraud/2 fraud/1 churn/2 churn/1"),
        (["version_number ASC"], "churn/1 fraud/1 greeting/1 churn/2 fraud/2 fraud/3"),
        (
            ["version_number DESC", "name DESC"],
            "fraud/3 fraud/2 churn/2 greeting/1 fraud/1 churn/1",
        ),
        (["creation_timestamp ASC"], "fraud/1 greeting/1 churn/1 fraud/2 churn/2 fraud/3"),
        (["creation_timestamp DESC"], "churn/2 fraud/3 churn/1 fraud/2 greeting/1 fraud/1"),
        (
            ["last_updated_timestamp ASC", "name DESC"],
            "fraud/1 greeting/1 fraud/2 churn/1 fraud/3 churn/2",
        ),
    ],
)
def test_sort_versions(order_by: list[str], expected: str) -> None:
    found = sort_versions(VERSIONS, order_by)
    assert [f"{v.name}/{v.version}" for v in found] == expected.split()


def test_sorting_keeps_the_input_untouched() -> None:
    models = list(reversed(MODELS))
    sort_models(models, ["name DESC"])
    assert models == list(reversed(MODELS))


BAD_ORDER = [
    (["size"], "invalid order_by key 'size'"),
    (["Name"], "invalid order_by key 'Name'"),
    (["name UP"], "expected 'KEY [ASC|DESC]'"),
    (["name ASC DESC"], "expected 'KEY [ASC|DESC]'"),
    ([""], "expected 'KEY [ASC|DESC]'"),
    (["name; DROP TABLE x"], "expected 'KEY [ASC|DESC]'"),
    (["name, version_number"], "expected 'KEY [ASC|DESC]'"),
    (["`name"], "expected 'KEY [ASC|DESC]'"),
    ([5], "a non-string"),
    (["name", "name DESC"], "names name twice"),
]


@pytest.mark.parametrize(
    ("order_by", "fragment"),
    [
        *BAD_ORDER,
        (["timestamp", "last_updated_timestamp DESC"], "twice"),
        (["version_number"], "invalid order_by key"),
    ],
)
def test_sort_models_refuses(order_by: list[str], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        sort_models(MODELS, order_by)


@pytest.mark.parametrize(
    ("order_by", "fragment"),
    [*BAD_ORDER, (["timestamp"], "invalid order_by key"), (["run_id"], "invalid order_by key")],
)
def test_sort_versions_refuses(order_by: list[str], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        sort_versions(VERSIONS, order_by)


# ---------------------------------------------------------------- pages

ITEMS = [f"item-{i}" for i in range(7)]
KEY = query_key("registered_models", "name LIKE 'fraud%'", ["name ASC"])


def _walk(items: list[str], size: int, key: str = KEY) -> list[list[str]]:
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        chunk, token = page(
            items, max_results=size, page_token=token, query_key=key, default_max=100, limit=1000
        )
        pages.append(chunk)
        if token is None:
            return pages
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)  # URL-safe as it is


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8])
def test_paging_returns_every_item_exactly_once(size: int) -> None:
    pages = _walk(ITEMS, size)
    assert [item for chunk in pages for item in chunk] == ITEMS
    assert len(pages) == math.ceil(len(ITEMS) / size)
    assert all(len(chunk) == size for chunk in pages[:-1])


def test_last_full_page_has_no_next_token() -> None:
    assert _walk(ITEMS[:6], 3) == [ITEMS[:3], ITEMS[3:6]]


def test_an_empty_result_is_one_empty_page() -> None:
    assert page([], max_results=None, page_token=None, query_key=KEY, default_max=5, limit=9) == (
        [],
        None,
    )


def test_page_size_may_change_between_pages() -> None:
    first, token = page(
        ITEMS, max_results=2, page_token="", query_key=KEY, default_max=100, limit=1000
    )
    rest, token = page(
        ITEMS, max_results=10, page_token=token, query_key=KEY, default_max=100, limit=1000
    )
    assert (first + rest, token) == (ITEMS, None)


def test_default_page_size_applies_without_max_results() -> None:
    chunk, token = page(
        ITEMS, max_results=None, page_token=None, query_key=KEY, default_max=3, limit=5
    )
    assert chunk == ITEMS[:3]
    assert token is not None


@pytest.mark.parametrize("max_results", [0, -1, 6, True, 2.0, "3"])
def test_max_results_outside_the_limits_is_refused(max_results: object) -> None:
    with pytest.raises(InvalidInput, match=r"invalid max_results .*: expected 1 to 5"):
        page(
            ITEMS,
            max_results=max_results,  # type: ignore[arg-type]
            page_token=None,
            query_key=KEY,
            default_max=3,
            limit=5,
        )


def _first_token() -> str:
    _, token = page(ITEMS, max_results=2, page_token=None, query_key=KEY, default_max=3, limit=5)
    assert token is not None
    return token


def _b64(data: object) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _digest_of_first() -> str:
    token = _first_token()
    return str(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["query"])


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "abc$",
        "!!!!",
        "A",  # one base64 character decodes to nothing
        _b64(b"\xff\xfe"),
        _b64(b"offset=2"),
        _b64([2]),
        _b64({"offset": 2}),
        _b64({"offset": "2", "query": "x"}),
        _b64({"offset": 2, "query": "0" * 16, "extra": 1}),
        "x" * 400,
    ],
)
def test_malformed_page_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidInput, match="invalid page_token: not a token this server issued"):
        page(ITEMS, max_results=2, page_token=token, query_key=KEY, default_max=3, limit=5)


@pytest.mark.parametrize("offset", [0, -2, True, 1.5, None])
def test_token_with_a_tampered_offset_is_refused(offset: object) -> None:
    token = _b64({"offset": offset, "query": _digest_of_first()})
    with pytest.raises(InvalidInput, match="not a token this server issued"):
        page(ITEMS, max_results=2, page_token=token, query_key=KEY, default_max=3, limit=5)


def test_token_with_a_tampered_digest_is_refused() -> None:
    token = _b64({"offset": 2, "query": "0" * 16})
    with pytest.raises(InvalidInput, match="another filter or order_by"):
        page(ITEMS, max_results=2, page_token=token, query_key=KEY, default_max=3, limit=5)


@pytest.mark.parametrize(
    "other",
    [
        query_key("registered_models", "name LIKE 'churn%'", ["name ASC"]),
        query_key("registered_models", "name LIKE 'fraud%'", ["name DESC"]),
        query_key("registered_models", "name LIKE 'fraud%'", []),
        query_key("model_versions", "name LIKE 'fraud%'", ["name ASC"]),
    ],
)
def test_token_replayed_against_another_query_is_refused(other: str) -> None:
    with pytest.raises(InvalidInput, match="another filter or order_by"):
        page(
            ITEMS, max_results=2, page_token=_first_token(), query_key=other, default_max=3, limit=5
        )


def test_token_works_for_the_same_query_rebuilt() -> None:
    again = query_key("registered_models", "name LIKE 'fraud%'", ["name ASC"])
    chunk, _ = page(
        ITEMS, max_results=2, page_token=_first_token(), query_key=again, default_max=3, limit=5
    )
    assert chunk == ITEMS[2:4]


def test_token_past_the_end_gives_an_empty_last_page() -> None:
    # The list can shrink between pages (a model deleted): the next page is then short.
    chunk, token = page(
        ITEMS[:1], max_results=2, page_token=_first_token(), query_key=KEY, default_max=3, limit=5
    )
    assert (chunk, token) == ([], None)


def test_search_end_to_end_filter_sort_page() -> None:
    text, order_by = f"name ILIKE '%RANK%' AND {PROMPT} != 'true'", ["name DESC"]
    matches = parse_model_filter(text)
    found = sort_models([m for m in MODELS if matches(m)], order_by)
    key = query_key("registered_models", text, order_by)
    first, token = page(
        found, max_results=1, page_token=None, query_key=key, default_max=100, limit=1000
    )
    second, last = page(
        found, max_results=1, page_token=token, query_key=key, default_max=100, limit=1000
    )
    assert [m.name for m in first + second] == ["team/ranker", "fraud-ranker"]
    assert last is None


# ---------------------------------------------------------------- against MLflow's matcher
#
# MLflow's Python matcher (its file store's) on the same objects, prompts left out (its file
# store keeps them when the filter does not mention the tag; its SQL store, which this
# module follows, leaves them out). Left out on purpose, where modelreg is stricter or
# follows MLflow's SQL store: a trailing AND (MLflow ignores it), 'it''s' (MLflow keeps both
# quotes), version_number = 1.5 (the SQL store refuses it too), the default version order,
# and tags.K IS NULL (MLflow's registry parser crashes on it; modelreg refuses it).


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


MLFLOW_MODELS = [
    MlflowModel(
        name=m.name,
        creation_timestamp=_ms(m.created_at),
        last_updated_timestamp=_ms(m.updated_at or m.created_at),
        tags=[RegisteredModelTag(k, v) for k, v in m.tags.items()],
    )
    for m in MODELS
    if m.tags.get(IS_PROMPT_TAG) != "true"
]
MLFLOW_VERSIONS = [
    MlflowVersion(
        name=v.name,
        version=v.version,  # type: ignore[arg-type]  # an int, so numeric clauses compare
        creation_timestamp=_ms(v.created_at),
        last_updated_timestamp=_ms(v.created_at),
        run_id=v.run_id,
        source=v.artifact.uri,
        tags=[ModelVersionTag(k, val) for k, val in v.tags.items()],
    )
    for v in VERSIONS
    if v.tags.get(IS_PROMPT_TAG) != "true"
]


def _ours(parse: object, objects: list[object], text: str) -> object:
    assert callable(parse)
    try:
        matches = parse(text)
    except InvalidInput:
        return "refused"
    return [_label(o) for o in objects if matches(o)]


def _theirs(utils: object, objects: list[object], text: str) -> object:
    try:
        return [_label(o) for o in utils.filter(objects, text)]  # type: ignore[attr-defined]
    except MlflowException:
        return "refused"


def _label(obj: object) -> str:
    version = getattr(obj, "version", None)
    name = str(getattr(obj, "name", ""))
    return f"{name}/{version}" if version is not None else name


SHARED = [
    "name = 'x' OR name = 'y'",
    "name = 'x'; DROP TABLE t",
    "x' OR '1'='1",
    "(name = 'x')",
    "owner = 'x'",
    "name > 'x'",
    "tags.a IN ('b')",
    "name = 1",
    "name IN ()",
    "tags.missing != 'x'",
    "name = 'churn' AND tags.note = \"it's\"",
    f"{PROMPT} != 'true'",
    f"{PROMPT} = 'false'",
    f"name LIKE '%' AND {PROMPT} != 'true'",
]
MODEL_FILTERS = [
    *SHARED,
    "",
    "name = 'churn'",
    'name != "churn"',
    "attribute.name = 'churn'",
    "name LIKE 'fraud%'",
    "name LIKE 'FRAUD%'",
    "name ILIKE '%RANK%'",
    "name LIKE 'chur_'",
    "name IN ('churn', 'fraud-ranker')",
    "name NOT IN ('churn')",
    "tags.team = 'payments'",
    "tag.team != 'payments'",
    "tags.team ILIKE 'PAY%'",
    "tags.`owner.email` = 'a@b'",
    "tags.owner.email = 'a@b'",
    "tags.pct LIKE '50%'",
    "name like 'fraud%' and tags.env = 'prod'",
    "version_number = 1",
]
VERSION_FILTERS = [
    *SHARED,
    "",
    "name = 'fraud'",
    "name IN ('churn')",
    "version_number = 2",
    "version_number = '2'",
    "version_number != 2",
    "version_number < 2",
    "version_number >= 2",
    "version_number IN (1)",
    "version_number LIKE '1'",
    "run_id = 'r1'",
    "run_id != 'r1'",
    "run_id IN ('r1', 'r3')",
    "run_id NOT IN ('r1')",
    "run_id LIKE 'r%'",
    "source_path = 's3://bucket/churn/2'",
    "source_path LIKE 's3://bucket/fraud/%'",
    "source_path IN ('a')",
    "tags.stage = 'old'",
    "tags.stage ILIKE 'new'",
    "tags.stage != 'old'",
    "name = 'fraud' AND version_number >= 2 AND run_id = 'r2'",
]


@pytest.mark.parametrize("text", MODEL_FILTERS)
def test_model_filter_agrees_with_mlflow(text: str) -> None:
    ours = _ours(parse_model_filter, list(MODELS), text)
    assert ours == _theirs(SearchModelUtils, list(MLFLOW_MODELS), text)


@pytest.mark.parametrize("text", VERSION_FILTERS)
def test_version_filter_agrees_with_mlflow(text: str) -> None:
    ours = _ours(parse_version_filter, list(VERSIONS), text)
    assert ours == _theirs(SearchModelVersionUtils, list(MLFLOW_VERSIONS), text)


ORDERS = [
    ["name ASC"],
    ["name DESC"],
    ["creation_timestamp"],
    ["creation_timestamp DESC"],
    ["last_updated_timestamp DESC", "name DESC"],
    ["last_updated_timestamp ASC"],
]


@pytest.mark.parametrize("order_by", [[], *ORDERS])
def test_model_order_agrees_with_mlflow(order_by: list[str]) -> None:
    mine = [m for m in MODELS if m.tags.get(IS_PROMPT_TAG) != "true"]
    theirs = SearchModelUtils.sort(MLFLOW_MODELS, order_by)
    assert [m.name for m in sort_models(mine, order_by)] == [m.name for m in theirs]


@pytest.mark.parametrize(
    "order_by",
    [*ORDERS, ["version_number ASC"], ["version_number DESC", "name DESC"]],
)
def test_version_order_agrees_with_mlflow(order_by: list[str]) -> None:
    mine = [v for v in VERSIONS if v.tags.get(IS_PROMPT_TAG) != "true"]
    theirs = SearchModelVersionUtils.sort(MLFLOW_VERSIONS, order_by)
    assert [_label(v) for v in sort_versions(mine, order_by)] == [_label(v) for v in theirs]
