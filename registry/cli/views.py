"""Read commands about models and their timelines: models, versions, show, history, events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

TABLE_WIDTH = 120  # ``versions`` fits a terminal this wide, piped or not
MODEL_COLUMNS = ("model", "production", "staging", "aliases", "generation", "latest", "last change")

if TYPE_CHECKING:
    from registry.models import Event
    from registry.release_models import RollbackPlan
    from registry.store.base import RegistryStore


class IsoTime(click.ParamType[datetime]):
    """An ISO 8601 time; a naive one is UTC."""

    name = "TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-20T02:14:00Z", param, ctx)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def resolve_ref(store: RegistryStore, name: str, ref: str) -> int:
    """A version number from ``3``, ``production``, ``staging``, ``latest`` or an alias."""
    from registry.models import RESERVED_ALIASES, check_model_name

    check_model_name(name)
    ref = ref.strip()
    if ref.isdigit():
        return int(ref)  # get_version says which of model or version is missing
    if ref.lower() in RESERVED_ALIASES:
        ref = ref.lower()
    return store.resolve(name, ref)


@click.command()
@click.argument("namespace", required=False, metavar="[NAMESPACE/]")
@json_option
@pass_state
def models(state: CliState, namespace: str | None) -> None:
    """What serves in Production now, for every model.

    Also each model's rollback target (``v11 safe``, ``v11 UNSAFE``: see ``rollback
    --dry-run``), staging versions, aliases, generation and last change.
    With NAMESPACE (``payments/``), only the models in that namespace.
    """
    from registry.cli.render import describe_event, emit_json, print_table, versions_text, when, who
    from registry.store.pages import all_models

    prefix = _namespace_prefix(namespace)
    store = state.store()
    found = [m for m in all_models(store) if m.name.startswith(prefix)]
    retrain = open_erasures(store)
    plans = _rollback_plans(store)
    if state.json:
        emit_json(
            [
                {
                    **m.model_dump(mode="json"),
                    **_retrain_json(retrain, m.name),
                    "rollback": _plan_json(plans.get(m.name)),
                }
                for m in found
            ]
        )
        return
    marker = ["retrain required"] if any(m.name in retrain for m in found) else []
    print_table(
        [*MODEL_COLUMNS[:2], "rollback", *MODEL_COLUMNS[2:], *marker],
        (
            [
                m.name,
                versions_text([m.production] if m.production else []),
                _plan_cell(plans.get(m.name)),
                versions_text(m.staging),
                ", ".join(f"{alias}={v}" for alias, v in m.aliases.items()) or "-",
                str(m.generation),
                str(m.latest_version),
                (f"{when(m.last_event.at)} {describe_event(m.last_event)} by {who(m.last_event)}")
                if m.last_event
                else "-",
                *([_retrain_text(retrain.get(m.name, {}))] if marker else []),
            ]
            for m in found
        ),
        empty=f"no models in namespace {prefix}"
        if prefix
        else "no models yet (modelreg register NAME --artifact FILE --meta META.json)",
    )


# ---------------------------------------------------------------- erasure markers
# model -> version -> the open erasure requests ("retrain required") of that version
Flagged = dict[str, dict[int, list[int]]]


def open_erasures(store: RegistryStore, model: str | None = None) -> Flagged:
    """Which versions an open erasure request flags "retrain required": one store call."""
    from registry.cli.erasure import erasure_pages

    flagged: Flagged = {}
    for request in (r for page in erasure_pages(store, open_only=True, model=model) for r in page):
        for item in request.items:
            if item.state == "retrain required":
                flagged.setdefault(item.name, {}).setdefault(item.version, []).append(request.id)
    return flagged


def _retrain_json(flagged: Flagged, name: str) -> dict[str, list[int]]:
    return {"retrain_required": sorted(flagged.get(name, {}))}


def _retrain_text(versions: dict[int, list[int]]) -> str:
    """``v2 (#1), v3 (#1, #4)``: the versions to retrain and the requests behind them."""
    return (
        ", ".join(
            f"v{v} ({', '.join(f'#{r}' for r in requests)})"
            for v, requests in sorted(versions.items())
        )
        or "-"
    )


def _namespace_prefix(namespace: str | None) -> str:
    """``payments/`` (or ``payments``) as the prefix its models' names start with."""
    if namespace is None:
        return ""
    from registry.errors import InvalidInput
    from registry.models import ALIAS_RE

    segment = namespace.strip().removesuffix("/")
    if not ALIAS_RE.fullmatch(segment):  # a namespace is one name segment
        raise InvalidInput(
            f"invalid namespace {namespace!r}: one segment of lowercase letters, digits and '-'"
        )
    return f"{segment}/"


@click.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True, metavar="N")
@click.option("--stage", metavar="STAGE", help="Only versions in this stage (e.g. Production).")
@click.option(
    "--cursor",
    type=click.IntRange(min=1),
    metavar="N",
    help="Only versions older than N: a page's next_cursor, for the page after it.",
)
@json_option
@pass_state
def versions(state: CliState, name: str, limit: int, stage: str | None, cursor: int | None) -> None:
    """Versions of model NAME, newest first.

    The 20 newest by default; when there are more, a line on stderr (and
    next_cursor in --json) gives the --cursor of the next page. The table fits
    120 columns: it shows the release policy's key metrics (those its staging
    rules name; else the first few by name) to 4 significant digits.
    'modelreg show' and --json give every metric.
    """
    from registry.cli.paging import VersionPages
    from registry.cli.render import hint, key_metrics_text, stream_json, stream_table, when
    from registry.models import Stage

    chosen = Stage.parse(stage) if stage else None
    store = state.store()
    pages = VersionPages(store, name, limit=limit, stage=chosen, before=cursor)
    if state.json:
        stream_json(pages, key="versions", cursor=pages.next_cursor)
        return
    keys = store.get_policy(name).policy.key_metrics
    stream_table(
        ["version", "stage", "aliases", "created", "by", "sha256", "metrics"],
        (
            (
                [
                    str(v.version),
                    v.stage.value,
                    ", ".join(v.aliases) or "-",
                    when(v.created_at),
                    v.created_by,
                    v.artifact.sha256[:12],
                    key_metrics_text(v.metrics, keys),
                ]
                for v in page
            )
            for page in pages
        ),
        empty=f"model {name!r} has no versions" + (f" in {chosen.value}" if chosen else ""),
        width=TABLE_WIDTH,
        shrink=("aliases", "by", "metrics"),
    )
    older = pages.next_cursor()
    if older:
        hint(f"… older versions exist: --cursor {older} shows the next page")


