"""Webhook deliveries from the event log (being written)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry.config import ServerConfig


def start(app: Any, config: ServerConfig) -> Callable[[], None]:
    return lambda: None
