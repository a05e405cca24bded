"""`perfci init` on real repository layouts: what it detects, what it writes, and that it never overwrites."""

from __future__ import annotations

import ast
import shutil
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

from perfci import __version__
from perfci.cli import main
from perfci.project_detect import detect, parse_compose_services

ROOT = Path(__file__).resolve().parents[2]
NOTES = ROOT / "tests" / "adoption" / "flask_notes_service"
WRITTEN = (
    "pyproject.toml",
    "perf/smoke.py",
    ".github/workflows/perf.yml",
    ".github/workflows/perf-comment.yml",
    ".gitignore",
)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    """The Flask notes service: app in notes/app.py, /health answering 204, NOTES_DB, a seed module."""
    root = tmp_path / "notes"
    shutil.copytree(NOTES, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def fastapi_compose(tmp_path: Path) -> Path:
    """A FastAPI service in a src layout behind a proxy, with PostgreSQL, as an ordinary compose file."""
    return write(
        tmp_path / "shop",
        {
            "compose.yaml": """\
                services:
                  proxy:
                    image: nginx:1.27
                    ports:
                      - "80:80"
                  backend:
                    build: .
                    ports:
                      - "127.0.0.1:8080:8000"
                    environment:
                      DATABASE_URL: postgresql://shop@db/shop
                      LOG_LEVEL: info
                  db:
                    image: postgres:16  # the database
                    environment:
                      - POSTGRES_PASSWORD=shop
            """,
            "requirements.txt": "fastapi\nuvicorn\n",
            "src/shop/__init__.py": "",
            "src/shop/settings.py": 'import os\nDB = os.environ["SHOP_DATABASE_URL"]\nDEBUG = os.getenv("DEBUG")\n',
            "src/shop/main.py": """\
                from fastapi import FastAPI

                api = FastAPI(title="shop")


                @api.get("/livez")
                def live() -> dict[str, str]:
                    return {}


                @api.get("/readyz", status_code=200)
                def ready() -> dict[str, str]:
                    return {}


                @api.get("/items/{item_id}")
                def item(item_id: int) -> dict[str, int]:
                    return {"id": item_id}


                @api.get("/items")
                def items() -> list[int]:
                    return []
            """,
            "tests/test_app.py": 'from fastapi import FastAPI\napp = FastAPI()\n@app.get("/health")\ndef h(): ...\n',
            ".venv/lib/site.py": "from flask import Flask\napp = Flask(__name__)\n",
        },
    )


def init(root: Path, *flags: str) -> int:
    return main(["init", str(root), *flags])


def perfci_section(root: Path) -> dict[str, Any]:
    table: dict[str, Any] = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["perfci"]
    return table


# ----------------------------------------------------------------------------------------------------------
# Detection
# ----------------------------------------------------------------------------------------------------------


def test_detects_the_flask_notes_service(notes: Path) -> None:
    found = detect(notes)
    assert found.compose is None
    assert found.app is not None
    assert (found.app.kind, found.app.module, found.app.attribute, found.app.workdir) == (
        "flask",
        "notes.app",
        "app",
        ".",
    )
    assert found.health is not None
    assert (found.health.value, found.health.source) == ("/health", "notes/app.py")
    assert found.health_status is not None
    assert found.health_status.value == "204"
    assert found.get_route is not None
    assert found.get_route.value == "/notes"
    assert found.database_env is not None
    assert (found.database_env.value, found.database_env.source) == ("NOTES_DB", "notes/db.py")
    assert found.sqlite_url is not None
    assert found.sqlite_url.value == "{path}"
    assert found.seed is not None
    assert found.seed.value == "{python} -m notes.seed --count {seed_users}"
    assert found.install_command == "python -m pip install -e ."


def test_detects_a_fastapi_service_behind_a_proxy_in_compose(fastapi_compose: Path) -> None:
    found = detect(fastapi_compose)
    assert found.compose is not None
    assert found.compose.file == "compose.yaml"
    assert [s.name for s in found.compose.services] == ["proxy", "backend", "db"]
    assert found.compose.measured is not None
    assert found.compose.measured.name == "backend"  # it builds; the proxy only publishes a port
    assert found.compose.measured.container_ports == (8000,)
    assert found.compose.database is not None
    assert found.compose.database.name == "db"
    assert found.app is not None
    # Not the test's app, not the one inside the virtualenv; importable from src/.
    assert (found.app.kind, found.app.module, found.app.attribute, found.app.workdir) == (
        "fastapi",
        "shop.main",
        "api",
        "src",
    )
    assert found.health is not None
    assert found.health.value == "/readyz"  # readiness before liveness
    assert found.health_status is None
    assert found.get_route is not None
    assert found.get_route.value == "/items"  # no path parameter to invent
    assert found.database_env is not None
    assert found.database_env.value == "SHOP_DATABASE_URL"  # read by the code, preferred to the compose file's
    assert found.install_command == "python -m pip install -r requirements.txt"


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        pytest.param('services:\n  app:\n    ports: ["8080:8000", "9000"]\n', (8000, 9000), id="flow-list"),
        pytest.param(
            "services:\n  app:\n    ports:\n      - target: 5000\n        published: 80\n", (5000,), id="long"
        ),
        pytest.param("services:\n  app:\n    ports:\n      - 127.0.0.1:1234:4321/tcp\n", (4321,), id="ip-proto"),
        pytest.param("x-common: &c\n  ports: ['1:2']\nservices:\n  app:\n    image: a\n", (), id="outside-services"),
    ],
)
def test_compose_ports_are_read_on_the_container_side(text: str, ports: tuple[int, ...]) -> None:
    (service,) = parse_compose_services(text)
    assert service.container_ports == ports


