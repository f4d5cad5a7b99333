"""MLflow's registry search requests over modelreg's own objects: filters, order and pages.

Pure Python: no SQL and no ``mlflow`` import. The behaviour follows MLflow's server
(``mlflow/utils/search_utils.py`` and the SQL registry store, 3.17)::

    filter  := [clause ("AND" clause)*]            AND in any case; no OR, no parentheses
    clause  := field op value
    field   := name | version_number | run_id | source_path      (versions: all four)
             | name                                              (registered models)
             | attribute.<one of those> | tag.KEY | tags.KEY
    KEY     := word("." word)* | `anything but a backquote`      (tags.`mlflow.prompt.is_prompt`)
    value   := 'string' | "string" | INTEGER | "(" string ("," string)* ")"

Operators per field: ``name`` and ``run_id`` take ``=``, ``!=``, ``LIKE``, ``ILIKE``,
``IN``, ``NOT IN``; ``source_path`` (the version's artifact URI) the first four; tags
``=``, ``!=``, ``LIKE``, ``ILIKE``; ``version_number`` ``=``, ``!=``, ``<``, ``<=``,
``>``, ``>=`` with a whole number (bare or quoted, as MLflow accepts ``'3'``).

What a clause means:

- ``LIKE`` is case-sensitive and ``ILIKE`` is not; ``%`` matches any run of
  characters and ``_`` one character. There is no escape character: ``\\`` is literal,
  as in MLflow's own Python matcher. Inside a string a doubled quote is one quote.
- A missing value matches nothing, negations included: a version without a run id
  matches no ``run_id`` clause, one without tag K no ``tags.K`` clause.
- Prompts: MLflow stores prompts as registered models tagged
  ``mlflow.prompt.is_prompt = 'true'``, and its client appends
  ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every registered-model search. As in
  MLflow's SQL store, a filter that does not ask for prompts (``= 'true'`` or
  ``!= 'false'`` on that tag) leaves prompts out and ignores its other clauses on
  that tag, so an object without the tag matches ``!= 'true'`` and ``= 'false'``;
  a filter that asks for prompts treats the tag like any other.

Every problem is one ``InvalidInput`` line; the text is never run anywhere, so
``'; DROP TABLE`` or ``OR 1=1`` are only refused as malformed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from registry.errors import InvalidInput
from registry.lexing import scan
from registry.models import ModelVersion, RegisteredModel

T = TypeVar("T")

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
MAX_FILTER_LENGTH = 16_384  # long enough for the UI's ``run_id IN (...)`` over many runs
MAX_TAG_KEY = 250  # MLflow's limit on a tag key

# MLflow's page sizes. search_registered_models: 100 unless asked, at most 1,000.
# search_model_versions: the REST message's default is 200,000, which is also the
# maximum (MLflow's Python client asks for 10,000).
MODELS_MAX_RESULTS_DEFAULT = 100
MODELS_MAX_RESULTS_LIMIT = 1_000
VERSIONS_MAX_RESULTS_DEFAULT = 200_000
VERSIONS_MAX_RESULTS_LIMIT = 200_000

_INT_LIMIT = 2**63
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TEXT_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_TAG_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_MODEL_FIELDS: dict[str, tuple[str, ...]] = {"name": _TEXT_OPS}
_VERSION_FIELDS: dict[str, tuple[str, ...]] = {
    "name": _TEXT_OPS,
    "version_number": _NUMBER_OPS,
    "run_id": _TEXT_OPS,
    "source_path": _TAG_OPS,
}


# ---------------------------------------------------------------- clauses


@dataclass(frozen=True)
class LikePattern:
    """A LIKE pattern cut at each ``%``; each piece has a fixed length (``_`` is one character).

    Matching places the pieces leftmost, in order, between the anchored first and
    last ones: nothing is tried twice, where a regex of ``.*`` runs can backtrack for ever.
    """

    pieces: tuple[re.Pattern[str], ...]
    lengths: tuple[int, ...]

    @classmethod
    def compile(cls, pattern: str, *, ignore_case: bool) -> LikePattern:
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        texts = pattern.split("%")
        pieces = tuple(
            re.compile("".join("." if ch == "_" else re.escape(ch) for ch in text), flags)
            for text in texts
        )
        return cls(pieces, tuple(len(text) for text in texts))

    def matches(self, text: str) -> bool:
        if len(self.pieces) == 1:
            return self.pieces[0].fullmatch(text) is not None
        if self.pieces[0].match(text) is None:
            return False
        start, end = self.lengths[0], len(text) - self.lengths[-1]
        if end < start or self.pieces[-1].fullmatch(text, end) is None:
            return False
        for piece, length in zip(self.pieces[1:-1], self.lengths[1:-1], strict=True):
            if length:
                found = piece.search(text, start, end)
                if found is None:
                    return False
                start = found.end()
        return True


@dataclass(frozen=True)
class Clause:
    """``field op value``; ``field`` is ``tag`` for ``tags.K`` (``key`` is K)."""

    field: str
    key: str | None
    op: str
    value: str | int | tuple[str, ...]
    like: LikePattern | None = None

    def holds(self, actual: str | int | None) -> bool:
        if actual is None:
            return False
        if self.like is not None:
            return self.like.matches(str(actual))
        if isinstance(self.value, tuple):
            return (actual in self.value) == (self.op == "IN")
        return _COMPARE[self.op](actual, self.value)


@dataclass(frozen=True)
class _Filter:
    clauses: tuple[Clause, ...]
    wants_prompts: bool  # the filter asks for prompts; otherwise they are left out

    @property
    def exact_name(self) -> str | None:
        """The name a ``name = 'x'`` clause pins, so a caller can read one model, not all."""
        for clause in self.clauses:
            if clause.field == "name" and clause.op == "=" and isinstance(clause.value, str):
                return clause.value
        return None

    def _matches(
        self, tags: Mapping[str, str], attribute: Callable[[str], str | int | None]
    ) -> bool:
        if not self.wants_prompts and tags.get(IS_PROMPT_TAG) == "true":
            return False
        return all(
            clause.holds(
                tags.get(clause.key or "") if clause.field == "tag" else attribute(clause.field)
            )
            for clause in self.clauses
        )


class ModelFilter(_Filter):
    """A parsed registered-model filter: call it on a ``RegisteredModel``."""

    def __call__(self, model: RegisteredModel) -> bool:
        return self._matches(model.tags, lambda field: model.name)


class VersionFilter(_Filter):
    """A parsed model-version filter: call it on a ``ModelVersion``."""

    def __call__(self, version: ModelVersion) -> bool:
        values: dict[str, str | int | None] = {
            "name": version.name,
            "version_number": version.version,
            "run_id": version.run_id,
            "source_path": version.artifact.uri,
        }
        return self._matches(version.tags, values.__getitem__)


def parse_model_filter(text: str | None) -> ModelFilter:
    """Parse a ``search_registered_models`` filter; None or "" matches all but prompts."""
    clauses = _parse(text, _MODEL_FIELDS, "registered model")
    wants = _wants_prompts(clauses)
    return ModelFilter(_without_prompt_clauses(clauses, wants), wants)


def parse_version_filter(text: str | None) -> VersionFilter:
    """Parse a ``search_model_versions`` filter; None or "" matches all but prompts'."""
    clauses = _parse(text, _VERSION_FIELDS, "model version")
    wants = _wants_prompts(clauses)
    return VersionFilter(_without_prompt_clauses(clauses, wants), wants)


