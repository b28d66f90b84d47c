"""The shared packages stay shared: net and jose import no application (until import-linter checks it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import certbound

ROOT = Path(certbound.__file__).parent
APPLICATIONS = ("certbound.server", "certbound.gateway", "certbound.cli", "certbound.client")
FORBIDDEN = {
    "net": (*APPLICATIONS, "certbound.jose", "certbound.sessions"),
    "jose": (*APPLICATIONS, "certbound.sessions"),
}


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_shared_package_imports_no_application(package: str) -> None:
    files = sorted((ROOT / package).glob("*.py"))
    assert files
    offending = {
        f"{path.name}: {module}"
        for path in files
        for module in imported_modules(path)
        if any(module == name or module.startswith(name + ".") for name in FORBIDDEN[package])
    }
    assert not offending, sorted(offending)
