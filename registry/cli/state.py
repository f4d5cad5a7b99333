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

            self._store = registry.connect(settings=self.settings())
            click.get_current_context().call_on_close(self._close)
        return self._store

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


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
