"""Settings: the one place that reads the environment.

Built at an entry point (CLI, flow, server) and passed down; nothing reads
configuration or opens a connection at import time.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOME = ".modelreg"
DEFAULT_REGIONS = ("us-east", "eu-west", "ap-south")


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Settings:
    home: Path = Path(DEFAULT_HOME)
    registry_url: str = f"sqlite:///{DEFAULT_HOME}/registry.db"
    artifact_root: str = f"{DEFAULT_HOME}/artifacts"
    regions: tuple[str, ...] = DEFAULT_REGIONS
    actor: str = field(default_factory=_default_actor)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("MODELREG_HOME", DEFAULT_HOME))
        values: dict[str, object] = {
            "home": home,
            "registry_url": env.get("MODELREG_URL", f"sqlite:///{home}/registry.db"),
            "artifact_root": env.get("MODELREG_ARTIFACTS", str(home / "artifacts")),
            "actor": env.get("MODELREG_USER") or _default_actor(),
        }
        if env.get("MODELREG_REGIONS"):
            values["regions"] = tuple(
                r.strip() for r in env["MODELREG_REGIONS"].split(",") if r.strip()
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
