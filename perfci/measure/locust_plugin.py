"""Runs inside Locust: records every request's raw sample and a live progress feed.

Loaded next to a scenario (`locust -f scenarios/x.py,perfci/measure/locust_plugin.py`); it does nothing unless
PERFCI_SAMPLES_DIR is set, so scenarios still run with plain Locust. Locust keeps response times rounded to
two significant digits; this keeps the exact float it was given. The hot path is one tuple appended to a list;
a background greenlet writes the buffer to CSV part files, so a killed run keeps what it measured.

A worker on another host has no access to the trial's folder: started without PERFCI_SAMPLES_DIR, it sends
its samples to the master over Locust's own messaging instead (`perfci_samples` messages, every couple of
seconds and once more after its users stopped), and the master writes them as that worker's parts. The
master asks such workers to stop and waits for their last samples before it quits (docs/distributed-load.md).

Parts are CSV written with the standard library, not Parquet: pyarrow imports pandas on its first array,
and that import alone took 3 s of every trial's Locust start-up on a 2-core runner. perfci turns the parts
into one typed Parquet file after the trial (`perfci.measure.load.collect_samples`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

SAMPLES_DIR_ENV = "PERFCI_SAMPLES_DIR"
INTENDED_START_KEY = "perfci_intended_start"  # request context key: open-model scheduled start (epoch s)
FLUSH_INTERVAL_S = 2.0
FLUSH_ROWS = 200_000
PART_COLUMNS = ("start_epoch", "endpoint", "latency_ms", "status", "ok", "bytes", "error", "lag_ms")
SAMPLES_MESSAGE = "perfci_samples"  # worker -> master: {"rows", "test_start", "final"}
STOP_MESSAGE = "perfci_stop"  # master -> remote workers: stop the users now and send the last samples
MESSAGE_ROWS = 5_000  # rows per message: a few hundred KB, small enough not to stall the master's loop
FINAL_WAIT_S = 30.0  # beyond the stop timeout: how long a master waits for remote workers' last samples
# Ids and counts are folded so they do not split one error kind into many; HTTP statuses and errnos are kept.
_LONG_NUMBER = re.compile(r"(?<!HTTP )(?<!Errno )\b\d{3,}\b")


def error_text(exception: BaseException | None, status: int) -> str | None:
    """A short error kind: exception type and message, long numbers folded so ids do not split kinds."""
    if exception is None:
        return None
    text = str(exception).strip()
    message = text.splitlines()[0] if text else ""
    if status and f"{status}" not in message:  # checked before folding, which would hide the status
        message = f"HTTP {status} {message}".strip()
    message = _LONG_NUMBER.sub("N", message)
    kind = type(exception).__name__
    return f"{kind}: {message[:160]}" if message else kind


class SampleRecorder:
    """Buffers samples and writes them as numbered CSV parts into one folder per process."""

    def __init__(self, directory: Path, process_tag: str) -> None:
        self.directory = directory
        self.tag = process_tag
        self.rows: list[tuple[Any, ...]] = []
        self.parts = 0
        self.total = 0
        self.recent: list[tuple[float, float]] = []  # (end epoch, latency) for the progress feed
        self.test_start: float | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any,
        context: dict[str, Any] | None,
        exception: BaseException | None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        now = time.time()
        start = start_time if start_time is not None else now - response_time / 1000.0
        status = int(getattr(response, "status_code", 0) or 0)
        latency = float(response_time)
        lag = 0.0
        intended = context.get(INTENDED_START_KEY) if context else None
        if intended is not None:
            # Open model: the user waited from its scheduled start, not from the moment the request left.
            lag = max(0.0, (start - intended) * 1000.0)
            latency += lag
        self.rows.append(
            (
                start,
                f"{request_type} {name}",
                latency,
                status,
                int(exception is None),
                int(response_length or 0),
                error_text(exception, status),
                lag,
            )
        )
        self.recent.append((now, latency))

    def flush(self) -> None:
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        path = self.directory / f"part-{self.tag}-{self.parts:05d}.csv"
        temporary = path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            # repr() of a float round-trips exactly; None (no error) is written as an empty field.
            writer = csv.writer(handle)
            writer.writerow(PART_COLUMNS)
            writer.writerows(rows)
        temporary.replace(path)  # a reader never sees half a part
        self.parts += 1
        self.total += len(rows)

    def write_progress(self, window_s: float = 3.0) -> None:
        now = time.time()
        self.recent = [r for r in self.recent if r[0] >= now - window_s]
        latencies = sorted(r[1] for r in self.recent)
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else None
        progress = {
            "time": now,
            "test_start": self.test_start,
            "requests": self.total + len(self.rows),
            "rps": len(self.recent) / window_s,
            "p95_ms": p95,
        }
        target = self.directory / f"progress-{self.tag}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(progress), encoding="utf-8")
        temporary.replace(target)

    def mark_start(self) -> None:
        self.test_start = time.time()
        (self.directory / f"start-{self.tag}.txt").write_text(repr(self.test_start), encoding="utf-8")


class RemoteRecorder(SampleRecorder):
    """A worker's recorder when the trial's folder is on another host: rows go to the master as messages."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.rows = []
        self.parts = 0
        self.total = 0
        self.recent = []
        self.test_start = None

    def flush(self, *, final: bool = False) -> None:
        rows, self.rows = self.rows, []
        for begin in range(0, max(len(rows), 1), MESSAGE_ROWS):
            chunk = rows[begin : begin + MESSAGE_ROWS]
            last = final and begin + MESSAGE_ROWS >= len(rows)
            if chunk or last:
                self.send(SAMPLES_MESSAGE, {"rows": chunk, "test_start": self.test_start, "final": last})
        self.total += len(rows)

    def write_progress(self, window_s: float = 3.0) -> None:
        return  # the master's host shows the progress of the processes that write there

    def mark_start(self) -> None:
        self.test_start = time.time()
        self.send(SAMPLES_MESSAGE, {"rows": [], "test_start": self.test_start, "final": False})


