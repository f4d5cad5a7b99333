"""Only the gated moves reach the unguarded flip into Production.

``registry/store/sql/pointers.py`` puts a version in Production with
``_enter_production`` (the ``_ENTER_PRODUCTION`` statement) after the gate has
passed, in the same transaction. Any other caller would be a door around the gates,
so this reads the source of the library, the tasks and the flows and allows the two
names only where the gated moves use them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("registry", "tasks", "flows")
FLIP_NAMES = frozenset({"_enter_production", "_ENTER_PRODUCTION"})
POINTERS = Path("registry/store/sql/pointers.py")
# (file, enclosing function or "<module>", name) where the flip may be named.
ALLOWED = {
    (POINTERS, "_move_stage", "_enter_production"),  # transition/promote, after the gate
    (POINTERS, "_roll_back", "_enter_production"),  # rollback, after its gate
    (POINTERS, "_enter_production", "_ENTER_PRODUCTION"),  # the flip itself
    (POINTERS, "<module>", "_ENTER_PRODUCTION"),  # the statement's definition
}


def _references(tree: ast.AST, path: Path) -> set[tuple[Path, str, str]]:
    """Every mention of a flip name: as a variable, an attribute, an import, or a
    string (``getattr(pointers, "_enter_production")``), with its enclosing function."""
    found: set[tuple[Path, str, str]] = set()

    def visit(node: ast.AST, scope: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scope = node.name
        names: list[str] = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.alias):
            names = [node.name.rsplit(".", 1)[-1], node.asname or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        found.update((path, scope, n) for n in names if n in FLIP_NAMES)
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, "<module>")
    return found


def _sources() -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 20  # the scan really reads the tree
    return files


def _all_references() -> set[tuple[Path, str, str]]:
    found: set[tuple[Path, str, str]] = set()
    for path in _sources():
        relative = path.relative_to(ROOT)
        found |= _references(ast.parse(path.read_text(), filename=str(path)), relative)
    return found


def test_only_the_gated_moves_name_the_unguarded_flip() -> None:
    outside = _all_references() - ALLOWED

    assert outside == set(), "the unguarded flip is reached outside the gated moves"


def test_the_gated_moves_do_use_the_flip() -> None:
    """Else a rename would leave the test above checking nothing."""
    assert _all_references() == ALLOWED


def test_the_flip_is_defined_in_pointers() -> None:
    tree = ast.parse((ROOT / POINTERS).read_text())

    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assigned = {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert "_enter_production" in defined
    assert "_ENTER_PRODUCTION" in assigned


@pytest.mark.parametrize(
    "source",
    [
        "from registry.store.sql.pointers import _enter_production\n",
        "from registry.store.sql import pointers as p\np._enter_production(c, 1, 2)\n",
        "def helper(conn):\n    conn.execute(pointers._ENTER_PRODUCTION, {})\n",
        "flip = getattr(pointers, '_enter_production')\n",
    ],
    ids=["import", "attribute", "statement", "getattr"],
)
def test_the_scan_catches_each_way_of_reaching_the_flip(source: str) -> None:
    found = _references(ast.parse(source), Path("tasks/sneaky.py"))

    assert found
    assert not found <= ALLOWED
