"""Domain schemas: what a user writes (``*Create``) and what the registry returns.

Input shapes validate once, here, at the edge; everything below trusts them.
Output shapes are frozen plain objects, never ORM rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from registry.errors import InvalidInput


class Stage(StrEnum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, text: str) -> Stage:
        for stage in cls:
            if stage.value.lower() == text.strip().lower():
                return stage
        choices = ", ".join(s.value for s in cls)
        raise InvalidInput(f"unknown stage {text!r}; expected one of {choices}")


_SEGMENT = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
MODEL_NAME_RE = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT})?$")
ALIAS_RE = re.compile(rf"^{_SEGMENT}$")
# Keys are addressed as ``metrics.K`` in the filter language, so they must lex as one word.
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
# Aliases that would read as a stage are reserved: ``model@production`` always means the stage.
RESERVED_ALIASES = frozenset(s.value.lower() for s in Stage) | {"latest"}

DTYPES = frozenset(
    [
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "category",
        "string",
        "object",
        "datetime64[ns]",
        "datetime64[us]",
        "datetime64[ms]",
        "datetime64[s]",
        "timedelta64[ns]",
        "date",
    ]
)


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"invalid model name {name!r}: use lowercase letters, digits and '-' "
            "(1-64 chars, no leading/trailing '-'), optionally 'namespace/name'"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: use lowercase letters, digits and '-' (1-64 chars)"
        )
    if alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"alias {alias!r} is reserved: it names a stage; use promote/rollback to move it"
        )
    return alias


def check_key(key: str, what: str) -> str:
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise InvalidInput(
            f"invalid {what} key {key!r}: start with a letter or '_', then letters, "
            "digits, '_', '.', '-' (at most 128 chars)"
        )
    return key


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"invalid version {version!r}: expected a whole number >= 1")
    return version


def validation_message(exc: ValidationError) -> str:
    """One line out of pydantic's multi-line report: the first problem and where."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    msg = first.get("msg", "invalid value")
    more = len(exc.errors()) - 1
    tail = f" (+{more} more)" if more else ""
    return f"{where}: {msg}{tail}" if where else f"{msg}{tail}"


ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Input):
    name: ShortText
    dtype: str

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"unknown dtype {value!r}; expected one of {sorted(DTYPES)}")
        return value


class Signature(_Input):
    """Ordered input features, target and preprocessing version of a model."""

    features: list[Feature] = Field(min_length=1)
    target: Feature | None = None
    preprocessing_version: ShortText | None = None

    @field_validator("features")
    @classmethod
    def _unique_names(cls, features: list[Feature]) -> list[Feature]:
        seen: set[str] = set()
        for feature in features:
            if feature.name in seen:
                raise ValueError(f"feature {feature.name!r} appears twice")
            seen.add(feature.name)
        return features


class DatasetRef(_Input):
    name: ShortText
    version: ShortText
    fingerprint: ShortText | None = None
    rows: int | None = Field(default=None, ge=0)
    date_range: tuple[date, date] | None = None

    @field_validator("date_range")
    @classmethod
    def _ordered(cls, value: tuple[date, date] | None) -> tuple[date, date] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError("date_range starts after it ends")
        return value


class CodeRef(_Input):
    repository: ShortText | None = None
    commit: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{4,64}$")] | None = None
    branch: ShortText | None = None


class Lineage(_Input):
    datasets: list[DatasetRef] = Field(default_factory=list)
    feature_pipeline: ShortText | None = None
    code: CodeRef | None = None


class Environment(_Input):
    python: ShortText | None = None
    packages: dict[ShortText, ShortText] = Field(default_factory=dict)


ParamValue = str | int | float | bool | None


