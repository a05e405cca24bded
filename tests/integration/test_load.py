"""The load stage against the real service: sample counts, labels, open model, workers, crashes, the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from perfci.cli import main
from perfci.errors import ExitCode, LoadError, TargetExitedError
from perfci.measure.load import Progress, TrialSpec, run_trial
from perfci.model import SAMPLE_COLUMNS, Comparison
from perfci.rundir import LOCUST_LOG, LOCUST_STATS, SAMPLES_FILE, TRIAL_FILE, read_trial_info
from perfci.targets.base import Target
from perfci.targets.process import process_target
from tests.builders import read_trial, userservice_spec

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
Spec = Callable[..., TrialSpec]
FAST_HASH = {"USERSVC_HASH_TIME_COST": "1", "USERSVC_HASH_MEMORY_KIB": "8192"}


def locust_request_count(trial_dir: Path) -> int:
    """Locust's own total for the run, from the --json-file it wrote (one entry per method and name)."""
    entries = json.loads((trial_dir / f"{LOCUST_STATS}.json").read_text(encoding="utf-8"))
    return sum(int(entry["num_requests"]) for entry in entries)


def part_writers(trial_dir: Path) -> set[str]:
    """The process tags of the recorder's part files: one per Locust process that sent requests."""
    return {path.name.split("-")[1] for path in (trial_dir / "parts").glob("part-*.csv")}


