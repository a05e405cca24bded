"""The service as a local process from its configured commands: an SQLite file per run, or a fresh PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from perfci.errors import BootError, ConfigError
from perfci.lifetime import die_with_parent, start_in_lasting_thread
from perfci.targets.base import Target
from perfci.targets.commands import check_executable, check_workdir, command_words, interpreter
from perfci.targets.database import fresh_database, is_postgres_url, plain_postgres_url
from perfci.targets.health import Readiness, boot_failure, free_port, not_ready_hint, port_is_free, wait_until_ready

HOST = "127.0.0.1"
STOP_GRACE_S = 10.0
SQLITE_FILE = "service.sqlite3"


@dataclass(frozen=True)
class ProcessSpec:
    """How to boot one process target ([tool.perfci.service.process], with the checkout's workdir)."""

    workdir: Path  # the service's folder in the checkout being measured (A/B: the base's worktree)
    serve: str  # must listen on {host}:{port}
    seed: str = ""
    prepare: str = ""  # once per fresh database, before seeding
    python: str = ""  # {python}: "" = the interpreter running perfci
    database_env: str = ""  # the variable that receives the database URL; "" = none given
    database_url: str | None = None  # None: SQLite file in the work directory; else a PostgreSQL server
    sqlite_url: str = "sqlite:///{path}"
    readiness: Readiness = field(default_factory=Readiness)
    port: int = 0  # 0: a free port picked at boot
    env: Mapping[str, str] = field(default_factory=dict)  # [tool.perfci.service] env and per-arm additions
    seed_users: int = 0
    boot_timeout_s: float = 60.0
    workers: int = 1
    # SQLite only: the seeded database is kept here after the first boot and copied by later boots, so a
    # restart costs a process start, not a seeding. The file belongs to one checkout (its schema).
    sqlite_template: Path | None = None
    declared_in: str = "[tool.perfci.service.process]"  # where the commands come from, for messages

    def words(self, key: str, port: int, database_url: str) -> list[str]:
        """The command of `key` (serve, prepare, seed) as arguments."""
        values = {
            "python": interpreter(self.python, self.workdir), "host": HOST, "port": str(port),
            "seed_users": str(self.seed_users), "workers": str(self.workers), "database_url": database_url,
        }  # fmt: skip
        return command_words(getattr(self, key), values, f"service.process.{key}", self.declared_in)

    def check(self) -> None:
        """Exit 2 before anything starts: the workdir, the interpreter and each command's program exist."""
        check_workdir(self.workdir, self.declared_in)
        if not self.serve.strip():
            raise ConfigError(
                f"service.process.serve is not set ({self.declared_in})",
                'set serve = "... --host {host} --port {port}" to the command that starts the service',
            )
        python = interpreter(self.python, self.workdir)
        if self.python and not (Path(python).is_file() and os.access(python, os.X_OK)):
            raise ConfigError(
                f"service.process.python: {python} is not an executable file ({self.declared_in})",
                "give the service's interpreter relative to workdir (e.g. .venv/bin/python) or absolute; "
                '"" runs the one running perfci',
            )
        env = service_environment(self, "")
        for key in ("serve", "prepare", "seed"):
            if getattr(self, key).strip():
                check_executable(
                    self.words(key, 0, "")[0], self.workdir, env, f"service.process.{key}", self.declared_in
                )


def service_environment(spec: ProcessSpec, database_url: str) -> dict[str, str]:
    """The service's environment: this process's, the checkout's code first on the path, then overrides."""
    env = dict(os.environ)
    # The checkout's code wins over any installed copy of the same package: an A/B run boots the base's.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(spec.workdir), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(spec.env)
    if spec.database_env and database_url:
        env[spec.database_env] = database_url
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


def _run_once(spec: ProcessSpec, key: str, env: Mapping[str, str], log_path: Path, database_url: str) -> None:
    """Run the `prepare` or `seed` command to its end; its output goes to the service log."""
    command = spec.words(key, 0, database_url)
    what = f"seeding {spec.seed_users} users" if key == "seed" else "preparing the database"
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                command, env=env, cwd=spec.workdir, stdout=log, stderr=subprocess.STDOUT,
                timeout=spec.boot_timeout_s, check=False,
                preexec_fn=die_with_parent(),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise boot_failure(
                f"{what} took longer than {spec.boot_timeout_s:g} s",
                log_path,
                f"raise boot_timeout_s in [tool.perfci.service] if it is just slow, or seed fewer users; the "
                f"command is service.process.{key}",
            ) from None
    if result.returncode != 0:
        raise boot_failure(
            f"{what} failed (exit code {result.returncode})",
            log_path,
            f"service.process.{key} failed before the service started; its output is in the log ({spec.declared_in})",
        )


def _start(
    spec: ProcessSpec, port: int, env: Mapping[str, str], log_path: Path, database_url: str
) -> subprocess.Popen[bytes]:
    command = spec.words("serve", port, database_url)
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        # A session of its own: teardown signals the group, reaching every worker process. Started from a
        # thread that lives as long as perfci: A/B arms boot in threads that end long before their services.
        return start_in_lasting_thread(
            lambda: subprocess.Popen(
                command, env=env, cwd=spec.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
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
        "its log says why; a bad value in [tool.perfci.service] env or serve command is a common cause",
    )


def _database(spec: ProcessSpec, workdir: Path, stack: ExitStack) -> tuple[str, str | None, str]:
    """(URL given to the service, URL perfci monitors or None, label) for this boot's database."""
    if not spec.database_env:
        return "", None, "its own database"
    if spec.database_url is None:
        return spec.sqlite_url.format(path=(workdir / SQLITE_FILE).resolve()), None, "SQLite"
    if is_postgres_url(spec.database_url):
        url = stack.enter_context(fresh_database(spec.database_url))
        return url, plain_postgres_url(url), "PostgreSQL"
    return spec.database_url, None, "its own database"


def _prepare_and_seed(spec: ProcessSpec, env: Mapping[str, str], workdir: Path, log_path: Path, url: str) -> None:
    """Migrate and seed a fresh database, or copy the seeded SQLite file of an earlier boot."""
    sqlite_file = workdir / SQLITE_FILE if spec.database_env and spec.database_url is None else None
    template = spec.sqlite_template if sqlite_file is not None else None
    if sqlite_file is not None:
        for stale in (sqlite_file, *(sqlite_file.with_name(sqlite_file.name + x) for x in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)  # a restart starts from the seeded state, not the last run's
    if template is not None and sqlite_file is not None and template.is_file():
        shutil.copyfile(template, sqlite_file)
        return
    if spec.prepare.strip():
        _run_once(spec, "prepare", env, log_path, url)
    if spec.seed.strip() and spec.seed_users:
        _run_once(spec, "seed", env, log_path, url)
    if template is not None and sqlite_file is not None and sqlite_file.is_file():
        shutil.copyfile(sqlite_file, template)  # the seed command has exited: the file is complete


@contextmanager
def process_target(spec: ProcessSpec, workdir: Path) -> Iterator[Target]:
    """Prepare, seed, serve, wait for readiness, yield the Target; always stop the process and keep its log.

    `workdir` is perfci's (logs, the SQLite file); the service runs in `spec.workdir`.
    """
    spec.check()
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
        database_url, monitored_db, db_label = _database(spec, workdir, stack)
        env = service_environment(spec, database_url)
        _prepare_and_seed(spec, env, workdir, log_path, database_url)
        process = _start(spec, port, env, log_path, database_url)
        stack.callback(_stop, process)  # registered after the database: stops the service before the drop
        ready = wait_until_ready(base_url, spec.boot_timeout_s, lambda: process.poll() is None, spec.readiness)
        if not ready:
            code = process.poll()
            if code is not None:
                raise _explain_early_exit(port, code, log_path)
            raise boot_failure(
                f"service not ready at {base_url} after {spec.boot_timeout_s:g} s: "
                f"service.readiness_path never gave {spec.readiness.describe()}",
                log_path,
                not_ready_hint(spec.readiness),
            )
        program = Path(spec.words("serve", port, database_url)[0]).name
        yield Target(
            kind="process",
            base_url=base_url,
            log_paths=(log_path,),
            pids=(process.pid,),
            database_url=monitored_db,
            seed_users=spec.seed_users,
            exit_code=process.poll,
            description=f"process ({program}, {db_label}, {spec.workers} worker{'s' if spec.workers > 1 else ''})",
        )
