"""Untrusted text cannot break a table, inject HTML, ping anyone or add a link to the PR comment."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from perfci.model import ArmInfo, Comparison, EndpointComparison, EndpointStats, NoiseFloor, ScenarioComparison
from perfci.render.escape import code_text, markdown_text, mermaid_label
from perfci.render.markdown import render_comment

HOSTILE = st.sampled_from(
    [
        "|",
        "\n",
        "\r\n",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "@octocat",
        "@org/team",
        "#1",
        "[click](https://evil.example)",
        "![x](https://evil.example/x.png)",
        "`",
        "```",
        "<!--",
        "-->",
        "</details>",
        "\\",
        "&lt;",
        "https://evil.example",
        "www.evil.example",
        "*",
        "_",
        "~~",
        "\u2028",
        "$x$",
        "$$",
        "\u202e",
        "\u2066",
    ]
)
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
UNTRUSTED = st.lists(st.one_of(HOSTILE, st.text(max_size=8)), max_size=8).map("".join)


def _stats() -> EndpointStats:
    return EndpointStats(n=10, errors=1, p50=1, p90=2, p95=2, p99=3, mean=1, rps=1)


def _comparison(names: list[str], error: str, label: str, scenario: str) -> Comparison:
    endpoints = [
        EndpointComparison(
            endpoint=name,
            base_stats=_stats(),
            candidate_stats=_stats(),
            verdict="regression" if i % 2 else "no_change",
            metrics=[],
            noise=NoiseFloor(cv={"p95": 0.1}, mde={"p95": 0.2}),
            candidate_errors={error: 1},
            new_error_kinds=[error],
        )
        for i, name in enumerate(names)
    ]
    return Comparison(
        created_at="2025-01-01T00:00:00Z",
        mode="ab",
        base=ArmInfo(label=label, ref=label),
        candidate=ArmInfo(label=label),
        profile="pr",
        alpha=0.05,
        power=0.8,
        scenarios=[
            ScenarioComparison(
                scenario=scenario,
                mode="ab",
                base_trials=4,
                candidate_trials=4,
                endpoints=endpoints,
                slos=[],
                notes=[error],
            )
        ],
    )


def _outside_code(text: str) -> str:
    """The text GitHub would scan for mentions: code spans and fenced blocks are exempt."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"<code>.*?</code>", "", text)
    # Entities are not references; each stands for one character, so it must not join its neighbours
    # ("@&#124;0" renders as "@|0", no mention).
    return re.sub(r"&#[0-9]+;", " ", text)


@settings(max_examples=150, deadline=None)
@given(names=st.lists(UNTRUSTED, min_size=1, max_size=4, unique=True), error=UNTRUSTED, label=UNTRUSTED)
def test_untrusted_text_keeps_the_comment_intact(names: list[str], error: str, label: str) -> None:
    text = render_comment(_comparison(names, error, label, scenario=error))
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    for row in table_rows:
        # Every row of every table keeps the column count of its header: 6, 5 or 4 columns.
        assert row.count("|") in {5, 6, 7}, row
    compare_rows = [r for r in table_rows if "regression" in r or "no change" in r]
    assert len(compare_rows) == len(names)
    assert "<script" not in text.lower()
    assert "<img" not in text.lower()
    outside = _outside_code(text)
    assert not re.search(r"@[A-Za-z0-9]", outside), "a mention would ping someone"
    assert not re.search(r"#[0-9]", outside), "a reference would link an issue"
    # The only links are perfci's own; none are added by untrusted text.
    assert "](" not in outside.replace("\\](", "")
    assert not re.search(r"https?://", outside)
    assert "$" not in outside, "GitHub would render $...$ as math"
    assert not BIDI.search(text)
    # Our own HTML structure survives: every <details> is closed.
    assert outside.count("<details>") == outside.count("</details>")
    assert text.count("<!--") == 2  # the sticky marker and the fingerprint, nothing smuggled in


@given(UNTRUSTED)
def test_markdown_text_is_one_line_without_raw_specials(text: str) -> None:
    escaped = markdown_text(text)
    assert "\n" not in escaped
    assert "\r" not in escaped
    assert "|" not in escaped.replace("&#124;", "")
    assert "<" not in escaped
    assert ">" not in escaped
    assert "$" not in escaped
    assert not BIDI.search(escaped)


@given(UNTRUSTED)
def test_code_text_cannot_close_its_code_element(text: str) -> None:
    escaped = code_text(text)
    inner = escaped.removeprefix("<code>").removesuffix("</code>")
    assert "<" not in inner
    assert "`" not in inner
    assert "|" not in inner
    assert "$" not in inner
    assert not BIDI.search(inner)


@given(UNTRUSTED)
def test_mermaid_label_cannot_end_the_chart(text: str) -> None:
    label = mermaid_label(text)
    assert re.fullmatch(r"[A-Za-z0-9 /()._:-]*", label)


def test_escaped_text_stays_readable() -> None:
    assert markdown_text("GET /users/{id}") == "GET /users/{id}"
    assert markdown_text("a|b") == "a&#124;b"
    assert markdown_text("@octocat") == "@\u200boctocat"
    assert markdown_text("[x](y)") == "\\[x\\](y)"
    assert markdown_text("line\nbreak") == "line break"
    assert code_text("main@abc1234") == "<code>main@abc1234</code>"
    assert markdown_text("costs $5 or $6") == "costs &#36;5 or &#36;6"  # no $...$ math
    assert markdown_text("abc\u202edcba") == "abc dcba"  # no right-to-left override
    assert code_text("a$b\u2066c") == "<code>a&#36;b c</code>"
