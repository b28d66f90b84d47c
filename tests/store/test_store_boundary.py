"""The database drivers and the store's concrete class stay inside `certbound.store`.

Callers ask the `Store` interface (``store.token_state()`` for the hot-path reader); only the store
knows it runs on sqlite3 or asyncpg, so a fast path cannot grow outside it again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import certbound

PACKAGE = Path(certbound.__file__).resolve().parent
DRIVERS = {"sqlite3", "asyncpg", "aiosqlite"}


def _isinstance_of_sql_store(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"):
        return False
    return any("SqlStore" in ast.unparse(arg) for arg in node.args[1:])


def offences(path: Path, root: Path = PACKAGE) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in DRIVERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DRIVERS:
            found.append(f"from {node.module}")
        elif _isinstance_of_sql_store(node):
            found.append(ast.unparse(node))
    return [f"{path.relative_to(root)}:{what}" for what in found]


def test_only_the_store_touches_the_drivers_or_checks_for_sql_store() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "store"]
    assert outside
    assert [o for p in outside for o in offences(p)] == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlite3\nfrom asyncpg import connect\nok = isinstance(store, (SqlStore, int))\n"
    )
    assert [o.partition(":")[2] for o in offences(sample, root=tmp_path)] == [
        "sqlite3", "from asyncpg", "isinstance(store, (SqlStore, int))"
    ]  # fmt: skip