def _wants_prompts(clauses: Sequence[Clause]) -> bool:
    # MLflow decides on the first clause about the prompt tag, comparing without case.
    for clause in clauses:
        if clause.field == "tag" and clause.key == IS_PROMPT_TAG:
            value = str(clause.value).lower()
            return (clause.op, value) in (("=", "true"), ("!=", "false"))
    return False


def _without_prompt_clauses(clauses: Sequence[Clause], wants_prompts: bool) -> tuple[Clause, ...]:
    if wants_prompts:
        return tuple(clauses)
    return tuple(c for c in clauses if not (c.field == "tag" and c.key == IS_PROMPT_TAG))


# ---------------------------------------------------------------- lexer


class _Token(NamedTuple):
    kind: str  # ident | keyword | string | number | op | ( | ) | , | end
    text: str
    value: Any  # ident: the dotted parts; keyword: upper case; string: the unquoted text
    pos: int  # 1-based


_TOKEN_RE = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<ident>(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`))*)
    | (?P<op>[<>=!]+)
    | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_PART_RE = re.compile(r"`[^`]+`|[^.`]+")
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_KEYWORDS = frozenset(["AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"])


def _fail(pos: int, near: str, message: str) -> InvalidInput:
    shown = repr(near[:24] + ("..." if len(near) > 24 else "")) if near else "the end"
    return InvalidInput(f"invalid filter at position {pos} near {shown}: {message}")


def _tokenize(text: str) -> list[_Token]:
    tokens = [_token(kind, chunk, pos) for kind, chunk, pos in scan(text, _TOKEN_RE, _lex_error)]
    tokens.append(_Token("end", "", None, len(text) + 1))
    return tokens


def _lex_error(text: str, pos: int) -> InvalidInput:
    char = text[pos]
    if char in "'\"":
        return _fail(pos + 1, text[pos:], "unterminated string")
    if char == "`" or text.startswith(".`", pos):
        return _fail(pos + 1, text[pos:], "unterminated or empty backquoted name")
    if char == ";":
        return _fail(pos + 1, text[pos:], "';' is not allowed: a filter is one expression")
    return _fail(pos + 1, text[pos:], f"unexpected character {char!r}")


def _token(kind: str, chunk: str, pos: int) -> _Token:
    if kind == "string":
        quote = chunk[0]
        return _Token("string", chunk, chunk[1:-1].replace(quote * 2, quote), pos)
    if kind == "ident":
        if chunk.upper() in _KEYWORDS:
            return _Token("keyword", chunk, chunk.upper(), pos)
        parts = tuple(p.strip("`") for p in _PART_RE.findall(chunk))
        return _Token("ident", chunk, parts, pos)
    if kind == "punct":
        return _Token(chunk, chunk, chunk, pos)
    return _Token(kind, chunk, chunk, pos)


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, tuple[str, ...]], what: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.fields = fields
        self.what = what

    @property
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at(self, kind: str, *values: str) -> bool:
        return self.peek.kind == kind and (not values or self.peek.value in values)

    def error(self, message: str, token: _Token | None = None) -> InvalidInput:
        token = token or self.peek
        return _fail(token.pos, token.text, message)

    def clauses(self) -> list[Clause]:
        if self.at("end"):
            return []
        clauses = [self.clause()]
        while self.at("keyword", "AND"):
            self.take()
            clauses.append(self.clause())
        if self.at("keyword", "OR"):
            raise self.error("OR is not supported: MLflow filters join clauses with AND only")
        if not self.at("end"):
            raise self.error("expected AND or the end of the filter")
        return clauses

    def clause(self) -> Clause:
        if self.at("("):
            raise self.error("parentheses are not supported: join clauses with AND")
        field, key = self.field()
        op_token = self.peek
        op = self.operator()
        allowed = _TAG_OPS if field == "tag" else self.fields[field]
        shown = f"tags.{key}" if field == "tag" else field
        if op not in allowed:
            raise self.error(f"{shown} supports {', '.join(allowed)}", op_token)
        if op in ("IN", "NOT IN"):
            return Clause(field, key, op, self.string_list())
        if field == "version_number":
            return Clause(field, key, op, self.whole_number())
        value = self.string(shown)
        like = LikePattern.compile(value, ignore_case=op == "ILIKE") if "LIKE" in op else None
        return Clause(field, key, op, value, like)

    def field(self) -> tuple[str, str | None]:
        token = self.peek
        expected = f"an attribute ({', '.join(self.fields)}) or tags.KEY"
        if token.kind != "ident":
            raise self.error(f"expected {expected}")
        self.take()
        prefix, *rest = token.value
        if prefix in ("tag", "tags") and rest:
            key = ".".join(rest)
            if len(key) > MAX_TAG_KEY:
                raise self.error(f"tag key longer than {MAX_TAG_KEY} characters", token)
            return "tag", key
        if prefix == "attribute" and len(rest) == 1:
            prefix, rest = rest[0], []
        if rest or prefix not in self.fields:
            raise self.error(f"unknown {self.what} attribute; expected {expected}", token)
        return prefix, None

    def operator(self) -> str:
        token = self.peek
        if token.kind == "op":
            if token.text not in _COMPARE:
                raise self.error("unknown operator; use =, !=, <, <=, >, >=, LIKE, ILIKE, IN")
            return self.take().text
        if self.at("keyword", "LIKE", "ILIKE", "IN"):
            return str(self.take().value)
        if self.at("keyword", "NOT"):
            self.take()
            if not self.at("keyword", "IN"):
                raise self.error("expected IN after NOT")
            self.take()
            return "NOT IN"
        if self.at("keyword", "IS"):
            raise self.error("IS NULL and IS NOT NULL are not supported in registry searches")
        raise self.error("expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)")

    def string(self, shown: str) -> str:
        if not self.at("string"):
            raise self.error(f"{shown} needs a quoted string value")
        return str(self.take().value)

    def string_list(self) -> tuple[str, ...]:
        if not self.at("("):
            raise self.error("expected '(' and a list of quoted strings")
        self.take()
        items = [self.string("a list")]
        while self.at(","):
            self.take()
            items.append(self.string("a list"))
        if not self.at(")"):
            raise self.error("expected ',' or ')' in the list")
        self.take()
        return tuple(items)

    def whole_number(self) -> int:
        token = self.peek
        text = str(token.value).strip() if token.kind == "string" else token.text
        if token.kind not in ("number", "string") or not re.fullmatch(r"[+-]?[0-9]{1,19}", text):
            raise self.error("version_number needs a whole number")
        self.take()
        number = int(text)
        if abs(number) >= _INT_LIMIT:
            raise self.error("version_number out of range", token)
        return number


def _parse(text: str | None, fields: Mapping[str, tuple[str, ...]], what: str) -> list[Clause]:
    if text is None:
        return []
    if not isinstance(text, str):
        raise InvalidInput("the filter must be a string")
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInput(f"invalid filter: longer than {MAX_FILTER_LENGTH} characters")
    bad = _CONTROL_RE.search(text)
    if bad is not None:
        raise _fail(bad.start() + 1, "", "control characters and lone surrogates are not allowed")
    return _Parser(text, fields, what).clauses()


# ---------------------------------------------------------------- order


def _model_updated(model: RegisteredModel) -> datetime:
    return model.updated_at or model.created_at  # MLflow's rule (see RegisteredModel)


_MODEL_KEYS: dict[str, Callable[[RegisteredModel], Any]] = {
    "name": lambda m: m.name,
    "creation_timestamp": lambda m: m.created_at,
    "last_updated_timestamp": _model_updated,
}
# MLflow's SQL store also takes ``timestamp`` for registered models, as the update time.
_MODEL_ALIASES = {"timestamp": "last_updated_timestamp"}
_VERSION_KEYS: dict[str, Callable[[ModelVersion], Any]] = {
    "name": lambda v: v.name,
    "version_number": lambda v: v.version,
    "creation_timestamp": lambda v: v.created_at,
    # modelreg keeps no per-version update time yet: a version's tags, stage and
    # description changes are events on the model, so "last updated" is its creation.
    "last_updated_timestamp": lambda v: v.created_at,
}
_VERSION_DEFAULT_ORDER = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")
_ORDER_RE = re.compile(r"\s*(`?)([A-Za-z_][A-Za-z0-9_]*)\1(?:\s+([A-Za-z]+))?\s*")


def _parse_order(
    order_by: Sequence[str], keys: Mapping[str, object], aliases: Mapping[str, str]
) -> list[tuple[str, bool]]:
    """``["name DESC", ...]`` -> ``[("name", True), ...]`` (key, descending)."""
    if isinstance(order_by, str):
        order_by = [order_by]
    parsed: list[tuple[str, bool]] = []
    for item in order_by:
        match = _ORDER_RE.fullmatch(item) if isinstance(item, str) else None
        direction = (match.group(3) or "ASC").upper() if match else ""
        if match is None or direction not in ("ASC", "DESC"):
            shown = repr(item[:64]) if isinstance(item, str) else "a non-string"
            raise InvalidInput(f"invalid order_by {shown}: expected 'KEY [ASC|DESC]'")
        key = aliases.get(match.group(2), match.group(2))
        if key not in keys:
            raise InvalidInput(
                f"invalid order_by key {match.group(2)!r}; valid keys are {', '.join(keys)}"
            )
        if any(key == seen for seen, _ in parsed):
            raise InvalidInput(f"order_by names {key} twice")
        parsed.append((key, direction == "DESC"))
    return parsed


def _sorted(items: Sequence[T], order: Sequence[tuple[Callable[[T], Any], bool]]) -> list[T]:
    result = list(items)
    # Stable sorts from the last key to the first: ties keep the later keys' order.
    for value, descending in reversed(order):
        result.sort(key=value, reverse=descending)
    return result


def sort_models(
    models: Sequence[RegisteredModel], order_by: Sequence[str] | None
) -> list[RegisteredModel]:
    """Order as MLflow does: the given keys, then ``name ASC`` unless name was one of them.

    Keys: ``name``, ``creation_timestamp``, ``last_updated_timestamp`` (``timestamp``
    is the same key); each takes ``ASC`` (the default) or ``DESC``. A key named twice,
    an unknown key or direction is ``InvalidInput``.
    """
    order = _parse_order(order_by or (), _MODEL_KEYS, _MODEL_ALIASES)
    if all(key != "name" for key, _ in order):
        order.append(("name", False))
    return _sorted(models, [(_MODEL_KEYS[key], desc) for key, desc in order])


def sort_versions(
    versions: Sequence[ModelVersion], order_by: Sequence[str] | None
) -> list[ModelVersion]:
    """Order as MLflow's SQL store does: the given keys, else ``last_updated_timestamp
    DESC``; then ``name ASC`` and ``version_number DESC`` unless already named.

    Keys: ``name``, ``version_number``, ``creation_timestamp``, ``last_updated_timestamp``.
    """
    order = _parse_order(order_by or _VERSION_DEFAULT_ORDER, _VERSION_KEYS, {})
    if all(key != "name" for key, _ in order):
        order.append(("name", False))
    if all(key != "version_number" for key, _ in order):
        order.append(("version_number", True))
    return _sorted(versions, [(_VERSION_KEYS[key], desc) for key, desc in order])


# ---------------------------------------------------------------- pages

_TOKEN_CHARS_RE = re.compile(r"[A-Za-z0-9_-]{1,256}={0,2}")


def query_key(kind: str, filter_text: str | None, order_by: Sequence[str] | None) -> str:
    """What a page token is bound to: the search kind, its filter and its order."""
    order = [order_by] if isinstance(order_by, str) else list(order_by or ())
    return json.dumps([kind, filter_text or "", order], separators=(",", ":"))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _encode_token(offset: int, key: str) -> str:
    raw = json.dumps({"offset": offset, "query": _digest(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, key: str) -> int:
    """The offset a token carries; ``InvalidInput`` if it is malformed or another query's."""
    if not isinstance(token, str) or not _TOKEN_CHARS_RE.fullmatch(token):
        raise InvalidInput("invalid page_token: not a token this server issued")
    bare = token.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("invalid page_token: not a token this server issued") from exc
    if not isinstance(data, dict) or set(data) != {"offset", "query"}:
        raise InvalidInput("invalid page_token: not a token this server issued")
    offset = data["offset"]
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 1:
        raise InvalidInput("invalid page_token: not a token this server issued")
    if data["query"] != _digest(key):
        raise InvalidInput(
            "invalid page_token: it belongs to a search with another filter or order_by"
        )
    return offset


def page(
    items: Sequence[T],
    *,
    max_results: int | None,
    page_token: str | None,
    query_key: str,
    default_max: int,
    limit: int,
) -> tuple[list[T], str | None]:
    """One page of ``items`` (already filtered and sorted) and the token of the next.

    ``max_results`` None means ``default_max``; below 1 or above ``limit`` is
    ``InvalidInput``. ``page_token`` None or "" starts at the top; a token is bound to
    ``query_key`` (see ``query_key()``), so one from another filter or order is refused.
    The next token is None on the last page. Page sizes may change between pages.
    """
    size = default_max if max_results is None else max_results
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= limit:
        raise InvalidInput(f"invalid max_results {max_results!r}: expected 1 to {limit}")
    offset = _decode_token(page_token, query_key) if page_token else 0
    end = offset + size
    next_token = _encode_token(end, query_key) if end < len(items) else None
    return list(items[offset:end]), next_token
