"""The cursors of the store's other lists (#13 item 5): a model's events and policy
versions, the fleet, app releases, tokens, webhooks, erasure requests and rollback plans.
Every item appears exactly once across pages, in the list's order; the next page goes on
after its cursor while items arrive; a bad page is one ``InvalidInput`` line; a scoped
token's pages are full of what it may see. Each runs on SQLite, PostgreSQL and HTTP."""

from __future__ import annotations

import functools
import hashlib
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from registry.auth import Principal, Role, Scope
from registry.errors import InvalidInput
from registry.guard import GuardedStore
from registry.models import ArtifactRef, Heartbeat, Signature, VersionCreate
from registry.release.policy import ReleasePolicy
from registry.store.base import RegistryStore
from registry.store.http import HttpStore
from registry.store.sql import SqlStore

from .conftest import HttpRegistry
from .support import artifact, register_versions

ALL = 10_000
NAMES = ["ads/ctr", "ads/reach", "churn", "fraud", "pay/fraud", "pay/limits", "pay/risk"]
SIGNATURE = {"features": [{"name": "amount", "dtype": "float64"}]}
SCHEMA = Signature.model_validate(SIGNATURE)
STRICT = ReleasePolicy.parse({"staging": ["auc >= 0.9"], "regions": ["us-east"]})
LOOSE = ReleasePolicy.parse({"staging": ["auc >= 0.5"], "regions": ["us-east"]})
T0 = datetime(2026, 11, 1, 2, 14, tzinfo=UTC)
BAD_LIMITS: list[dict[str, Any]] = [
    {"limit": 0},
    {"limit": 10_001},
    {"limit": True},
    {"limit": "5"},
]


def key(subject: str) -> str:
    """A subject key (any 64 lowercase hex digits)."""
    return hashlib.sha256(subject.encode()).hexdigest()


P, Q, X, NOBODY = key("p"), key("q"), key("x"), key("nobody")  # in tx@pay, tx@ads, both, none


def _pages(
    read: Callable[[int, Any], list[Any]], cursor: Callable[[Any], Any], first: Any, limit: int
) -> list[list[Any]]:
    """Every page of ``read(limit, after)``, each after the cursor of the one before,
    until an empty page (not a short one: a short page before the end shows up as one)."""
    pages: list[list[Any]] = []
    after = first
    while page := read(limit, after):
        pages.append(page)
        after = cursor(page[-1])
        assert len(pages) <= 100, "the pages do not end"
    return pages


# ---------------------------------------------------------------- the lists


@dataclass(frozen=True)
class Listing:
    """One list: how to fill a registry with a few of its items, read a page of it,
    and name an item (its ``key``) and the next page (its ``cursor``)."""

    id: str
    build: Callable[[RegistryStore], list[Any]]  # the keys made, in the list's order
    method: Callable[[RegistryStore], Callable[..., list[Any]]]
    key: Callable[[Any], Any]
    cursor: Callable[[Any], Any]
    first: Any = None
    arg: str = "after"  # the cursor's keyword
    bad_cursors: tuple[Any, ...] = ()
    shared: bool = False  # other tests' items stay (tokens over HTTP): mine are a subset
    scoped: Callable[[Any], Any] = field(default=lambda item: item)  # a pay/* token's view

    def read(self, store: RegistryStore, limit: int, after: Any) -> list[Any]:
        return self.method(store)(limit=limit, **{self.arg: after})

    def pages(self, store: RegistryStore, limit: int) -> list[list[Any]]:
        return _pages(functools.partial(self.read, store), self.cursor, self.first, limit)

    def keys(self, store: RegistryStore) -> list[Any]:
        return [self.key(item) for item in self.read(store, ALL, self.first)]


def _history(store: RegistryStore) -> list[int]:
    register_versions(store, "fraud", 2)
    register_versions(store, "churn", 1)  # events of another model in between
    register_versions(store, "fraud", 1)
    store.set_aliases("fraud", {"candidate": 3})
    seqs = [e.seq for e in store.events(model="fraud", limit=ALL)]
    assert len(seqs) >= 4
    return seqs


