"""The exact PR comment and job summary for fixture comparisons; PERFCI_UPDATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perfci.render.markdown import MARKER, render_comment, render_job_summary
from tests.golden.fixtures import FIXTURES

GOLDEN_DIR = Path(__file__).parent


def check_golden(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("PERFCI_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} changed; review the diff and rerun with PERFCI_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_comment_matches_golden(name: str) -> None:
    check_golden(f"comment_{name}.md", render_comment(FIXTURES[name]()))


def test_job_summary_matches_golden() -> None:
    check_golden("summary_regression.md", render_job_summary(FIXTURES["regression"]()))


@pytest.mark.parametrize(
    ("name", "headline"),
    [
        ("regression", "## ❌ perfci: 2 regressions"),
        ("all_clear", "## ✅ perfci: all clear"),
        ("no_baseline", "## ✅ perfci: all SLOs met"),
        ("not_comparable", "## ⚪ perfci: not comparable with the stored baseline, no verdicts; all SLOs met"),
        ("slo_breach", "## ❌ perfci: 2 SLO breaches"),
        ("inconclusive", "## 🟡 perfci: no regression found, 1 inconclusive"),
        (
            "infrastructure_failure",
            "## ⚠️ perfci: no verdict: infrastructure failure: service not healthy at "
            "http&#58;//127.0.0.1:8123/readyz after 90 s; its log is at "
            "/work/runs/2025-03-04\\_123000\\_pr/targets/candidate/service.log",
        ),
    ],
)
def test_headline_comes_first(name: str, headline: str) -> None:
    lines = render_comment(FIXTURES[name]()).splitlines()
    assert lines[0] == MARKER
    assert lines[2] == headline


def test_regressions_come_before_other_rows() -> None:
    text = render_comment(FIXTURES["regression"]())
    assert text.index("🔴 regression") < text.index("🟢 improvement") < text.index("⚪ no change")
    # Unchanged endpoints are folded away.
    details = text.index("<summary>3 unchanged endpoints</summary>")
    assert text.index("| GET /users/me |") > details


def test_stored_baseline_says_what_it_cannot_see() -> None:
    text = render_comment(FIXTURES["slo_breach"]())
    assert "stored baseline of <code>main@def5678</code> from 2025-03-01 09:15 UTC" in text
    assert "can only see changes larger than the minimum detectable effect" in text
    assert "Intel Xeon 8370C (baseline)" in text


def test_job_summary_has_no_sticky_marker() -> None:
    assert MARKER not in render_job_summary(FIXTURES["regression"]())