# ----------------------------------------------------------------------------------------------------------
# What it writes
# ----------------------------------------------------------------------------------------------------------


def test_writes_a_section_a_scenario_and_the_workflows(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(notes) == 0
    out = capsys.readouterr().out
    for name in WRITTEN:
        assert (notes / name).is_file(), name
        assert f"wrote {name}" in out
    config = perfci_section(notes)
    assert config["target"] == "process"
    assert config["service"]["readiness_path"] == "/health"
    assert config["service"]["readiness_status"] == 204
    process = config["service"]["process"]
    assert process["serve"] == "{python} -m flask --app notes.app:app run --host {host} --port {port}"
    assert process["workdir"] == "."
    assert process["database_env"] == "NOTES_DB"
    assert process["seed"] == "{python} -m notes.seed --count {seed_users}"
    assert config["scenarios"] == {"smoke": {"file": "perf/smoke.py", "model": "closed"}}
    # The project's own table stays as it was.
    assert tomllib.loads((notes / "pyproject.toml").read_text())["project"]["name"] == "notes"
    # Every guess is named with its source and where to fix it.
    assert "service.process.database_env = NOTES_DB  (notes/db.py); if wrong, edit `database_env`" in out
    assert "under [tool.perfci.service.process]" in out


def test_the_scenario_skeleton_is_a_locustfile_hitting_the_found_routes(notes: Path) -> None:
    init(notes)
    source = (notes / "perf" / "smoke.py").read_text()
    tree = ast.parse(source)
    (user,) = (node for node in tree.body if isinstance(node, ast.ClassDef))
    assert [base.id for base in user.bases if isinstance(base, ast.Name)] == ["HttpUser"]
    assert 'self.client.get("/health", name="/health")' in source
    assert 'self.client.get("/notes", name="/notes")' in source


def test_the_workflows_name_one_perfci_release(notes: Path) -> None:
    init(notes)
    perf = (notes / ".github/workflows/perf.yml").read_text()
    comment = (notes / ".github/workflows/perf-comment.yml").read_text()
    assert f"perfci-reusable.yml@v{__version__}\n" in perf
    assert f'perfci-version: "{__version__}"' in perf
    assert f"uses: perfci/perfci@v{__version__}\n" in comment
    assert f'perfci-version: "{__version__}"' in comment
    assert "install: python -m pip install -e ." in perf
    assert "@@" not in perf + comment


def test_a_compose_project_gets_both_targets(fastapi_compose: Path) -> None:
    assert init(fastapi_compose) == 0
    config = perfci_section(fastapi_compose)
    assert config["target"] == "auto"
    assert config["service"]["compose"] == {
        "file": "compose.yaml",
        "service": "backend",
        "port": 8000,
        "database_service": "db",
        "seed": "",
        "database_env": "SHOP_DATABASE_URL",
    }
    assert config["service"]["process"]["workdir"] == "src"
    assert config["service"]["process"]["serve"] == "{python} -m uvicorn shop.main:api --host {host} --port {port}"
    # Created: the repository had no pyproject.toml.
    assert set(tomllib.loads((fastapi_compose / "pyproject.toml").read_text())) == {"tool"}


def test_a_repository_with_nothing_to_detect_gets_placeholders_it_is_told_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    out = capsys.readouterr().out
    assert perfci_section(tmp_path)["service"]["process"]["serve"] == ""
    assert "service.process.serve" in out
    assert "no FastAPI or Flask app object found" in out


# ----------------------------------------------------------------------------------------------------------
# Idempotence and --force
# ----------------------------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_second_run_changes_nothing_and_says_so(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init(notes)
    before = snapshot(notes)
    capsys.readouterr()
    assert init(notes) == 0
    out = capsys.readouterr().out
    assert snapshot(notes) == before
    assert "nothing changed" in out
    assert out.count("kept ") == len(WRITTEN)


def test_existing_files_and_section_are_kept_without_force(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = '\n[tool.perfci]\nprofile = "full"\n\n[tool.perfci.service]\nreadiness_path = "/mine"\n'
    (notes / "pyproject.toml").write_text((notes / "pyproject.toml").read_text() + mine)
    write(notes, {".github/workflows/perf.yml": "name: perf  # my own\n"})
    assert init(notes) == 0
    out = capsys.readouterr().out
    assert perfci_section(notes)["service"]["readiness_path"] == "/mine"
    assert (notes / ".github/workflows/perf.yml").read_text() == "name: perf  # my own\n"
    assert "kept pyproject.toml [tool.perfci]: it exists (--force replaces it)" in out
    assert "wrote perf/smoke.py" in out


def test_force_replaces_the_section_and_keeps_other_tables(notes: Path) -> None:
    extra = "\n[tool.perfci]\nprofile = 'full'\n[tool.perfci.profiles.mine]\ntrials = 3\n[tool.ruff]\nfix = true\n"
    (notes / "pyproject.toml").write_text((notes / "pyproject.toml").read_text() + extra)
    write(notes, {"perf/smoke.py": "# mine\n"})
    assert init(notes, "--force") == 0
    assert init(notes, "--force") == 0
    text = (notes / "pyproject.toml").read_text()
    assert text.count("Written by `perfci init`") == 1, "its comment goes with the section it replaces"
    data = tomllib.loads(text)
    assert data["tool"]["ruff"] == {"fix": True}
    assert data["project"]["name"] == "notes"
    assert data["tool"]["perfci"]["profile"] == "pr"
    assert "profiles" not in data["tool"]["perfci"], "the old section's tables go with it"
    assert "HttpUser" in (notes / "perf/smoke.py").read_text()


def test_dry_run_writes_nothing(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(notes)
    assert init(notes, "--dry-run") == 0
    assert snapshot(notes) == before
    assert "would write pyproject.toml [tool.perfci]" in capsys.readouterr().out


def test_a_missing_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(tmp_path / "nowhere") == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err
    assert "hint:" in err


def test_run_directories_are_ignored_once(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (notes / ".gitignore").write_text("*.sqlite3")  # no newline at the end
    init(notes)
    init(notes, "--force")
    assert (notes / ".gitignore").read_text() == "*.sqlite3\n.perfci/\n"
    assert "kept .gitignore: it ignores .perfci/ already" in capsys.readouterr().out
