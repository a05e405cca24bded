"""The suite's configuration: [tool.perfci] in pyproject.toml, then PERFCI_* environment, then CLI flags.

Everything downstream receives the frozen `Config`; only the CLI knows about argparse. A bad key or value is
a `ConfigError` that names the key and the file it came from.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from perfci.config_tables import (
    MAX_TRIAL_S,
    MAX_USERS,
    MAX_WORKERS,
    ComposeSettings,
    ProcessSettings,
    ScenarioSettings,
    ServiceSettings,
)
from perfci.errors import ConfigError
from perfci.model import Frozen, SloSpec, StatsSettings
from perfci.rundir import read_text_file

__all__ = ["ComposeSettings", "Config", "ProcessSettings", "ScenarioSettings", "ServiceSettings", "load_config"]

TargetChoice = Literal["auto", "compose", "process", "url"]

MAX_RATE = 100_000.0
MAX_MIN_EFFECT = 10.0  # a relative change of 1000 %

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds from `20s`, `1.5m`, `500ms`, `90` (plain numbers are seconds)."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative: {text}")
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 20s, 2m, 500ms)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Profile(Frozen):
    """How long and how hard each scenario is driven."""

    # Upper bounds catch a slip (1e6 users, a 99999999-h trial) before it ties up a runner for hours.
    trials: int = Field(ge=1, le=100)  # pairs in an A/B run; trials against a stored baseline
    duration_s: float = Field(gt=0, le=MAX_TRIAL_S)  # measured window of a trial
    warmup_s: float = Field(ge=0, le=MAX_TRIAL_S)
    users: int = Field(ge=1, le=MAX_USERS)
    spawn_rate: float = Field(gt=0, le=MAX_RATE)
    stop_timeout_s: float = Field(default=5, ge=0, le=MAX_TRIAL_S)
    arrival_rate: float = Field(default=40, gt=0, le=MAX_RATE)  # open-model scenarios: requests per second offered
    # A fresh service (and database) for every trial, not one per run. A long-lived instance drifts on its
    # own (its database grows, its caches and heap age), so in an A/B the two arms drift apart and pairing
    # cannot cancel it; restarting makes that drift part of the between-pair noise the test accounts for.
    # Cheap for the process target on SQLite (the seeded database is copied); slower for compose; a url
    # target cannot restart and ignores it.
    fresh_service: bool = False
    # How an A/B run schedules its two arms. "interleaved": one arm's trial after the other's, in pairs
    # counterbalanced as AB BA. "concurrent": both arms' trials at the same moment, each with its own Locust
    # and its own users, so whatever the host does during a pair hits both arms alike (docs/statistics.md,
    # "Concurrent arms"). Open-model and shaped scenarios always interleave.
    ab_schedule: Literal["interleaved", "concurrent"] = "interleaved"


class StressSettings(Frozen):
    scenarios: list[str] = Field(default_factory=list)  # empty: the run's default scenarios
    max_duration_s: float = Field(default=600, gt=0)
    step_s: float = Field(default=10, gt=0)
    start_users: int = Field(default=4, ge=1)
    max_users: int = Field(default=256, ge=1)
    error_threshold: float = Field(default=0.01, ge=0, le=1)


# The profiles this project measured its choices with (docs/statistics.md); a config's own profiles replace
# or add to them, so a fresh [tool.perfci] can run `--profile smoke` with nothing else written.
BUILTIN_PROFILES: dict[str, Profile] = {
    "pr": Profile(
        trials=16, duration_s=6, warmup_s=2, users=8, spawn_rate=50, fresh_service=True, ab_schedule="concurrent"
    ),
    "full": Profile(trials=8, duration_s=30, warmup_s=5, users=32, spawn_rate=50),
    "smoke": Profile(trials=1, duration_s=4, warmup_s=1, users=4, spawn_rate=20),
}

# Keys that once existed: naming one is a usage error that says where its value lives now, never a
# silently ignored setting.
MOVED_KEYS: dict[str, str] = {
    "scenarios": "default_scenarios (the list of scenarios a run measures); scenario files are "
    "[tool.perfci.scenarios.NAME] tables with file = ...",
    "scenario_users": "users in [tool.perfci.scenarios.NAME]",
    "service.compose_file": "file in [tool.perfci.service.compose]",
    "service.service_dir": "workdir in [tool.perfci.service.process]",
    "service.database_url": "database_url in [tool.perfci.service.process]",
}


class FileConfig(Frozen):
    """The shape of [tool.perfci]; unknown keys are rejected so a typo never silently does nothing."""

    target: TargetChoice = "auto"
    profile: str = "pr"
    default_scenarios: list[str] | None = None  # None: every scenario defined, in the order written
    runs_dir: str = ".perfci/runs"
    baselines_dir: str = "baselines"
    workers: int = Field(default=0, ge=0, le=MAX_WORKERS)  # Locust worker processes; 0 = a single local process
    # Keep the CPUs out of idle states while measuring (perfci/measure/cpu_idle.py); needs write access to
    # /dev/cpu_dma_latency, and goes on without it.
    hold_cpus_awake: bool = True
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    scenarios: dict[str, ScenarioSettings] = Field(default_factory=dict)
    statistics: StatsSettings = Field(default_factory=StatsSettings)  # alpha 0.01 unless set
    profiles: dict[str, Profile] = Field(default_factory=dict)
    slo: list[SloSpec] = Field(default_factory=list)
    stress: StressSettings = Field(default_factory=StressSettings)

    @field_validator("statistics")
    @classmethod
    def _statistics_bounds(cls, value: StatsSettings) -> StatsSettings:
        if not 0 < value.alpha < 0.5:  # a level of 0.5 or more is a coin toss, not a test
            raise ValueError(f"alpha = {value.alpha}: must be above 0 and below 0.5 (e.g. 0.01)")
        if not 0 < value.power < 1:
            raise ValueError(f"power = {value.power}: must be above 0 and below 1 (e.g. 0.8)")
        for metric, effect in value.min_effect.items():
            if not 0 < effect < MAX_MIN_EFFECT:
                raise ValueError(f"min_effect.{metric} = {effect}: must be above 0 and below {MAX_MIN_EFFECT:g}")
        return value

    @field_validator("default_scenarios")
    @classmethod
    def _some_scenario(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            # A run of no scenario measures nothing and would pass the gate.
            raise ValueError("no scenario to run; name at least one [tool.perfci.scenarios.NAME]")
        return None if value is None else list(dict.fromkeys(value))  # `--scenario x --scenario x` runs x once


class Config(Frozen):
    """The resolved configuration every stage reads."""

    project_root: Path
    config_file: Path
    target: TargetChoice
    profile_name: str
    profile: Profile
    profiles: dict[str, Profile]
    scenarios: list[str]  # the scenarios this run measures, in order
    scenario_settings: dict[str, ScenarioSettings] = Field(default_factory=dict)  # every defined scenario
    runs_dir: Path
    baselines_dir: Path
    workers: int
    hold_cpus_awake: bool
    service: ServiceSettings
    statistics: StatsSettings
    slos: list[SloSpec]
    stress: StressSettings
    # Where the scenario list came from: a run narrowed on the command line or by PERFCI_SCENARIOS rightly
    # misses the endpoints of the other scenarios, so an SLO matching none of its endpoints is no slip.
    scenarios_origin: str = ""

    @property
    def scenarios_narrowed(self) -> bool:
        return self.scenarios_origin in {"the command line", "environment variable PERFCI_SCENARIOS"}

    def _scenario(self, scenario: str) -> ScenarioSettings:
        try:
            return self.scenario_settings[scenario]
        except KeyError:
            raise ConfigError(
                f"unknown scenario {scenario!r} in {self.config_file}; defined: {sorted(self.scenario_settings)}",
                f'add [tool.perfci.scenarios.{scenario}] with file = "path/to/locustfile.py"',
            ) from None

    def users_for(self, scenario: str) -> int:
        return self._scenario(scenario).users or self.profile.users

    def duration_for(self, scenario: str) -> float:
        """The measured window of one trial of `scenario`: the profile's, scaled by the scenario's weight."""
        return self.profile.duration_s * self._scenario(scenario).weight

    def is_open_model(self, scenario: str) -> bool:
        return self._scenario(scenario).model == "open"

    def scenario_file(self, scenario: str) -> Path:
        return self.project_root / self._scenario(scenario).file


# Environment variables that override the file; each maps to a dotted key of [tool.perfci].
ENV_OVERRIDES: dict[str, str] = {
    "PERFCI_TARGET": "target",
    "PERFCI_PROFILE": "profile",
    "PERFCI_SCENARIOS": "default_scenarios",
    "PERFCI_WORKERS": "workers",
    "PERFCI_RUNS_DIR": "runs_dir",
    "PERFCI_BASELINES_DIR": "baselines_dir",
    "PERFCI_URL": "service.url",
    "PERFCI_DATABASE_URL": "service.process.database_url",
    "PERFCI_SEED_USERS": "service.seed_users",
    "PERFCI_BOOT_TIMEOUT": "service.boot_timeout_s",
}


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above `start` whose pyproject.toml has a [tool.perfci] table."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "[tool.perfci" in candidate.read_text(encoding="utf-8", errors="replace"):
            return folder
    raise ConfigError(
        f"no pyproject.toml with a [tool.perfci] table at or above {start}",
        "run perfci from your project's checkout, or pass --config PATH",
    )


def _set_dotted(table: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        table = table.setdefault(key, {})
    table[leaf] = value


def _first_error(exc: ValidationError) -> Mapping[str, Any]:
    """An unknown key first: a typo'd `duraton_s` is the cause of the "missing duration_s" beside it."""
    errors = exc.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _error_location(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"])


def _apply_environment(table: dict[str, Any], origin: dict[str, str], environ: Mapping[str, str]) -> None:
    for variable, dotted in ENV_OVERRIDES.items():
        if variable in environ:
            raw = environ[variable]
            value: Any = [s.strip() for s in raw.split(",") if s.strip()] if dotted == "default_scenarios" else raw
            _set_dotted(table, dotted, value)
            origin[dotted.split(".")[0]] = f"environment variable {variable}"


def _reject_moved_keys(table: Mapping[str, Any], config_file: Path) -> None:
    for dotted, now in MOVED_KEYS.items():
        *parents, leaf = dotted.split(".")
        holder: Any = table
        for key in parents:
            holder = holder.get(key, {}) if isinstance(holder, Mapping) else {}
        if not isinstance(holder, Mapping) or leaf not in holder:
            continue
        if dotted == "scenarios" and not isinstance(holder[leaf], list):
            continue  # the tables of scenarios, as they should be
        raise ConfigError(
            f"{dotted} in [tool.perfci] of {config_file} is no longer a setting",
            f"its value now goes in {now} (docs/configuration.md)",
        )


def _read_table(config_file: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(
            read_text_file(config_file, "pyproject.toml", "pass --config PATH to a pyproject.toml (UTF-8 TOML)")
        )
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {config_file} does not exist", "pass --config PATH to a pyproject.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file} is not valid TOML: {exc}", "fix the syntax at that line") from None
    return dict(document.get("tool", {}).get("perfci", {}))


def _chosen_scenarios(parsed: FileConfig, where: str) -> list[str]:
    """The scenarios a run measures, each the name of a [tool.perfci.scenarios.NAME] table.

    Whether their files exist and import is checked when a run starts (perfci/scenario_check.py).
    """
    chosen = parsed.default_scenarios if parsed.default_scenarios is not None else list(parsed.scenarios)
    unknown = [name for name in chosen if name not in parsed.scenarios]
    if unknown:
        raise ConfigError(
            f"unknown scenario(s) {unknown} (from {where}); defined: {list(parsed.scenarios) or 'none'}",
            f'add [tool.perfci.scenarios.{unknown[0]}] with file = "path/to/locustfile.py", or fix the name',
        )
    return chosen


def _check_service(parsed: FileConfig, config_file: Path) -> None:
    urls = {"service.url": parsed.service.url, "service.base_url": parsed.service.base_url,
            "service.candidate_url": parsed.service.candidate_url}  # fmt: skip
    for key, url in urls.items():
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{key} {url!r} ({config_file} or the command line) is not an http(s) address",
                "give the address the way a browser takes it, e.g. http://127.0.0.1:8765",
            )
    if parsed.target == "url" and not (parsed.service.url or parsed.service.candidate_url):
        raise ConfigError(
            "target 'url' needs the service's address, but service.url is empty",
            "pass --url http://127.0.0.1:PORT, set PERFCI_URL, or set url in [tool.perfci.service]",
        )
    if parsed.target == "process" and not parsed.service.process.serve.strip():
        raise ConfigError(
            f"target 'process' needs service.process.serve in {config_file}",
            'set serve = "... --host {host} --port {port}" in [tool.perfci.service.process] (docs/configuration.md)',
        )
    if parsed.target == "compose" and not parsed.service.compose.file:
        raise ConfigError(
            f"target 'compose' needs service.compose.file in {config_file}",
            "set file in [tool.perfci.service.compose] to your compose file (docs/containers.md)",
        )


