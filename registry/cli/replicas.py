"""Replication commands: replicate, replicas, verify.

Each prints the version's replica table (or ``--json``) and exits 5 with a
one-line error when any region's replica is failed after the command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.release_models import Replica
    from registry.store.base import RegistryStore

regions_option = click.option(
    "--regions",
    metavar="A,B",
    help="Comma-separated regions (default: every configured region, $MODELREG_REGIONS).",
)


@click.command()
@click.argument("name")
@click.argument("version", metavar="VERSION")
@regions_option
@click.option(
    "--retries",
    type=click.IntRange(min=0, max=10),
    default=3,
    show_default=True,
    help="Extra attempts per region after a transient error or a copy that does not verify.",
)
@json_option
@pass_state
def replicate(state: CliState, name: str, version: str, regions: str | None, retries: int) -> None:
    """Copy VERSION of NAME into every region and verify each copy.

    VERSION is a number, a stage, 'latest' or an alias. Regions are copied in
    parallel; a region that already holds a verified copy is not copied again.
    """
    import registry
    from registry.replication import region_stores
    from registry.replication import replicate as replicate_version

    store = state.store()
    settings = state.settings()
    number = _version(store, name, version)
    targets = region_stores(settings, _split(regions))
    replicas = replicate_version(
        store, registry.open_artifacts(settings), targets, name, number, retries=retries
    )
    _report(state, store, name, number, replicas, regions=list(targets))


@click.command()
@click.argument("name")
@click.argument("version", metavar="VERSION")
@json_option
@pass_state
def replicas(state: CliState, name: str, version: str) -> None:
    """Where VERSION of NAME is replicated: region, state, checksum, verified at, error."""
    store = state.store()
    number = _version(store, name, version)
    _report(state, store, name, number, store.replicas(name, number), regions=None)


@click.command()
@click.argument("name")
@click.argument("version", metavar="VERSION")
@regions_option
@json_option
@pass_state
def verify(state: CliState, name: str, version: str, regions: str | None) -> None:
    """Re-read every replica of VERSION of NAME and check size and sha256.

    Corrupt, missing or unreadable copies are marked failed (run 'modelreg
    replicate' to repair them). Default: every region that has a replica.
    """
    from registry.errors import InvalidInput
    from registry.replication import region_stores, verify_replicas

    store = state.store()
    number = _version(store, name, version)
    chosen = _split(regions) or [r.region for r in store.replicas(name, number)]
    if not chosen:
        raise InvalidInput(
            f"version {number} of {name!r} has no replicas to verify; run 'modelreg replicate'"
        )
    targets = region_stores(state.settings(), chosen)
    _report(state, store, name, number, verify_replicas(store, targets, name, number), regions=None)


def _version(store: RegistryStore, name: str, ref: str) -> int:
    from registry.cli.views import resolve_ref

    number = resolve_ref(store, name, ref)
    store.get_version(name, number)  # NotFound here, not half-way through
    return number


def _split(regions: str | None) -> list[str] | None:
    if regions is None:
        return None
    from registry.release_models import check_regions

    return check_regions([r.strip() for r in regions.split(",") if r.strip()])


def _report(
    state: CliState,
    store: RegistryStore,
    name: str,
    version: int,
    replicas: list[Replica],
    *,
    regions: list[str] | None,
) -> None:
    """Print the table (or JSON); exit 5 with one error line if a region failed.

    ``not_ready`` (JSON) lists the regions of ``regions`` (default: those of
    ``replicas``) where the version is not verified, pending ones included.
    """
    from registry.cli.render import NONE, emit_json, print_table, when
    from registry.errors import ArtifactError
    from registry.release_models import ReplicaState

    wanted = regions if regions is not None else [r.region for r in replicas]
    not_ready = store.ready_in_regions(name, version, wanted) if wanted else []
    if state.json:
        data: dict[str, Any] = {
            "name": name,
            "version": version,
            "replicas": replicas,
            "not_ready": not_ready,
        }
        emit_json(data)
    else:
        print_table(
            ["region", "state", "checksum", "verified at", "error"],
            (
                [
                    r.region,
                    r.state.value,
                    r.sha256[:12] if r.sha256 else NONE,
                    when(r.verified_at),
                    r.error or NONE,
                ]
                for r in replicas
            ),
            empty=f"version {version} of {name} has no replicas (modelreg replicate {name} "
            f"{version})",
        )
    failed = [r.region for r in replicas if r.state is ReplicaState.FAILED]
    if failed:
        raise ArtifactError(
            f"version {version} of {name!r}: replica failed in {', '.join(failed)} "
            "(see the error column; 'modelreg replicate' repairs it)"
        )