class RemoteParts:
    """On the master: each remote worker's messages written as its own parts; who has sent its last rows."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.recorders: dict[str, SampleRecorder] = {}
        self.finished: set[str] = set()

    def receive(self, worker: str, data: dict[str, Any]) -> None:
        recorder = self.recorders.get(worker)
        if recorder is None:
            recorder = self.recorders[worker] = SampleRecorder(self.directory, f"remote{len(self.recorders)}")
        if data.get("test_start") is not None and recorder.test_start is None:
            recorder.test_start = float(data["test_start"])
            (self.directory / f"start-{recorder.tag}.txt").write_text(repr(recorder.test_start), encoding="utf-8")
        recorder.rows.extend(tuple(row) for row in data.get("rows", []))
        recorder.flush()
        if data.get("final"):
            self.finished.add(worker)

    def waiting_for(self) -> set[str]:
        return set(self.recorders) - self.finished


def _install() -> None:
    directory = os.environ.get(SAMPLES_DIR_ENV)
    if not directory and "--worker" not in sys.argv:
        return  # plain Locust: nothing to record (importing this module must not import Locust either)
    import gevent
    from locust import events

    recorder: SampleRecorder | None = SampleRecorder(Path(directory), f"{os.getpid()}") if directory else None

    def background(recorder: SampleRecorder) -> None:
        last_flush = time.monotonic()
        while True:
            gevent.sleep(1.0)
            recorder.write_progress()
            if time.monotonic() - last_flush >= FLUSH_INTERVAL_S or len(recorder.rows) >= FLUSH_ROWS:
                recorder.flush()
                last_flush = time.monotonic()

    @events.init.add_listener
    def _init(environment: Any, **_: Any) -> None:
        nonlocal recorder
        # gevent's loop caches its clock; Locust's startup does not advance it, so a --run-time timer set
        # right after this would fire early by the whole startup time (1-2 s on a busy machine).
        gevent.get_hub().loop.update_now()
        from locust.runners import MasterRunner, WorkerRunner

        runner = environment.runner
        if isinstance(runner, MasterRunner):
            # Only processes that send requests record; a master coordinates and collects remote parts.
            if directory:
                _collect_remote_parts(environment, RemoteParts(Path(directory)))
            return
        if recorder is None and isinstance(runner, WorkerRunner):
            remote = RemoteRecorder(runner.send_message)
            runner.register_message(STOP_MESSAGE, lambda **_: runner.stop(), concurrent=True)
            events.test_stop.add_listener(lambda **_: remote.flush(final=True))
            recorder = remote
        if recorder is not None:
            active = recorder
            events.request.add_listener(active.record)
            events.test_start.add_listener(lambda **_: active.mark_start())
            events.quitting.add_listener(lambda **_: _last_flush(active))
            # On SIGTERM Locust fires `quitting` before it stops its users, and counts in its own stats the
            # requests they still had in flight: `quit` comes after both, so those samples are written too.
            events.quit.add_listener(lambda **_: _last_flush(active))
            gevent.spawn(background, active)


def _last_flush(recorder: SampleRecorder) -> None:
    if not isinstance(recorder, RemoteRecorder):  # a remote one sent its last rows at test stop
        recorder.flush()
        recorder.write_progress()


def _collect_remote_parts(environment: Any, parts: RemoteParts) -> None:
    """Write remote workers' samples; at the end ask them to stop and wait for their last rows.

    A headless master quits by sending `quit` and waiting half a second; a remote worker's last samples
    (those of requests still in flight at the end, sent after its users stopped) would arrive too late.
    """
    import gevent
    from locust import events

    environment.runner.register_message(SAMPLES_MESSAGE, lambda msg, **_: parts.receive(msg.node_id, msg.data))

    @events.test_stop.add_listener
    def _stopped(**_: Any) -> None:
        waiting = parts.waiting_for()
        for worker in waiting:
            environment.runner.send_message(STOP_MESSAGE, None, client_id=worker)
        stop_timeout = float(getattr(environment, "stop_timeout", 0) or 0)
        deadline = time.monotonic() + stop_timeout + FINAL_WAIT_S
        while parts.waiting_for() and time.monotonic() < deadline:
            gevent.sleep(0.1)
        if parts.waiting_for():
            import logging

            logging.getLogger("perfci").error(
                "no last samples from %d remote worker(s) within %.0f s: their final seconds are missing",
                len(parts.waiting_for()),
                stop_timeout + FINAL_WAIT_S,
            )


_install()
