"""The render stage: a Comparison (and what the caller collected) as Markdown, HTML, terminal text or SVG."""
