"""The base of a default A/B run: the merge-base with main, or HEAD where there is no main, said in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from perfci import gitrefs
from perfci.errors import ConfigError


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def _commit(repo: Path, name: str) -> str:
    (repo / name).write_text(name, encoding="utf-8")
    _git(repo, "add", name)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", name)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


def test_a_branch_is_compared_with_its_merge_base_not_with_mains_tip(repo: Path) -> None:
    fork = _commit(repo, "a")
    _git(repo, "checkout", "-q", "-b", "feature")
    _commit(repo, "b")
    _git(repo, "checkout", "-q", "main")
    _commit(repo, "c")  # main moved on after the branch started: not the branch's doing
    _git(repo, "checkout", "-q", "feature")

    base, why = gitrefs.default_base(repo)

    assert base == fork
    assert why == f"the merge-base of HEAD and main ({fork[:7]})"


def test_origin_main_serves_when_there_is_no_local_main(repo: Path) -> None:
    fork = _commit(repo, "a")
    _git(repo, "update-ref", "refs/remotes/origin/main", fork)
    _git(repo, "branch", "-q", "-m", "main", "work")
    _commit(repo, "b")

    base, why = gitrefs.default_base(repo)

    assert base == fork
    assert "HEAD and origin/main" in why


def test_without_main_the_base_is_head_and_the_line_says_why(repo: Path) -> None:
    _git(repo, "branch", "-q", "-m", "main", "trunk")  # unborn: rename before the first commit
    head = _commit(repo, "a")

    base, why = gitrefs.default_base(repo)

    assert base == head
    assert why.startswith(f"HEAD ({head[:7]}): there is no main or origin/main here")


def test_outside_a_checkout_it_is_a_usage_error_naming_the_alternatives(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a git checkout") as caught:
        gitrefs.default_base(tmp_path / "nowhere")
    assert "--against-baseline" in caught.value.hint
