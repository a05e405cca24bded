"""The terminal table: verdicts in order, absolute figures without a baseline, names never read as markup."""

from __future__ import annotations

from perfci.render.terminal import render_terminal
from tests.golden.fixtures import FIXTURES, endpoint, no_baseline, regression, slo_breach


def test_regressions_first_with_change_and_ci() -> None:
    text = render_terminal(regression())
    assert text.splitlines()[0] == "❌ perfci  2 regressions"
    assert text.index("POST /auth/login") < text.index("GET /users/{id}") < text.index("GET /users/me")
    assert "p95 +31.0 % (+25.0 % … +37.0 %)" in text
    assert "new errors: HTTP 500:" in text
    assert "\x1b[" not in text  # no colour codes unless asked


def test_no_baseline_shows_absolute_figures_and_resource_peaks() -> None:
    text = render_terminal(no_baseline())
    for column in ("requests", "rps", "p50", "p90", "p95", "p99", "mean", "errors", "SLO"):
        assert column in text
    assert "29.4 ms" in text  # p99 of GET /users
    assert "resource peaks" in text
    assert "151 MB" in text


def test_slo_breach_is_spelled_out() -> None:
    text = render_terminal(slo_breach(), width=200)
    assert "BREACH p95 178 ms > 150 ms" in text
    assert "BREACH errors 0.22 % > 0.10 %" in text


def test_endpoint_names_are_not_rich_markup() -> None:
    comparison = regression()
    scenario = comparison.scenarios[0]
    hostile = endpoint("GET /[bold red]x[/]", 1, 2, 0, "no_change")
    comparison = comparison.model_copy(update={"scenarios": [scenario.model_copy(update={"endpoints": [hostile]})]})
    assert "GET /[bold red]x[/]" in render_terminal(comparison, width=200)


def test_another_testbeds_baseline_is_shown_beside_the_run_without_a_verdict_column() -> None:
    text = render_terminal(FIXTURES["not_comparable"](), width=300)

    assert "not comparable with the stored baseline, no verdicts" in text
    assert "compare on this machine with `perfci run`" in text
    assert "p50 stored" in text
    assert "p50 here" in text
    assert " verdict " not in text  # no such column
    assert "faster" not in text
    assert "REGRESSION" not in text
