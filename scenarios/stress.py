"""A step load on the journeys: users rise step by step and the test stops by itself.

PERFCI_STRESS_STEPS (comma-separated user counts, default "4,8,16,32,64") and PERFCI_STRESS_STEP_S (seconds
per step, default 10). `perfci stress` drives steps itself to stop at the first break; this file is the same
shape for plain `locust -f scenarios/stress.py`.
"""

from __future__ import annotations

import os

from journeys import JourneyUser
from locust import LoadTestShape

STEPS = [int(x) for x in os.environ.get("PERFCI_STRESS_STEPS", "4,8,16,32,64").split(",")]
STEP_S = float(os.environ.get("PERFCI_STRESS_STEP_S", "10"))

__all__ = ["JourneyUser", "StepShape"]


class StepShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        step = int(self.get_run_time() // STEP_S)
        if step >= len(STEPS):
            return None  # the last step is done: end the test
        return STEPS[step], float(max(STEPS))
