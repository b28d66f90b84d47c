"""Client metadata is read in one place: the model's builder (and registration, which writes it).

Everything else in the server reads the typed `ClientModel`, so a rule about a metadata field cannot
be re-implemented, slightly differently, by a second reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import certbound.server

SERVER = Path(certbound.server.__file__).resolve().parent


def metadata_reads(path: Path) -> list[str]:
    """Every ``<something>.metadata`` attribute read in `path`, as ``file:line``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(SERVER)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "metadata" and isinstance(node.ctx, ast.Load)
    ]


def test_only_the_clients_package_reads_client_metadata() -> None:
    outside = [p for p in SERVER.rglob("*.py") if p.relative_to(SERVER).parts[0] != "clients"]
    assert outside
    assert [read for path in outside for read in metadata_reads(path)] == []


def test_the_check_finds_a_read() -> None:
    sample = SERVER / "clients" / "model.py"
    assert metadata_reads(sample)  # the builder itself reads it