class VersionCreate(_Input):
    """Registration metadata as a training run writes it (``meta.json``)."""

    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    tags: dict[str, Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=dict
    )
    signature: Signature | None = None
    lineage: Lineage = Field(default_factory=Lineage)
    environment: Environment = Field(default_factory=Environment)
    run_id: ShortText | None = None
    idempotency_key: ShortText | None = None
    description: Annotated[str, StringConstraints(max_length=4096)] | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _finite_metrics(cls, metrics: Any) -> Any:
        if not isinstance(metrics, dict):
            return metrics
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"metric {key!r} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"metric {key!r} must be finite, got {value!r}")
        return metrics

    @field_validator("params")
    @classmethod
    def _finite_params(cls, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        for key, value in params.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"param {key!r} must be finite, got {value!r}")
            if isinstance(value, str) and len(value) > 4096:
                raise ValueError(f"param {key!r} is longer than 4096 characters")
        return params

    @model_validator(mode="after")
    def _keys(self) -> VersionCreate:
        for what, mapping in (
            ("metric", self.metrics),
            ("param", self.params),
            ("tag", self.tags),
        ):
            for key in mapping:
                if not KEY_RE.fullmatch(key):
                    raise ValueError(f"invalid {what} key {key!r}")
        return self

    @classmethod
    def parse(cls, data: Any) -> VersionCreate:
        """Validate user metadata; any problem becomes one ``InvalidInput`` line."""
        if isinstance(data, VersionCreate):
            return data
        if not isinstance(data, dict):
            raise InvalidInput("metadata must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"invalid metadata: {validation_message(exc)}") from exc


# A version whose bytes the registry could not read, only record (an MLflow ``runs:/``
# source, say): its ArtifactRef is a small JSON naming the source. Unverified: the
# release policy keeps it out of Production unless ``allow_unverified``.
EXTERNAL_FORMAT = "external"


class ArtifactRef(_Input):
    """Where a version's bytes live and how to check them."""

    uri: ShortText
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=0)
    format: ShortText = "skops"


# ---------------------------------------------------------------- outputs


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class ModelVersion(_Output):
    name: str
    version: int
    stage: Stage
    aliases: tuple[str, ...] = ()
    artifact: ArtifactRef
    signature: Signature | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)
    environment: Environment = Field(default_factory=Environment)
    run_id: str | None = None
    idempotency_key: str | None = None
    description: str | None = None
    created_by: str
    created_at: datetime


EventKind = Literal[
    "model.created",
    "version.registered",
    "stage",
    "alias",
    "rollback",
    "tags",
    "description",
    "refused",  # a gate said no: ``details.reasons`` says why, ``subject`` what was refused
    "policy",  # a new release policy version (``to_value``)
    "approval",  # a person signed off on a version
    "binding",  # an app release (``subject`` = app@release) bound to a version or pointer
    "model.renamed",  # ``from_value`` -> ``to_value``
    "version.deleted",  # a version that never served (``from_value``: its stage then)
    "model.deleted",  # every version gone; the history stays, under a tombstone name
    "artifact.collected",  # gc removed bytes a version had (``subject``: the store)
    "erasure.requested",  # an erasure request flagged live versions (``subject``: the request)
    "erasure.justified",  # a flagged version was kept, with the recorded reason
    "erasure.retrained",  # a flagged version was replaced by one trained without the subject
]

# What ``history`` shows by default: the changes of what serves and of the rules for it
# (stage moves, forced ones among them as ``details.forced``; alias moves, rollbacks,
# refusals, policies, approvals, release bindings, renames, whole-model deletes and
# erasure obligations). Left out are the bulk ones a retraining schedule writes by the
# thousand and that move no pointer: registrations, tags, descriptions, deletions of
# versions that never served, and artifact collection (``--all`` shows them).
POINTER_KINDS: frozenset[str] = frozenset(
    {
        "stage",
        "alias",
        "rollback",
        "refused",
        "policy",
        "approval",
        "binding",
        "model.renamed",
        "model.deleted",
        "erasure.requested",
        "erasure.justified",
        "erasure.retrained",
    }
)


EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))
MAX_PAGE = 10_000  # the most one page of any list holds; there is no other cap


_INT64_MAX = 2**63 - 1  # the widest integer a database column takes back