def test_every_request_is_one_sample_with_a_template_label(
    sqlite_service: Target, trial_spec: Spec, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    info = run_trial(trial_spec("journeys"), sqlite_service, tmp_path, seen.append)
    info_on_disk, samples = read_trial(tmp_path)

    assert info_on_disk == info
    assert info.locust_exit_codes == [0]
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    # The recorder keeps the whole run (warm-up and stop tail included), as Locust counts it.
    assert len(samples) == locust_request_count(tmp_path) > 0
    labels = set(samples["endpoint"])
    assert {"GET /users/me", "GET /users/{id}", "GET /users"} <= labels
    assert [label for label in labels if re.search(r"\d", label)] == []
    # Trial figures come from the measured window only.
    in_window = samples[(samples["start_s"] >= 1.0) & (samples["start_s"] < 4.0)]
    assert sum(e.n for e in info.endpoints.values()) == len(in_window) < len(samples)
    assert info.achieved_rps == pytest.approx(len(in_window) / 3.0, abs=1e-3)
    assert (samples["start_s"] >= -0.5).all()  # t0 is Locust's test start: nothing long before it
    # The run lasts as long as asked (Locust's timer would fire early by its start-up time otherwise) ...
    assert samples["start_s"].max() > 4.0 - 0.5
    # ... and nothing stalls the users mid-run (a first Parquet write once froze them for about a second).
    assert samples["start_s"].diff().max() < 0.75
    assert any(p.requests > 0 and p.rps > 0 and p.p95_ms is not None for p in seen)
    assert all(p.elapsed_s <= p.total_s for p in seen)


def test_open_model_records_target_achieved_rate_and_lag(
    sqlite_service: Target, trial_spec: Spec, tmp_path: Path
) -> None:
    info = run_trial(trial_spec("open", users=1, target_rps=30.0, duration_s=4.0), sqlite_service, tmp_path)
    _, samples = read_trial(tmp_path)

    assert info.target_rps == 30.0
    assert 15.0 < info.achieved_rps < 50.0
    assert not [flag for flag in info.flags if "arrival rate" in flag]
    assert (samples["lag_ms"] >= 0.0).all()
    assert samples["ok"].all(), samples[~samples["ok"]]["error"].value_counts()


def test_an_unreachable_arrival_rate_is_flagged(sqlite_service: Target, trial_spec: Spec, tmp_path: Path) -> None:
    spec = trial_spec("open", users=1, target_rps=20_000.0, warmup_s=1.0, duration_s=2.0)
    info = run_trial(spec, sqlite_service, tmp_path)
    _, samples = read_trial(tmp_path)

    assert info.achieved_rps < 20_000.0
    assert [flag for flag in info.flags if flag.startswith("missed its arrival rate")]
    # Requests that left late carry their wait in the latency.
    late = samples[samples["lag_ms"] > 0]
    assert not late.empty
    assert read_trial_info(tmp_path).flags == info.flags


def test_master_and_two_workers_all_checked_and_merged(
    sqlite_service: Target, trial_spec: Spec, tmp_path: Path
) -> None:
    info = run_trial(trial_spec("journeys", workers=2), sqlite_service, tmp_path)
    _, samples = read_trial(tmp_path)

    assert info.locust_exit_codes == [0, 0, 0]
    assert len(part_writers(tmp_path)) == 2  # both workers recorded; the master only coordinates
    assert len(samples) == locust_request_count(tmp_path) > 0
    assert samples["start_s"].is_monotonic_increasing


def test_a_service_killed_mid_run_ends_the_trial_as_infrastructure_and_loses_nothing(
    trial_spec: Spec, tmp_path: Path
) -> None:
    """A dead service is not a regression: the trial ends at once, is kept on disk, and raises exit 3."""
    spec = userservice_spec(env=FAST_HASH, seed_users=50)
    killed_at: list[float] = []

    with process_target(spec, tmp_path / "service") as target:

        def kill_when_warm(progress: Progress) -> None:
            if not killed_at and progress.elapsed_s >= 2.0:
                os.killpg(target.pids[0], signal.SIGKILL)
                killed_at.append(progress.elapsed_s)

        trial = tmp_path / "trial"
        with pytest.raises(TargetExitedError, match=r"exited during trial 1 of scenario journeys .*exit code -9") as e:
            run_trial(trial_spec("journeys", extra_env={"PERFCI_SEED_USERS": "50"}), target, trial, kill_when_warm)

    assert e.value.exit_code == ExitCode.INFRASTRUCTURE
    assert killed_at
    info, samples = read_trial(trial)
    assert any("the service exited during this trial (exit code -9)" in flag for flag in info.flags)
    assert len(samples) == locust_request_count(trial)  # Locust quit cleanly and every request was kept
    answered = samples[samples["status"] > 0]
    assert answered["ok"].mean() > 0.9  # before the kill the service answered
    assert samples["start_s"].max() < killed_at[0] + 2.0  # ended within moments of the death, not at its end


def test_a_locustfile_that_fails_at_import_is_a_load_error(
    sqlite_service: Target, trial_spec: Spec, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text('raise RuntimeError("scenario broke at import")\n', encoding="utf-8")
    trial = tmp_path / "trial"

    with pytest.raises(LoadError) as caught:
        run_trial(trial_spec("broken", locustfile=broken), sqlite_service, trial)

    assert caught.value.exit_code == ExitCode.INFRASTRUCTURE
    assert str(trial / LOCUST_LOG) in caught.value.hint
    assert "scenario broke at import" in (trial / LOCUST_LOG).read_text(encoding="utf-8")
    info = read_trial_info(trial)
    assert info.locust_exit_codes != [0]
    assert "no requests were recorded" in info.flags


def test_a_generator_that_dies_mid_run_keeps_what_it_measured(
    sqlite_service: Target, trial_spec: Spec, tmp_path: Path
) -> None:
    dying = tmp_path / "dying.py"
    dying.write_text(
        textwrap.dedent(
            """
            import os

            import gevent
            from locust import FastHttpUser, constant, events, task


            class Pinger(FastHttpUser):
                wait_time = constant(0.01)

                @task
                def ping(self):
                    self.client.get("/healthz")


            @events.test_start.add_listener
            def _die_later(**_):
                gevent.spawn_later(3.5, os._exit, 7)  # after the recorder's first flush
            """
        ),
        encoding="utf-8",
    )
    trial = tmp_path / "trial"

    with pytest.raises(LoadError, match=r"exited with \[7\]") as caught:
        run_trial(trial_spec("dying", locustfile=dying, warmup_s=0.0, duration_s=8.0), sqlite_service, trial)

    assert str(trial / SAMPLES_FILE) in caught.value.hint
    kept = pd.read_parquet(trial / SAMPLES_FILE)
    assert len(kept) > 0
    assert set(kept["endpoint"]) == {"GET /healthz"}
    assert (trial / TRIAL_FILE).is_file()


def test_perfci_run_smoke_writes_a_complete_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    runs = tmp_path / "runs"
    argv = ["run", "--target", "process", "--profile", "smoke", "--scenario", "journeys", "--duration", "3s"]
    argv += ["--runs-dir", str(runs), "--baselines-dir", str(tmp_path / "no-baselines"), "--seed-users", "300"]
    argv += ["--no-progress", "--against-baseline"]

    code = main(argv)

    run_dirs = [d for d in runs.iterdir() if d.is_dir()]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    for name in ("comparison.json", "report.md", "report.html"):
        assert (run_dir / name).is_file(), name
    comparison = Comparison.model_validate_json((run_dir / "comparison.json").read_text(encoding="utf-8"))
    assert comparison.mode == "none"
    assert code == (ExitCode.OK if comparison.passed else ExitCode.REGRESSION)
    trial = read_trial_info(next(run_dir.rglob(TRIAL_FILE)).parent)
    assert trial.duration_s == 3.0
    assert trial.locust_exit_codes == [0]
    assert "journeys" in capsys.readouterr().err
