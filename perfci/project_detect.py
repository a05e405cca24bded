"""What `perfci init` can tell about a repository by reading it: compose file, app object, routes, database variable.

Every finding is a guess with the file it came from, so that `perfci init` can say what it guessed and where;
nothing here imports or runs the project's code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
# Folders that hold other people's code or build output, never the service's own.
SKIPPED_DIRS = frozenset(
    {".git", ".venv", "venv", "env", ".nox", ".tox", "node_modules", "site-packages", "build", "dist", ".perfci"}
)
# Readiness first: it says "can serve", which is what a trial waits for; liveness only says "is running".
HEALTH_PATHS = ("/readyz", "/ready", "/healthz", "/health", "/livez")
MAX_FILE_BYTES = 512 * 1024

_APP_OBJECT = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*(?::[^=]+)?=\s*(?P<kind>FastAPI|Flask)\(", re.MULTILINE)
_ROUTE = re.compile(
    r"@\w+\.(?P<method>get|route)\(\s*[\"'](?P<path>/[^\"']*)[\"'](?P<rest>[^)]*)\)", re.IGNORECASE | re.MULTILINE
)
_ENV_READ = re.compile(
    r"(?:os\.environ\.get|os\.getenv|os\.environ\[|environ\.get|getenv)\(?\s*[\"'](?P<name>[A-Z][A-Z0-9_]*)[\"']"
)
_DATABASE_NAME = re.compile(r"DATABASE|DB_?URL|DSN|(^|_)DB($|_)|POSTGRES|SQLALCHEMY_DATABASE_URI")


@dataclass(frozen=True)
class Found:
    """A detected value and where it was seen (a path relative to the repository)."""

    value: str
    source: str


@dataclass(frozen=True)
class ComposeService:
    name: str
    image: str = ""
    has_build: bool = False
    container_ports: tuple[int, ...] = ()
    environment: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComposeFindings:
    file: str
    services: tuple[ComposeService, ...]
    measured: ComposeService | None
    database: ComposeService | None


@dataclass(frozen=True)
class AppFindings:
    kind: str  # "fastapi" | "flask"
    module: str  # importable from workdir, e.g. "notes.app"
    attribute: str  # the app object's name, e.g. "app"
    workdir: str  # relative to the repository, "." for its root
    source: str


@dataclass(frozen=True)
class Findings:
    compose: ComposeFindings | None = None
    app: AppFindings | None = None
    health: Found | None = None
    health_status: Found | None = None
    get_route: Found | None = None
    database_env: Found | None = None
    sqlite_url: Found | None = None
    seed: Found | None = None
    install_command: str = ""  # what installs the service's own dependencies, for the workflow


def python_files(root: Path) -> Iterator[Path]:
    """The repository's own Python files, in a stable order, skipping virtualenvs and build output."""
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIPPED_DIRS.intersection(relative.parts[:-1]) or not path.is_file():
            continue
        if path.stat().st_size <= MAX_FILE_BYTES:
            yield path


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


# ----------------------------------------------------------------------------------------------------------
# Compose
# ----------------------------------------------------------------------------------------------------------


def find_compose_file(root: Path) -> Path | None:
    for name in COMPOSE_NAMES:
        if (root / name).is_file():
            return root / name
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIPPED_DIRS):
        for name in COMPOSE_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def _container_port(entry: str) -> int | None:
    """The container side of a `ports:` entry: "8000", "8080:8000", "127.0.0.1:8080:8000/tcp" -> 8000."""
    text = entry.strip().strip("\"'").split("/")[0]
    last = text.rsplit(":", 1)[-1]
    return int(last) if last.isdigit() else None


