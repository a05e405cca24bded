"""The PR comment stays under GitHub's limit by folding, and says what it cut."""

from __future__ import annotations

from perfci.model import Comparison
from perfci.render.markdown import GITHUB_COMMENT_LIMIT, MARKER, render_comment
from perfci.verdict import fingerprint
from tests.golden.fixtures import FIXTURES, endpoint, regression


def _many_endpoints(count: int) -> Comparison:
    comparison = regression()
    scenario = comparison.scenarios[0]
    endpoints = [
        endpoint(
            f"GET /generated/{i:05d}/" + "x" * 60,
            5.0,
            9.0,
            0.3 if i % 7 == 0 else 0.0,
            "regression" if i % 7 == 0 else "no_change",
        )
        for i in range(count)
    ]
    return comparison.model_copy(update={"scenarios": [scenario.model_copy(update={"endpoints": endpoints})]})


def test_small_comment_is_not_cut() -> None:
    text = render_comment(FIXTURES["regression"]())
    assert "Cut to fit" not in text


def test_detail_blocks_go_first_and_the_cut_is_named() -> None:
    full = render_comment(_many_endpoints(60), max_chars=10**9)
    limit = len(full) - 100
    text = render_comment(_many_endpoints(60), max_chars=limit)
    assert len(text) <= limit
    assert "Cut to fit GitHub's comment limit: the p95 chart" in text
    assert "```mermaid" not in text
    # What matters most is still there.
    assert text.count("🔴 regression") == full.count("🔴 regression")


def test_huge_comparison_fits_github_limit_and_keeps_the_headline() -> None:
    text = render_comment(_many_endpoints(3000))
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.startswith(MARKER + "\n")
    assert "## ❌ perfci: 429 regressions" in text
    assert "table rows beyond" in text
    assert "more rows in the HTML report" in text


def test_fingerprint_follows_verdicts_not_figures() -> None:
    base = regression()
    scenario = base.scenarios[0]
    slower = scenario.endpoints[0].model_copy(
        update={"candidate_stats": scenario.endpoints[0].candidate_stats.model_copy(update={"p95": 999.0})}
    )
    same_verdicts = base.model_copy(
        update={"scenarios": [scenario.model_copy(update={"endpoints": [slower, *scenario.endpoints[1:]]})]}
    )
    assert fingerprint(same_verdicts) == fingerprint(base)
    flipped = scenario.endpoints[0].model_copy(update={"verdict": "regression"})
    other = base.model_copy(
        update={"scenarios": [scenario.model_copy(update={"endpoints": [flipped, *scenario.endpoints[1:]]})]}
    )
    assert fingerprint(other) != fingerprint(base)


def test_the_comment_names_a_concurrent_schedule_and_max_t_adjustment_of_older_comparisons() -> None:
    comparison = regression().model_copy(update={"judged_tests": 0})  # written before the per-PR family
    scenarios = [s.model_copy(update={"schedule": "concurrent", "adjustment": "max-t"}) for s in comparison.scenarios]
    text = render_comment(comparison.model_copy(update={"scenarios": scenarios}))
    assert "concurrent pair" in text
    assert "interleaved pair" not in text
    assert "max-T over swapped pairs" in text
    assert "Holm" not in text
    assert "Per-PR false-fail rate" not in text  # no family size recorded: no claim about it
    assert "interleaved pair" in render_comment(comparison)  # the fixture's default: interleaved, Holm
    assert "Holm-adjusted p" in render_comment(comparison)


def test_the_verdict_names_its_per_pr_false_fail_rate_and_the_run_its_stop() -> None:
    text = render_comment(regression())
    assert "Per-PR false-fail rate held to 1 % across 13 judged tests" in text
    assert "SLOs are a separate, absolute gate" in text
    assert "12 of up to 16 pairs (looks at 8, 12, 16): every judged test decided after 12 pairs." in text
    assert "| not judged: 20 requests a trial |" in text
