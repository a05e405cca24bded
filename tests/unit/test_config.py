"""Configuration: [tool.perfci], then environment, then CLI overrides; bad values name their key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfci.config import BUILTIN_PROFILES, load_config, parse_duration
from perfci.errors import ConfigError, ExitCode

PROJECT_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

MINIMAL = """
[tool.perfci]
profile = "quick"
default_scenarios = ["journeys"]

[tool.perfci.scenarios.journeys]
file = "perf/journeys.py"

[tool.perfci.scenarios.auth]
file = "perf/auth.py"
users = 6

[tool.perfci.scenarios.search]
file = "perf/search.py"
model = "open"
weight = 2

[tool.perfci.profiles.quick]
trials = 2
duration_s = 5
warmup_s = 1
users = 3
spawn_rate = 10

[[tool.perfci.slo]]
endpoint = "POST /auth/login"
p95_ms = 300
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_projects_own_configuration_loads() -> None:
    config = load_config(PROJECT_PYPROJECT, environ={})
    assert config.profile_name == "pr"
    assert {"pr", "full"} <= set(config.profiles)
    assert config.scenarios == ["journeys", "auth", "sessions", "search"]
    assert config.users_for("auth") == 6
    assert config.is_open_model("open")
    assert not config.is_open_model("journeys")
    assert all(config.scenario_file(name).is_file() for name in config.scenario_settings)


