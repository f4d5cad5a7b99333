"""The search filter language: text to a ``Query`` AST to one parameterised ``Select``.

A filter reads like::

    name = 'churn' and metrics.auc >= 0.8 and stage in ('staging', 'production')
    order by metrics.auc desc limit 10

Grammar (keywords and field names are case-insensitive; keys are not)::

    query      := [expr] ["order" "by" orderkey ("," orderkey)*] ["limit" INT]
    expr       := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "(" expr ")" | comparison
    comparison := field op literal
                | field ["not"] "in" "(" literal ("," literal)* ")"
                | field ["not"] "like" STRING
    op         := "=" | "!=" | "<" | "<=" | ">" | ">="
    orderkey   := field ["asc" | "desc"]
    literal    := STRING ('single' or "double" quoted, a doubled quote is a quote)
                | NUMBER (int or float, optional sign and exponent)

Fields: name, version, stage, alias, dataset, code.commit, created_at,
created_by, tags.K, metrics.K, params.K.

What a comparison means:

- Values never reach the SQL text; each one is a bound parameter.
- ``tags.K``, ``metrics.K`` and ``params.K`` test the version's attribute K.
  A version without K matches no comparison on it, negations included:
  ``tags.env != 'prod'`` means "has an env tag, and it is not 'prod'".
  ``params.K`` compares numbers with numeric params and strings with text ones.
- ``alias`` and ``dataset`` are sets: a positive test matches when any member
  matches; a negation (``!=``, ``not in``, ``not like``) matches when no member
  does, including versions with no alias or dataset at all.
  ``dataset = 'name@version'`` pins the version too; ``dataset = 'name'`` does not.
- Plain columns follow SQL: a version with no commit matches no test on ``code.commit``.
- ``created_at`` takes an ISO date or datetime; a naive one is UTC.
- ``like`` is SQL LIKE: ``%`` matches any run of characters, ``_`` one character,
  and ``\\`` makes the next character literal (``'50\\%'``); a lone ``\\`` at the end
  is refused. It compares with case, on SQLite as on PostgreSQL (SQLite runs it as
  GLOB, whose prefix still uses the column's index).
- Without ``order by`` versions come newest first; ``id desc`` always breaks ties.
  ``order by metrics.K`` (or ``params.K``) puts versions without K last either way.

Every problem is one ``InvalidInput`` line with a 1-based character position.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    exists,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from registry.errors import InvalidInput
from registry.lexing import scan
from registry.models import KEY_RE, Stage
from registry.store.sql.schema import (
    aliases_table,
    attributes_table,
    datasets_table,
    models_table,
    versions_table,
)

MAX_LENGTH = 4096
MAX_DEPTH = 32
_INT_LIMIT = 2**63

Value = str | int | float | datetime
Operand = Value | tuple[Value, ...]


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``value`` is a tuple for ``in`` and ``not in``."""

    field: str
    op: str
    value: Operand


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


Expr = Comparison | And | Or


@dataclass(frozen=True)
class Query:
    """A parsed filter; ``limit`` is None when the text gives none."""

    where: Expr | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)
    limit: int | None


# ---------------------------------------------------------------- fields


@dataclass(frozen=True)
class _Field:
    values: str  # text | int | number | any | stage | time
    like: bool = True
    ordering: bool = True  # < <= > >= allowed
    sortable: bool = True


_FIELDS: dict[str, _Field] = {
    "name": _Field("text"),
    "version": _Field("int", like=False),
    "stage": _Field("stage", like=False),
    "alias": _Field("text", sortable=False),
    "dataset": _Field("text", ordering=False, sortable=False),
    "code.commit": _Field("text"),
    "created_at": _Field("time", like=False),
    "created_by": _Field("text"),
    "tags": _Field("text", sortable=False),
    "metrics": _Field("number", like=False),
    "params": _Field("any"),
}
_KEYED = ("tags", "metrics", "params")
_FIELD_LIST = (
    "name, version, stage, alias, dataset, code.commit, created_at, created_by, "
    "tags.K, metrics.K, params.K"
)
_KEY_RULE = "a key starts with a letter or '_', then letters, digits, '_', '.', '-' (128 at most)"
_VALUE_NAMES = {
    "text": "a string",
    "int": "a whole number",
    "number": "a number",
    "stage": "a stage name string",
    "time": "an ISO date or datetime string",
}