def _policies(store: RegistryStore) -> list[int]:
    for i in range(5):
        store.set_policy("fraud", STRICT if i % 2 else LOOSE, reason=f"take {i}")
        if i == 2:
            store.set_policy("churn", STRICT, reason="another model's")
    return [1, 2, 3, 4, 5]


def beat(
    resolver_id: str, model: str, ref: str, region: str = "us-east", **changes: Any
) -> Heartbeat:
    values: dict[str, Any] = {
        "resolver_id": resolver_id,
        "model": model,
        "ref": ref,
        "region": region,
        "host": "web-1",
        "pid": 4242,
        "version": 1,
        "generation": 1,
        "seq": 1,
        "started_at": T0,
        "seen_at": T0 + timedelta(seconds=5),
    }
    return Heartbeat(**{**values, **changes})


def _fleet(store: RegistryStore) -> list[str]:
    """Seven resolvers whose ids sort otherwise than their rows (model, ref, region, id)."""
    for b in [
        beat("r-7", "pay/fraud", "pay/fraud@production"),
        beat("r-1", "pay/fraud", "pay/fraud@production"),
        beat("r-3", "ads/ctr", "ads/ctr@production", "eu-west"),
        beat("r-2", "ads/ctr", "ads/ctr@production"),
        beat("r-9", "ads/ctr", "ads/ctr@champion"),
        beat("r-4", "fraud", "fraud@production"),
        beat("r-5", "pay/risk", "app=pay-svc,release=1.0"),
    ]:
        store.heartbeat(b)
    return ["r-9", "r-3", "r-2", "r-4", "r-1", "r-7", "r-5"]


def _app_releases(store: RegistryStore) -> list[str]:
    """Six releases of three apps, created out of name order; four bind an ads model."""
    version = {}
    for name in ("ads/ctr", "pay/fraud", "pay/risk"):
        (mv,) = register_versions(store, name, 1, signature=SIGNATURE)
        version[name] = mv.version
    made = [
        ("checkout", "2.0", ["ads/ctr", "pay/fraud"]),
        ("ads-svc", "1.0", ["ads/ctr"]),
        ("checkout", "1.0", []),
        ("pay-svc", "1.0", ["pay/risk"]),
        ("checkout", "10.0", ["ads/ctr"]),
        ("ads-svc", "0.9", ["ads/ctr"]),
        ("pay-svc", "2.0", ["pay/fraud", "pay/risk"]),
    ]
    for app, release, models in made:
        store.create_app_release(app, release, SCHEMA)
        for name in models:
            store.bind_app_release(app, release, name, version=version[name])
    return [
        "ads-svc@1.0",
        "ads-svc@0.9",
        "checkout@2.0",
        "checkout@1.0",
        "checkout@10.0",
        "pay-svc@1.0",
        "pay-svc@2.0",
    ]


def _tokens(store: RegistryStore) -> list[str]:
    """Five tokens of a prefix of their own (over HTTP the tokens outlive a test)."""
    prefix = f"c{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{s}" for s in ("d", "a", "c", "e", "b")]
    for name in names:
        store.create_token(name, Role.READER)
    return sorted(names)


def _webhooks(store: RegistryStore) -> list[int]:
    """Nine subscriptions, two of them removed; only three filter to pay models."""
    filters = [None, "ads/*", "ads/ctr", "pay/*", None, "pay/fraud", "ads/*", "pay/risk", None]
    made = [
        store.add_webhook(f"https://hooks.example/{i}", ["*"], model=f)[0]
        for i, f in enumerate(filters)
    ]
    for gone in (made[4], made[6]):
        store.remove_webhook(gone.id)
    return [w.id for i, w in enumerate(made) if i not in (4, 6)]


def manifest_ref(dataset: str, version: str, subjects: list[str]) -> ArtifactRef:
    body = "\n".join(sorted(subjects)).encode()
    digest = hashlib.sha256(body + f"{dataset}@{version}".encode()).hexdigest()
    return ArtifactRef(
        uri=f"file:///manifests/{digest}", sha256=digest, size=len(body), format="subjects"
    )