@click.command()
@click.argument("name")
@click.argument("version", metavar="VERSION")
@json_option
@pass_state
def show(state: CliState, name: str, version: str) -> None:
    """Everything about one version of model NAME.

    VERSION is a number, a stage (production, staging), latest or an alias. For the
    Production version, also its rollback target and whether rolling back is safe.
    """
    from registry.cli.pages import print_version
    from registry.cli.render import emit_json

    store = state.store()
    found = store.get_version(name, resolve_ref(store, name, version))
    requests = open_erasures(store, model=found.name).get(found.name, {}).get(found.version, [])
    plan = store.rollback_plan(found.name) if found.stage == "Production" else None
    if state.json:
        shown = {**found.model_dump(mode="json"), "retrain_required": requests}
        emit_json({**shown, "rollback": _plan_json(plan)} if plan else shown)
        return
    print_version(found)
    if plan is not None:
        from registry.cli.rollback_plan import print_target_section

        print_target_section(plan)
    if requests:
        from registry.cli.render import print_section

        print_section(
            "erasure",
            [
                (f"request #{r}", "retrain required: trained on data of a subject under erasure")
                for r in requests
            ],
        )


class SeqOrTime(click.ParamType[int | datetime]):
    """``--since``: a sequence number (digits), or a time as ``--at`` takes it."""

    name = "SEQ|TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | datetime:
        if isinstance(value, int | datetime):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        try:
            return IsoTime().convert(text, param, ctx)
        except click.BadParameter:
            self.fail(
                f"{value!r} is neither a sequence number nor an ISO 8601 time "
                "(e.g. 120 or 2026-11-20T02:14:00Z)",
                param,
                ctx,
            )


HISTORY_PAGE = 50  # what ``history`` shows unless told: the recent past, on one screen


@click.command()
@click.argument("name")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(0, 10_000),
    default=HISTORY_PAGE,
    show_default=True,
    metavar="N",
    help="The N most recent events; 0: every one, oldest first, written as it is read.",
)
@click.option(
    "--since",
    type=SeqOrTime(),
    help="Only events after sequence number SEQ, or from TIME on (naive = UTC).",
)
@click.option(
    "--cursor",
    type=click.IntRange(min=1),
    metavar="SEQ",
    help="Only events before SEQ: a page's next_cursor, for the page before it.",
)
@click.option(
    "--all",
    "every_kind",
    is_flag=True,
    help="Every event, also registrations, tag and description edits, deletions of "
    "versions that never served and artifact collections.",
)
@click.option(
    "--at",
    type=IsoTime(),
    help="Only say which version served in Production at this time (naive = UTC).",
)
@json_option
@pass_state
def history(
    state: CliState,
    name: str,
    limit: int,
    since: int | datetime | None,
    cursor: int | None,
    every_kind: bool,
    at: datetime | None,
) -> None:
    """What moved model NAME's pointers, newest last: the 50 latest changes.

    Stage and alias moves, rollbacks, refused changes (REFUSED, with every unmet
    gate), forced ones (FORCED, with the gates skipped), policy changes, approvals,
    app-release bindings, renames and erasure requests; --all adds registrations
    and every other event. A change made by a flow run names the deployment and
    run. When older events exist, a line on stderr says how to see them.

    \b
    --json: {"events": [...], "next_cursor": SEQ or null}, oldest first; pass
    next_cursor as --cursor for the page before. With --limit 0, every event
    (oldest first, streamed) and next_cursor null.
    """
    if at is not None:
        _refuse_with_at(since, cursor, every_kind)
        _production_at(state, name, at)
        return
    from registry.models import POINTER_KINDS, check_model_name

    check_model_name(name)
    store = state.store()
    kinds = None if every_kind else sorted(POINTER_KINDS)
    floor = _since_seq(store, name, since)
    empty = "no events" if every_kind else "no pointer changes yet (--all shows every event)"
    if limit == 0:
        from registry.cli.paging import event_pages

        pages = event_pages(store, since=floor, before=cursor, model=name, kinds=kinds)
        _write_events(state, _of_known_model(store, name, pages), empty=empty, key="events")
        return
    from registry.cli.paging import NewestEvents

    window = NewestEvents(store, limit=limit, since=floor, before=cursor, model=name, kinds=kinds)
    if not window.events:
        store.get_model(name)  # an unknown model is an error, not an empty history
    if state.json:
        _write_events(state, [window.events], empty=empty, key="events", cursor=window.next_cursor)
        return
    older = window.next_cursor()
    if older:
        from registry.cli.render import hint

        hint(
            f"… earlier events exist: --cursor {older} shows the {limit} before them, "
            "--limit 0 every one"
        )
    _write_events(state, [window.events], empty=empty)


