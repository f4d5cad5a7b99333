"""Promote staged versions to Production one after another, as fast as the registry
takes them: a release pipeline in a process of its own.

    python burst.py REGISTRY_URL MODEL VERSION...
"""

from __future__ import annotations

import sys

from registry.models import Stage
from registry.store.sql import SqlStore


def main(url: str, model: str, versions: list[int]) -> None:
    with SqlStore(url, actor="release-bot", migrate=False) as store:
        for version in versions:
            store.transition(model, version, Stage.PRODUCTION)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(v) for v in sys.argv[3:]])
