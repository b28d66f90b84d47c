"""The options that say where the store is, as `certbound serve` finds it: `keys` and `users` share them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ConfigOpt", "DataDirOpt", "DatabaseOpt"]

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file (as for serve).")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./data).")]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="sqlite:///... or postgresql://...")]
