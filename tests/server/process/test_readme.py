"""A newcomer's first minutes: the README's start command, from a clean copy, then its printed curl."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]


def readme_commands() -> dict[str, str]:
    """The two commands of README.md's first code block: start, then test."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README.md must open with a sh code block"
    lines = [ln.split("#", 1)[0].strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2, "the README's first block gives exactly two commands: start and test"
    return {"start": lines[0], "test": lines[1]}


def test_ci_runs_the_readme_test_command() -> None:
    assert readme_commands()["test"] in (REPO / ".ci" / "run").read_text().splitlines()


def clean_copy(dest: Path) -> None:
    """The files a clean clone would have: tracked ones plus new ones git does not ignore."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def test_start_command_from_a_clean_copy_then_the_printed_curl(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to follow the README")
    copy = tmp_path / "certbound"
    clean_copy(copy)
    log = tmp_path / "start.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "CERTBOUND_"))}
    with log.open("w") as out:
        proc = subprocess.Popen(
            shlex.split(readme_commands()["start"]), cwd=copy, stdout=out, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )  # fmt: skip
    try:
        curl = None
        deadline = time.monotonic() + 300  # the first run builds the virtual environment
        while curl is None:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            text = log.read_text()
            curls = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("curl ")]
            curl = next((c for c in curls if "oauth-authorization-server" in c), None)
            time.sleep(0.5)
        for _ in range(60):
            got = subprocess.run(shlex.split(curl), cwd=copy, capture_output=True, text=True, timeout=30)
            if got.returncode != 7:  # 7: not listening yet
                break
            time.sleep(0.5)
        assert got.returncode == 0, got.stderr
        assert '"issuer":"https://127.0.0.1:8443"' in got.stdout.replace(" ", "")
        assert "--cert" in curl
        assert (copy / "data" / "pki" / "demo-client.crt").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
