"""Read commands about models and their timelines: models, versions, show, history, events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

TABLE_WIDTH = 120  # ``versions`` fits a terminal this wide, piped or not
MODEL_COLUMNS = ("model", "production", "staging", "aliases", "generation", "latest", "last change")

if TYPE_CHECKING:
    from registry.models import Event
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

    Also each model's staging versions, aliases, generation and last change.
    With NAMESPACE (``payments/``), only the models in that namespace.
    """
    from registry.cli.render import describe_event, emit_json, print_table, versions_text, when, who

    prefix = _namespace_prefix(namespace)
    store = state.store()
    found = [m for m in store.list_models() if m.name.startswith(prefix)]
    retrain = open_erasures(store)
    if state.json:
        emit_json([{**m.model_dump(mode="json"), **_retrain_json(retrain, m.name)} for m in found])
        return
    marker = ["retrain required"] if any(m.name in retrain for m in found) else []
    print_table(
        [*MODEL_COLUMNS, *marker],
        (
            [
                m.name,
                versions_text([m.production] if m.production else []),
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
    flagged: Flagged = {}
    for request in store.erasures(open_only=True, model=model):
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
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True, metavar="N"
)
@json_option
@pass_state
def versions(state: CliState, name: str, limit: int) -> None:
    """Versions of model NAME, newest first.

    The table fits 120 columns: it shows the release policy's key metrics (those
    its staging rules name; else the first few by name) to 4 significant digits.
    'modelreg show' and --json give every metric.
    """
    from registry.cli.render import emit_json, key_metrics_text, print_table, when

    store = state.store()
    found = store.list_versions(name, limit=limit)
    if state.json:
        emit_json(found)
        return
    keys = store.get_policy(name).policy.key_metrics
    print_table(
        ["version", "stage", "aliases", "created", "by", "sha256", "metrics"],
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
            for v in found
        ),
        empty=f"model {name!r} has no versions",
        width=TABLE_WIDTH,
        shrink=("aliases", "by", "metrics"),
    )


@click.command()
@click.argument("name")
@click.argument("version", metavar="VERSION")
@json_option
@pass_state
def show(state: CliState, name: str, version: str) -> None:
    """Everything about one version of model NAME.

    VERSION is a number, a stage (production, staging), latest or an alias.
    """
    from registry.cli.pages import print_version
    from registry.cli.render import emit_json

    store = state.store()
    found = store.get_version(name, resolve_ref(store, name, version))
    requests = open_erasures(store, model=found.name).get(found.name, {}).get(found.version, [])
    if state.json:
        emit_json({**found.model_dump(mode="json"), "retrain_required": requests})
        return
    print_version(found)
    if requests:
        from registry.cli.render import print_section

        print_section(
            "erasure",
            [
                (f"request #{r}", "retrain required: trained on data of a subject under erasure")
                for r in requests
            ],
        )


@click.command()
@click.argument("name")
@click.option(
    "--at",
    type=IsoTime(),
    help="Only say which version served in Production at this time (naive = UTC).",
)
@json_option
@pass_state
def history(state: CliState, name: str, at: datetime | None) -> None:
    """Everything that happened to model NAME, oldest first.

    Stage and alias moves, rollbacks, refused changes (REFUSED, with every unmet
    gate), forced ones (FORCED, with the gates skipped), policy changes, approvals
    and app-release bindings; a change made by a flow run names the deployment
    and run. --json carries each event's full details (and the run's URL).
    """
    from registry.cli.render import emit_json

    store = state.store()
    if at is not None:
        from registry.cli.render import when

        serving = store.production_at(name, at)
        if state.json:
            moment = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
            emit_json({"name": name, "at": moment, "production": serving})
        elif serving is None:
            click.echo(f"{name}: no version served in Production at {when(at)}")
        else:
            click.echo(f"{name}: version {serving} served in Production at {when(at)}")
        return
    found = store.history(name)
    if state.json:
        emit_json(found)
    else:
        _print_events(found, show_model=False)


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

    Rendered as in 'modelreg history'; --json carries each event's full details.
    """
    from registry.cli.render import emit_json

    found = state.store().events(since=since, limit=limit, model=model)
    if state.json:
        emit_json(found)
    else:
        _print_events(found, show_model=True)


def _print_events(found: list[Event], *, show_model: bool) -> None:
    from registry.cli.render import describe_event, print_table, when, who

    columns = ["seq", "at", *(["model"] if show_model else []), "change", "by", "gen", "reason"]
    print_table(
        columns,
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
            for e in found
        ),
        empty="no events",
    )
