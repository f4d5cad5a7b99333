"""Resolving an app release (``app=fraud-service,release=1.0.0``): the release's
binding, followed as it moves, and the feature schema the release declares."""

from __future__ import annotations

import pytest

from registry.models import Signature

from .conftest import MODEL, Registry
from .support import wait_for

APP, RELEASE = "fraud-service", "1.0.0"
APP_REF = f"app={APP},release={RELEASE}"


@pytest.fixture
def app_release(fraud: Registry, signature: Signature) -> Registry:
    """fraud-service 1.0.0 sends the models' features and follows Production."""
    fraud.store.create_app_release(APP, RELEASE, signature)
    fraud.store.bind_app_release(APP, RELEASE, MODEL, follow="production")
    return fraud


def test_an_app_release_follows_production_when_it_moves(app_release: Registry) -> None:
    resolver = app_release.resolver((APP_REF,), ttl_s=3600)
    served = resolver.get(app=APP, release=RELEASE)
    assert (served.name, served.version) == (MODEL, 1)
    app_release.promote(2)
    wait_for(lambda: resolver.get(app=APP, release=RELEASE).version, lambda v: v == 2)
    assert resolver.get(APP_REF).version == 2


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_app_release_refuses_a_model_that_does_not_take_what_it_sends(
    app_release: Registry, signature: Signature
) -> None:
    # v4 was registered as never having seen distance_km, which the release sends; a
    # forced binding gets it past the gate, and the resolver is the last line.
    narrower = signature.model_copy(
        update={"features": [f for f in signature.features if f.name != "distance_km"]}
    )
    v4 = app_release.register(0, signature=narrower)
    resolver = app_release.resolver((APP_REF,), ttl_s=3600)
    app_release.store.bind_app_release(
        APP, RELEASE, MODEL, version=v4, force=True, reason="hotfix pin"
    )
    [status] = wait_for(resolver.status, lambda s: s[0].degraded or s[0].version == v4)
    assert (status.version, resolver.get(APP_REF).version) == (1, 1)
    assert "distance_km" in (status.reason or "")
