"""The one mapping from exceptions to exit codes and one-line messages."""

from __future__ import annotations

import click
import pytest

from registry.cli.errors import exit_code, message, report
from registry.errors import (
    ArtifactError,
    ChecksumMismatch,
    Conflict,
    GateRefused,
    InvalidInput,
    NotFound,
    RegistryError,
    RegistryUnavailable,
)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidInput("bad"), 2),
        (click.UsageError("bad usage"), 2),
        (click.BadParameter("bad value"), 2),
        (NotFound("gone"), 3),
        (Conflict("stale"), 4),
        (GateRefused("no", ("canary failed",)), 4),
        (RegistryUnavailable("down"), 5),
        (ArtifactError("unreadable"), 5),
        (ChecksumMismatch("corrupt"), 5),
        (RegistryError("other"), 1),
        (RuntimeError("bug"), 1),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, BaseException) else str(x),
)
def test_each_error_type_has_its_exit_code(exc: BaseException, code: int) -> None:
    assert exit_code(exc) == code


def test_a_multi_line_message_becomes_one_line() -> None:
    assert message(InvalidInput("first\n  second\n")) == "first second"


def test_gate_refusal_lists_reasons_not_already_in_the_message() -> None:
    exc = GateRefused("refused: canary failed", ("canary failed", "replica missing"))
    assert message(exc) == "refused: canary failed (replica missing)"


def test_an_unexpected_error_is_named_as_internal() -> None:
    assert message(KeyError("x")) == "internal error (KeyError): 'x'"


def test_report_prints_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(NotFound("model 'x' not found")) == 3
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "error: model 'x' not found\n")


def test_report_shows_a_traceback_for_internal_errors_only_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        raise RuntimeError("bug")
    except RuntimeError as exc:
        report(exc, show_traceback=True)
    assert "Traceback" in capsys.readouterr().err
