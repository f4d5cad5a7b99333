"""Who may do what on a registry server: roles, scoped grants and bearer tokens.

Pure decisions, no I/O. The store keeps tokens (only their sha256, never the secret);
``registry.guard.GuardedStore`` asks :func:`authorize` before every call it passes on,
so the REST API, the MLflow-compatible API and anything else served over HTTP share
one rule book. A local registry opened by URL has no tokens: whoever can open the
database is trusted, and the OS user is the actor.

Roles are cumulative, each adding to the one before:

    reader          read everything; report resolver heartbeats
    data-scientist  register versions, edit tags and descriptions, move non-protected
                    aliases, record a refusal
    deployer        stage changes, protected aliases, rollback, app releases and their
                    bindings, replicas, checks and approvals (the release evidence)
    admin           tokens, policy (and with it the protected-alias list), webhooks,
                    and ``force`` (break-glass)

A grant's scope limits where its writes apply, and what its holder sees:

    *                     every model (the default)
    payments/*            every model of the ``payments`` namespace
    fraud-detector        one model
    payments/*@shadow     only the ``shadow`` pointer of those models: an alias, or a
                          stage (``staging``, ``production``, ``archived``)

Reads follow the models a token's scopes name (:func:`may_read`), pointers aside: a
``payments/*`` token sees the payments namespace only, and ``fraud-detector@shadow``
reads all of fraud-detector though it moves only its ``shadow`` alias. A model outside
them is, to that token, a model that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from registry.errors import Forbidden, InvalidInput, Unauthenticated
from registry.models import ALIAS_RE, MODEL_NAME_RE


class Role(StrEnum):
    READER = "reader"
    DATA_SCIENTIST = "data-scientist"
    DEPLOYER = "deployer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text)
        except ValueError:
            raise InvalidInput(
                f"unknown role {text!r}: use one of {', '.join(r.value for r in cls)}"
            ) from None


_RANKS = {role: rank for rank, role in enumerate(Role)}

TOKEN_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
TOKEN_PREFIX = "mrt_"
_SECRET_RE = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$")
_NAMESPACE_RE = re.compile(r"^([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)/\*$")


def check_token_name(name: str) -> str:
    if not isinstance(name, str) or not TOKEN_NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"invalid token name {name!r}: use lowercase letters, digits, '.', '_' and '-' "
            "(1-64 chars)"
        )
    return name


@dataclass(frozen=True)
class Scope:
    """Where a grant applies: a model pattern and, optionally, one pointer."""

    model: str  # "*", "ns/*" or an exact model name
    pointer: str | None = None  # None: every pointer (and the non-pointer writes)

    @classmethod
    def parse(cls, text: str) -> Scope:
        model, sep, pointer = text.strip().partition("@")
        ok_model = model == "*" or _NAMESPACE_RE.fullmatch(model) or MODEL_NAME_RE.fullmatch(model)
        ok_pointer = not sep or pointer == "*" or ALIAS_RE.fullmatch(pointer)
        if not ok_model or not ok_pointer:
            raise InvalidInput(
                f"invalid scope {text!r}: use '*', 'NAMESPACE/*' or a model name, optionally "
                "followed by '@POINTER' (an alias or a stage)"
            )
        return cls(model, None if not sep or pointer == "*" else pointer)

    def __str__(self) -> str:
        return self.model + (f"@{self.pointer}" if self.pointer else "")

    def covers_model(self, name: str) -> bool:
        if self.model == "*":
            return True
        if self.model.endswith("/*"):
            return name.startswith(self.model[:-1])
        return name == self.model


class Token(BaseModel):
    """A token as the registry shows it: never its secret."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    scopes: tuple[str, ...] = ("*",)
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """The verified caller of one request: a token's name, role and scopes."""

    name: str
    role: Role
    scopes: tuple[Scope, ...] = (Scope("*"),)

    @classmethod
    def of(cls, token: Token) -> Principal:
        return cls(token.name, token.role, tuple(Scope.parse(s) for s in token.scopes))


def authorize(
    who: Principal,
    need: Role,
    action: str,
    *,
    model: str | None = None,
    pointers: Iterable[str] = (),
) -> None:
    """Raise ``Forbidden`` unless ``who`` may do ``action`` (needing role ``need``) on
    ``model`` (``None``: registry-wide, which needs an unscoped grant), moving
    ``pointers`` (aliases or lower-case stage names). Reads need no role beyond reader;
    what they may see is :func:`may_read`'s."""
    if who.role.rank < need.rank:
        raise Forbidden(f"token {who.name!r} ({who.role}) may not {action}: that needs {need}")
    if need is Role.READER:
        return
    if model is None:
        if not any(s.model == "*" and s.pointer is None for s in who.scopes):
            raise Forbidden(
                f"token {who.name!r} may not {action}: its grant is scoped to "
                f"{_scopes(who)}, and this needs '*'"
            )
        return
    grants = [s for s in who.scopes if s.covers_model(model)]
    wanted = sorted(set(pointers))
    if not wanted:
        if not any(s.pointer is None for s in grants):
            raise Forbidden(
                f"token {who.name!r} may not {action} on {model}: its grant is scoped to "
                f"{_scopes(who)}"
            )
        return
    for pointer in wanted:
        if not any(s.pointer in (None, pointer) for s in grants):
            raise Forbidden(
                f"token {who.name!r} may not {action}: moving {model}@{pointer} is outside "
                f"its grant ({_scopes(who)})"
            )


def reads_everything(who: Principal) -> bool:
    """Whether a ``*`` grant (of any pointer) lets ``who`` read every model."""
    return any(s.model == "*" for s in who.scopes)


def may_read(who: Principal, model: str) -> bool:
    """Whether ``who`` may see ``model`` at all: one of its scopes names it (a pointer
    scope ``m@alias`` grants reading ``m``). Roles do not enter: every role reads."""
    return any(s.covers_model(model) for s in who.scopes)


def may_watch(who: Principal, model_filter: str | None) -> bool:
    """Whether a webhook filtered to ``model_filter`` (a model, ``ns/*``, or None or
    ``*`` for every model) reports only what ``who`` may read: a ``payments/*`` grant
    may watch ``payments/*`` or one payments model, never ``*`` or ``risk/*``."""
    if model_filter is None or model_filter == "*":
        return reads_everything(who)
    if model_filter.endswith("/*"):
        return any(s.model in ("*", model_filter) for s in who.scopes)
    return may_read(who, model_filter)


def _scopes(who: Principal) -> str:
    return ", ".join(str(s) for s in who.scopes)


# ---------------------------------------------------------------- secrets


def new_secret() -> str:
    """A fresh bearer token: ``mrt_`` and 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """What the store keeps of a token. A token is 256 random bits, so one sha256 is
    enough: there is no password to guess slowly."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_bearer(header: str | None) -> str:
    """The secret of an ``Authorization: Bearer mrt_…`` header, or ``Unauthenticated``."""
    if not header:
        raise Unauthenticated("no token: send 'Authorization: Bearer <token>' (MODELREG_TOKEN)")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not _SECRET_RE.fullmatch(value):
        raise Unauthenticated("malformed token: expected 'Authorization: Bearer mrt_…'")
    return value


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
