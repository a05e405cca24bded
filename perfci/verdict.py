"""What a comparison comes to, in one place: its exit code, its status line and its fingerprint.

The renderers (Markdown, HTML, terminal) and the publishers (PR comment, check run, commit status) all
say the verdict with these words, and `perfci run`, `merge` and `summary` all exit with `exit_code`.
"""

from __future__ import annotations

import hashlib
import json

from perfci.errors import ExitCode
from perfci.model import Comparison


def exit_code(comparison: Comparison) -> ExitCode:
    """The pass/fail rule: no verdict is an infrastructure failure; else a regression or breach fails."""
    if comparison.failure is not None:
        return ExitCode.INFRASTRUCTURE
    return ExitCode.OK if comparison.passed else ExitCode.REGRESSION


def status(comparison: Comparison) -> str:
    """The verdict in a few words ("2 regressions", "all clear"): a check run's title, a status's text."""
    failure = comparison.failure
    if failure is not None:  # nothing was judged: say what failed, not a verdict
        # A service that exited says so in its own words; a boot or a load generator names the cause.
        cause = "" if failure.kind == "service_exited" else "infrastructure failure: "
        return f"no verdict: {cause}{failure.message}"
    regressions = len(comparison.regressions)
    breaches = len(comparison.slo_breaches)
    verdicts = [e.verdict for s in comparison.scenarios for e in s.endpoints]
    inconclusive = verdicts.count("inconclusive")
    improvements = verdicts.count("improvement")
    parts = []
    if regressions:
        parts.append(plural(regressions, "regression"))
    if breaches:
        parts.append(plural(breaches, "SLO breach", "SLO breaches"))
    if parts:
        return ", ".join(parts)
    if comparison.not_comparable:
        return "not comparable with the stored baseline, no verdicts; all SLOs met"
    if comparison.mode == "none":
        return "all SLOs met"
    if inconclusive:
        return f"no regression found, {inconclusive} inconclusive"
    return "all clear" + (f", {plural(improvements, 'improvement')}" if improvements else "")


def icon(comparison: Comparison) -> str:
    if comparison.failure is not None:
        return "⚠️"
    if comparison.regressions or comparison.slo_breaches:
        return "❌"
    if comparison.not_comparable:
        return "⚪"
    if comparison.mode != "none" and any(
        e.verdict == "inconclusive" for s in comparison.scenarios for e in s.endpoints
    ):
        return "🟡"
    return "✅"


def title(comparison: Comparison) -> str:
    """The first line a reviewer reads: icon, "perfci:", status."""
    return f"{icon(comparison)} perfci: {status(comparison)}"


def fingerprint(comparison: Comparison) -> str:
    """A short digest of every verdict and SLO result: equal fingerprints mean nothing a reader cares about
    changed, which is how the "on-change" comment mode decides to leave the comment alone."""
    facts = [
        [s.scenario, e.endpoint, e.verdict, sorted(e.new_error_kinds)]
        for s in comparison.scenarios
        for e in s.endpoints
    ] + [[s.scenario, r.endpoint, r.metric, r.ok] for s in comparison.scenarios for r in s.slos]
    # No verdicts at all: what failed is what a reader cares about.
    failed = [["failure", comparison.failure.kind]] if comparison.failure is not None else []
    return hashlib.sha256(json.dumps([*facts, *failed], sort_keys=True).encode()).hexdigest()[:16]


def plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"
