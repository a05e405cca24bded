"""Make untrusted text (endpoint names, branch names, error messages) inert inside Markdown and HTML."""

from __future__ import annotations

import re

# A table cell, a <summary> or a list item must stay one line; endpoint names are never legitimately long.
MAX_TEXT_CHARS = 160

# Characters Markdown gives a meaning to inline. Escaping them with a backslash keeps them visible and
# inert: no emphasis, no code span that swallows the rest of the row, no [text](url) or ![image](url).
# A pipe becomes an entity rather than "\|": the table splitter only ever sees literal pipes.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_~\[\]])")
# HTML's own specials become entities, so nothing the user wrote can open a tag (<script>, <img onerror>).
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_HTML_SPECIAL = re.compile("[&<>\"']")
# GitHub turns "@name" into a ping and "#123" into a cross-reference after rendering, so Markdown escapes
# cannot stop them. A zero-width space after "@" or "#" keeps the text readable and breaks the link.
_MENTION = re.compile(r"([@#])(?=[A-Za-z0-9])")
# Bare URLs are auto-linked; an entity for the colon keeps the text but not the link.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])://|\bwww\.")
# Control characters and line separators, plus the bidirectional controls (embeddings, overrides, isolates
# and marks): they can make a name read backwards, so what a reviewer sees is not what the text says.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
# GitHub renders $...$ and $$...$$ as math; an entity keeps the dollar sign and loses the delimiter.
_DOLLAR = "&#36;"
ZERO_WIDTH_SPACE = "\u200b"


def one_line(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Collapse control characters and line breaks into single spaces and cap the length."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _neutral(text: str, limit: int, *, break_mentions: bool = True) -> str:
    """One line, references broken, HTML specials as entities: the common first steps."""
    flat = one_line(text, limit)
    if break_mentions:
        flat = _MENTION.sub(r"\1" + ZERO_WIDTH_SPACE, flat)
    return _HTML_SPECIAL.sub(lambda m: _HTML_ENTITIES[m.group(0)], flat)


def _no_autolink(text: str) -> str:
    return _AUTOLINK.sub(lambda m: "&#58;//" if m.group(0) == "://" else "www&#46;", text)


def markdown_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Untrusted text for a Markdown table cell, heading, list item or <summary>: one line, inert."""
    flat = _MARKDOWN_PUNCTUATION.sub(r"\\\1", _neutral(text, limit)).replace("|", "&#124;").replace("$", _DOLLAR)
    return _no_autolink(flat)


# Inside <code> backslashes are shown literally, so the Markdown specials become entities instead.
_CODE_ENTITIES = {c: f"&#{ord(c)};" for c in "|`*_[]~\\$"}


def code_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Untrusted text shown as inline code: HTML <code> with entities, since backticks cannot be escaped.

    GitHub never turns "@name" inside <code> into a mention, so "main@abc1234" stays copyable as is.
    """
    flat = "".join(_CODE_ENTITIES.get(c, c) for c in _neutral(text, limit, break_mentions=False))
    return "<code>" + _no_autolink(flat) + "</code>"


def mermaid_label(text: str, limit: int = 40) -> str:
    """A label for a Mermaid chart: a conservative character set, so no quote or fence can end the block."""
    kept = re.sub(r"[^A-Za-z0-9 /{}._:-]", "_", one_line(text, limit))
    return kept.replace("{", "(").replace("}", ")")
