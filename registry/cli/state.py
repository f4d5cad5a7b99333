"""What every command shares: the registry location, the output mode, the open store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from registry.config import Settings
    from registry.store.base import RegistryStore

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    registry_url: str | None = None
    json: bool = False
    read_registry_url: str | None = None
    _store: RegistryStore | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        from registry.config import Settings

        return Settings.from_env(
            registry_url=self.registry_url, read_registry_url=self.read_registry_url
        )

    def store(self) -> RegistryStore:
        """The registry, opened on first use and closed when the command ends."""
        if self._store is None:
            import registry

            settings = self.settings()
            self._store = registry.connect(settings=settings)
            click.get_current_context().call_on_close(self._close)
            _load_read_mark(self._store, settings)
        return self._store

    def _close(self) -> None:
        if self._store is not None:
            _save_read_mark(self._store, self.settings())
            self._store.close()
            self._store = None


# A read replica's mark lives in <home>/read-marks.json between commands, so a command
# never reads a replica older than what an earlier command (of this home) wrote.
READ_MARKS = "read-marks.json"


def _load_read_mark(store: RegistryStore, settings: Settings) -> None:
    if not settings.read_registry_url:  # no replica (see registry.connect): nothing to read
        return
    from registry.store.replicated import MarkFile, ReplicatedStore

    if isinstance(store, ReplicatedStore):
        store.mark.raise_to(MarkFile(settings.home / READ_MARKS).load(store.url))


def _save_read_mark(store: RegistryStore, settings: Settings) -> None:
    if not settings.read_registry_url:
        return
    from registry.store.replicated import MarkFile, ReplicatedStore

    if isinstance(store, ReplicatedStore):
        MarkFile(settings.home / READ_MARKS).save(store.url, store.mark.seq)


pass_state = click.make_pass_decorator(CliState, ensure=True)


def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).json = True


def json_option(command: F) -> F:
    """``--json`` on a command: the same switch as the global ``modelreg --json``."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=set_json,
        help="Print machine-readable JSON.",
    )(command)
