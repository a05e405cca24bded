"""Publishers: what every publisher is, the job summary and plain files (GitHub's own are in github.py).

Each takes a rendered `Publication` and reports what it did. Results are on disk before any publisher runs,
so a failed publish (a `PublishError`, exit 3) never loses them.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from perfci.errors import PublishError
from perfci.model import Comparison
from perfci.rundir import atomic_write

Action = Literal["created", "updated", "unchanged", "skipped", "written"]


@dataclass(frozen=True)
class Publication:
    """What every publisher receives: the comparison and its rendered Markdown (the comment body)."""

    comparison: Comparison
    markdown: str


@dataclass(frozen=True)
class PublishOutcome:
    publisher: str
    action: Action
    url: str | None = None
    detail: str = ""


class Publisher(ABC):
    """One place results go. `publish` raises `PublishError` with a hint, never anything else."""

    name: str = "publisher"

    @abstractmethod
    def publish(self, publication: Publication) -> PublishOutcome: ...


# ----------------------------------------------------------------------------------------------------------
# Files and the job summary
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilePublisher(Publisher):
    """Writes the Markdown to a file (atomically), e.g. `report.md` in the run directory."""

    path: Path
    name: str = "file"

    def publish(self, publication: Publication) -> PublishOutcome:
        try:
            atomic_write(self.path, publication.markdown)
        except OSError as error:
            raise PublishError(
                f"cannot write {self.path}: {error.strerror or error}", "check the directory exists and is writable"
            ) from error
        return PublishOutcome(self.name, "written", str(self.path))


@dataclass(frozen=True)
class JobSummaryPublisher(Publisher):
    """Appends to `$GITHUB_STEP_SUMMARY` (other steps may have written there too); skipped outside Actions."""

    summary_path: Path | None
    name: str = "job-summary"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> JobSummaryPublisher:
        path = environ.get("GITHUB_STEP_SUMMARY")
        return cls(Path(path) if path else None)

    def publish(self, publication: Publication) -> PublishOutcome:
        if self.summary_path is None:
            return PublishOutcome(self.name, "skipped", detail="GITHUB_STEP_SUMMARY is not set")
        try:
            with self.summary_path.open("a", encoding="utf-8") as summary:
                summary.write(publication.markdown.rstrip("\n") + "\n")
        except OSError as error:
            raise PublishError(
                f"cannot append to the job summary {self.summary_path}: {error.strerror or error}",
                "GITHUB_STEP_SUMMARY must name a writable file (GitHub Actions sets it per step)",
            ) from error
        return PublishOutcome(self.name, "written", str(self.summary_path))


# ----------------------------------------------------------------------------------------------------------
# GitHub
# ----------------------------------------------------------------------------------------------------------


def publish_all(publishers: list[Publisher], publication: Publication) -> list[PublishOutcome]:
    """Runs every publisher; the first failure is raised after the others had their turn."""
    outcomes: list[PublishOutcome] = []
    first_error: PublishError | None = None
    for publisher in publishers:
        try:
            outcomes.append(publisher.publish(publication))
        except PublishError as error:
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    return outcomes
