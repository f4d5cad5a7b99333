"""``SqlStore``: the registry store on SQLite or PostgreSQL."""

from __future__ import annotations

from registry.store.base import RegistryStore
from registry.store.sql.engine import Database
from registry.store.sql.pointers import PointersMixin
from registry.store.sql.queries import QueriesMixin
from registry.store.sql.release import ReleaseMixin
from registry.store.sql.versions import VersionsMixin


class SqlStore(VersionsMixin, PointersMixin, QueriesMixin, ReleaseMixin, RegistryStore):
    def __init__(
        self, url: str, *, actor: str, migrate: bool = True, synchronous: str = "full"
    ) -> None:
        self.db = Database(url, synchronous=synchronous)
        self.actor = actor
        self.url = self.db.url
        if migrate:
            self.db.ensure_schema()

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
