"""``python modules_at_exit.py OUT ARGS...`` runs ``certbound ARGS...`` as ``python -m certbound`` does,
and writes to OUT, as the process exits, the names of every module it loaded: what the command that
served imported, including at its requests (tests/gateway/test_imports.py)."""

from __future__ import annotations

import atexit
import json
import runpy
import sys
from pathlib import Path

out = Path(sys.argv[1])
atexit.register(lambda: out.write_text(json.dumps(sorted(sys.modules))))
sys.argv = ["certbound", *sys.argv[2:]]
runpy.run_module("certbound", run_name="__main__", alter_sys=True)
