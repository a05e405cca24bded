"""The service as a local uvicorn process: SQLite in the work directory by default, or a fresh PostgreSQL."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from perfci.errors import BootError
from perfci.lifetime import die_with_parent, start_in_lasting_thread
from perfci.targets.base import Target
from perfci.targets.database import fresh_database, is_postgres_url, plain_postgres_url
from perfci.targets.health import boot_failure, free_port, port_is_free, wait_until_ready

HOST = "127.0.0.1"
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class ProcessSpec:
    """How to boot one process target."""

    service_dir: Path  # the `service/` folder of a checkout (A/B: the base's worktree)
    port: int = 0  # 0: a free port picked at boot
    database_url: str | None = None  # None: SQLite file in the work directory; else a PostgreSQL server
    env: Mapping[str, str] = field(default_factory=dict)  # USERSVC_* overrides
    seed_users: int = 0
    boot_timeout_s: float = 60.0
    workers: int = 1
    # SQLite only: the seeded database is kept here after the first boot and copied by later boots, so a
    # restart costs a process start, not a seeding. The file belongs to one checkout (its schema).
    sqlite_template: Path | None = None


def service_environment(spec: ProcessSpec, database_url: str) -> dict[str, str]:
    """The service's environment: this process's, the checkout's code first on the path, then overrides."""
    env = dict(os.environ)
    # The checkout's package wins over any installed copy: an A/B run boots the base's code this way.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(spec.service_dir), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("USERSVC_JWT_SECRET", secrets.token_hex(32))
    env.update(spec.env)
    env["USERSVC_DATABASE_URL"] = database_url
    return env


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pid, sig)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (uvicorn workers included), then SIGKILL whatever outlived it."""
    _signal_group(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):  # ignored SIGTERM: the SIGKILL below ends it
        process.wait(timeout=STOP_GRACE_S)
    # Also after a clean exit of the leader: a worker it lost track of must not keep the port.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _seed(spec: ProcessSpec, env: Mapping[str, str], workdir: Path, log_path: Path) -> None:
    command = [sys.executable, "-m", "userservice", "seed", "--count", str(spec.seed_users)]
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                timeout=spec.boot_timeout_s, check=False,
                preexec_fn=die_with_parent(),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise boot_failure(
                f"seeding {spec.seed_users} users took longer than {spec.boot_timeout_s:g} s",
                log_path,
                "raise boot_timeout_s if it is just slow, or seed fewer users",
            ) from None
    if result.returncode != 0:
        raise boot_failure(
            f"seeding {spec.seed_users} users failed (exit code {result.returncode})",
            log_path,
            "the service's seed command failed before serving; its log says why",
        )


def _start(
    spec: ProcessSpec, port: int, env: Mapping[str, str], workdir: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "userservice", "serve", "--host", HOST, "--port", str(port)]
    command += ["--workers", str(spec.workers)]
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        # A session of its own: teardown signals the group, reaching every uvicorn worker. Started from a
        # thread that lives as long as perfci: A/B arms boot in threads that end long before their services.
        return start_in_lasting_thread(
            lambda: subprocess.Popen(
                command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 (only prctl, which is async-signal-safe)
            )
        )  # fmt: skip


def _explain_early_exit(port: int, code: int, log_path: Path) -> BootError:
    text = log_path.read_text(encoding="utf-8", errors="replace").lower()
    if "address already in use" in text or "errno 98" in text:
        return boot_failure(
            f"port {port} on {HOST} is taken: the service could not listen",
            log_path,
            f"stop whatever listens on {port}, or use port 0 to pick a free one",
        )
    return boot_failure(
        f"the service exited with code {code} while starting",
        log_path,
        "its log says why; a bad USERSVC_* value in [tool.perfci.service] env is a common cause",
    )


@contextmanager
def process_target(spec: ProcessSpec, workdir: Path) -> Iterator[Target]:
    """Seed, start, wait for `/readyz`, yield the Target; always stop the process and keep its log."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "service.log"
    if spec.port and not port_is_free(HOST, spec.port):
        raise BootError(
            f"port {spec.port} on {HOST} is taken: the service cannot listen there",
            f"stop whatever listens on {spec.port}, or use port 0 to pick a free one",
        )
    port = spec.port or free_port(HOST)
    base_url = f"http://{HOST}:{port}"
    with ExitStack() as stack:
        if spec.database_url is None:
            database_url = f"sqlite+aiosqlite:///{(workdir / 'userservice.sqlite3').resolve()}"
            monitored_db, db_label = None, "SQLite"
        elif is_postgres_url(spec.database_url):
            database_url = stack.enter_context(fresh_database(spec.database_url))
            monitored_db, db_label = plain_postgres_url(database_url), "PostgreSQL"
        else:
            database_url, monitored_db, db_label = spec.database_url, None, "its own database"
        env = service_environment(spec, database_url)
        sqlite_file = workdir / "userservice.sqlite3" if spec.database_url is None else None
        template = spec.sqlite_template if sqlite_file is not None else None
        if sqlite_file is not None:
            for stale in (sqlite_file, *(sqlite_file.with_name(sqlite_file.name + x) for x in ("-wal", "-shm"))):
                stale.unlink(missing_ok=True)  # a restart starts from the seeded state, not the last run's
        if template is not None and sqlite_file is not None and template.is_file():
            shutil.copyfile(template, sqlite_file)
        elif spec.seed_users:
            _seed(spec, env, workdir, log_path)
            if template is not None and sqlite_file is not None and sqlite_file.is_file():
                shutil.copyfile(sqlite_file, template)  # the seed command has exited: the file is complete
        process = _start(spec, port, env, workdir, log_path)
        stack.callback(_stop, process)  # registered after the database: stops the service before the drop
        ready = wait_until_ready(base_url, spec.boot_timeout_s, lambda: process.poll() is None)
        if not ready:
            code = process.poll()
            if code is not None:
                raise _explain_early_exit(port, code, log_path)
            raise boot_failure(
                f"service not healthy at {base_url}/readyz after {spec.boot_timeout_s:g} s",
                log_path,
                "raise boot_timeout_s if it is just slow",
            )
        yield Target(
            kind="process",
            base_url=base_url,
            log_paths=(log_path,),
            pids=(process.pid,),
            database_url=monitored_db,
            seed_users=spec.seed_users,
            exit_code=process.poll,
            description=f"process (uvicorn, {db_label}, {spec.workers} worker{'s' if spec.workers > 1 else ''})",
        )
