"""Benchmark: requests/s of `GET /users/me` and `POST /auth/login` on one uvicorn worker over SQLite.

Run from the project root with userservice and locust installed:
    python benchmarks/service_throughput.py [--duration 6] [--users 32] [--seed 1000]
For each hash cost (argon2-cffi's default and the low cost perfci's PR profile uses) it starts the
service on a free port with a fresh SQLite file, seeds users, and runs a closed-loop headless Locust
(FastHttpUser, a subprocess from a scratch directory so no `[tool.locust]` applies) against each endpoint
in turn. Figures are whole-run counts over the load window, warm-up excluded; on a shared machine they
are noisy, so read them as orders of magnitude, not as a regression gate.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

COSTS = {
    "default (t=3, 64 MiB, p=4)": {},
    "low (t=2, 19 MiB, p=4)": {"USERSVC_HASH_TIME_COST": "2", "USERSVC_HASH_MEMORY_KIB": "19456"},
}
LOCUSTFILE = """
import random
from locust import task
from locust.contrib.fasthttp import FastHttpUser

SEEDED = int({seeded})
PASSWORD = "perfci-seed-password"


def credentials():
    return {{"email": f"seed-{{random.randrange(SEEDED):06d}}@perfci.test", "password": PASSWORD}}


class MeUser(FastHttpUser):
    # One token logged in before the run: hashing at login must not share the window with this endpoint.
    headers = {{"Authorization": "Bearer {access_token}"}}

    @task
    def me(self):
        self.client.get("/users/me", headers=self.headers, name="GET /users/me")


class LoginUser(FastHttpUser):
    @task
    def login(self):
        self.client.post("/auth/login", json=credentials(), name="POST /auth/login")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(workdir: Path, env: dict[str, str], seed: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("USERSVC_")}
    environment |= {"USERSVC_DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}", "USERSVC_LOG_LEVEL": "warning",
                    "USERSVC_JWT_SECRET": "benchmark-secret-" + "0" * 32, **env}  # fmt: skip
    command = [sys.executable, "-m", "userservice"]
    subprocess.run([*command, "seed", "--count", str(seed)], env=environment, check=True, capture_output=True)
    log = (workdir / "service.log").open("wb")
    process = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.1)
    stop(process)
    raise SystemExit(f"service did not become ready; see {workdir / 'service.log'}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_locust(workdir: Path, base_url: str, user_class: str, users: int, duration_s: float) -> dict[str, float]:
    """One headless run; requests/s of the measured endpoint over the run, plus failures."""
    out = workdir / f"locust-{user_class}"
    command = [
        sys.executable, "-m", "locust", "-f", str(workdir / "locustfile.py"), user_class, "--headless",
        "--host", base_url, "-u", str(users), "-r", str(users), "-t", f"{duration_s:g}s", "--stop-timeout", "5",
        "--json-file", str(out), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    subprocess.run(command, cwd=workdir, check=False, capture_output=True, timeout=duration_s + 60)
    entries = json.loads(out.with_suffix(".json").read_text())
    measured = [entry for entry in entries if entry["num_requests"]]
    requests = sum(entry["num_requests"] for entry in measured)
    failures = sum(entry["num_failures"] for entry in measured)
    start = min(entry["start_time"] for entry in measured)
    end = max(entry["last_request_timestamp"] for entry in measured)
    times = {}
    for entry in measured:
        for bucket, count in entry["response_times"].items():
            times[float(bucket)] = times.get(float(bucket), 0) + count
    return {"rps": requests / max(end - start, 1e-9), "requests": requests, "failures": failures,
            "p50_ms": percentile(times, 0.50), "p95_ms": percentile(times, 0.95)}  # fmt: skip


def percentile(histogram: dict[float, int], q: float) -> float:
    """From Locust's rounded buckets: good to two significant digits, enough for a throughput note."""
    total = sum(histogram.values())
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= q * total:
            return value
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of load per endpoint and cost")
    parser.add_argument("--users", type=int, default=32, help="concurrent closed-loop Locust users")
    parser.add_argument("--seed", type=int, default=1000, help="seed users to log in as")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  uvicorn workers: 1  database: SQLite  users: {args.users}  "
          f"load per run: {args.duration:g} s")  # fmt: skip
    print(f"{'hash cost':<28} {'endpoint':<18} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'requests':>8} {'failed':>8}")
    for label, env in COSTS.items():
        with tempfile.TemporaryDirectory(prefix="userservice-bench-") as scratch:
            workdir = Path(scratch)
            process, base_url = start_service(workdir, env, args.seed)
            try:
                login = httpx.post(f"{base_url}/auth/login", json={"email": "seed-000000@perfci.test",
                                   "password": "perfci-seed-password"}, timeout=30)  # fmt: skip
                login.raise_for_status()
                locustfile = LOCUSTFILE.format(seeded=args.seed, access_token=login.json()["access_token"])
                (workdir / "locustfile.py").write_text(locustfile)
                for user_class, endpoint in (("MeUser", "GET /users/me"), ("LoginUser", "POST /auth/login")):
                    figures = run_locust(workdir, base_url, user_class, args.users, args.duration)
                    columns = (figures[key] for key in ("rps", "p50_ms", "p95_ms", "requests", "failures"))
                    print(f"{label:<28} {endpoint:<18} " + " ".join(f"{value:>8.0f}" for value in columns))
            finally:
                stop(process)


if __name__ == "__main__":
    main()
