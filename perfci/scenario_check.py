"""Scenario files checked before any service boots: one that fails at import is a usage error, not a run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from perfci.config import Config
from perfci.errors import ConfigError

CHECK_TIMEOUT_S = 60.0

MARKER = "perfci-scenario-check: "  # tells a result line from whatever a scenario prints at import
# Run in a fresh interpreter, as Locust would import the file: its folder first on the path (for helpers
# beside it), gevent's patching in place. Prints one marked JSON line per failing file.
_CHECK = """
import json, runpy, sys, traceback
from pathlib import Path
for path in sys.argv[1:]:
    sys.path.insert(0, str(Path(path).parent))
    try:
        runpy.run_path(path, run_name="perfci_scenario_check")
    except BaseException as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
        line = frames[-1].lineno if frames else None
        print(MARKER + json.dumps({"file": path, "line": line, "error": f"{type(exc).__name__}: {exc}"}))
    finally:
        sys.path.pop(0)
"""


def check_scenarios(config: Config) -> None:
    """Import every scenario this run measures in a subprocess; exit 2 naming the file and line that fails."""
    if not config.scenarios:
        raise ConfigError(
            f"no scenario is defined in {config.config_file}",
            'add a [tool.perfci.scenarios.NAME] table with file = "path/to/locustfile.py" (docs/configuration.md)',
        )
    files = {name: str(config.scenario_file(name)) for name in config.scenarios}
    for name, path in files.items():
        if not Path(path).is_file():
            raise ConfigError(
                f"scenarios.{name}.file: {path} is not a file ({config.config_file})",
                f"correct file in [tool.perfci.scenarios.{name}]; it is relative to {config.project_root}",
            )
    try:
        result = subprocess.run(
            [sys.executable, "-c", f"MARKER = {MARKER!r}\n{_CHECK}", *files.values()],
            capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, check=False, cwd=config.project_root,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"importing the scenario files took longer than {CHECK_TIMEOUT_S:g} s: {', '.join(files.values())}",
            "a scenario must not do work at import time; move it into the users' tasks or on_start",
        ) from None
    for row in result.stdout.splitlines():
        if not row.startswith(MARKER):
            continue  # something the scenario printed
        failure = json.loads(row.removeprefix(MARKER))
        name = next(n for n, path in files.items() if path == failure["file"])
        where = f"{failure['file']}, line {failure['line']}" if failure["line"] else failure["file"]
        raise ConfigError(
            f"scenario {name!r} fails at import ({where}): {failure['error']}",
            f"fix the file named by file in [tool.perfci.scenarios.{name}] of {config.config_file}",
        )
    if result.returncode != 0:  # the interpreter itself died (a crash in an extension, a kill)
        last = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise ConfigError(
            f"importing the scenario files {', '.join(files.values())} failed: {last}",
            "run `python -c 'import runpy; runpy.run_path(\"FILE\")'` on each to see which one",
        )