def _whole(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(f"{what} must be a whole number, not {value!r}")
    if value is not None and abs(value) > _INT64_MAX:
        raise InvalidInput(f"{what} is out of range: {value}")


def check_limit(limit: Any) -> int:
    _whole(limit, "limit")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    return int(limit)


def check_event_page(since: Any, limit: Any, before: Any) -> None:
    """The bounds of a page of events, checked alike at every door."""
    _whole(since, "since")
    _whole(before, "before")
    check_limit(limit)
    if since is None or since < 0:
        raise InvalidInput(f"since must be >= 0, not {since}")
    if before is not None and before < 1:
        raise InvalidInput(f"before must be a sequence number >= 1, not {before}")


def check_version_page(limit: Any, stage: Any, before: Any) -> None:
    """The bounds of a page of versions: ``before`` is a version number (the cursor)."""
    check_limit(limit)
    _whole(before, "before")
    if before is not None and before < 1:
        raise InvalidInput(f"before must be a version number >= 1, not {before}")
    if stage is not None and not isinstance(stage, Stage):
        Stage.parse(str(stage))


DEFAULT_SEARCH_LIMIT = 100  # a search's page when neither the call nor the filter says


def check_model_page(limit: Any, after: Any) -> None:
    """The bounds of a page of models: ``after`` is a model name (the cursor)."""
    check_name_page(limit, after, "a model name")


def check_name_page(limit: Any, after: Any, what: str) -> None:
    """A page keyed by a name (models, tokens, resolvers, app releases): ``after`` is
    the last name of the page before, or None for the first page."""
    check_limit(limit)
    if after is not None and (not isinstance(after, str) or "\x00" in after):
        raise InvalidInput(f"after must be {what}, not {after!r}")


def check_plan_names(names: Any, limit: Any, after: Any) -> list[str] | None:
    """``rollback_plans``' arguments, checked alike at every door: the names (each once,
    at most a page of them), or the bounds of a page of models."""
    check_model_page(limit, after)
    if names is None:
        return None
    if isinstance(names, str):
        raise InvalidInput("rollback_plans takes a list of model names, not one string")
    wanted = [check_model_name(n) for n in dict.fromkeys(names)]
    if len(wanted) > MAX_PAGE:
        raise InvalidInput(f"rollback_plans takes at most {MAX_PAGE} names, not {len(wanted)}")
    return wanted


def check_id_page(limit: Any, after: Any) -> None:
    """A page keyed by a whole number (webhook and erasure ids, sequence numbers,
    policy versions): ``after`` (>= 0) is the last one of the page before."""
    check_limit(limit)
    _whole(after, "after")
    if after is None or after < 0:
        raise InvalidInput(f"after must be >= 0, not {after}")


def check_offset(offset: Any) -> int:
    """An offset cursor (search, lineage impact): a whole number >= 0."""
    _whole(offset, "offset")
    if offset is None or offset < 0:
        raise InvalidInput(f"offset must be >= 0, not {offset}")
    return int(offset)


def check_search_page(limit: Any, offset: Any) -> None:
    """A search page: ``limit`` None (the filter's own, else ``DEFAULT_SEARCH_LIMIT``) or
    1..10,000, and an offset."""
    if limit is not None:
        check_limit(limit)
    check_offset(offset)


def check_event_kinds(kinds: Any) -> tuple[str, ...]:
    """``kinds`` as a sorted tuple of distinct known event kinds (``InvalidInput`` for an
    empty list, a bare string or a kind no event has)."""
    if isinstance(kinds, str | bytes) or not isinstance(kinds, Sequence | set | frozenset):
        raise InvalidInput("kinds must be a list of event kinds")
    unknown = sorted({str(k) for k in kinds} - EVENT_KINDS)
    if unknown or not kinds:
        what = f"unknown event kind {unknown[0]!r}" if unknown else "no event kinds given"
        raise InvalidInput(f"{what}; expected some of {', '.join(sorted(EVENT_KINDS))}")
    return tuple(sorted(set(kinds)))


class Origin(_Output):
    """The automation behind a change (a Prefect flow run), beside the OS user who ran it."""

    flow: str | None = None
    run_id: str | None = None
    run_name: str | None = None
    deployment: str | None = None
    url: str | None = None  # the run in the Prefect UI

    def describe(self) -> str:
        """``deployment rollback/on-call (run crafty-fox)``: what history shows after "via"."""
        source = (
            f"deployment {self.deployment}"
            if self.deployment
            else f"flow {self.flow}"
            if self.flow
            else "a flow run"
        )
        run = self.run_name or self.run_id
        return source + (f" (run {run})" if run else "")


class EventDetails(_Output):
    """What an event says beyond who, what and why."""

    forced: bool = False  # break-glass: the gates were skipped (``skipped``) on purpose
    skipped: tuple[str, ...] = ()  # the gates a forced change skipped
    reasons: tuple[str, ...] = ()  # why a gate refused (or what a forced change overrode)
    gate: str | None = None  # which decision refused: staging, promotion, alias, rollback, binding
    invalidate: bool = False  # resolvers must switch now, not at their next refresh
    origin: Origin | None = None  # the flow run that made the change
    sha256: str | None = None  # artifact.collected: the bytes removed from an artifact store
    size: int | None = None  # artifact.collected: how many bytes that freed

    @property
    def empty(self) -> bool:
        return self == _NO_DETAILS


class Event(_Output):
    """One entry of the append-only log: the audit trail and the change feed."""

    seq: int
    at: datetime
    model: str
    version: int | None
    kind: str
    subject: str | None = None
    from_value: str | None = None
    to_value: str | None = None
    actor: str
    reason: str | None = None
    generation: int
    details: EventDetails = Field(default_factory=EventDetails)


_NO_DETAILS = EventDetails()


class RegisteredModel(_Output):
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    generation: int
    latest_version: int
    production: int | None = None
    staging: tuple[int, ...] = ()
    aliases: dict[str, int] = Field(default_factory=dict)
    created_at: datetime
    # Moved by registrations, pointer moves, deletes, renames and the model's own
    # description; not by edits of a version's tags or description (MLflow's rule).
    updated_at: datetime | None = None
    last_event: Event | None = None


class PointerChange(_Output):
    """What a stage, alias or rollback call did: the new generation and its events."""

    name: str
    generation: int
    events: tuple[Event, ...]


class LineageHit(_Output):
    """A version that used the data, code or pipeline asked about, and whether it serves."""

    name: str
    version: int
    stage: Stage
    in_production: bool
    datasets: tuple[str, ...] = ()
    feature_pipeline: str | None = None
    code_commit: str | None = None
    created_at: datetime
    live: bool = False
    # Why it serves: "Production", "alias champion (protected)", "release checkout@2.3".
    why_live: tuple[str, ...] = ()


# ---------------------------------------------------------------- app releases

APP_RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def check_app(app: str) -> str:
    if not isinstance(app, str) or not MODEL_NAME_RE.fullmatch(app):
        raise InvalidInput(
            f"invalid app name {app!r}: use lowercase letters, digits and '-' (1-64 chars), "
            "optionally 'namespace/name'"
        )
    return app


def check_release(release: str) -> str:
    if not isinstance(release, str) or not APP_RELEASE_RE.fullmatch(release):
        raise InvalidInput(
            f"invalid release {release!r}: letters, digits, '.', '_', '+', '-' (1-64 chars), "
            "e.g. 2.0.0"
        )
    return release


class Binding(_Output):
    """Which version of ``model`` an app release uses: pinned, or following a pointer."""

    model: str
    version: int | None = None  # pinned version, or the followed pointer's version now
    follow: str | None = None  # "production" or an alias; None when pinned
    bound_by: str
    bound_at: datetime


class AppRelease(_Output):
    """One release of an application: the feature schema its code sends, and its models."""

    app: str
    release: str
    feature_schema: Signature  # what this release's code sends: ordered features, dtypes
    description: str | None = None
    created_by: str
    created_at: datetime
    bindings: tuple[Binding, ...] = ()


# ---------------------------------------------------------------- the serving fleet

MAX_REASON = 2000
# No spaces or control characters: it is one word in logs and on a command line.
RESOLVER_ID_RE = re.compile(r"^[!-~]{1,256}$")


class Heartbeat(_Output):
    """One resolver's report, as ``modelreg fleet`` shows it: the model and ref it
    follows, where it runs, and what it serves.

    ``ref`` is what it was asked for (``fraud-detector@production`` or
    ``app=fraud-service,release=1.0.0``); ``version`` and ``generation`` are what it
    serves (``None`` before it has loaded anything); ``seq`` is the newest event it
    has seen, so ``latest_seq() - seq`` is how far behind the log it is. ``seen_at``
    is when it sent the beat, by its own clock. Heartbeats are not events: the
    store keeps the last one per ``resolver_id`` and logs nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolver_id: Annotated[str, StringConstraints(pattern=RESOLVER_ID_RE.pattern)]
    model: Annotated[str, StringConstraints(pattern=MODEL_NAME_RE.pattern)]
    ref: ShortText
    region: Annotated[str, StringConstraints(pattern=ALIAS_RE.pattern)]  # a region name
    host: ShortText
    pid: int = Field(ge=0)
    version: int | None = Field(default=None, ge=1)
    generation: int | None = Field(default=None, ge=0)
    seq: int = Field(ge=0)
    degraded: bool = False
    reason: str | None = None  # why it is degraded, kept as one line
    started_at: AwareDatetime
    seen_at: AwareDatetime

    @field_validator("reason")
    @classmethod
    def _one_line(cls, reason: str | None) -> str | None:
        if reason is None:
            return None
        text = " ".join(reason.split())
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"

    @field_validator("started_at", "seen_at")
    @classmethod
    def _utc(cls, moment: datetime) -> datetime:
        return moment.astimezone(UTC)


# ---------------------------------------------------------------- data subjects

# A subject key is the hex HMAC-SHA256 of a data subject's id under the registry's
# secret (``registry.subjects``): the raw id never reaches the store.
SUBJECT_KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def check_subject_key(key: Any) -> str:
    if not isinstance(key, str) or not SUBJECT_KEY_RE.fullmatch(key):
        shown = key if isinstance(key, str) and len(key) <= 80 else type(key).__name__
        raise InvalidInput(
            f"invalid subject key {shown!r}: expected 64 lowercase hex digits "
            "(an HMAC-SHA256, see registry.subjects)"
        )
    return key


def check_dataset_version(dataset: Any, version: Any) -> tuple[str, str]:
    """A dataset name and version as lineage's ``DatasetRef`` accepts them."""
    try:
        ref = DatasetRef.model_validate({"name": dataset, "version": version})
    except ValidationError as exc:
        raise InvalidInput(f"invalid dataset version: {validation_message(exc)}") from exc
    return ref.name, ref.version


def check_erasure_request_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"invalid erasure request id {value!r}: expected a whole number >= 1")
    return value