def _erasures(store: RegistryStore) -> list[int]:
    """Nine requests. pay/fraud and pay/risk were trained on tx@pay (P, X), ads/ctr on
    tx@ads (Q, X), each live through an app release. Closed: #2 (justified), #4 (flags
    nothing), #8 (justified); #5 is open only for ads/ctr (its pay items justified)."""
    store.record_subject_manifest("tx", "pay", manifest_ref("tx", "pay", [P, X]), [P, X])
    store.record_subject_manifest("tx", "ads", manifest_ref("tx", "ads", [Q, X]), [Q, X])
    store.create_app_release("scoring", "1.0", SCHEMA)
    for name, data in (("pay/fraud", "pay"), ("ads/ctr", "ads"), ("pay/risk", "pay")):
        meta = {"signature": SIGNATURE, "lineage": {"datasets": [{"name": "tx", "version": data}]}}
        mv = store.register(name, artifact(f"{name} on {data}".encode()), VersionCreate.parse(meta))
        store.bind_app_release("scoring", "1.0", name, version=mv.version)
    made = [
        store.request_erasure(subject, reason=f"ticket {i}")
        for i, subject in enumerate([Q, Q, P, NOBODY, X, Q, P, P, X], start=1)
    ]
    ids = [r.id for r in made]
    for request, name in [
        (2, "ads/ctr"),
        (8, "pay/fraud"),
        (8, "pay/risk"),
        (5, "pay/fraud"),
        (5, "pay/risk"),
    ]:
        store.justify_erasure(ids[request - 1], name, 1, reason="kept by court order")
    return ids


def _plans(store: RegistryStore) -> list[str]:
    for name in reversed(NAMES):
        store.create_model(name)
    store.create_model("doomed")
    store.delete_model("doomed")  # its tombstone is no model of the list
    return NAMES


def _seen_release(release: Any) -> Any:
    bindings = tuple(b for b in release.bindings if b.model.startswith("pay/"))
    return release.model_copy(update={"bindings": bindings}) if bindings else None


def _seen_erasure(request: Any) -> Any:
    items = tuple(i for i in request.items if i.name.startswith("pay/"))
    return request.model_copy(update={"items": items}) if items else None


def _in_pay(name: str | None) -> bool:
    return name is not None and name.startswith("pay/")


LISTS = {
    "history": Listing(
        "history",
        _history,
        lambda s: functools.partial(s.history, "fraud"),
        key=lambda e: e.seq,
        cursor=lambda e: e.seq,
        first=0,
        arg="since",
        bad_cursors=(-1, "3", 1.5, None),
    ),
    "policy_history": Listing(
        "policy_history",
        _policies,
        lambda s: functools.partial(s.policy_history, "fraud"),
        key=lambda r: r.version,
        cursor=lambda r: r.version,
        first=0,
        bad_cursors=(-1, "1", 1.5, True, None),
    ),
    "fleet": Listing(
        "fleet",
        _fleet,
        lambda s: s.fleet,
        key=lambda b: b.resolver_id,
        cursor=lambda b: b.resolver_id,
        bad_cursors=("r-1\x00", 7, "r-0"),
        scoped=lambda b: b if _in_pay(b.model) else None,
    ),
    "app_releases": Listing(
        "app_releases",
        _app_releases,
        lambda s: s.list_app_releases,
        key=lambda r: f"{r.app}@{r.release}",
        cursor=lambda r: f"{r.app}@{r.release}",
        bad_cursors=("checkout@1.0\x00", 7, "nosuch@1.0", "checkout@9.9", "checkout"),
        scoped=_seen_release,
    ),
    "tokens": Listing(
        "tokens",
        _tokens,
        lambda s: s.list_tokens,
        key=lambda t: t.name,
        cursor=lambda t: t.name,
        bad_cursors=("a\x00b", 7),
        shared=True,
    ),
    "webhooks": Listing(
        "webhooks",
        _webhooks,
        lambda s: s.list_webhooks,
        key=lambda w: w.id,
        cursor=lambda w: w.id,
        first=0,
        bad_cursors=(-1, "1", True, None),
        scoped=lambda w: w if _in_pay(w.model) else None,
    ),
    "erasures": Listing(
        "erasures",
        _erasures,
        lambda s: s.erasures,
        key=lambda r: r.id,
        cursor=lambda r: r.id,
        first=0,
        bad_cursors=(-1, "1", True, None),
        scoped=_seen_erasure,
    ),
    "rollback_plans": Listing(
        "rollback_plans",
        _plans,
        lambda s: s.rollback_plans,
        key=lambda p: p.name,
        cursor=lambda p: p.name,
        bad_cursors=("ads/ctr\x00", 7),
        scoped=lambda p: p if _in_pay(p.name) else None,
    ),
}
SCOPED = ["fleet", "app_releases", "webhooks", "erasures", "rollback_plans"]


