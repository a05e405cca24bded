"""The order of an A/B run's trials: counterbalanced pairs, concurrent or interleaved, sequential looks.

Pure functions of the configuration and a random source, so the schedule is tested without any load.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from perfci.analysis import analyse, stats
from perfci.config import Config
from perfci.model import Arm, TrialInfo


def planned_looks(config: Config) -> list[int]:
    """The sequential plan of an A/B run: look at 8, 12, 16, ... pairs up to the profile's trials."""
    return stats.planned_looks(config.profile.trials)


def look(config: Config, scenario: str, trials: Mapping[Arm, Sequence[TrialInfo]], looks: Sequence[int]) -> str | None:
    """At a planned look: why the scenario may stop now, or None to go on (at the last look, why it ends)."""
    pairs = len(trials["candidate"])
    evidence = analyse.gather_scenario(
        scenario,
        [t.endpoints for t in trials["base"]],
        [t.endpoints for t in trials["candidate"]],
        mode="ab",
        settings=config.statistics,
        slos=(),
        looks=looks,
    )
    reason = analyse.decide_look(evidence, config.statistics, other_scenarios=len(config.scenarios) - 1)
    if reason is None and pairs >= looks[-1]:
        return f"the budget of {pairs} pairs was reached with some tests undecided"
    return reason


def pair_orders(arms: Sequence[Arm], pairs: int, rng: random.Random) -> list[list[Arm]]:
    """The arm order of each pair, counterbalanced in blocks of two pairs (AB BA or BA AB, chosen at random).

    Within a block each arm runs first once, so an effect of going first or second (a service still
    settling, the machine warming) cancels instead of landing on one arm, as it can when every pair is
    shuffled on its own (with three pairs, one order in four has the same arm first every time); the
    random choice per block keeps drift over the job from lining up with the arms.
    """
    orders: list[list[Arm]] = []
    for index in range(pairs):
        if index % 2 == 0:
            order = list(arms)
            rng.shuffle(order)
        else:
            order = orders[-1][::-1]
        orders.append(order)
    return orders


def runs_concurrently(config: Config, scenario: str) -> bool:
    """Whether an A/B run measures both arms of this scenario at once.

    Open-model scenarios interleave whatever the schedule: two arms offered their arrival rate at the same
    time would load the machine twice over and could miss the rate for a reason neither arm has.
    """
    return config.profile.ab_schedule == "concurrent" and not config.is_open_model(scenario)