def _refuse_with_at(since: object, cursor: object, every_kind: bool) -> None:
    """``--at`` answers one question; paging options beside it would be silently ignored."""
    given = [o for o, v in (("--since", since), ("--cursor", cursor)) if v is not None]
    if every_kind:
        given.append("--all")
    if given:
        raise click.UsageError(f"--at takes no {' or '.join(given)}: it names one version")


def _production_at(state: CliState, name: str, at: datetime) -> None:
    from registry.cli.render import emit_json, when

    serving = state.store().production_at(name, at)
    if state.json:
        moment = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        emit_json({"name": name, "at": moment, "production": serving})
    elif serving is None:
        click.echo(f"{name}: no version served in Production at {when(at)}")
    else:
        click.echo(f"{name}: version {serving} served in Production at {when(at)}")


def _since_seq(store: RegistryStore, name: str, since: int | datetime | None) -> int:
    """``--since`` as a sequence number: events after it are the ones asked for."""
    if since is None:
        return 0
    if isinstance(since, int):
        return since
    from registry.cli.paging import seq_before

    return seq_before(store, name, since)


def _of_known_model(
    store: RegistryStore, name: str, pages: Iterable[list[Event]]
) -> Iterator[list[Event]]:
    """The pages, and NotFound at the end when there were none and NAME is no model."""
    seen = False
    for page in pages:
        seen = True
        yield page
    if not seen:
        store.get_model(name)


@click.command()
@click.option("--since", type=click.IntRange(min=0), default=0, show_default=True, metavar="SEQ")
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True, metavar="N"
)
@click.option("--model", metavar="NAME", help="Only events of this model.")
@json_option
@pass_state
def events(state: CliState, since: int, limit: int, model: str | None) -> None:
    """The change feed: events after sequence number SEQ, in order.

    Rendered as in 'modelreg history'; --json carries each event's full details
    (a JSON list; the last event's seq is the next --since). Written as it is read.
    """
    from registry.cli.paging import event_pages

    pages = event_pages(state.store(), since=since, model=model, limit=limit)
    _write_events(state, pages, empty="no events", show_model=True)


def _write_events(
    state: CliState,
    pages: Iterable[list[Event]],
    *,
    empty: str,
    show_model: bool = False,
    key: str | None = None,
    cursor: Callable[[], str | None] | None = None,
) -> None:
    """Events as JSON (a list, or ``{key: [...], "next_cursor": …}``) or a table, a page
    at a time."""
    from registry.cli.render import describe_event, stream_json, stream_table, when, who

    if state.json:
        stream_json(pages, key=key, cursor=cursor)
        return
    columns = ["seq", "at", *(["model"] if show_model else []), "change", "by", "gen", "reason"]
    stream_table(
        columns,
        (
            (
                [
                    str(e.seq),
                    when(e.at),
                    *([e.model] if show_model else []),
                    describe_event(e),
                    who(e),
                    str(e.generation),
                    e.reason or "-",
                ]
                for e in page
            )
            for page in pages
        ),
        empty=empty,
    )


# ---------------------------------------------------------------- rollback targets (models, show)


def _rollback_plans(store: RegistryStore) -> dict[str, RollbackPlan]:
    """Every model's rollback plan, by name: a store call per 10,000 models."""
    from registry.store.pages import every

    plans = every(lambda n, after: store.rollback_plans(limit=n, after=after), _plan_name, None)
    return {plan.name: plan for plan in plans}


def _plan_name(plan: RollbackPlan) -> str | None:
    return plan.name


def _plan_cell(plan: RollbackPlan | None) -> str:
    from registry.cli.rollback_plan import verdict

    return "-" if plan is None else verdict(plan)


def _plan_json(plan: RollbackPlan | None) -> dict[str, object] | None:
    from registry.cli.rollback_plan import plan_json

    return None if plan is None else plan_json(plan)
