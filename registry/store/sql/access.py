"""Tokens (hashes only) and the replies kept for idempotent writes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from registry.auth import Role, Scope, Token, check_token_name, new_secret, secret_hash
from registry.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from registry.models import check_name_page
from registry.store.sql.common import NOTIFY, utcnow
from registry.store.sql.engine import Database
from registry.store.sql.schema_access import replies_table, tokens_table

_TOKEN_COLUMNS = (
    tokens_table.c.name,
    tokens_table.c.role,
    tokens_table.c.scopes,
    tokens_table.c.created_at,
    tokens_table.c.created_by,
    tokens_table.c.revoked_at,
    tokens_table.c.revoked_by,
)
REPLY_TTL = timedelta(hours=24)  # a retry comes within minutes; a day is generous
# Built once: every server request authenticates, and a statement built per call costs
# SQLAlchemy its coercions and cache key each time (about half of this lookup's time).
_BY_HASH = select(*_TOKEN_COLUMNS).where(tokens_table.c.token_hash == bindparam("token_hash"))


_STILL_ACTIVE = select(tokens_table.c.name).where(
    tokens_table.c.name == bindparam("name"), tokens_table.c.revoked_at.is_(None)
)


class TokenCheckedWrites:
    """A database whose every write transaction first checks, inside itself, that one
    token is still unrevoked: a change made for a token that a revocation overtook
    (the server verified it a moment, or a cache, ago) rolls back as ``Unauthenticated``.
    Reads pass through untouched."""

    def __init__(self, db: Database, token: str) -> None:
        self._db = db
        self._token = token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._db.write() as conn:
            if conn.execute(_STILL_ACTIVE, {"name": self._token}).first() is None:
                raise Unauthenticated(f"token {self._token!r} was revoked")
            yield conn


def _token(row: Any) -> Token:
    values = row._asdict()
    values["scopes"] = tuple(json.loads(values["scopes"]))
    return Token.model_validate(values)


class AccessMixin:
    db: Database
    actor: str

    def create_token(
        self, name: str, role: Role, *, scopes: Sequence[str] = ("*",)
    ) -> tuple[Token, str]:
        check_token_name(name)
        role = Role.parse(str(role.value if isinstance(role, Role) else role))
        if isinstance(scopes, str) or not scopes:
            raise InvalidInput("a token needs at least one scope ('*' for every model)")
        parsed = [str(Scope.parse(s)) for s in scopes]
        secret = new_secret()
        row = {
            "name": name,
            "role": role.value,
            "scopes": json.dumps(list(dict.fromkeys(parsed))),
            "token_hash": secret_hash(secret),
            "created_at": utcnow(),
            "created_by": self.actor,
        }
        try:
            with self.db.write() as conn:
                conn.execute(insert(tokens_table), row)
        except IntegrityError as exc:
            raise Conflict(f"a token named {name!r} exists (revoked names stay taken)") from exc
        return self._token(name), secret

    def list_tokens(self, *, limit: int = 1000, after: str | None = None) -> list[Token]:
        check_name_page(limit, after, "a token name")
        query = select(*_TOKEN_COLUMNS).order_by(tokens_table.c.name).limit(limit)
        if after is not None:
            query = query.where(tokens_table.c.name > after)
        with self.db.read() as conn:
            return [_token(row) for row in conn.execute(query)]

    def revoke_token(self, name: str) -> Token:
        check_token_name(name)
        with self.db.write() as conn:
            conn.execute(
                update(tokens_table)
                .where(tokens_table.c.name == name, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_by=self.actor)
            )
            if conn.dialect.name == "postgresql":  # wake the servers' followers now
                conn.execute(NOTIFY, {"payload": "0"})
        return self._token(name)

    def authenticate(self, secret: str) -> Token:
        with self.db.read() as conn:
            row = conn.execute(_BY_HASH, {"token_hash": secret_hash(secret)}).first()
        if row is None:
            raise Unauthenticated("unknown token")
        token = _token(row)
        if not token.active:
            raise Unauthenticated(f"token {token.name!r} was revoked")
        return token

    def _token(self, name: str) -> Token:
        with self.db.read() as conn:
            row = conn.execute(select(*_TOKEN_COLUMNS).where(tokens_table.c.name == name)).first()
        if row is None:
            raise NotFound(f"no token named {name!r}")
        return _token(row)

    # -- idempotent writes (the server's, not part of the store interface) ------------
    def saved_reply(self, actor: str, key: str) -> tuple[str, int, str] | None:
        """(fingerprint, status, body) of the reply kept for ``key``, if any."""
        with self.db.read() as conn:
            row = conn.execute(
                select(replies_table.c.fingerprint, replies_table.c.status, replies_table.c.body)
                .where(replies_table.c.actor == actor, replies_table.c.key == key)
                .where(replies_table.c.created_at > utcnow() - REPLY_TTL)
            ).first()
        return None if row is None else (row[0], row[1], row[2])

    def save_reply(self, actor: str, key: str, fingerprint: str, status: int, body: str) -> None:
        """Keep one reply; the first one wins (two racing retries get the same answer),
        and replies older than a day go."""
        now = utcnow()
        with self.db.write() as conn:
            conn.execute(delete(replies_table).where(replies_table.c.created_at <= now - REPLY_TTL))
            exists = conn.execute(
                select(replies_table.c.key).where(
                    replies_table.c.actor == actor, replies_table.c.key == key
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(replies_table),
                    {
                        "actor": actor,
                        "key": key,
                        "fingerprint": fingerprint,
                        "status": status,
                        "body": body,
                        "created_at": now,
                    },
                )
