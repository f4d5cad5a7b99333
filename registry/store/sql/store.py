"""``SqlStore``: the registry store on SQLite or PostgreSQL."""

from __future__ import annotations

import copy

from registry.models import Origin
from registry.store.base import RegistryStore
from registry.store.sql.access import AccessMixin, TokenCheckedWrites
from registry.store.sql.app_releases import AppReleasesMixin
from registry.store.sql.engine import Database
from registry.store.sql.fleet import FleetMixin
from registry.store.sql.lifecycle import LifecycleMixin
from registry.store.sql.pointers import PointersMixin
from registry.store.sql.policies import PoliciesMixin
from registry.store.sql.queries import QueriesMixin
from registry.store.sql.release import ReleaseMixin
from registry.store.sql.retention import RetentionMixin
from registry.store.sql.rollback_plan import RollbackPlanMixin
from registry.store.sql.subjects import SubjectsMixin
from registry.store.sql.versions import VersionsMixin
from registry.store.sql.webhooks import WebhooksMixin


class SqlStore(
    VersionsMixin,
    LifecycleMixin,
    PointersMixin,
    PoliciesMixin,
    AppReleasesMixin,
    QueriesMixin,
    ReleaseMixin,
    FleetMixin,
    AccessMixin,
    WebhooksMixin,
    RetentionMixin,
    SubjectsMixin,
    RollbackPlanMixin,
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
        group_commit: bool = False,
    ) -> None:
        self.db = Database(url, synchronous=synchronous, group_commit=group_commit)
        self.actor = actor
        self.origin = origin
        self.url = self.db.url
        if migrate:
            self.db.ensure_schema()

    def close(self) -> None:
        self.db.dispose()

    def acting_as(
        self, actor: str, origin: Origin | None = None, *, token: str | None = None
    ) -> SqlStore:
        """The same database (and connection pool) acting as someone else: the server
        makes one per request, for the verified token. With ``token`` (its name), every
        write transaction re-checks in itself that the token is unrevoked, so nothing
        is changed for a token revoked after it was verified. Closing it closes nothing."""
        view = copy.copy(self)
        view.actor = actor
        view.origin = origin
        if token is not None:
            view.db = TokenCheckedWrites(self.db, token)  # type: ignore[assignment]
        view.close = lambda: None  # type: ignore[method-assign]
        return view

    def __enter__(self) -> SqlStore:
        return self
