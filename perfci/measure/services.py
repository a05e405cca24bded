"""The running service of each arm for the measure stage: booted in parallel, restarted between trials."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path

from perfci.config import Config
from perfci.model import Arm, Say
from perfci.rundir import SEEDED_SQLITE, TARGETS_DIR
from perfci.targets.base import Target
from perfci.targets.select import BootedService, BootRequest, boot_service


class Services:
    """The running service of each arm; with `profile.fresh_service`, a fresh one for every trial.

    Each arm's service is booted once and kept for the run; a fresh one is the target's own restart (for
    compose, a new app process on a new clone of the seeded database, PostgreSQL staying up). The arms of an
    A/B boot and restart in parallel: a pair waits for the slower arm, not for both in turn.
    """

    def __init__(
        self,
        config: Config,
        run_dir: Path,
        checkouts: Mapping[Arm, Path],
        extra_env: Mapping[Arm, Mapping[str, str]],
        say: Say,
    ) -> None:
        self.config, self.run_dir, self.checkouts, self.say = config, run_dir, checkouts, say
        self.extra_env = extra_env  # per arm, the service environment given for that arm only
        self.targets: dict[Arm, Target] = {}
        self._stack = ExitStack()
        self._booted: dict[Arm, BootedService] = {}
        self._restarts = config.profile.fresh_service
        self._used: set[Arm] = set()  # arms whose running service has already served a trial

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def boot(self, arm: Arm) -> Target:
        self.say(f"perfci: booting the {arm} service ({self.config.target})")
        request = BootRequest(
            arm=arm,
            checkout=self.checkouts[arm],
            extra_env=dict(self.extra_env.get(arm, {})),
            workdir=self.run_dir / TARGETS_DIR / arm,
            sqlite_template=self.run_dir / TARGETS_DIR / arm / SEEDED_SQLITE,
        )
        booted = self._stack.enter_context(boot_service(self.config, request))
        self._booted[arm] = booted
        self.targets[arm] = booted.target
        self.say(f"perfci: {arm} service ready at {booted.target.base_url}: {booted.target.description}")
        if self._restarts and booted.target.kind == "url":
            self.say("perfci: a url target cannot be restarted: every trial uses the same service")
        return booted.target

    def boot_all(self, arms: Sequence[Arm]) -> None:
        """Boot the arms at once; a failure is raised after every boot has ended (and is closed on exit)."""
        _in_parallel(self.boot, arms, self.say)

    def for_trial(self, arm: Arm) -> Target:
        """The arm's service for its next trial: restarted from its seeded state when the profile asks and
        the running one has served a trial already."""
        if self._restarts and arm in self._used and self.targets[arm].kind != "url":
            self.targets[arm] = self._booted[arm].restart()
        self._used.add(arm)
        return self.targets[arm]

    def for_pair(self, order: Sequence[Arm]) -> dict[Arm, Target]:
        """Both arms' services for a concurrent pair, restarted in parallel (started in `order`)."""
        return dict(zip(order, _in_parallel(self.for_trial, order, self.say), strict=True))


def _in_parallel(work: Callable[[Arm], Target], arms: Sequence[Arm], say: Say) -> list[Target]:
    """`work` for each arm in threads, submitted in order; the first failure raised once all have ended."""
    if len(arms) < 2:
        return [work(arm) for arm in arms]
    with ThreadPoolExecutor(max_workers=len(arms), thread_name_prefix="perfci-boot") as pool:
        futures = [pool.submit(work, arm) for arm in arms]
        try:
            wait(futures)
        except KeyboardInterrupt:
            # A boot in a thread cannot be interrupted: leaving the block waits for each to end and register
            # its service, so that the teardown that follows stops it too (cli.py ignores later signals).
            say("perfci: interrupted: waiting for the boots under way to end, then stopping their services")
            raise
    return [future.result() for future in futures]
