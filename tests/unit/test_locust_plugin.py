"""The raw-sample recorder: exact samples, CSV parts, progress feed, open-model lag and error kinds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from perfci.measure.load import collect_samples, read_part
from perfci.measure.locust_plugin import INTENDED_START_KEY, SampleRecorder, error_text
from perfci.model import SAMPLE_COLUMNS


class Answer:
    """What Locust passes as `response`: only its status code is read."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def record(recorder: SampleRecorder, name: str, ms: float, start: float, **extra: object) -> None:
    recorder.record(
        request_type=str(extra.pop("method", "GET")),
        name=name,
        response_time=ms,
        response_length=int(extra.pop("length", 42)),  # type: ignore[call-overload]
        response=extra.pop("response", Answer(200)),
        context=extra.pop("context", {}),  # type: ignore[arg-type]
        exception=extra.pop("exception", None),  # type: ignore[arg-type]
        start_time=start,
    )


def test_samples_are_exact_and_flushed_as_numbered_parts(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path, "111")
    record(recorder, "/users/{id}", 12.345678, 1000.25)
    record(recorder, "/users/me", 133.3, 1000.5, method="PATCH", length=0)
    recorder.flush()
    record(recorder, "/users", 1.5, 1001.0, response=Answer(500), exception=RuntimeError("HTTP 500 boom"))
    recorder.flush()
    recorder.flush()  # nothing buffered: no empty part

    parts = sorted(p.name for p in tmp_path.glob("part-*"))
    assert parts == ["part-111-00000.csv", "part-111-00001.csv"]
    assert recorder.total == 3
    assert recorder.rows == []
    frame = pd.concat([read_part(tmp_path / p) for p in parts], ignore_index=True)
    assert list(frame["endpoint"]) == ["GET /users/{id}", "PATCH /users/me", "GET /users"]
    assert list(frame["latency_ms"]) == [12.345678, 133.3, 1.5]  # not Locust's rounded 130
    assert list(frame["start_epoch"]) == [1000.25, 1000.5, 1001.0]
    assert list(frame["status"]) == [200, 200, 500]
    assert list(frame["ok"]) == [True, True, False]
    assert list(frame["bytes"]) == [42, 0, 42]
    assert frame["error"].iloc[2] == "RuntimeError: HTTP 500 boom"
    assert frame["error"].iloc[:2].isna().all()
    assert not list(tmp_path.glob("*.tmp"))


def test_error_texts_with_commas_and_quotes_survive_the_part_file(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path, "1")
    awkward = 'HTTP 422 {"detail": "bad, very bad"}'
    record(recorder, "/users?q=a,b", 3.0, 10.0, response=Answer(422), exception=RuntimeError(awkward))
    recorder.flush()
    frame = read_part(next(tmp_path.glob("part-*.csv")))
    assert list(frame["endpoint"]) == ["GET /users?q=a,b"]
    assert list(frame["error"]) == [f"RuntimeError: {awkward}"]


def test_the_recorder_never_imports_pandas_or_arrow_into_locust() -> None:
    # Either import costs seconds of every trial's start-up; the plugin must stay on the standard library.
    code = (
        "import sys, tempfile, pathlib; from perfci.measure.locust_plugin import SampleRecorder; "
        "r = SampleRecorder(pathlib.Path(tempfile.mkdtemp()), '1'); "
        "r.record('GET', '/x', 1.0, 0, None, None, None); r.flush(); "
        "print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_open_model_lag_is_added_to_the_latency(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path, "1")
    record(recorder, "/users", 10.0, 500.25, context={INTENDED_START_KEY: 500.0})
    record(recorder, "/users", 10.0, 500.25, context={INTENDED_START_KEY: 501.0})  # early: no negative lag
    record(recorder, "/users", 10.0, 500.25)
    recorder.flush()
    frame = read_part(next(tmp_path.glob("part-*.csv")))
    assert list(frame["lag_ms"]) == pytest.approx([250.0, 0.0, 0.0])
    assert list(frame["latency_ms"]) == pytest.approx([260.0, 10.0, 10.0])


def test_a_missing_start_time_is_derived_from_the_response_time(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path, "1")
    before = time.time()
    recorder.record("GET", "/healthz", 200.0, 2, Answer(200), None, None)
    start = recorder.rows[0][0]
    assert before - 0.2 - 0.05 <= start <= time.time() - 0.2 + 0.05


def test_progress_counts_buffered_and_flushed_requests(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path, "7")
    recorder.mark_start()
    now = time.time()
    for i in range(20):
        record(recorder, "/users/me", float(i + 1), now)
    recorder.flush()
    record(recorder, "/users/me", 100.0, now)
    recorder.write_progress(window_s=3.0)

    progress = json.loads((tmp_path / "progress-7.json").read_text(encoding="utf-8"))
    assert progress["requests"] == 21
    assert progress["rps"] == pytest.approx(21 / 3.0)
    assert progress["p95_ms"] == 20.0  # index int(0.95 * 20) = 19 of the sorted 21 latencies
    assert progress["test_start"] == recorder.test_start
    assert float((tmp_path / "start-7.txt").read_text(encoding="utf-8")) == recorder.test_start


def test_error_text_folds_ids_and_names_the_status() -> None:
    assert error_text(None, 200) is None
    assert error_text(ValueError("user 123456 not found\nsecond line"), 404) == "ValueError: HTTP 404 user N not found"
    assert error_text(ConnectionRefusedError(111, "Connection refused"), 0) == (
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert error_text(RuntimeError("HTTP 500 after refresh"), 500) == "RuntimeError: HTTP 500 after refresh"
    assert error_text(TimeoutError(), 0) == "TimeoutError"
    assert len(error_text(RuntimeError("x" * 500), 0) or "") <= len("RuntimeError: ") + 160


def test_collect_merges_processes_on_the_earliest_start(tmp_path: Path) -> None:
    first, second = SampleRecorder(tmp_path, "100"), SampleRecorder(tmp_path, "200")
    (tmp_path / "start-100.txt").write_text("1000.0", encoding="utf-8")
    (tmp_path / "start-200.txt").write_text("1000.5", encoding="utf-8")
    record(first, "/a", 1.0, 1002.0)
    record(second, "/b", 2.0, 1001.0)
    first.flush()
    second.flush()
    record(first, "/a", 3.0, 1003.0)
    first.flush()

    samples, t0 = collect_samples(tmp_path)
    assert t0 == 1000.0
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert dict(samples.dtypes.astype(str)) == SAMPLE_COLUMNS
    assert list(samples["start_s"]) == [1.0, 2.0, 3.0]
    assert list(samples["endpoint"]) == ["GET /b", "GET /a", "GET /a"]


def test_collect_without_start_files_counts_from_the_first_request(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path, "1")
    record(recorder, "/a", 1.0, 50.0)
    record(recorder, "/a", 1.0, 52.5)
    recorder.flush()
    samples, t0 = collect_samples(tmp_path)
    assert t0 == 50.0
    assert list(samples["start_s"]) == [0.0, 2.5]


def test_collect_from_an_empty_or_missing_folder(tmp_path: Path) -> None:
    samples, t0 = collect_samples(tmp_path / "never-created")
    assert samples.empty
    assert t0 is None
    assert dict(samples.dtypes.astype(str)) == SAMPLE_COLUMNS
    (tmp_path / "start-9.txt").write_text("7.5", encoding="utf-8")
    samples, t0 = collect_samples(tmp_path)
    assert samples.empty
    assert t0 == 7.5
