"""The configured commands of a process target: placeholders filled, and checked before anything runs."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from perfci.errors import ConfigError

PLACEHOLDERS = ("python", "host", "port", "seed_users", "workers", "database_url")


def interpreter(python: str, workdir: Path) -> str:
    """{python}: the interpreter running perfci when unset, else a path (relative to the service's workdir)."""
    if not python:
        return sys.executable
    path = Path(python).expanduser()
    return str(path if path.is_absolute() else workdir / path)


def command_words(template: str, values: Mapping[str, str], key: str, declared_in: str) -> list[str]:
    """The command as arguments: split like a shell would, then `{placeholder}`s filled word by word (a
    path with spaces stays one argument)."""
    try:
        words = shlex.split(template)
        return [word.format_map(values) for word in words]
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(
            f"{key} = {template!r} ({declared_in}) cannot be read: {exc.__class__.__name__} {exc}",
            f"use only the placeholders {{{'}, {'.join(PLACEHOLDERS)}}} and balanced quotes; write {{{{ for a brace",
        ) from None


def check_executable(word: str, workdir: Path, env: Mapping[str, str], key: str, declared_in: str) -> None:
    """The first word of a command names a program that exists: a path (relative to workdir) or on PATH."""
    if os.sep in word:
        path = Path(word) if Path(word).is_absolute() else workdir / word
        if path.is_file() and os.access(path, os.X_OK):
            return
        raise ConfigError(
            f"{key} runs {word}, which is not an executable file (looked at {path}; {declared_in})",
            f"fix {key}, or create it (e.g. the service's virtual environment) in {workdir}",
        )
    if shutil.which(word, path=env.get("PATH", os.defpath)) is None:
        raise ConfigError(
            f"{key} runs {word!r}, which is not on PATH ({declared_in})",
            f"install it, or give its path in {key} (relative to {workdir}); {{python}} is the interpreter",
        )


def check_workdir(workdir: Path, declared_in: str) -> None:
    if not workdir.is_dir():
        raise ConfigError(
            f"service.process.workdir: {workdir} is not a directory ({declared_in})",
            'set workdir to the service\'s folder, relative to the project root ("." for the root itself)',
        )
