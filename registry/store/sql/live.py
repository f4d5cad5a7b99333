"""Which versions serve now, and why: one answer for lineage impact and subject lineage.

A version is live when it is in Production, carries an alias its model's release policy
protects, or an app release uses it (pinned, or following a pointer that names it now).
Its ``why_live`` names each: "Production", "alias champion (protected)",
"release checkout@2.3".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Connection, select

from registry.models import Stage
from registry.store.sql.facts import policy_of
from registry.store.sql.schema import aliases_table
from registry.store.sql.schema_contract import app_releases_table, bindings_table
from registry.store.sql.subject_index import chunks


class VersionFacts(Protocol):
    """What ``why_live`` reads of a version row: its model and its stage."""

    @property
    def model_id(self) -> int: ...

    @property
    def stage(self) -> str: ...


def why_live(conn: Connection, versions: Mapping[int, VersionFacts]) -> dict[int, list[str]]:
    """Per version row id of ``versions`` that is live, why (in the order Production,
    protected aliases by name, app releases by app and release); absent ids are not live."""
    why: dict[int, list[str]] = defaultdict(list)
    model_ids = sorted({r.model_id for r in versions.values()})
    production = {
        r.model_id: vid for vid, r in versions.items() if r.stage == Stage.PRODUCTION.value
    }
    for vid in production.values():
        why[vid].append(Stage.PRODUCTION.value)
    aliases = _protected_aliases(conn, model_ids, versions, why)
    _b, _ar = bindings_table, app_releases_table
    for batch in chunks(model_ids):
        for b in conn.execute(
            select(_b.c.model_id, _b.c.version_id, _b.c.follow, _ar.c.app, _ar.c.release)
            .join(_ar, _ar.c.id == _b.c.release_id)
            .where(_b.c.model_id.in_(batch))
            .order_by(_ar.c.app, _ar.c.release)
        ):
            if b.follow is None:
                target = b.version_id
            elif b.follow == "production":
                target = production.get(b.model_id)
            else:
                target = aliases.get((b.model_id, b.follow))
            if target in versions:
                why[target].append(f"release {b.app}@{b.release}")
    return dict(why)


def _protected_aliases(
    conn: Connection,
    model_ids: list[int],
    versions: Mapping[int, Any],
    why: dict[int, list[str]],
) -> dict[tuple[int, str], int]:
    """Every alias of the models, (model id, alias) -> version row id; each protected one
    on a version of ``versions`` is added to its ``why``."""
    aliases: dict[tuple[int, str], int] = {}
    policies = {}
    for batch in chunks(model_ids):
        for a in conn.execute(
            select(aliases_table.c.model_id, aliases_table.c.alias, aliases_table.c.version_id)
            .where(aliases_table.c.model_id.in_(batch))
            .order_by(aliases_table.c.alias)
        ):
            aliases[a.model_id, a.alias] = a.version_id
            if a.version_id not in versions:
                continue
            if a.model_id not in policies:
                policies[a.model_id] = policy_of(conn, a.model_id)[0]
            if policies[a.model_id].is_protected(a.alias):
                why[a.version_id].append(f"alias {a.alias} (protected)")
    return aliases