@pytest.fixture
def scoped(store: RegistryStore, request: pytest.FixtureRequest) -> Iterator[RegistryStore]:
    """An admin scoped to ``pay/*``: a ``GuardedStore`` over SQL; over HTTP a real token
    of that grant, so the server's guard fills the pages."""
    if not isinstance(store, HttpStore):
        yield GuardedStore(store, Principal("ops", Role.ADMIN, (Scope.parse("pay/*"),)))
        return
    registry: HttpRegistry = request.getfixturevalue("http_registry")
    _token, secret = store.create_token(f"ops-{uuid.uuid4().hex[:8]}", Role.ADMIN, scopes=["pay/*"])
    with HttpStore(registry.server.url, token=secret) as reader:
        yield reader


# ---------------------------------------------------------------- every item once


@pytest.mark.parametrize("listing", LISTS.values(), ids=LISTS.keys())
def test_pages_hold_every_item_once_in_order(store: RegistryStore, listing: Listing) -> None:
    made = listing.build(store)
    everything = listing.read(store, ALL, listing.first)
    keys = [listing.key(item) for item in everything]

    assert [k for k in keys if k in made] == made
    if not listing.shared:
        assert keys == made
    for limit in (1, 2, 3, ALL):
        pages = listing.pages(store, limit)
        assert [item for page in pages for item in page] == everything, limit
        assert all(len(page) == limit for page in pages[:-1]), limit
    assert [len(page) for page in listing.pages(store, 2)][-1] == (len(everything) % 2 or 2)


# ---------------------------------------------------------------- items arriving


