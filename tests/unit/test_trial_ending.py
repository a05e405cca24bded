"""A trial that ends in refused connections is a service that went away, not a regression to judge."""

from __future__ import annotations

import pandas as pd
import pytest

from perfci.measure.load import MIN_REFUSED_TAIL, refused_tail

REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"


def _samples(outcomes: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_s": [i * 0.1 for i in range(len(outcomes))],
            "status": [200 if o is None else 0 if "refused" in o else 500 for o in outcomes],
            "error": outcomes,
        }
    )


def test_a_trial_that_ends_in_refusals_says_when_they_began() -> None:
    samples = _samples([None] * 50 + [REFUSED] * MIN_REFUSED_TAIL)
    assert refused_tail(samples) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "outcomes",
    [
        [None] * 100,  # a healthy trial
        [None] * 50 + [REFUSED] * (MIN_REFUSED_TAIL - 1),  # a short burst: not enough to call the service gone
        [None] * 10 + [REFUSED] * 40 + [None],  # the service answered again at the end
        [None] * 10 + ["HTTP 500 boom"] * 40,  # errors of the service itself are data to judge
    ],
    ids=["healthy", "short-burst", "recovered", "http-errors"],
)
def test_other_trials_are_left_to_the_statistics(outcomes: list[str | None]) -> None:
    assert refused_tail(_samples(outcomes)) is None