def test_scenarios_are_tables_with_a_file_a_model_users_and_a_weight(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.scenarios == ["journeys"]  # default_scenarios narrows the three defined
    assert config.scenario_file("search") == tmp_path / "perf/search.py"
    assert config.users_for("auth") == 6
    assert config.users_for("journeys") == 3  # the profile's
    assert config.is_open_model("search")
    assert config.duration_for("search") == 10.0  # weight 2 of a 5-s window
    assert config.duration_for("journeys") == 5.0
    everything = load_config(write(tmp_path, MINIMAL.replace('default_scenarios = ["journeys"]\n', "")), environ={})
    assert everything.scenarios == ["journeys", "auth", "search"]  # all defined, in the order written


def test_a_fresh_configuration_has_the_builtin_profiles_and_alpha_one_percent(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[tool.perfci]\n[tool.perfci.scenarios.x]\nfile = "x.py"\n'), environ={})
    assert config.profile_name == "pr"
    assert set(config.profiles) == {"pr", "full", "smoke"}
    assert config.profile == BUILTIN_PROFILES["pr"]
    assert config.statistics.alpha == 0.01
    own = load_config(write(tmp_path, MINIMAL), environ={})
    assert {"pr", "full", "smoke", "quick"} == set(own.profiles)  # a config's own profiles add to them


def test_the_builtin_profiles_are_the_ones_this_project_measures_with() -> None:
    own = load_config(PROJECT_PYPROJECT, environ={})
    for name, profile in BUILTIN_PROFILES.items():
        assert own.profiles[name] == profile


def test_the_process_and_compose_targets_are_read_from_their_tables() -> None:
    service = load_config(PROJECT_PYPROJECT, environ={}).service
    assert service.process.serve.startswith("{python} -m userservice serve --host {host} --port {port}")
    assert service.process.workdir == "service"
    assert service.compose.file == "service/compose.yaml"
    assert service.compose.database_service == "db"
    assert (service.readiness_path, service.readiness_status) == ("/readyz", 200)


def test_minimal_file_resolves_profile_and_slos(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.profile.trials == 2
    assert config.profile.duration_s == 5.0
    assert config.slos[0].endpoint == "POST /auth/login"
    assert config.slos[0].p95_ms == 300.0
    assert config.runs_dir == tmp_path / ".perfci/runs"
    assert config.hold_cpus_awake  # by default the CPUs are held awake while measuring


def test_holding_the_cpus_awake_can_be_switched_off(tmp_path: Path) -> None:
    text = MINIMAL.replace('profile = "quick"', 'profile = "quick"\nhold_cpus_awake = false')
    assert not load_config(write(tmp_path, text), environ={}).hold_cpus_awake


def test_environment_overrides_file_and_cli_overrides_environment(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {"PERFCI_SCENARIOS": "auth, search", "PERFCI_WORKERS": "2"}
    from_env = load_config(path, environ=env)
    assert from_env.scenarios == ["auth", "search"]
    assert from_env.workers == 2
    from_cli = load_config(path, environ=env, overrides={"workers": 3, "profile.duration_s": 1.5})
    assert from_cli.workers == 3
    assert from_cli.profile.duration_s == 1.5
    assert from_cli.profile.trials == 2  # untouched profile fields stay


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        pytest.param(MINIMAL + "\n[tool.perfci.service]\nseed_user = 5\n", {}, "service.seed_user", id="typo"),
        pytest.param(MINIMAL.replace("trials = 2", "trials = 'many'"), {}, "profiles.quick.trials", id="type"),
        pytest.param(MINIMAL.replace('["journeys"]', '["jounreys"]'), {}, "jounreys", id="scenario"),
        pytest.param(MINIMAL, {"PERFCI_SCENARIOS": "nope"}, "PERFCI_SCENARIOS", id="scenario-env"),
        pytest.param(MINIMAL.replace('model = "open"', 'model = "poisson"'), {}, "scenarios.search.model", id="model"),
        pytest.param(MINIMAL.replace("weight = 2", "weight = 0"), {}, "scenarios.search.weight", id="weight"),
        pytest.param(MINIMAL + '[tool.perfci.service]\nreadiness_path = "health"\n', {}, "readiness_path", id="path"),
        pytest.param(
            MINIMAL.replace('profile = "quick"', 'target = "process"\nprofile = "quick"'), {}, "serve", id="serve"
        ),
        pytest.param(
            MINIMAL.replace('profile = "quick"', 'target = "compose"\nprofile = "quick"'),
            {},
            "compose.file",
            id="compose",
        ),
        pytest.param(MINIMAL, {"PERFCI_WORKERS": "lots"}, "PERFCI_WORKERS", id="environment"),
        pytest.param(MINIMAL, {"PERFCI_PROFILE": "nightly"}, "unknown profile 'nightly'", id="profile"),
        pytest.param(MINIMAL + "\n[tool.perfci.statistics]\nalpha = 'x'\n", {}, "statistics.alpha", id="stat"),
        pytest.param(MINIMAL.replace('profile = "quick"', 'target = "url"\nprofile = "quick"'), {}, "url", id="url"),
    ],
)
def test_bad_values_name_key_and_source(tmp_path: Path, text: str, environ: dict[str, str], expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    assert expected in caught.value.message
    assert caught.value.hint
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_bad_cli_value_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duration_s"):
        load_config(write(tmp_path, MINIMAL), environ={}, overrides={"profile.duration_s": -1.0})


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[tool.perfci\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20s", 20.0), ("1.5m", 90.0), ("500ms", 0.5), ("90", 90.0), (" 2h ", 7200.0), (3, 3.0)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5s", "5 parsecs", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("table", "old", "new"),
    [
        pytest.param('scenarios = ["journeys"]\n', "scenarios", "default_scenarios", id="scenario-list"),
        pytest.param("[tool.perfci.scenario_users]\nauth = 6\n", "scenario_users", "users in", id="users"),
        pytest.param('[tool.perfci.service]\ncompose_file = "c.yaml"\n', "compose_file", "service.compose", id="file"),
        pytest.param('[tool.perfci.service]\nservice_dir = "svc"\n', "service_dir", "workdir", id="dir"),
        pytest.param('[tool.perfci.service]\ndatabase_url = ""\n', "database_url", "service.process", id="db"),
    ],
)
def test_a_removed_key_is_a_usage_error_naming_the_new_one(tmp_path: Path, table: str, old: str, new: str) -> None:
    path = write(tmp_path, "[tool.perfci]\n" + table)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert old in caught.value.message
    assert str(path) in caught.value.message
    assert new in caught.value.hint
    assert caught.value.exit_code == ExitCode.USAGE