def load_config(
    config_file: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read [tool.perfci] from `config_file`, apply PERFCI_* environment, then `overrides` (dotted keys).

    `overrides` also accepts profile fields (`profile.duration_s`, ...) that patch the chosen profile.
    """
    environ = os.environ if environ is None else environ
    table = _read_table(config_file)
    _reject_moved_keys(table, config_file)
    origin = dict.fromkeys(table, f"[tool.perfci] in {config_file}")
    _apply_environment(table, origin, environ)
    profile_patch: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        if dotted.startswith("profile."):
            profile_patch[dotted.removeprefix("profile.")] = value
        else:
            _set_dotted(table, dotted, value)
            origin[dotted.split(".")[0]] = "the command line"

    try:
        parsed = FileConfig.model_validate(table)
    except ValidationError as exc:
        first = _first_error(exc)
        key = _error_location(first)
        where = origin.get(key.split(".")[0], f"[tool.perfci] in {config_file}")
        raise ConfigError(
            f"bad value for {key} ({where}): {first['msg']}",
            f"fix {key} in {where}; every key is described in docs/configuration.md",
        ) from None

    profiles = {**BUILTIN_PROFILES, **parsed.profiles}
    if parsed.profile not in profiles:
        raise ConfigError(
            f"unknown profile {parsed.profile!r} (from {origin.get('profile', config_file)}); "
            f"known: {', '.join(sorted(profiles))}",
            "choose one with --profile or define [tool.perfci.profiles.<name>]",
        )
    profile = profiles[parsed.profile]
    if profile_patch:
        try:
            profile = Profile.model_validate({**profile.model_dump(), **profile_patch})
        except ValidationError as exc:
            first = _first_error(exc)
            key = _error_location(first)
            raise ConfigError(
                f"bad value for profile.{key} (the command line): {first['msg']}",
                "durations look like 20s, 2m or 500ms" if key.endswith("_s") else f"check the value given for {key}",
            ) from None
    _check_service(parsed, config_file)

    root = config_file.resolve().parent
    scenarios_from = origin.get("default_scenarios", origin.get("scenarios", f"[tool.perfci] in {config_file}"))
    return Config(
        project_root=root,
        config_file=config_file.resolve(),
        target=parsed.target,
        profile_name=parsed.profile,
        profile=profile,
        profiles=profiles,
        scenarios=_chosen_scenarios(parsed, scenarios_from),
        scenario_settings=parsed.scenarios,
        runs_dir=root / parsed.runs_dir,
        baselines_dir=root / parsed.baselines_dir,
        workers=parsed.workers,
        hold_cpus_awake=parsed.hold_cpus_awake,
        service=parsed.service,
        statistics=parsed.statistics,
        slos=parsed.slo,
        stress=parsed.stress,
        scenarios_origin=origin.get("default_scenarios", ""),
    )
