"""Settings for a registry server client: the token and the write retry budget."""

from __future__ import annotations

import pytest

from registry.client import connect
from registry.config import Settings
from registry.errors import InvalidInput
from registry.store.http import HttpStore


def test_the_token_comes_from_the_environment_and_never_shows_in_a_repr() -> None:
    settings = Settings.from_env({"MODELREG_TOKEN": "mrt_secret", "MODELREG_URL": "http://r:8080"})

    assert settings.token == "mrt_secret"
    assert "mrt_secret" not in repr(settings)


def test_the_write_retry_budget_reaches_the_http_client() -> None:
    settings = Settings.from_env({"MODELREG_URL": "http://r:8080", "MODELREG_WRITE_RETRY_S": "2.5"})

    with connect(settings=settings) as store:
        assert isinstance(store, HttpStore)
        assert store.write_budget_s == 2.5


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", "7200"])
def test_a_bad_write_retry_budget_is_one_clear_error(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"write_retry_s|MODELREG_WRITE_RETRY_S"):
        Settings.from_env({"MODELREG_WRITE_RETRY_S": value})
