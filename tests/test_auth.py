"""The rule book of ``registry.auth``: roles, scoped grants, tokens and bearer headers.

Pure functions, so the tables here are exhaustive: every role against every role it
may need, every kind of scope against model names and pointers, and the headers a
client (or an attacker) can send.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from registry.auth import (
    TOKEN_PREFIX,
    Principal,
    Role,
    Scope,
    Token,
    authorize,
    check_token_name,
    new_secret,
    parse_bearer,
    same_secret,
    secret_hash,
)
from registry.errors import Forbidden, InvalidInput, Unauthenticated

ROLES = list(Role)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def who(role: Role, *scopes: str, name: str = "alice") -> Principal:
    return Principal(name, role, tuple(Scope.parse(s) for s in scopes or ("*",)))


# ---------------------------------------------------------------- roles


def test_roles_rank_in_the_documented_order() -> None:
    assert [r.value for r in sorted(Role, key=lambda r: r.rank)] == [
        "reader",
        "data-scientist",
        "deployer",
        "admin",
    ]


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_role_parse_reads_its_own_value(role: Role) -> None:
    assert Role.parse(role.value) is role


@pytest.mark.parametrize("text", ["", "Admin", "root", "data_scientist", " reader"])
def test_role_parse_refuses_unknown_roles_naming_the_known_ones(text: str) -> None:
    with pytest.raises(
        InvalidInput, match=r"unknown role.*reader, data-scientist, deployer, admin"
    ):
        Role.parse(text)


@pytest.mark.parametrize(
    ("role", "need"),
    [(r, n) for r in ROLES for n in ROLES],
    ids=str,
)
def test_authorize_allows_exactly_the_roles_at_or_above_the_need(role: Role, need: Role) -> None:
    """Roles are cumulative: each rank may do everything the ranks below it may."""
    if role.rank >= need.rank:
        authorize(who(role), need, "do it", model="payments/fraud")
        authorize(who(role), need, "do it")
    else:
        with pytest.raises(
            Forbidden, match=f"'alice' \\({role}\\) may not do it: that needs {need}"
        ):
            authorize(who(role), need, "do it", model="payments/fraud")


# ---------------------------------------------------------------- scopes


@pytest.mark.parametrize(
    ("text", "model", "pointer"),
    [
        ("*", "*", None),
        (" * ", "*", None),
        ("payments/*", "payments/*", None),
        ("fraud-detector", "fraud-detector", None),
        ("payments/fraud", "payments/fraud", None),
        ("payments/*@shadow", "payments/*", "shadow"),
        ("fraud-detector@production", "fraud-detector", "production"),
        ("*@shadow", "*", "shadow"),
        ("fraud-detector@*", "fraud-detector", None),  # every pointer: the whole model
        ("a", "a", None),
    ],
)
def test_scope_parse_reads_every_documented_form(
    text: str, model: str, pointer: str | None
) -> None:
    scope = Scope.parse(text)
    assert (scope.model, scope.pointer) == (model, pointer)
    assert Scope.parse(str(scope)) == scope  # what the store keeps reads back the same


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "@shadow",
        "fraud@",
        "fraud@Shadow",
        "fraud@sha dow",
        "Payments/*",
        "payments/**",
        "payments/*/x",
        "*/*",
        "*/fraud",
        "a/b/c",
        "-fraud",
        "fraud-",
        "fraud@shadow@x",
        "payments/",
        "/*",
        "x" * 65,
        "fraud detector",
    ],
)
def test_scope_parse_refuses_malformed_scopes(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid scope"):
        Scope.parse(text)


@pytest.mark.parametrize(
    ("scope", "name", "covered"),
    [
        ("*", "fraud", True),
        ("*", "payments/fraud", True),
        ("payments/*", "payments/fraud", True),
        ("payments/*", "payments/risk", True),
        ("payments/*", "payments", False),  # the namespace's own name is another model
        ("payments/*", "paymentsx/fraud", False),
        ("payments/*", "other/payments", False),
        ("payments/*", "fraud", False),
        ("fraud", "fraud", True),
        ("fraud", "fraud-detector", False),
        ("fraud", "payments/fraud", False),
        ("payments/fraud", "payments/fraud", True),
        ("payments/fraud", "payments/fraud-v2", False),
        ("payments/fraud@shadow", "payments/fraud", True),  # the pointer limits, not the model
    ],
)
def test_covers_model(scope: str, name: str, covered: bool) -> None:
    assert Scope.parse(scope).covers_model(name) is covered


# (scopes, model or None for registry-wide, pointers moved, allowed) for a deployer
# asking for a deployer's write.
GRANTS = [
    # unscoped
    (("*",), "payments/fraud", (), True),
    (("*",), None, (), True),
    (("*",), "fraud", ("production", "shadow"), True),
    # a namespace
    (("payments/*",), "payments/fraud", (), True),
    (("payments/*",), "payments/fraud", ("shadow",), True),
    (("payments/*",), "fraud", (), False),
    (("payments/*",), "risk/fraud", ("shadow",), False),
    (("payments/*",), None, (), False),
    # one model
    (("payments/fraud",), "payments/fraud", ("production",), True),
    (("payments/fraud",), "payments/risk", (), False),
    (("payments/fraud",), None, (), False),
    # one pointer of one model
    (("payments/fraud@shadow",), "payments/fraud", ("shadow",), True),
    (("payments/fraud@shadow",), "payments/fraud", ("shadow", "shadow"), True),
    (("payments/fraud@shadow",), "payments/fraud", ("canary",), False),
    (("payments/fraud@shadow",), "payments/fraud", ("shadow", "canary"), False),
    (("payments/fraud@shadow",), "payments/fraud", (), False),  # a non-pointer write
    (("payments/fraud@shadow",), "payments/risk", ("shadow",), False),
    (("payments/fraud@shadow",), None, (), False),
    # one pointer of a namespace, or of every model
    (("payments/*@staging",), "payments/risk", ("staging",), True),
    (("payments/*@staging",), "payments/risk", ("production",), False),
    (("*@shadow",), "anything", ("shadow",), True),
    (("*@shadow",), "anything", (), False),
    (("*@shadow",), None, (), False),  # registry-wide needs '*' with no pointer
    # several grants add up
    (("payments/fraud@shadow", "payments/fraud@canary"), "payments/fraud", ("shadow",), True),
    (
        ("payments/fraud@shadow", "payments/fraud@canary"),
        "payments/fraud",
        ("shadow", "canary"),
        True,
    ),
    (("payments/fraud@shadow", "payments/risk"), "payments/fraud", ("shadow", "gold"), False),
    (("payments/fraud@shadow", "payments/risk"), "payments/risk", ("gold",), True),
    (
        ("payments/fraud@archived", "payments/fraud@production"),
        "payments/fraud",
        ("archived", "production"),
        True,
    ),
    (("payments/fraud@archived",), "payments/fraud", ("archived", "production"), False),
    (("fraud", "*"), None, (), True),
    (("payments/*@*",), "payments/fraud", (), True),
]


@pytest.mark.parametrize(("scopes", "model", "pointers", "allowed"), GRANTS)
def test_authorize_allows_exactly_what_a_grant_covers(
    scopes: tuple[str, ...], model: str | None, pointers: tuple[str, ...], allowed: bool
) -> None:
    caller = who(Role.DEPLOYER, *scopes)
    if allowed:
        authorize(caller, Role.DEPLOYER, "move it", model=model, pointers=pointers)
    else:
        with pytest.raises(Forbidden, match=r"'alice' may not move it.*(scoped to|outside)"):
            authorize(caller, Role.DEPLOYER, "move it", model=model, pointers=pointers)


def test_a_pointer_outside_the_grant_is_named() -> None:
    with pytest.raises(Forbidden, match=r"moving payments/fraud@canary is outside .*@shadow"):
        authorize(
            who(Role.DEPLOYER, "payments/fraud@shadow"),
            Role.DEPLOYER,
            "move an alias",
            model="payments/fraud",
            pointers=["shadow", "canary"],
        )


def test_registry_wide_refusal_says_it_needs_star() -> None:
    with pytest.raises(Forbidden, match=r"scoped to payments/\*, and this needs '\*'"):
        authorize(who(Role.ADMIN, "payments/*"), Role.ADMIN, "create tokens")


@pytest.mark.parametrize("scopes", [("*",), ("elsewhere",), ("other/*@shadow",)])
@pytest.mark.parametrize("model", ["payments/fraud", None])
def test_reads_need_no_scope(scopes: tuple[str, ...], model: str | None) -> None:
    for role in ROLES:
        authorize(who(role, *scopes), Role.READER, "read", model=model, pointers=["production"])


def test_role_is_checked_before_scope() -> None:
    """A reader with an unscoped grant is still a reader."""
    with pytest.raises(Forbidden, match="that needs deployer"):
        authorize(who(Role.READER), Role.DEPLOYER, "promote", model="payments/fraud")


# ---------------------------------------------------------------- tokens


def test_principal_of_a_token_parses_its_scopes() -> None:
    token = Token(
        name="ci",
        role=Role.DEPLOYER,
        scopes=("payments/*", "fraud@shadow"),
        created_at=NOW,
        created_by="ops",
    )
    assert Principal.of(token) == Principal(
        "ci", Role.DEPLOYER, (Scope("payments/*"), Scope("fraud", "shadow"))
    )


def test_a_token_is_active_until_revoked() -> None:
    token = Token(name="ci", role=Role.READER, created_at=NOW, created_by="ops")
    assert token.active
    assert token.scopes == ("*",)
    revoked = token.model_copy(update={"revoked_at": NOW, "revoked_by": "ops"})
    assert not revoked.active


def test_a_token_never_shows_a_secret() -> None:
    assert not {"secret", "token_hash", "hash"} & set(Token.model_fields)


@pytest.mark.parametrize("name", ["ci", "a", "ci-deployer", "alice.smith", "bot_1", "x" * 64])
def test_token_names_accepted(name: str) -> None:
    assert check_token_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "CI", "-ci", "ci-", "ci deployer", "ci/deployer", "x" * 65, "ci\n", "é"]
)
def test_token_names_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid token name"):
        check_token_name(name)


def test_new_secrets_are_prefixed_random_and_parse_as_bearer() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}", secret)
        assert parse_bearer(f"Bearer {secret}") == secret


def test_secret_hash_is_a_stable_sha256_that_hides_the_secret() -> None:
    secret = new_secret()
    digest = secret_hash(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == secret_hash(secret)
    assert digest != secret_hash(new_secret())
    assert secret not in digest and secret[len(TOKEN_PREFIX) :] not in digest


def test_same_secret_compares_exactly() -> None:
    secret = new_secret()
    assert same_secret(secret, secret)
    assert not same_secret(secret, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert not same_secret(secret, "")


# ---------------------------------------------------------------- bearer headers

SECRET = TOKEN_PREFIX + "A" * 43


@pytest.mark.parametrize(
    "header",
    [f"Bearer {SECRET}", f"bearer {SECRET}", f"BEARER {SECRET}", f"Bearer   {SECRET}  "],
)
def test_parse_bearer_reads_the_secret(header: str) -> None:
    assert parse_bearer(header) == SECRET


@pytest.mark.parametrize("header", [None, ""])
def test_parse_bearer_without_a_header_says_how_to_send_one(header: str | None) -> None:
    with pytest.raises(Unauthenticated, match="no token: send 'Authorization: Bearer"):
        parse_bearer(header)


@pytest.mark.parametrize(
    "header",
    [
        SECRET,  # no scheme
        "Bearer",
        "Bearer ",
        f"Basic {SECRET}",
        f"Token {SECRET}",
        f"Bearer{SECRET}",
        f"Bearer\t{SECRET}",
        f"Bearer {SECRET[len(TOKEN_PREFIX) :]}",  # no prefix
        f"Bearer xyz_{'A' * 43}",  # another prefix
        f"Bearer {SECRET[:-1]}",  # too short
        f"Bearer {SECRET}A",  # too long
        f"Bearer {SECRET[:-1]}!",  # outside the alphabet
        f"Bearer {SECRET[:-1]}=",
        f"Bearer {SECRET} {SECRET}",
        "Bearer mrt_",
        "junk",
        " ",
    ],
)
def test_parse_bearer_refuses_malformed_headers(header: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed token"):
        parse_bearer(header)