@dataclass
class _ServiceDraft:
    name: str
    image: str = ""
    has_build: bool = False
    ports: list[int] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)

    def add(self, section: str, item: str) -> None:
        if section == "ports":
            port = _container_port(item.removeprefix("target:"))
            if port is not None:
                self.ports.append(port)
        elif section == "environment" and (name := re.split(r"[=:]", item, maxsplit=1)[0].strip().strip("\"'")):
            self.environment.append(name)

    def set(self, key: str, value: str) -> str:
        """Record `key: value`; returns the key when a list of items follows (ports, environment)."""
        if key == "image":
            self.image = value
        elif key == "build":
            self.has_build = True
        elif key in ("ports", "environment"):
            for item in value.strip("[]").split(",") if value.startswith("[") else ():
                self.add(key, item)
            return key
        return ""

    def frozen(self) -> ComposeService:
        return ComposeService(self.name, self.image, self.has_build, tuple(self.ports), tuple(self.environment))


def parse_compose_services(text: str) -> tuple[ComposeService, ...]:
    """The services of a block-style compose file, read by indentation (enough for a guess; no YAML library).

    Flow-style mappings and anchors are not followed; what is not understood is simply not found.
    """
    drafts: list[_ServiceDraft] = []
    in_services, service_indent = False, -1
    section, section_indent = "", 0
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_services, service_indent = stripped == "services:", -1
            continue
        if not in_services:
            continue
        if service_indent < 0:
            service_indent = indent
        if indent == service_indent:
            drafts.append(_ServiceDraft(stripped.rstrip(":").strip("\"'")))
            section = ""
            continue
        if not drafts or indent < service_indent:
            continue
        current = drafts[-1]
        if section and indent > section_indent:
            item = stripped[1:].strip() if stripped.startswith("-") else stripped
            if stripped.startswith("-") or item.startswith("target:") or section == "environment":
                current.add(section, item)
            continue
        key, _, value = stripped.partition(":")
        section, section_indent = current.set(key, value.strip().strip("\"'")), indent
    return tuple(draft.frozen() for draft in drafts)


def detect_compose(root: Path) -> ComposeFindings | None:
    path = find_compose_file(root)
    if path is None:
        return None
    services = parse_compose_services(_read(path))
    database = next((s for s in services if "postgres" in s.image.lower()), None)
    candidates = [s for s in services if s is not database]
    measured = (
        next((s for s in candidates if s.has_build and s.container_ports), None)
        or next((s for s in candidates if s.has_build), None)
        or next((s for s in candidates if s.container_ports), None)
    )
    return ComposeFindings(path.relative_to(root).as_posix(), services, measured, database)


# ----------------------------------------------------------------------------------------------------------
# Python sources
# ----------------------------------------------------------------------------------------------------------


