"""Whole-page human views: one version (``show``) and two versions side by side (``diff``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry.cli.render import NONE, print_section, value, when

if TYPE_CHECKING:
    from registry.diff import Change, MappingDiff, VersionDiff
    from registry.models import DatasetRef, ModelVersion, Signature


def print_version(v: ModelVersion) -> None:
    click.echo(f"{v.name} version {v.version}")
    print_section(
        "version",
        [
            ("stage", v.stage.value),
            ("aliases", ", ".join(v.aliases) or NONE),
            ("created", f"{when(v.created_at)} by {v.created_by}"),
            ("run id", v.run_id or NONE),
            ("description", v.description or NONE),
        ],
    )
    print_section(
        "artifact",
        [
            ("uri", v.artifact.uri),
            ("sha256", v.artifact.sha256),
            ("size", f"{v.artifact.size} bytes"),
            ("format", v.artifact.format),
        ],
    )
    print_section("signature", _signature_lines(v.signature), empty="none recorded")
    print_section("metrics", _mapping_lines(v.metrics))
    print_section("params", _mapping_lines(v.params))
    print_section("tags", _mapping_lines(v.tags))
    code = v.lineage.code
    print_section(
        "lineage",
        [
            *(("dataset", _dataset_text(d)) for d in v.lineage.datasets),
            ("feature pipeline", v.lineage.feature_pipeline or NONE),
            ("code repository", (code and code.repository) or NONE),
            ("code commit", (code and code.commit) or NONE),
            ("code branch", (code and code.branch) or NONE),
        ],
    )
    print_section(
        "environment",
        [("python", v.environment.python or NONE), *_mapping_lines(v.environment.packages)],
    )


def _signature_lines(signature: Signature | None) -> list[tuple[str, str]]:
    if signature is None:
        return []
    target = signature.target
    return [
        *((f"{i}. {f.name}", f.dtype) for i, f in enumerate(signature.features, start=1)),
        ("target", f"{target.name} ({target.dtype})" if target else NONE),
        ("preprocessing", signature.preprocessing_version or NONE),
    ]


def _mapping_lines(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, value(item)) for key, item in mapping.items()]


def _dataset_text(d: DatasetRef) -> str:
    details = [
        f"{d.rows} rows" if d.rows is not None else "",
        f"{d.date_range[0]}..{d.date_range[1]}" if d.date_range else "",
        d.fingerprint or "",
    ]
    extra = ", ".join(x for x in details if x)
    return f"{d.name}@{d.version}" + (f" ({extra})" if extra else "")


# ---------------------------------------------------------------- diff


def print_diff(diff: VersionDiff) -> None:
    a, b = diff.a, diff.b
    click.echo(
        f"{a.name} version {a.version} ({a.stage.value}, {when(a.created_at)}) -> "
        f"version {b.version} ({b.stage.value}, {when(b.created_at)})"
    )
    artifact = (
        f"changed: {a.sha256[:12]} ({a.size} bytes, {a.format}) -> "
        f"{b.sha256[:12]} ({b.size} bytes, {b.format})"
        if diff.artifact_changed
        else f"same bytes ({a.sha256[:12]})"
    )
    print_section("artifact", [("sha256", artifact)])
    print_section(
        "metrics",
        [
            (m.key, f"{value(m.a)} -> {value(m.b)}" + (f"  ({m.delta:+.6g})" if m.delta else ""))
            for m in diff.metrics
        ],
        empty="no metrics on either version",
    )
    print_section("signature", _signature_diff_lines(diff), empty="no differences")
    print_section("params", _mapping_diff_lines(diff.params), empty="no differences")
    print_section("tags", _mapping_diff_lines(diff.tags), empty="no differences")
    print_section("lineage", _lineage_diff_lines(diff), empty="no differences")
    env = diff.environment
    print_section(
        "environment",
        [*_change_line("python", env.python), *_mapping_diff_lines(env.packages)],
        empty="no differences",
    )


def _change_line(label: str, change: Change | None) -> list[tuple[str, str]]:
    return [] if change is None else [(label, f"{value(change.a)} -> {value(change.b)}")]


def _mapping_diff_lines(diff: MappingDiff) -> list[tuple[str, str]]:
    return [
        *((k, f"{value(c.a)} -> {value(c.b)}") for k, c in diff.changed.items()),
        *((k, f"added: {value(item)}") for k, item in diff.added.items()),
        *((k, f"removed (was {value(item)})") for k, item in diff.removed.items()),
    ]


def _signature_diff_lines(diff: VersionDiff) -> list[tuple[str, str]]:
    s = diff.signature
    lines = [
        *((f.name, f"added ({f.dtype})") for f in s.added),
        *((f.name, f"removed (was {f.dtype})") for f in s.removed),
        *((r.name, f"retyped {r.a} -> {r.b}") for r in s.retyped),
    ]
    if s.reordered:
        lines.append(("order", f"{', '.join(s.order_a)} -> {', '.join(s.order_b)}"))
    return [
        *lines,
        *_change_line("target", s.target),
        *_change_line("preprocessing", s.preprocessing_version),
    ]


def _lineage_diff_lines(diff: VersionDiff) -> list[tuple[str, str]]:
    lin = diff.lineage
    return [
        *(("dataset", f"added {d}") for d in lin.datasets_added),
        *(("dataset", f"removed {d}") for d in lin.datasets_removed),
        *(("dataset", f"same name, different data: {d}") for d in lin.datasets_changed),
        *_change_line("feature pipeline", lin.feature_pipeline),
        *_change_line("code repository", lin.code_repository),
        *_change_line("code commit", lin.code_commit),
        *_change_line("code branch", lin.code_branch),
    ]
