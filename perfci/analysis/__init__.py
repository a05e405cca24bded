"""The analyse stage and what it judges against: statistics, verdicts, baselines, breaking points, rules."""
