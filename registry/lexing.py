"""The lexer loop the two filter languages share (``registry.search`` and the MLflow
API's ``registry.mlflow_api.search``): each has its own token pattern and tokens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator


def scan(
    text: str, pattern: re.Pattern[str], lex_error: Callable[[str, int], Exception]
) -> Iterator[tuple[str, str, int]]:
    """(kind, text, 1-based position) of each token ``pattern``'s named groups match,
    spaces (the group ``space``) left out; ``lex_error(text, pos)`` where none matches."""
    pos = 0
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None:
            raise lex_error(text, pos)
        kind, chunk = match.lastgroup or "", match.group()
        if kind != "space":
            yield kind, chunk, pos + 1
        pos = match.end()