def _grow_history(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    newest = store.latest_seq()
    register_versions(store, "fraud", 1)
    register_versions(store, "churn", 1)
    store.set_aliases("fraud", {"candidate": 4})
    return [], [e.seq for e in store.events(model="fraud", since=newest, limit=ALL)]


def _grow_policies(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    store.set_policy("fraud", STRICT, reason="later")
    store.set_policy("churn", LOOSE, reason="another model's")
    store.set_policy("fraud", LOOSE, reason="later still")
    return [], [6, 7]


def _grow_fleet(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    assert cursor == "r-3"  # ads/ctr@production, eu-west
    store.heartbeat(beat("r-3", "ads/ctr", "ads/ctr@production", "eu-west", version=2, seq=9))
    store.heartbeat(beat("q-1", "ads/ctr", "ads/ctr@production", "eu-west"))  # before r-3
    store.heartbeat(beat("s-1", "ads/ctr", "ads/ctr@production", "eu-west"))  # after it
    store.heartbeat(beat("z-0", "aaa", "aaa@production"))  # a model before
    store.heartbeat(beat("a-0", "zeta", "zeta@production"))  # a model after
    store.heartbeat(beat("a-1", "ads/ctr", "ads/ctr@production", "us-east"))  # a region after
    return ["q-1", "z-0"], ["s-1", "a-0", "a-1"]


def _grow_app_releases(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    assert cursor == "ads-svc@0.9"
    store.create_app_release("aaa-svc", "1.0", SCHEMA)  # an app before
    store.create_app_release("ads-svc", "0.1", SCHEMA)  # created after the cursor's release
    store.create_app_release("zzz-svc", "1.0", SCHEMA)
    return ["aaa-svc@1.0"], ["ads-svc@0.1", "zzz-svc@1.0"]


def _grow_tokens(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    prefix = cursor.rpartition("-")[0]
    assert cursor == f"{prefix}-b"
    made = {s: f"{prefix}-{s}" for s in ("a0", "bb", "f")}
    for name in made.values():
        store.create_token(name, Role.READER)
    return [made["a0"]], [made["bb"], made["f"]]


def _grow_webhooks(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    later = [w for w in store.list_webhooks(limit=ALL) if w.id > cursor]
    store.remove_webhook(later[1].id)  # removed after the first page: not on the next
    added = [store.add_webhook(f"https://hooks.example/new/{i}", ["*"])[0] for i in range(2)]
    return [later[1].id], [w.id for w in added]


def _grow_erasures(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    added = [store.request_erasure(s, reason="later") for s in (NOBODY, P)]
    return [], [r.id for r in added]


def _grow_plans(store: RegistryStore, cursor: Any) -> tuple[list[Any], list[Any]]:
    assert cursor == "ads/reach"
    for name in ("aaa", "ads/ab", "ads/zz", "zeta"):
        store.create_model(name)
    return ["aaa", "ads/ab"], ["ads/zz", "zeta"]


GROW: dict[str, Callable[[RegistryStore, Any], tuple[list[Any], list[Any]]]] = {
    "history": _grow_history,
    "policy_history": _grow_policies,
    "fleet": _grow_fleet,
    "app_releases": _grow_app_releases,
    "tokens": _grow_tokens,
    "webhooks": _grow_webhooks,
    "erasures": _grow_erasures,
    "rollback_plans": _grow_plans,
}


@pytest.mark.parametrize("listing", LISTS.values(), ids=LISTS.keys())
def test_the_next_page_goes_on_after_its_cursor_while_items_arrive(
    store: RegistryStore, listing: Listing
) -> None:
    made = listing.build(store)
    first = listing.read(store, 2, listing.first)
    if listing.shared:  # start the walk at my items: the first page is two of them
        first = listing.read(store, 2, made[0][:-1])
    cursor = listing.cursor(first[-1])
    assert [listing.key(i) for i in first] == made[:2]

    before, after = GROW[listing.id](store, cursor)
    rest = [listing.key(i) for i in listing.read(store, ALL, cursor)]
    everything = listing.keys(store)

    assert rest == everything[everything.index(listing.key(first[-1])) + 1 :]
    assert not {listing.key(i) for i in first} & set(rest)
    assert set(after) <= set(rest)
    assert not set(before) & set(rest)
    assert [k for k in rest if k in made] == [k for k in made[2:] if k not in before]


# ---------------------------------------------------------------- bad pages


@pytest.mark.parametrize("listing", LISTS.values(), ids=LISTS.keys())
def test_bad_pages_are_one_line_of_invalid_input(store: RegistryStore, listing: Listing) -> None:
    listing.build(store)
    before = listing.read(store, ALL, listing.first)
    queries = [*BAD_LIMITS, *({listing.arg: c} for c in listing.bad_cursors)]

    answers = {}
    for query in queries:
        try:
            listing.method(store)(**query)
        except Exception as exc:  # every outcome is collected, then compared at once
            answers[repr(query)] = (type(exc).__name__, "\n" in str(exc))
        else:
            answers[repr(query)] = ("answered", False)

    assert answers == {repr(q): ("InvalidInput", False) for q in queries}
    assert listing.read(store, ALL, listing.first) == before


def test_a_cursor_past_64_bits_is_invalid_input_not_a_driver_error(store: RegistryStore) -> None:
    store.create_model("fraud")
    huge = 2**64
    reads: dict[str, Callable[[], object]] = {
        "history": lambda: store.history("fraud", since=huge),
        "events since": lambda: store.events(since=huge),
        "events before": lambda: store.events(before=huge),
        "versions before": lambda: store.list_versions("fraud", before=huge),
        "policy history": lambda: store.policy_history("fraud", after=huge),
        "webhooks": lambda: store.list_webhooks(after=huge),
        "erasures": lambda: store.erasures(after=huge),
        "search offset": lambda: store.search("", offset=huge),
        "impact offset": lambda: store.lineage_impact(dataset="tx@1", offset=huge),
    }

    answers = {}
    for what, read in reads.items():
        try:
            read()
        except Exception as exc:  # every outcome is collected, then compared at once
            answers[what] = (type(exc).__name__, "out of range" in str(exc))
        else:
            answers[what] = ("answered", False)

    assert answers == {what: ("InvalidInput", True) for what in reads}
    assert store.history("fraud", since=2**63 - 1) == []  # the widest cursor still reads


def test_more_than_ten_thousand_plan_names_are_invalid_input(store: RegistryStore) -> None:
    store.create_model("fraud")

    with pytest.raises(InvalidInput) as refused:
        store.rollback_plans([f"m-{i}" for i in range(10_001)])

    assert "\n" not in str(refused.value)
    with pytest.raises(InvalidInput):
        store.rollback_plans("fraud")  # one string is not a list of names
    assert [p.name for p in store.rollback_plans(["fraud", "fraud"])] == ["fraud"]


# ---------------------------------------------------------------- a scoped token


@pytest.mark.parametrize("listing", [LISTS[n] for n in SCOPED], ids=SCOPED)
def test_a_scoped_tokens_pages_are_full_of_what_it_may_see(
    store: RegistryStore, scoped: RegistryStore, listing: Listing
) -> None:
    listing.build(store)
    seen = [s for s in map(listing.scoped, listing.read(store, ALL, listing.first)) if s]
    assert len(seen) >= 3

    assert listing.read(scoped, ALL, listing.first) == seen
    for limit in (1, 2):
        pages = listing.pages(scoped, limit)
        assert [item for page in pages for item in page] == seen, limit
        assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1), limit


def test_a_scoped_tokens_first_page_skips_what_it_may_not_see(
    store: RegistryStore, scoped: RegistryStore
) -> None:
    _fleet(store)
    _plans(store)

    assert [b.resolver_id for b in scoped.fleet(limit=2)] == ["r-1", "r-7"]
    assert [p.name for p in scoped.rollback_plans(limit=2)] == ["pay/fraud", "pay/limits"]
    assert [p.name for p in scoped.rollback_plans(limit=2, after="pay/limits")] == ["pay/risk"]
    with pytest.raises(InvalidInput):
        scoped.fleet(after="r-0")  # an unknown cursor, for a scoped token too


# ---------------------------------------------------------------- open erasures


def _erasure_pages(store: RegistryStore, limit: int, **filters: Any) -> list[list[int]]:
    read = functools.partial(store.erasures, **filters)
    pages = _pages(lambda n, after: read(limit=n, after=after), lambda r: r.id, 0, limit)
    return [[r.id for r in page] for page in pages]


def test_open_erasure_pages_are_full_though_closed_ones_lie_between(
    store: RegistryStore,
) -> None:
    ids = _erasures(store)
    open_ids = [ids[n - 1] for n in (1, 3, 5, 6, 7, 9)]

    assert [r.id for r in store.erasures(open_only=True, limit=ALL)] == open_ids
    assert _erasure_pages(store, 1, open_only=True) == [[i] for i in open_ids]
    assert _erasure_pages(store, 2, open_only=True) == [open_ids[0:2], open_ids[2:4], open_ids[4:]]
    assert _erasure_pages(store, 4, open_only=True) == [open_ids[:4], open_ids[4:]]
    assert (
        store.erasures(open_only=True, limit=2, after=ids[1])
        == store.erasures(open_only=True, limit=ALL)[1:3]
    )


def test_open_erasure_pages_of_one_model_hold_its_open_items(store: RegistryStore) -> None:
    ids = _erasures(store)
    # pay/fraud is flagged by #3, #5, #7, #8 and #9; its items of #5 and #8 are justified.
    mine = [ids[n - 1] for n in (3, 7, 9)]

    assert _erasure_pages(store, 1, open_only=True, model="pay/fraud") == [[i] for i in mine]
    assert _erasure_pages(store, 2, model="pay/fraud") == [
        [ids[2], ids[4]],
        [ids[6], ids[7]],
        [ids[8]],
    ]
    found = store.erasures(open_only=True, model="pay/fraud", limit=2)
    assert [[i.name for i in r.items] for r in found] == [["pay/fraud"], ["pay/fraud"]]
    assert all(r.open for r in found)


def test_a_scoped_tokens_open_erasure_pages_are_full_of_requests_open_to_it(
    store: RegistryStore, scoped: RegistryStore
) -> None:
    ids = _erasures(store)
    # #5 is open only for ads/ctr: to a pay/* token it shows two justified items.
    theirs = [ids[n - 1] for n in (3, 7, 9)]

    found = scoped.erasures(open_only=True, limit=ALL)

    assert all(r.open for r in found), [(r.id, r.open) for r in found]
    assert [r.id for r in found] == theirs
    assert _erasure_pages(scoped, 1, open_only=True) == [[i] for i in theirs]
    assert _erasure_pages(scoped, 2, open_only=True) == [theirs[:2], theirs[2:]]


# ---------------------------------------------------------------- over REST


@pytest.fixture
def rest(http_registry: HttpRegistry) -> Iterator[httpx.Client]:
    """An admin's client of the module's server, over a registry with one model."""
    http_registry.empty()
    with SqlStore(http_registry.db_url, actor="rest") as db:
        db.create_model("fraud")
    headers = {"Authorization": f"Bearer {http_registry.secret('tester')}"}
    with httpx.Client(base_url=f"{http_registry.server.url}/api/v1", headers=headers) as client:
        yield client


ROUTES = [
    "/history/fraud",
    "/policy-history/fraud",
    "/fleet",
    "/app-releases",
    "/tokens",
    "/webhooks",
    "/erasures",
    "/rollback-plans",
]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        *((path, {"limit": 10_001}, 400) for path in ROUTES),
        ("/fleet", {"after": "r-0"}, 400),  # no such resolver
        ("/app-releases", {"after": "nosuch@1.0"}, 400),  # no such app release
        ("/app-releases", {"app": "checkout", "after": "checkout"}, 400),
        ("/history/fraud", {"since": -1}, 422),
        ("/policy-history/fraud", {"after": -1}, 422),
        ("/webhooks", {"after": -1}, 422),
        ("/erasures", {"after": "next"}, 422),
        ("/tokens", {"after": "a\x00b"}, 422),
        ("/rollback-plans", {"after": "a\x00b"}, 422),
    ],
    ids=repr,
)
def test_bad_pages_over_rest_are_a_json_error_line(
    rest: httpx.Client, path: str, query: dict[str, Any], status: int
) -> None:
    reply = rest.get(path, params=query)

    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    message = reply.json()["error"]["message"]
    assert message
    assert "\n" not in message


def test_rest_pages_go_on_after_the_cursor(rest: httpx.Client) -> None:
    for name in ("ads/ctr", "pay/fraud", "pay/risk"):
        assert rest.post("/models", json={"name": name}).status_code == 201

    first = rest.get("/rollback-plans", params={"limit": 2})
    rest_of_them = rest.get("/rollback-plans", params={"limit": 2, "after": "fraud"})

    assert [p["name"] for p in first.json()] == ["ads/ctr", "fraud"]
    assert [p["name"] for p in rest_of_them.json()] == ["pay/fraud", "pay/risk"]


# ---------------------------------------------------------------- many names over HTTP


def test_plans_of_more_names_than_a_query_holds_come_once_each_by_name(
    http_registry: HttpRegistry,
) -> None:
    http_registry.empty()
    names = [f"m-{i:04d}" for i in range(1_005)]
    with SqlStore(http_registry.db_url, actor="tester") as db:
        for name in names:
            db.create_model(name)
    asked = [*names, *names[:7]]  # shuffled, some twice
    random.Random(13).shuffle(asked)

    with HttpStore(http_registry.server.url, token=http_registry.secret("tester")) as store:
        plans = store.rollback_plans(asked)
        walked = _pages(
            lambda n, after: store.rollback_plans(limit=n, after=after),
            lambda p: p.name,
            None,
            1_000,
        )

    assert [p.name for p in plans] == names
    assert all((p.current, p.target) == (None, None) for p in plans)
    assert [len(page) for page in walked] == [1_000, 5]
    assert [p for page in walked for p in page] == plans
