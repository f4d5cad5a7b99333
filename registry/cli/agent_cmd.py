"""``modelreg agent``: start, stop and list the warm agent that answers read commands."""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.state import CliState, json_option, pass_state


@click.group()
def agent() -> None:
    """The warm agent: read commands answered without Python's start-up (MODELREG_AGENT)."""


@agent.command()
@click.option("--wait", "wait_s", type=float, default=30.0, show_default=True, metavar="S")
def start(wait_s: float) -> None:
    """Start the agent now, rather than on the first read command, and wait until it
    answers."""
    import os
    import time

    from registry.cli import agent as warm
    from registry.errors import InvalidInput, RegistryUnavailable

    folder = _folder()
    stamp = warm.code_stamp()
    sock = warm.paths(folder, stamp)["sock"]
    if not warm.enabled(os.environ):
        raise InvalidInput("the agent is off (MODELREG_AGENT); unset it to start one")
    warm.start_in_background(folder, stamp, os.environ)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        up = [info for info in warm.status(folder) if info["stamp"] == stamp]
        if up and sock.exists():
            click.echo(f"agent up: pid {up[0]['pid']}, {sock}")
            return
        time.sleep(0.05)
    raise RegistryUnavailable(f"the agent did not come up within {wait_s:g} s ({folder})")


@agent.command()
@click.option("--wait", "wait_s", type=float, default=30.0, show_default=True, metavar="S")
def stop(wait_s: float) -> None:
    """Stop every agent of this user; commands they are running finish first."""
    import os
    import signal
    import time

    from registry.cli import agent as warm
    from registry.errors import RegistryUnavailable

    folder = _folder()
    asked = []
    for info in warm.status(folder):
        try:
            os.kill(int(info["pid"]), signal.SIGTERM)
        except (OSError, KeyError, ValueError):
            continue
        asked.append(info["stamp"])
    deadline = time.monotonic() + wait_s
    while any(warm.running(folder, stamp) for stamp in asked):
        if time.monotonic() > deadline:
            raise RegistryUnavailable(f"an agent did not stop within {wait_s:g} s ({folder})")
        time.sleep(0.05)
    click.echo(f"stopped {len(asked)} agent(s)")


@agent.command()
@json_option
@pass_state
def status(state: CliState) -> None:
    """Agents of this user: pid, since when, and whether they run the current code."""
    import json
    import time

    from registry.cli import agent as warm

    folder = _folder()
    found = warm.status(folder)
    if state.json:
        click.echo(json.dumps({"folder": str(folder), "agents": found}))
        return
    if not found:
        click.echo(f"no agent running ({folder}); the next read command starts one")
        return
    for info in found:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        code = "current" if info["current"] else "stale code, exits when idle"
        click.echo(f"pid {info['pid']}  since {since}  {code}  {info['socket']}")


def _folder() -> Path:
    import os

    from registry.cli import agent as warm
    from registry.errors import InvalidInput

    folder = warm.agent_dir(os.environ)
    if folder is None:
        raise InvalidInput(
            "the agent's folder is not private (owner, mode 0700, no symlink): "
            "set MODELREG_AGENT_DIR to one that is"
        )
    return folder
