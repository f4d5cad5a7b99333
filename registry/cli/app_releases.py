"""``modelreg release create|bind|list|show``: app releases and the models they use.

An app release declares the feature schema its code sends; a binding pins a model
version to it or follows a pointer. The store refuses a binding (and a promotion
of a followed pointer) whose signature does not take that schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.models import AppRelease, Binding, Signature


@click.group()
@json_option
def release() -> None:
    """App releases: the schema a release's code sends, and the models it uses.

    Binding or promoting a model whose signature does not match a release's
    schema is refused (exit 4), naming the missing, extra and retyped features.
    """


@release.command("create")
@click.argument("app")
@click.argument("release_name", metavar="RELEASE")
@click.option(
    "--schema",
    "path",
    required=True,
    metavar="FILE",
    help="The feature schema (JSON: features with name and dtype, optional target and "
    "preprocessing_version); '-' reads stdin.",
)
@click.option("--description", metavar="TEXT", help="What this release is.")
@json_option
@pass_state
def release_create(
    state: CliState, app: str, release_name: str, path: str, description: str | None
) -> None:
    """Declare the feature schema RELEASE of APP sends (it never changes after)."""
    from registry.cli.render import emit_json

    schema = read_schema(path)
    created = state.store().create_app_release(app, release_name, schema, description=description)
    if state.json:
        emit_json(created)
        return
    preprocessing = schema.preprocessing_version or "no preprocessing version"
    click.echo(
        f"created {created.app}@{created.release} "
        f"({len(schema.features)} features, {preprocessing})"
    )


def read_schema(path: str) -> Signature:
    """A ``Signature`` from a JSON file; any problem is one ``InvalidInput`` line."""
    import json

    from pydantic import ValidationError

    from registry.cli.policy import read_text
    from registry.errors import InvalidInput
    from registry.models import Signature, validation_message

    source = "stdin" if path == "-" else path
    text = read_text(path, "schema")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"schema {source} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"schema {source} must be a JSON object with a features list")
    try:
        return Signature.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid schema {source}: {validation_message(exc)}") from exc


@release.command("bind")
@click.argument("app")
@click.argument("release_name", metavar="RELEASE")
@click.option("--model", "model", required=True, metavar="NAME", help="The model it uses.")
@click.option(
    "--version", "version", type=click.IntRange(min=1), metavar="V", help="Pin this version."
)
@click.option(
    "--follow",
    metavar="POINTER",
    help="Follow a pointer instead: production or an alias.",
)
@click.option("--reason", help="Why; kept in the event log (required with --force).")
@click.option(
    "--force",
    is_flag=True,
    help="Bind despite a signature mismatch (needs --reason; recorded as forced).",
)
@json_option
@pass_state
def release_bind(
    state: CliState,
    app: str,
    release_name: str,
    model: str,
    version: int | None,
    follow: str | None,
    reason: str | None,
    force: bool,
) -> None:
    """Bind model NAME to RELEASE of APP: --version V pins, --follow P follows a pointer.

    Refused (exit 4, recorded in history) when the version's signature does not
    take the release's schema.
    """
    from registry.cli.render import emit_json

    # The store says, once, that exactly one of --version and --follow is needed.
    bound = state.store().bind_app_release(
        app, release_name, model, version=version, follow=follow, reason=reason, force=force
    )
    if state.json:
        emit_json(bound)
        return
    binding = next(b for b in bound.bindings if b.model == model)
    click.echo(f"{bound.app}@{bound.release}: {binding_text(binding)}")


def binding_text(binding: Binding) -> str:
    if binding.follow is None:
        return f"{binding.model} v{binding.version} (pinned)"
    now = "no version" if binding.version is None else f"v{binding.version}"
    return f"{binding.model}@{binding.follow} (follows; now {now})"


@release.command("list")
@click.argument("app", required=False)
@json_option
@pass_state
def release_list(state: CliState, app: str | None) -> None:
    """App releases (of APP), with their schema and bindings."""
    from registry.cli.render import NONE, stream_json, stream_table, when
    from registry.store.pages import walk

    store = state.store()
    pages = walk(
        lambda n, after: store.list_app_releases(app, limit=n, after=after), _release_key, None
    )
    if state.json:
        stream_json(pages)
        return
    stream_table(
        ["app", "release", "features", "preprocessing", "bindings", "created", "by"],
        (
            [
                [
                    r.app,
                    r.release,
                    str(len(r.feature_schema.features)),
                    r.feature_schema.preprocessing_version or NONE,
                    "; ".join(binding_text(b) for b in r.bindings) or NONE,
                    when(r.created_at),
                    r.created_by,
                ]
                for r in page
            ]
            for page in pages
        ),
        empty="no app releases yet (modelreg release create APP RELEASE --schema FILE)",
    )


def _release_key(r: AppRelease) -> str | None:
    return f"{r.app}@{r.release}"


@release.command("show")
@click.argument("app")
@click.argument("release_name", metavar="RELEASE")
@json_option
@pass_state
def release_show(state: CliState, app: str, release_name: str) -> None:
    """One app release: its feature schema and the models bound to it."""
    from registry.cli.render import emit_json

    found = state.store().get_app_release(app, release_name)
    if state.json:
        emit_json(found)
    else:
        _print_release(found)


def _print_release(r: AppRelease) -> None:
    from registry.cli.render import NONE, print_section, when

    schema = r.feature_schema
    target = schema.target
    click.echo(f"{r.app}@{r.release}")
    print_section(
        "release",
        [
            ("created", f"{when(r.created_at)} by {r.created_by}"),
            ("description", r.description or NONE),
        ],
    )
    print_section(
        "feature schema",
        [
            *((f"{i}. {f.name}", f.dtype) for i, f in enumerate(schema.features, start=1)),
            ("target", f"{target.name} ({target.dtype})" if target else NONE),
            ("preprocessing", schema.preprocessing_version or NONE),
        ],
    )
    print_section(
        "bindings",
        [
            (b.model, f"{binding_text(b)}, bound {when(b.bound_at)} by {b.bound_by}")
            for b in r.bindings
        ],
        empty="none (modelreg release bind APP RELEASE --model NAME --version V)",
    )