def _split_field(field: str) -> tuple[str, str]:
    """``'tags.env'`` -> ``('tags', 'env')``; plain fields have an empty key."""
    prefix, _, key = field.partition(".")
    if prefix.lower() in _KEYED and key:
        return prefix.lower(), key
    return field.lower(), ""


# ---------------------------------------------------------------- lexer


class _Token(NamedTuple):
    kind: str  # number | string | word | op | ( | ) | , | end
    text: str
    value: Value
    pos: int  # 1-based


_TOKEN_RE = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    | (?P<op>[<>=!]+)
    | (?P<punct>[(),])
    | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    """,
    re.VERBOSE,
)
_FORBIDDEN_RE = re.compile("[\x00\ud800-\udfff]")
_KEYWORDS = frozenset(["and", "or", "not", "in", "like", "order", "by", "asc", "desc", "limit"])


def _fail(pos: int, near: str, message: str) -> InvalidInput:
    shown = repr(near[:24] + ("..." if len(near) > 24 else "")) if near else "end of filter"
    return InvalidInput(f"invalid filter at position {pos} near {shown}: {message}")


def _tokenize(text: str) -> list[_Token]:
    tokens = [_token(kind, chunk, pos) for kind, chunk, pos in scan(text, _TOKEN_RE, _lex_error)]
    tokens.append(_Token("end", "", "", len(text) + 1))
    return tokens


def _lex_error(text: str, pos: int) -> InvalidInput:
    if text[pos] in "'\"":
        return _fail(pos + 1, text[pos:], "unterminated string")
    return _fail(pos + 1, text[pos], "unexpected character")


def _token(kind: str, chunk: str, pos: int) -> _Token:
    if kind == "string":
        quote = chunk[0]
        return _Token("string", chunk, chunk[1:-1].replace(quote * 2, quote), pos)
    if kind == "number":
        return _Token("number", chunk, _number(chunk, pos), pos)
    if kind == "word" and chunk.lower() in _KEYWORDS:
        return _Token("word", chunk, chunk.lower(), pos)
    return _Token(chunk if kind == "punct" else kind, chunk, chunk, pos)


def _number(chunk: str, pos: int) -> int | float:
    if re.fullmatch(r"[+-]?[0-9]+", chunk) is None:
        number: int | float = float(chunk)
    else:
        number = int(chunk)
    # SQLite integers are 64-bit; floats only need to be finite.
    if not math.isfinite(number) or (isinstance(number, int) and abs(number) >= _INT_LIMIT):
        raise _fail(pos, chunk, "number out of range")
    return number


# ---------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the token list; ``depth`` counts open parentheses."""

    def __init__(self, text: str, max_limit: int) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.max_limit = max_limit

    @property
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.peek.kind == "word" and self.peek.value in words

    def expect(self, kind: str, what: str) -> _Token:
        if self.peek.kind != kind:
            raise self.error(f"expected {what}")
        return self.take()

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise self.error(f"expected '{word}'")
        self.take()

    def error(self, message: str, token: _Token | None = None) -> InvalidInput:
        token = token or self.peek
        return _fail(token.pos, token.text, message)

    def query(self) -> Query:
        where = None
        if not (self.at_keyword("order", "limit") or self.peek.kind == "end"):
            where = self.expr(0)
        order_by = self.order_by() if self.at_keyword("order") else ()
        limit = self.limit() if self.at_keyword("limit") else None
        if self.peek.kind != "end":
            raise self.error("expected 'and', 'or', 'order by', 'limit' or the end of the filter")
        return Query(where, order_by, limit)

    def expr(self, depth: int) -> Expr:
        items = [self.term(depth)]
        while self.at_keyword("or"):
            self.take()
            items.append(self.term(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self, depth: int) -> Expr:
        items = [self.factor(depth)]
        while self.at_keyword("and"):
            self.take()
            items.append(self.factor(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self, depth: int) -> Expr:
        if self.peek.kind != "(":
            return self.comparison()
        if depth >= MAX_DEPTH:
            raise self.error(f"parentheses nest deeper than {MAX_DEPTH} levels")
        self.take()
        inner = self.expr(depth + 1)
        self.expect(")", "')' to close the parenthesis")
        return inner

    def field(self) -> tuple[str, _Field]:
        token = self.peek
        if token.kind != "word" or token.value in _KEYWORDS:
            raise self.error(f"expected a field ({_FIELD_LIST})")
        self.take()
        base, key = _split_field(token.text)
        spec = _FIELDS.get(base)
        if spec is None:
            raise self.error(f"unknown field; valid fields are {_FIELD_LIST}", token)
        if base in _KEYED and not KEY_RE.match(key):
            raise self.error(f"{base} needs a key such as {base}.K; {_KEY_RULE}", token)
        return (f"{base}.{key}" if key else base), spec

    def comparison(self) -> Comparison:
        field, spec = self.field()
        op_token = self.peek
        op = self.operator()
        if op in ("in", "not in"):
            values = self.literal_list()
            return Comparison(field, op, tuple(self.coerce(spec, field, t) for t in values))
        if op in ("like", "not like"):
            return self.like(field, spec, op, op_token)
        if op not in ("=", "!=") and not spec.ordering:
            raise self.error(f"{field} supports =, !=, in, not in, like, not like", op_token)
        return Comparison(field, op, self.coerce(spec, field, self.literal()))

    def operator(self) -> str:
        if self.peek.kind == "op" and self.peek.text in _OPERATORS:
            return self.take().text
        negated = self.at_keyword("not")
        if negated:
            self.take()
        if self.at_keyword("in", "like"):
            word = str(self.take().value)
            return f"not {word}" if negated else word
        expected = "'in' or 'like'" if negated else "an operator (=, !=, <, <=, >, >=, in, like)"
        raise self.error(f"expected {expected}")

    def like(self, field: str, spec: _Field, op: str, op_token: _Token) -> Comparison:
        if not spec.like:
            raise self.error(f"like is not allowed on {field}", op_token)
        token = self.expect("string", "a quoted pattern after like")
        pattern = str(token.value)
        if (len(pattern) - len(pattern.rstrip("\\"))) % 2:
            raise self.error("a like pattern cannot end with a lone '\\' (it escapes)", token)
        return Comparison(field, op, pattern)

    def literal(self) -> _Token:
        if self.peek.kind not in ("string", "number"):
            raise self.error("expected a value (string or number)")
        return self.take()

    def literal_list(self) -> list[_Token]:
        self.expect("(", "'(' to start the list")
        items = [self.literal()]
        while self.peek.kind == ",":
            self.take()
            items.append(self.literal())
        self.expect(")", "',' or ')' to continue or close the list")
        return items

    def coerce(self, spec: _Field, field: str, token: _Token) -> Value:
        kind, value = spec.values, token.value
        if kind == "any":
            return value
        wanted_str = kind in ("text", "stage", "time")
        if isinstance(value, str) != wanted_str or (kind == "int" and isinstance(value, float)):
            raise self.error(f"{field} needs {_VALUE_NAMES[kind]}", token)
        try:
            return _convert(kind, value)
        except InvalidInput as exc:
            raise self.error(str(exc), token) from exc

    def order_by(self) -> tuple[tuple[str, bool], ...]:
        self.take()
        self.expect_keyword("by")
        keys = [self.order_key()]
        while self.peek.kind == ",":
            self.take()
            keys.append(self.order_key())
        return tuple(keys)

    def order_key(self) -> tuple[str, bool]:
        token = self.peek
        field, spec = self.field()
        if not spec.sortable:
            raise self.error(f"cannot order by {field}", token)
        descending = self.at_keyword("desc")
        if self.at_keyword("asc", "desc"):
            self.take()
        return field, descending

    def limit(self) -> int:
        self.take()
        token = self.peek
        if token.kind != "number" or not isinstance(token.value, int):
            raise self.error("expected a whole number after limit")
        if not 1 <= token.value <= self.max_limit:
            raise self.error(f"limit must be between 1 and {self.max_limit}")
        self.take()
        return token.value


def _convert(kind: str, value: Value) -> Value:
    if kind == "stage":
        return Stage.parse(str(value)).value
    if kind == "time":
        return _utc_datetime(str(value))
    if kind == "number":
        return float(value)  # type: ignore[arg-type]  # coerce checked it is a number
    return value


def _utc_datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"{text!r} is not an ISO date or datetime") from exc


def parse(text: str, *, max_limit: int = 10_000) -> Query:
    """Parse a filter into a ``Query`` whose values are checked and normalised."""
    if not isinstance(text, str):
        raise InvalidInput("the filter must be a string")
    if len(text) > MAX_LENGTH:
        raise _fail(MAX_LENGTH + 1, text[MAX_LENGTH:], f"longer than {MAX_LENGTH} characters")
    _check_characters(text)
    return _Parser(text, max_limit).query()


def _check_characters(text: str) -> None:
    """Refuse what no database driver accepts: NUL and unpaired surrogates."""
    bad = _FORBIDDEN_RE.search(text)
    if bad is not None:
        raise _fail(bad.start() + 1, bad.group(), "NUL and unpaired surrogates are not allowed")


# ---------------------------------------------------------------- SQL

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NEGATED = {"!=": "=", "not in": "in", "not like": "like"}
_COLUMNS: dict[str, Any] = {
    "name": models_table.c.name,
    "version": versions_table.c.version,
    "stage": versions_table.c.stage,
    "code.commit": versions_table.c.code_commit,
    "created_at": versions_table.c.created_at,
    "created_by": versions_table.c.created_by,
}
_ATTRIBUTE_KINDS = {"tags": "tag", "metrics": "metric", "params": "param"}


def search_statement(
    text: str, *, default_limit: int = 100, max_limit: int = 10_000
) -> Select[int]:
    """Compile a filter to ``SELECT model_version.id`` in result order, values bound.

    Without ``order by``, results come newest first (registration order). When the
    filter is a conjunction holding an equality on a tag, param or metric, that
    condition drives the query: its index lists matching versions in id order, so
    the newest ``limit`` are read without collecting and sorting every match, and
    the other conditions are probed per version. Otherwise attribute conditions
    are ``IN`` lists built from their indexes.
    """
    query = parse(text, max_limit=max_limit)
    limit = default_limit if query.limit is None else query.limit
    driver = None if query.order_by else _driving_comparison(query.where)
    if driver is not None:
        chosen, rest = driver
        return _driven_statement(chosen, rest).limit(limit)
    joined = versions_table.join(models_table, versions_table.c.model_id == models_table.c.id)
    statement = select(versions_table.c.id).select_from(joined)
    if query.where is not None:
        statement = statement.where(_condition(query.where))
    return statement.order_by(*_order_clauses(query.order_by)).limit(limit)


def _driving_comparison(where: Expr | None) -> tuple[Comparison, list[Expr]] | None:
    """The first ``tags|params|metrics.K = v`` (or ``in``) of a top-level conjunction."""
    items: tuple[Expr, ...] = where.items if isinstance(where, And) else (where,) if where else ()
    for index, item in enumerate(items):
        if (
            isinstance(item, Comparison)
            and item.op in ("=", "in")
            and _split_field(item.field)[0] in _ATTRIBUTE_KINDS
        ):
            return item, [x for i, x in enumerate(items) if i != index]
    return None


def _driven_statement(chosen: Comparison, rest: list[Expr]) -> Select[int]:
    base, key = _split_field(chosen.field)
    driver = attributes_table.alias("driver")
    joined = driver.join(versions_table, versions_table.c.id == driver.c.version_id).join(
        models_table, versions_table.c.model_id == models_table.c.id
    )
    conditions = [
        driver.c.kind == _ATTRIBUTE_KINDS[base],
        driver.c.key == key,
        _attribute_match(chosen.op, chosen.value, driver),
        *(_condition(item, probe=True) for item in rest),
    ]
    return (
        select(versions_table.c.id)
        .select_from(joined)
        .where(*conditions)
        .order_by(driver.c.version_id.desc())
    )


def _condition(expr: Expr, *, probe: bool = False) -> ColumnElement[bool]:
    if isinstance(expr, And):
        return and_(*(_condition(item, probe=probe) for item in expr.items))
    if isinstance(expr, Or):
        return or_(*(_condition(item, probe=probe) for item in expr.items))
    return _comparison(expr, probe=probe)


def _comparison(comparison: Comparison, *, probe: bool = False) -> ColumnElement[bool]:
    base, key = _split_field(comparison.field)
    op, value = comparison.op, comparison.value
    if base in _COLUMNS:
        return _test(_COLUMNS[base], op, value)
    if base in _ATTRIBUTE_KINDS:
        return _attribute_test(_ATTRIBUTE_KINDS[base], key, op, value, probe=probe)
    if base == "alias":
        rows = select(aliases_table.c.version_id)
        return _membership(rows.where(_test(aliases_table.c.alias, _positive(op), value)), op)
    if base == "dataset":
        rows = select(datasets_table.c.version_id)
        return _membership(rows.where(_dataset_match(_positive(op), value)), op)
    raise InvalidInput(f"unknown field {comparison.field!r}; valid fields are {_FIELD_LIST}")


def _test(column: Any, op: str, value: Operand) -> ColumnElement[bool]:
    if op == "in":
        return column.in_(value)  # type: ignore[no-any-return]
    if op == "not in":
        return column.not_in(value)  # type: ignore[no-any-return]
    if op in ("like", "not like"):
        return _Like(column, str(value), negated=op == "not like")
    return _OPERATORS[op](column, value)  # type: ignore[no-any-return]


class _LikePattern(TypeDecorator[str]):
    """A ``like`` pattern as bound: SQLite receives it translated to GLOB's syntax."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or dialect.name != "sqlite":
            return value
        return _glob_pattern(value)

    def process_literal_param(self, value: str | None, dialect: Any) -> str:
        return self.process_bind_param(value, dialect) or ""  # patterns are never NULL


def _glob_pattern(like: str) -> str:
    """``%`` → ``*``, ``_`` → ``?``; escaped and GLOB-special characters as ``[c]``."""
    out: list[str] = []
    chars = iter(like)
    for char in chars:
        if char == "\\":
            out.append(_glob_literal(next(chars, "")))  # the parser refuses a lone one
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in ("*", "?", "[") else char


class _Like(ColumnElement[bool]):
    """``column [NOT] LIKE pattern``, case-sensitive on both backends.

    SQLite's LIKE ignores ASCII case (and its index optimisation then needs a NOCASE
    index); its GLOB compares exactly, as PostgreSQL's LIKE does, and a GLOB prefix
    is a range on an ordinary index. The pattern is one bound value either way: the
    type translates it at bind time, so cached compiled statements stay correct.
    """

    inherit_cache = True
    _is_implicitly_boolean = True  # a comparison: no "= 1" after it in a WHERE on SQLite
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
        ("negated", InternalTraversal.dp_boolean),
    ]
    type = Boolean()

    def __init__(self, column: Any, pattern: str, *, negated: bool = False) -> None:
        self.column = column
        self.pattern_text = pattern
        self.pattern = bindparam(None, pattern, type_=_LikePattern())
        self.negated = negated

    def _negate(self) -> _Like:
        return _Like(self.column, self.pattern_text, negated=not self.negated)

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects  # type: ignore[no-any-return]


def _render_like(element: _Like, compiler: SQLCompiler, operator: str, **kw: Any) -> str:
    negation = "NOT " if element.negated else ""
    column = compiler.process(element.column, **kw)
    return f"{column} {negation}{operator} {compiler.process(element.pattern, **kw)}"


@compiles(_Like)
def _compile_like(element: _Like, compiler: SQLCompiler, **kw: Any) -> str:
    return _render_like(element, compiler, "LIKE", **kw)  # PostgreSQL: '\\' escapes


@compiles(_Like, "sqlite")
def _compile_glob(element: _Like, compiler: SQLCompiler, **kw: Any) -> str:
    return _render_like(element, compiler, "GLOB", **kw)


def _positive(op: str) -> str:
    return _NEGATED.get(op, op)


def _membership(rows: Select[Any], op: str) -> ColumnElement[bool]:
    """Versions in ``rows``, or for a negated op, versions not in them."""
    if op in _NEGATED:
        return versions_table.c.id.not_in(rows)  # type: ignore[no-any-return]
    return versions_table.c.id.in_(rows)  # type: ignore[no-any-return]


def _dataset_match(op: str, value: Operand) -> ColumnElement[bool]:
    if op == "like":
        return _Like(datasets_table.c.name, str(value))
    values = value if isinstance(value, tuple) else (value,)
    return or_(*(_dataset_is(str(item)) for item in values))


def _dataset_is(ref: str) -> ColumnElement[bool]:
    name, at, version = ref.rpartition("@")
    if not (at and name and version):
        return datasets_table.c.name == ref  # type: ignore[no-any-return]
    return and_(datasets_table.c.name == name, datasets_table.c.version == version)


def _attribute_test(
    kind: str, key: str, op: str, value: Operand, *, probe: bool = False
) -> ColumnElement[bool]:
    """Versions having attribute ``key`` whose value passes (or, negated, fails) ``op``.

    As ``IN (SELECT version_id ...)`` the database drives from the (kind, key,
    text|num) indexes; with ``probe`` (another condition drives) it is an
    ``EXISTS`` that looks up the version's own attribute row by primary key.
    """
    a = attributes_table
    match = _attribute_match(_positive(op), value, a)
    tests = (a.c.kind == kind, a.c.key == key, not_(match) if op in _NEGATED else match)
    if probe:
        return exists().where(a.c.version_id == versions_table.c.id, *tests)
    return versions_table.c.id.in_(select(a.c.version_id).where(*tests))  # type: ignore[no-any-return]


def _attribute_match(op: str, value: Operand, table: Any) -> ColumnElement[bool]:
    """Never NULL, so that its negation is exactly the other rows with the key."""
    values = value if isinstance(value, tuple) else (value,)
    texts = [item for item in values if isinstance(item, str)]
    numbers = [float(item) for item in values if isinstance(item, int | float)]
    tests: list[ColumnElement[bool]] = []
    for column, items in ((table.c.text, texts), (table.c.num, numbers)):
        if items:
            operand: Operand = tuple(items) if op == "in" else items[0]
            tests.append(and_(column.is_not(None), _test(column, op, operand)))
    return or_(*tests)


def _order_clauses(order_by: Sequence[tuple[str, bool]]) -> list[ColumnElement[Any]]:
    clauses: list[ColumnElement[Any]] = []
    for field, descending in order_by:
        for expression in _sort_expressions(field):
            clauses.extend(_nulls_last(expression, descending))
    clauses.append(versions_table.c.id.desc())
    return clauses


def _sort_expressions(field: str) -> list[Any]:
    base, key = _split_field(field)
    if base in _COLUMNS:
        return [_COLUMNS[base]]
    kind = _ATTRIBUTE_KINDS.get(base)
    if kind not in ("metric", "param"):
        raise InvalidInput(f"cannot order by {field}")
    columns = [attributes_table.c.num] + ([attributes_table.c.text] if kind == "param" else [])
    return [_attribute_value(kind, key, column) for column in columns]


def _attribute_value(kind: str, key: str, column: Any) -> Any:
    return (
        select(column)
        .where(
            attributes_table.c.version_id == versions_table.c.id,
            attributes_table.c.kind == kind,
            attributes_table.c.key == key,
        )
        .correlate(versions_table)
        .scalar_subquery()
    )


def _nulls_last(expression: Any, descending: bool) -> list[ColumnElement[Any]]:
    """``(x IS NULL), x``: NULLS LAST that SQLite and PostgreSQL both understand."""
    ordered = expression.desc() if descending else expression.asc()
    if isinstance(expression, ColumnElement) and getattr(expression, "nullable", True):
        return [expression.is_(None), ordered]
    return [ordered]


# ---------------------------------------------------------------- narrowing to a grant


def within(text: str, models: Sequence[str]) -> str:
    """``text`` narrowed to versions of ``models`` (names, or ``ns/*`` for a namespace):
    what a scoped token's search runs, so its ``limit`` counts only what it may see.

    The text is parsed first, so its own errors keep their positions; the condition is
    joined before its ``order by`` or ``limit``, with ``and`` (parenthesised only when
    the filter is an ``or``, so a conjunction keeps its driving index condition).
    """
    query = parse(text)
    tests = [
        f"name like '{m[:-1]}%'" if m.endswith("/*") else f"name = '{m}'"
        for m in dict.fromkeys(models)
    ]
    scope = tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"
    cut = next(
        (t.pos - 1 for t in _tokenize(text) if t.kind == "word" and t.value in ("order", "limit")),
        len(text),
    )
    head, tail = text[:cut].strip(), text[cut:]
    if query.where is None:
        return f"{scope} {tail}"
    where = f"({head})" if isinstance(query.where, Or) else head
    return f"{where} and {scope} {tail}"
