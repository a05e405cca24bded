"""Merge shard run directories (one scenario each, run on separate machines) into one run judged as one PR.

A CI matrix runs `perfci run --scenario X` per scenario; each job's run directory is a shard. Merging checks
that the shards measured the same code with the same configuration, copies their scenario folders into one
run directory, and judges every scenario's per-trial statistics again under the PR's one family, so the
per-PR false-fail budget holds across shards (each shard alone only knew its own tests).

A shard that ended without a verdict (its service died, its load generator crashed, its boot failed), or
that never wrote a comparison, or a scenario that no shard brought, makes the merged run a no-verdict
infrastructure failure (exit 3): judging the other shards alone would pass a PR whose scenario was never
measured.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from perfci.analysis import analyse
from perfci.errors import DataError
from perfci.failures import no_verdict
from perfci.model import ArmInfo, Comparison, RunFailure, RunInfo, ScenarioComparison, SloSpec, StatsSettings
from perfci.redact import redact_text
from perfci.rundir import (
    COMPARISON_FILE,
    ERROR_FILE,
    read_comparison,
    read_run_info,
    read_trial_info,
    trial_dirs,
    write_comparison,
    write_run_info,
)

# Configuration keys that may differ between shards: which scenario each ran, and where its files went.
_PER_SHARD_KEYS = frozenset({"scenarios", "project_root", "config_file", "runs_dir", "baselines_dir"})
_HINT_SAME_RUN = (
    "merge the shards of one workflow run: every shard must run the same base and candidate commits with "
    "the same configuration and profile, one scenario each"
)


def merge_shards(
    shards: Sequence[Path], output: Path, command: Sequence[str] = (), expected: Sequence[str] = ()
) -> Comparison:
    """Check the shards, copy their scenarios into `output`, judge them as one PR and write comparison.json.

    `expected` names the scenarios the PR check planned (one shard each): any that no shard brought makes
    the merge a failure instead of a verdict on the rest.
    """
    if not shards and not expected:
        raise DataError("no shard directories to merge", "pass the run directory of each shard")
    if output.exists() and any(output.iterdir()):
        raise DataError(f"{output} exists and is not empty", "name a new folder with --output")
    found = {shard: _shard_comparison(shard) for shard in shards}
    failure = _shard_failure(found, expected)
    if failure is not None:
        return _write_failure(output, found, failure)
    comparisons = [c for c in found.values() if c is not None]
    infos = [read_run_info(shard) for shard in shards]
    _check_same_run(shards, infos, comparisons)
    owners = _scenario_owners(shards, comparisons)
    config = infos[0].config
    settings = StatsSettings.model_validate(config.get("statistics", {}))
    slos = [SloSpec.model_validate(s) for s in config.get("slos", [])]
    stored = [s for c in comparisons for s in c.scenarios]
    evidence = [_evidence(owners[scenario.scenario], scenario, settings, slos) for scenario in stored]
    output.mkdir(parents=True, exist_ok=True)
    for scenario_name, shard in owners.items():
        shutil.copytree(shard / scenario_name, output / scenario_name)
    judgement = analyse.judge(evidence, settings)
    scenarios = [
        judged.model_copy(update={"resources": shard.resources, "database": shard.database})
        for judged, shard in zip(judgement.scenarios, stored, strict=True)
    ]
    modes = {s.mode for s in scenarios}
    mode: Literal["ab", "baseline", "none"] = "ab" if "ab" in modes else "none"
    first = comparisons[0]
    merged = Comparison(
        created_at=datetime.now(UTC),
        mode=mode,
        base=first.base,
        candidate=first.candidate,
        profile=first.profile,
        alpha=settings.alpha,
        power=settings.power,
        scenarios=scenarios,
        judged_tests=judgement.judged_tests,
    )
    write_run_info(
        output,
        infos[0].model_copy(
            update={
                "label": "merge",
                "created_at": merged.created_at,
                "command": list(command),
                "config": {**config, "scenarios": [s.scenario for s in scenarios]},
            }
        ),
    )
    write_comparison(output, merged)
    return merged


def _shard_failure(found: dict[Path, Comparison | None], expected: Sequence[str]) -> RunFailure | None:
    """Why the shards cannot be judged together: the first shard without a verdict, or a planned scenario
    that no shard measured; None when every shard has one and every planned scenario is there."""
    rerun = "its job's log says why; re-run the failed jobs of the PR check"
    for shard, comparison in found.items():
        if comparison is None:
            return RunFailure(
                kind="shard",
                message=f"shard {shard.name} wrote no comparison: {_error_line(shard)}",
                hint=rerun,
            )
        if comparison.failure is not None:
            message = f"shard {shard.name}: {comparison.failure.message}"
            return comparison.failure.model_copy(update={"message": message})
    measured = {s.scenario for c in found.values() if c is not None for s in c.scenarios}
    missing = [name for name in expected if name not in measured]
    if missing:
        return RunFailure(
            kind="shard",
            message=f"no shard measured {', '.join(missing)}: its job ended before it wrote a run directory",
            hint=rerun,
        )
    return None


def _shard_comparison(shard: Path) -> Comparison | None:
    """The shard's comparison; None for a run that ended on an error before writing one (its error.txt says
    why). A folder that is neither is not a run directory: a usage error, as for any other command."""
    if (shard / COMPARISON_FILE).is_file():
        return read_comparison(shard)
    if (shard / ERROR_FILE).is_file():
        return None
    read_run_info(shard)  # raises: names the missing run record
    raise DataError(f"{shard} holds no comparison", "pass the run directory of each shard, unchanged")


def _error_line(shard: Path) -> str:
    """The first line of the shard's error.txt (written by a run that ended on an error), if it has one."""
    marker = shard / ERROR_FILE
    try:
        lines = marker.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "it recorded no error"
    return redact_text(lines[0]) if lines else "it recorded no error"


