"""[tool.perfci] tables for throwaway test projects that measure this repository's user service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfci.config import load_config
from perfci.targets.process import ProcessSpec
from perfci.targets.select import process_spec

REPO = Path(__file__).resolve().parents[1]
SCENARIO_NAMES = ("journeys", "auth", "sessions", "search", "stress", "open")


def scenario_tables(folder: str | Path = "scenarios") -> str:
    """Every scenario of scenarios/ as a table; `folder` relative to the test project, or absolute."""
    return "".join(
        f'\n[tool.perfci.scenarios.{name}]\nfile = "{Path(folder) / f"{name}.py"}"\n'
        + ('model = "open"\n' if name == "open" else "")
        for name in SCENARIO_NAMES
    )


def process_table(workdir: str | Path = REPO / "service") -> str:
    """The user service as a process target, run from `workdir` (relative to the test project, or absolute)."""
    return f"""
[tool.perfci.service.process]
workdir = "{workdir}"
serve = "{{python}} -m userservice serve --host {{host}} --port {{port}} --workers {{workers}}"
seed = "{{python}} -m userservice seed --count {{seed_users}}"
database_env = "USERSVC_DATABASE_URL"
sqlite_url = "sqlite+aiosqlite:///{{path}}"
"""


def userservice_tables(workdir: str | Path = REPO / "service", scenarios: str | Path = "scenarios") -> str:
    return process_table(workdir) + scenario_tables(scenarios)


def userservice_spec(**changes: Any) -> ProcessSpec:
    """The user service as this project's [tool.perfci.service.process] describes it, with `changes`."""
    config = load_config(REPO / "pyproject.toml", environ={})
    # `env` adds to the configured environment (its JWT secret, which PostgreSQL runs need) or overrides it.
    values: dict[str, Any] = {"seed_users": 0, "boot_timeout_s": 60.0, **changes}
    values["env"] = {**config.service.env, **changes.get("env", {})}
    return process_spec(config, REPO, **values)