class SubjectManifest(_Output):
    """A dataset version's subject manifest: the artifact listing its subjects' keys."""

    dataset: str
    version: str
    sha256: str
    uri: str
    subjects: int  # how many distinct subject keys the version holds
    recorded_at: datetime
    recorded_by: str


class SubjectDataset(_Output):
    """One dataset version that holds the subject."""

    dataset: str
    version: str


class SubjectHit(LineageHit):
    """A model version trained on data of the subject, and whether it serves now."""

    retrain_required: tuple[int, ...] = ()  # open erasure request ids of this version


class SubjectLineage(_Output):
    """Where one subject's data went: dataset versions, and the model versions on them."""

    subject: str
    datasets: tuple[SubjectDataset, ...] = ()
    versions: tuple[SubjectHit, ...] = ()  # live first, then by name and version


ErasureState = Literal["retrain required", "retrained", "justified"]


class ErasureItem(_Output):
    """One live version an erasure request flagged, and how it was closed."""

    request_id: int
    name: str
    version: int
    state: ErasureState
    closed_by_version: int | None = None  # the retrained version, when "retrained"
    justification: str | None = None  # the recorded reason, when "justified"
    closed_at: datetime | None = None
    closed_by: str | None = None


class ErasureRequest(_Output):
    """An erasure obligation for one subject and the live versions it flagged."""

    id: int
    subject: str
    reason: str
    requested_by: str
    requested_at: datetime
    items: tuple[ErasureItem, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def open(self) -> bool:
        """Some flagged version still needs a retrain (or a justification)."""
        return any(item.state == "retrain required" for item in self.items)
