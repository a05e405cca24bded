"""`perfci stress`: raise the load step by step on a booted target until it breaks, then narrow the step.

Each step is one short trial (`run_trial`) so the running analysis can stop as soon as a step breaks an
SLO, passes the error threshold, or stops adding throughput; a single stepped Locust run would have to run
its whole schedule first. The offered load grows geometrically (closed model: users; open model: arrival
rate) from the configured start; after the first failing step, a few shorter steps bisect between the last
good and the first bad load. Every step's trial folder is kept under `<run dir>/<scenario>/stress-<n>/`,
and the result is written to `<run dir>/<scenario>/stress.json`.

The whole stress is bounded by `max_duration_s`: a step that would not finish within it is not started.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pydantic import Field

from perfci.analysis.breaking_point import (
    BreakingPoint,
    LoadModel,
    Step,
    StepResult,
    Thresholds,
    load_unit,
    step_results,
    summarise_steps,
)
from perfci.config import Config
from perfci.errors import LoadError
from perfci.model import SCHEMA_VERSION, Frozen, Say
from perfci.rundir import read_resources, read_samples, stress_file, write_model
from perfci.targets.base import Target

# A Locust subprocess needs a few seconds to start and stop beyond its measured window.
STEP_OVERHEAD_S = 4.0


class StressPlan(Frozen):
    """How one scenario is stressed; built from [tool.perfci.measure.stress] by `plan_from_config`."""

    model: LoadModel = "closed"
    start: float = Field(default=4, gt=0)  # users, or arrivals per second
    maximum: float = Field(default=256, gt=0)
    growth: float = Field(default=2.0, gt=1)  # each step offers this many times the previous one
    step_s: float = Field(default=10, gt=0)  # measured window of a step
    settle_s: float = Field(default=2, ge=0)  # warm-up of each step, not measured
    spawn_rate: float = Field(default=50, gt=0)
    stop_timeout_s: float = Field(default=3, ge=0)
    bisect_steps: int = Field(default=2, ge=0)
    bisect_fraction: float = Field(default=0.6, gt=0, le=1)  # a bisection step is this share of a step
    max_duration_s: float = Field(default=600, gt=0)
    error_threshold: float = Field(default=0.01, ge=0, le=1)


class StressRun(Frozen):
    """`<run dir>/<scenario>/stress.json`: the steps run, why the stress stopped, the breaking point."""

    schema_version: int = SCHEMA_VERSION
    scenario: str
    started_at: datetime
    elapsed_s: float
    stop_reason: str
    plan: StressPlan
    bisected: list[float] = Field(default_factory=list)  # offered loads of the narrowing steps
    breaking_point: BreakingPoint


def plan_from_config(config: Config, model: LoadModel = "closed") -> StressPlan:
    settings = config.stress
    return StressPlan(
        model=model,
        start=settings.start_users if model == "closed" else config.profile.arrival_rate / 4,
        maximum=settings.max_users if model == "closed" else config.profile.arrival_rate * 64,
        step_s=settings.step_s,
        settle_s=min(config.profile.warmup_s, settings.step_s / 2),
        spawn_rate=config.profile.spawn_rate,
        stop_timeout_s=min(config.profile.stop_timeout_s, 3.0),
        max_duration_s=settings.max_duration_s,
        error_threshold=settings.error_threshold,
    )


def thresholds_for(config: Config, plan: StressPlan) -> Thresholds:
    """The service's CPU capacity is one core per worker process, at most the machine's cores."""
    cores = os.cpu_count() or 1
    return Thresholds(
        error_threshold=plan.error_threshold,
        service_cpu_capacity=100.0 * min(config.service.workers, cores),
        database_cpu_capacity=100.0 * cores,
    )


def offered_loads(plan: StressPlan) -> list[float]:
    """The geometric schedule from start up to the maximum (whole users in the closed model)."""
    loads: list[float] = []
    value = plan.start
    while value <= plan.maximum * (1 + 1e-9):
        loads.append(float(math.floor(value)) if plan.model == "closed" else round(value, 3))
        value *= plan.growth
    return sorted(set(loads))


def stress_scenario(
    config: Config,
    target: Target,
    run_dir: Path,
    scenario: str,
    plan: StressPlan,
    *,
    say: Say = lambda _: None,
) -> StressRun:
    """Step the load on one scenario until it breaks or the budget runs out, narrow the break, write it."""
    from perfci.measure.load import run_trial
    from perfci.measure.trials import trial_spec

    started_at = datetime.now(UTC)
    clock = time.monotonic()
    thresholds = thresholds_for(config, plan)
    steps: list[StepResult] = []

    def remaining() -> float:
        return plan.max_duration_s - (time.monotonic() - clock)

    def run_step(offered: float, duration_s: float) -> StepResult:
        index = len(steps)
        spec = replace(
            trial_spec(config, scenario, "candidate", index, target),
            users=int(offered) if plan.model == "closed" else config.profile.users,
            spawn_rate=plan.spawn_rate,
            warmup_s=plan.settle_s,
            duration_s=duration_s,
            stop_timeout_s=plan.stop_timeout_s,
            target_rps=offered if plan.model == "open" else None,
        )
        directory = run_dir / scenario / f"stress-{index}"
        run_trial(spec, target, directory, None)
        samples, resources = _trial_frames(directory)
        window = Step(offered=offered, start_s=0.0, end_s=plan.settle_s + duration_s, settle_s=plan.settle_s)
        [result] = step_results(
            samples, [window], scenario=scenario, slos=config.slos, thresholds=thresholds, resources=resources
        )
        result = result.model_copy(update={"index": index})
        steps.append(result)
        verdict = "ok" if result.within_slo else "; ".join(b.describe() for b in result.failures)
        say(
            f"perfci: stress {scenario} {offered:g} {load_unit(plan.model)}: {result.achieved_rps:.0f} req/s, "
            f"p95 {result.p95:.0f} ms, errors {result.error_rate:.2%}: {verdict}"
        )
        return result

    def affordable(duration_s: float) -> bool:
        return remaining() >= plan.settle_s + duration_s + plan.stop_timeout_s + STEP_OVERHEAD_S

    stop_reason = f"reached the maximum load ({plan.maximum:g} {load_unit(plan.model)})"
    for offered in offered_loads(plan):
        if not affordable(plan.step_s):
            stop_reason = f"the time budget ({plan.max_duration_s:g} s) ran out"
            break
        run_step(offered, plan.step_s)
        summary = summarise_steps(steps, scenario=scenario, model=plan.model, thresholds=thresholds)
        if summary.first_failure is not None:
            stop_reason = f"broke at {offered:g}: {summary.first_failure.breach.describe()}"
            break
        if summary.plateau_offered is not None:
            stop_reason = f"throughput stopped growing at {offered:g} {load_unit(plan.model)}"
            break

    bisected = _bisect(steps, plan, run_step, affordable)
    result = summarise_steps(steps, scenario=scenario, model=plan.model, thresholds=thresholds)
    if not steps:
        raise LoadError(
            f"stress of {scenario} ran no step within {plan.max_duration_s:g} s",
            "raise [tool.perfci.measure.stress] max_duration_s or lower step_s",
        )
    run = StressRun(
        scenario=scenario,
        started_at=started_at,
        elapsed_s=time.monotonic() - clock,
        stop_reason=stop_reason,
        plan=plan,
        bisected=bisected,
        breaking_point=result,
    )
    write_model(stress_file(run_dir, scenario), run)
    return run


def run_stress(
    config: Config,
    target: Target,
    run_dir: Path,
    *,
    model: LoadModel = "closed",
    scenarios: Sequence[str] | None = None,
    say: Say = lambda _: None,
) -> list[StressRun]:
    """Stress every configured scenario in turn, sharing the configured time budget between them."""
    names = list(scenarios or config.stress.scenarios)
    plan = plan_from_config(config, model)
    share = plan.max_duration_s / max(len(names), 1)
    return [
        stress_scenario(config, target, run_dir, name, plan.model_copy(update={"max_duration_s": share}), say=say)
        for name in names
    ]


def _bisect(
    steps: list[StepResult],
    plan: StressPlan,
    run_step: Callable[[float, float], StepResult],
    affordable: Callable[[float], bool],
) -> list[float]:
    """Narrow the gap between the last good and the first failing load with a few shorter steps."""
    failing = [s.offered for s in steps if not s.within_slo]
    if not failing:
        return []
    bad = min(failing)
    good = max((s.offered for s in steps if s.within_slo and s.offered < bad), default=None)
    if good is None:
        return []
    duration = plan.step_s * plan.bisect_fraction
    tried: list[float] = []
    for _ in range(plan.bisect_steps):
        middle = (good + bad) / 2
        middle = float(math.floor(middle)) if plan.model == "closed" else round(middle, 3)
        if middle <= good or middle >= bad or not affordable(duration):
            break
        tried.append(middle)
        if run_step(middle, duration).within_slo:
            good = middle
        else:
            bad = middle
    return tried


def _trial_frames(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    samples = read_samples(directory)
    if samples is None:
        raise LoadError(f"{directory} holds no samples", f"look at the Locust log in {directory}")
    return samples, read_resources(directory)


def read_stress(run_dir: Path, scenario: str) -> StressRun:
    """A scenario's stress result from a run directory, validated."""
    from perfci.errors import DataError

    path = stress_file(run_dir, scenario)
    try:
        return StressRun.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist", "run `perfci stress` first") from None
    except ValueError as exc:
        raise DataError(f"{path} is not a valid stress result: {exc}", "run the stress again") from None
