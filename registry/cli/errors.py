"""The one place that turns an exception into a line on stderr and an exit code.

- 2: usage errors and InvalidInput (bad name, bad metadata, bad filter, no such file)
- 3: NotFound
- 4: Conflict, GateRefused and ReleaseCheckFailed (stale generation, illegal transition,
  a refused gate, nothing to roll back to)
- 5: RegistryUnavailable, StorageError and ArtifactError (a registry server that is
  down: the message names its URL)
- 6: Unauthenticated and Forbidden (a registry server refused the token: missing,
  unknown or revoked, or its role or scope does not allow the call). Not 4: a refusal
  there is about the model's state and a retry may pass once it changes; this one is
  about who is asking and passes only with another token, so a script must tell them
  apart without reading the message.
- 75: ``register`` could not reach the registry and queued the registration in the
  local outbox (``modelreg drain`` delivers it). The bytes are stored and nothing is
  lost, but the version does not exist yet: a script that goes on to promote it must
  not see success. 75 is sysexits' EX_TEMPFAIL, what sendmail answers when it queues
  mail for later delivery (``register … || [ $? -eq 75 ]`` accepts a queued one).
- 1: anything else
"""

from __future__ import annotations

import click

from registry.errors import (
    ArtifactError,
    Conflict,
    Forbidden,
    GateRefused,
    InvalidInput,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    ReleaseCheckFailed,
    StorageError,
    Unauthenticated,
)

USAGE, NOT_FOUND, CONFLICT, UNAVAILABLE, DENIED, OTHER = 2, 3, 4, 5, 6, 1
QUEUED = 75  # returned by ``register``, not raised: queuing is not an error

_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidInput, USAGE),
    (NotFound, NOT_FOUND),
    (Conflict, CONFLICT),
    (GateRefused, CONFLICT),
    (ReleaseCheckFailed, CONFLICT),
    (StorageError, UNAVAILABLE),
    (RegistryUnavailable, UNAVAILABLE),
    (ArtifactError, UNAVAILABLE),
    (Unauthenticated, DENIED),
    (Forbidden, DENIED),
)


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, click.UsageError):
        return USAGE
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return OTHER


def message(exc: BaseException) -> str:
    """One line that says what went wrong, in the user's terms."""
    if isinstance(exc, click.UsageError):
        text = exc.format_message()
        if exc.ctx is not None:
            text += f" (see '{exc.ctx.command_path} --help')"
    elif isinstance(exc, click.ClickException):
        text = exc.format_message()
    elif isinstance(exc, click.Abort):
        text = "aborted"
    elif isinstance(exc, GateRefused):
        text = str(exc)
        extra = [reason for reason in exc.reasons if reason not in text]
        if extra:
            text += f" ({'; '.join(extra)})"
    elif isinstance(exc, RegistryError | OSError):
        text = str(exc)
    else:
        text = f"internal error ({type(exc).__name__}): {exc}"
    return (
        " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(exc).__name__
    )


def report(exc: BaseException, *, show_traceback: bool = False) -> int:
    """Print ``error: <message>`` (one line) on stderr and return the exit code."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        # A bare ``modelreg`` or ``modelreg alias`` asks what there is: show the help.
        click.echo(exc.ctx.get_help())
        return 0
    if show_traceback and exit_code(exc) == OTHER:
        import traceback

        traceback.print_exception(exc)
    click.echo(f"error: {message(exc)}", err=True)
    return exit_code(exc)
