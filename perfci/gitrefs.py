"""Git facts for run metadata and the A/B base: commits, short names, temporary worktrees."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perfci.errors import ConfigError


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise ConfigError(
            f"git {' '.join(args)} failed in {repo}: {result.stderr.strip() or result.stdout.strip()}",
            "check that the ref exists (fetch it: `git fetch origin main`) and this is a git checkout",
        )
    return result.stdout.strip()


def head_commit(repo: Path) -> str | None:
    """The checked-out commit, or None outside a git checkout (a tarball, a copy)."""
    try:
        return _git(repo, "rev-parse", "HEAD")
    except (ConfigError, FileNotFoundError):
        return None


def is_dirty(repo: Path) -> bool:
    try:
        return bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
    except (ConfigError, FileNotFoundError):
        return False


def resolve(repo: Path, ref: str) -> str:
    return _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")


@contextmanager
def worktree(repo: Path, ref: str) -> Iterator[Path]:
    """A detached temporary worktree of `ref`, removed afterwards (the A/B base arm runs from it)."""
    commit = resolve(repo, ref)
    parent = Path(tempfile.mkdtemp(prefix="perfci-base-"))
    path = parent / "checkout"
    _git(repo, "worktree", "add", "--detach", str(path), commit)
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            check=False,
            timeout=120,
        )
        shutil.rmtree(parent, ignore_errors=True)


# Where main may be found, in order: a local branch, then the remote's (CI clones often have only that).
MAIN_REFS = ("main", "origin/main")


def default_base(repo: Path) -> tuple[str, str]:
    """The base of a default A/B run, the one the PR check uses: (commit, one line saying which and why).

    The merge-base with main is what a pull request is compared against, so changes made on main since
    the branch started are never blamed on (or credited to) the branch. Without main, the last commit:
    the A/B then measures the uncommitted changes of the working tree.
    """
    head = head_commit(repo)
    if head is None:
        raise ConfigError(
            f"{repo} is not a git checkout, so there is no main to run an A/B against",
            "run from a git checkout, name a ref with --ab REF, or compare with a stored baseline: --against-baseline",
        )
    for ref in MAIN_REFS:
        try:
            resolve(repo, ref)
        except ConfigError:
            continue
        base = _git(repo, "merge-base", "HEAD", ref)
        return base, f"the merge-base of HEAD and {ref} ({base[:7]})"
    return head, f"HEAD ({head[:7]}): there is no main or origin/main here, so the A/B measures uncommitted changes"