def _module_of(root: Path, path: Path) -> tuple[str, str]:
    """The dotted module of `path` and the folder it imports from: walk up while folders are packages."""
    parts = [path.stem]
    folder = path.parent
    while folder != root and (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    workdir = folder.relative_to(root).as_posix() if folder != root else "."
    return ".".join(parts), workdir


def detect_app(root: Path, files: list[Path]) -> AppFindings | None:
    found: list[AppFindings] = []
    for path in files:
        match = _APP_OBJECT.search(_read(path))
        if match:
            module, workdir = _module_of(root, path)
            source = path.relative_to(root).as_posix()
            found.append(AppFindings(match["kind"].lower(), module, match["name"], workdir, source))
    # Tests and examples also build apps: prefer the shallowest non-test file.
    found.sort(key=lambda a: ("test" in a.source, a.source.count("/"), a.source))
    return found[0] if found else None


def detect_routes(root: Path, files: list[Path], app_source: str | None) -> tuple[Found | None, Found | None]:
    """The health route (readiness first) and one plain GET route, from route decorators and string literals."""
    health: dict[str, str] = {}
    gets: list[Found] = []
    for path in files:
        text, source = _read(path), path.relative_to(root).as_posix()
        for candidate in HEALTH_PATHS:
            if candidate not in health and re.search(rf"[\"']{re.escape(candidate)}[\"']", text):
                health[candidate] = source
        for match in _ROUTE.finditer(text):
            route, rest = match["path"], match["rest"]
            is_get = match["method"].lower() == "get" or "methods" not in rest or "GET" in rest.upper()
            if is_get and route not in HEALTH_PATHS and not re.search(r"[{<]", route):
                gets.append(Found(route, source))
    chosen = next((Found(p, health[p]) for p in HEALTH_PATHS if p in health), None)
    # A route beside the app object first (its main resource), then the shortest anywhere.
    gets.sort(key=lambda f: (f.source != app_source, f.value == "/", len(f.value), f.source))
    return chosen, (gets[0] if gets else None)


def detect_health_status(root: Path, health: Found | None) -> Found | None:
    """A status other than 200 the health route answers with, read near its path (`, 204` or status_code=204)."""
    if health is None:
        return None
    text = _read(root / health.source)
    start = text.find(health.value)
    following = text[start : start + 800]
    # Up to the next route: the health handler's own body.
    following = following[: following.find("\n@", 1)] if "\n@" in following[1:] else following
    match = re.search(r"status_code\s*=\s*(2\d\d)\b|return\b[^\n]*,\s*(2\d\d)\s*$", following, re.MULTILINE)
    if match and (code := match[1] or match[2]) != "200":
        return Found(code, health.source)
    return None


def detect_seed(root: Path, files: list[Path], app: AppFindings | None) -> Found | None:
    """A `seed` module beside the app (python -m PACKAGE.seed), with --count when it takes one."""
    if app is None or "." not in app.module:
        return None
    package = app.module.rsplit(".", 1)[0]
    for path in files:
        module_file = path.relative_to(root).as_posix()
        if path.stem == "seed" and _module_of(root, path)[0] == f"{package}.seed":
            count = " --count {seed_users}" if "--count" in _read(path) else ""
            return Found(f"{{python}} -m {package}.seed{count}", module_file)
    return None


def detect_install_command(root: Path, app: AppFindings | None) -> str:
    """How CI installs the service's dependencies beside perfci (process target): a requirements file or pyproject."""
    folders = [root / app.workdir] if app and app.workdir != "." else []
    for folder in [*folders, root]:
        where = folder.relative_to(root).as_posix()
        if (folder / "requirements.txt").is_file():
            return "python -m pip install -r " + ("requirements.txt" if where == "." else f"{where}/requirements.txt")
        if (folder / "pyproject.toml").is_file() and "[project]" in _read(folder / "pyproject.toml"):
            return "python -m pip install -e " + ("." if where == "." else f"./{where}")
    return ""


def detect_database_env(
    root: Path, files: list[Path], compose_env: tuple[str, ...] = (), compose_file: str = ""
) -> Found | None:
    found: list[Found] = []
    for path in files:
        for match in _ENV_READ.finditer(_read(path)):
            if _DATABASE_NAME.search(match["name"]):
                found.append(Found(match["name"], path.relative_to(root).as_posix()))
    found.extend(Found(name, compose_file) for name in compose_env if _DATABASE_NAME.search(name))
    # What the code reads is the truth; a compose file's environment only says what someone once set.
    found.sort(key=lambda f: (f.source == compose_file, "DATABASE_URL" not in f.value, "test" in f.source, f.value))
    return found[0] if found else None


def detect_sqlite_url(root: Path, files: list[Path]) -> Found | None:
    """How the service spells a SQLite database: a SQLAlchemy URL (async or not) or a plain file path."""
    for path in files:
        text, source = _read(path), path.relative_to(root).as_posix()
        if "aiosqlite" in text or "create_async_engine" in text:
            return Found("sqlite+aiosqlite:///{path}", source)
        if "create_engine" in text or "SQLALCHEMY_DATABASE_URI" in text:
            return Found("sqlite:///{path}", source)
        if "sqlite3.connect" in text:
            return Found("{path}", source)
    return None


def detect(root: Path) -> Findings:
    files = list(python_files(root))
    compose = detect_compose(root)
    app = detect_app(root, files)
    health, get_route = detect_routes(root, files, app.source if app else None)
    compose_env = compose.measured.environment if compose and compose.measured else ()
    database_env = detect_database_env(root, files, compose_env, compose.file if compose else "")
    return Findings(
        compose=compose,
        app=app,
        health=health,
        health_status=detect_health_status(root, health),
        get_route=get_route,
        database_env=database_env,
        sqlite_url=detect_sqlite_url(root, files),
        seed=detect_seed(root, files, app),
        install_command=detect_install_command(root, app),
    )
