"""The ``modelreg`` console script: a read command goes to the warm agent when one is
up (``registry.cli.agent``); every other command, and every read when none is,
runs in this process through ``registry.cli.main``. Standard library only until then."""

from __future__ import annotations


def main() -> None:
    import os
    import sys

    from registry.cli import agent

    argv = sys.argv[1:]
    if agent.enabled(os.environ) and agent.routed(argv):
        code = agent.call(argv, os.environ)
        if code is not None:
            sys.exit(code)
    from registry.cli.main import main as run_here

    run_here()
