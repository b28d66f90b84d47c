"""`certbound.store` and `certbound.sessions` export their SQL classes lazily (a module ``__getattr__``,
so that the gateway does not load SQLAlchemy): the names still behave as plain attributes, for Python
and for the type checker.

A module ``__getattr__`` that mypy can see makes every attribute of the module exist for it, typed as
what ``__getattr__`` returns: ``from certbound.store import open_stor`` would then pass ``make test``'s
strict mypy and fail only when run. The checks run mypy on the two packages alone (imports skipped),
which takes a second or two.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "certbound"
PACKAGES = ("certbound.store", "certbound.sessions")
LAZY = {"certbound.store": ("SqlStore", "open_store"), "certbound.sessions": ("SqlSessionStore",)}


def test_mypy_refuses_a_misspelled_name_from_the_lazy_packages(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from certbound.sessions import SqlSesionStore\n"
        "from certbound.store import ClientExist\n"
        "from certbound.store import open_stor\n"
    )
    (tmp_path / "mypy.ini").write_text("[mypy]\n")  # not the project's: its files and plugins
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=skip", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "--config-file", str(tmp_path / "mypy.ini"),
         str(probe), str(SRC / "store" / "__init__.py"), str(SRC / "sessions" / "__init__.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert 'Module "certbound.sessions" has no attribute "SqlSesionStore"' in out, out
    assert 'Module "certbound.store" has no attribute "ClientExist"' in out, out
    assert 'Module "certbound.store" has no attribute "open_stor"' in out, out


@pytest.mark.parametrize("package", PACKAGES)
def test_the_lazy_names_are_attributes_like_the_others(package: str) -> None:
    module = importlib.import_module(package)
    for name in LAZY[package]:
        assert getattr(module, name).__name__ == name
        assert hasattr(module, name)
        assert name in dir(module)  # completion, pydoc and help() list them
    assert not hasattr(module, "NoSuchName")
    with pytest.raises(AttributeError, match="NoSuchName"):
        _ = module.NoSuchName
    for name in module.__all__:  # what `from package import *` asks for
        assert getattr(module, name) is not None, name
