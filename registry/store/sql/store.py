"""``SqlStore``: the registry store on SQLite or PostgreSQL."""

from __future__ import annotations

from registry.models import Origin
from registry.store.base import RegistryStore
from registry.store.sql.app_releases import AppReleasesMixin
from registry.store.sql.engine import Database
from registry.store.sql.fleet import FleetMixin
from registry.store.sql.pointers import PointersMixin
from registry.store.sql.policies import PoliciesMixin
from registry.store.sql.queries import QueriesMixin
from registry.store.sql.release import ReleaseMixin
from registry.store.sql.versions import VersionsMixin


class SqlStore(
    VersionsMixin,
    PointersMixin,
    PoliciesMixin,
    AppReleasesMixin,
    QueriesMixin,
    ReleaseMixin,
    FleetMixin,
    RegistryStore,
):
    def __init__(
        self,
        url: str,
        *,
        actor: str,
        origin: Origin | None = None,
        migrate: bool = True,
        synchronous: str = "full",
    ) -> None:
        self.db = Database(url, synchronous=synchronous)
        self.actor = actor
        self.origin = origin
        self.url = self.db.url
        if migrate:
            self.db.ensure_schema()

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> SqlStore:
        return self