def _write_failure(output: Path, found: dict[Path, Comparison | None], failure: RunFailure) -> Comparison:
    """A merged comparison without scenarios that carries the failure: no verdict, exit 3."""
    known = next((c for c in found.values() if c is not None), None)
    if known is None:
        merged = no_verdict(failure, ArmInfo(label="unknown"), "", StatsSettings())
    else:
        settings = StatsSettings(alpha=known.alpha, power=known.power)
        merged = no_verdict(failure, known.candidate, known.profile, settings)
    output.mkdir(parents=True, exist_ok=True)
    write_comparison(output, merged)
    return merged


def _check_same_run(shards: Sequence[Path], infos: Sequence[RunInfo], comparisons: Sequence[Comparison]) -> None:
    """Refuse shards of different commits, configurations or profiles: their verdicts cannot share a family."""
    first, first_info = shards[0], infos[0]
    for shard, info, comparison in zip(shards[1:], infos[1:], comparisons[1:], strict=True):
        for what, mine, theirs in (
            ("candidate commit", first_info.candidate_commit, info.candidate_commit),
            ("base commit", first_info.base_commit, info.base_commit),
            ("comparison mode", comparisons[0].mode, comparison.mode),
            ("profile", comparisons[0].profile, comparison.profile),
        ):
            if mine != theirs:
                raise DataError(
                    f"shards of different runs: {what} {mine} in {first} but {theirs} in {shard}", _HINT_SAME_RUN
                )
        differing = _config_difference(first_info.config, info.config)
        if differing:
            raise DataError(
                f"shards of different configurations: {differing} differs between {first} and {shard}", _HINT_SAME_RUN
            )
    for shard, comparison in zip(shards, comparisons, strict=True):
        stored = [s.scenario for s in comparison.scenarios if s.mode == "baseline"]
        if stored:
            raise DataError(
                f"{shard} compared {', '.join(stored)} against a stored baseline, whose trials a run directory "
                "does not keep",
                "run the shards as A/B runs (perfci run --ab REF --scenario NAME) to merge them",
            )


def _config_difference(mine: dict[str, Any], theirs: dict[str, Any], prefix: str = "") -> str | None:
    """The first configuration key (dotted) whose value differs, ignoring what may differ per shard."""
    for key in sorted(set(mine) | set(theirs)):
        if not prefix and key in _PER_SHARD_KEYS:
            continue
        a, b = mine.get(key), theirs.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _config_difference(a, b, f"{prefix}{key}.")
            if inner:
                return inner
        elif a != b:
            return f"{prefix}{key}"
    return None


def _scenario_owners(shards: Sequence[Path], comparisons: Sequence[Comparison]) -> dict[str, Path]:
    owners: dict[str, Path] = {}
    for shard, comparison in zip(shards, comparisons, strict=True):
        for scenario in comparison.scenarios:
            if scenario.scenario in owners:
                raise DataError(
                    f"scenario {scenario.scenario} is in two shards: {owners[scenario.scenario]} and {shard}",
                    "give each scenario to one shard only (one matrix job per scenario)",
                )
            if not (shard / scenario.scenario).is_dir():
                raise DataError(
                    f"{shard} has no trials of {scenario.scenario}",
                    "upload the whole run directory of each shard, trial folders included",
                )
            owners[scenario.scenario] = shard
    return owners


def _evidence(
    run_dir: Path, scenario: ScenarioComparison, settings: StatsSettings, slos: Sequence[SloSpec]
) -> analyse.ScenarioEvidence:
    """The scenario's tests again, from the per-trial statistics its shard stored (trial.json per trial)."""
    candidate = [read_trial_info(d).endpoints for d in trial_dirs(run_dir, scenario.scenario, "candidate")]
    base = [read_trial_info(d).endpoints for d in trial_dirs(run_dir, scenario.scenario, "base")]
    if len(candidate) != scenario.candidate_trials or len(base) != scenario.base_trials:
        raise DataError(
            f"{scenario.scenario}: the shard's comparison counts {scenario.base_trials} base and "
            f"{scenario.candidate_trials} candidate trials, its folders hold {len(base)} and {len(candidate)}",
            "upload the whole run directory of each shard, unchanged",
        )
    return analyse.gather_scenario(
        scenario.scenario,
        base if scenario.mode == "ab" else None,
        candidate,
        mode=scenario.mode,
        settings=settings,
        slos=slos,
        base_histograms={e.endpoint: e.base_histogram for e in scenario.endpoints if e.base_histogram},
        candidate_histograms={e.endpoint: e.candidate_histogram for e in scenario.endpoints if e.candidate_histogram},
        flags=scenario.flags,
        schedule=scenario.schedule,
        looks=scenario.looks,
        stop_reason=scenario.stop_reason,
    )
