"""A real local HTTP server speaking the GitHub REST shapes perfci's publishers use, recording every request.

It answers: GET /user, GET /repos/{o}/{r}/issues/{n}/comments, POST the same, PATCH
/repos/{o}/{r}/issues/comments/{id}, GET /repos/{o}/{r}/commits/{sha}/pulls, GET /repos/{o}/{r}/pulls,
POST /repos/{o}/{r}/check-runs. Faults (status codes, headers) are
queued per method and path pattern.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    method: str
    path_pattern: str
    status: int
    times: int = 1
    body: dict[str, Any] = field(default_factory=lambda: {"message": "fault"})
    headers: dict[str, str] = field(default_factory=dict)
    # Carry the request out, then answer with the fault: GitHub can create a comment and still answer 502.
    after_success: bool = False


@dataclass
class PullRequest:
    number: int
    head_sha: str
    state: str = "open"
    head_repository: str | None = "acme/users"  # None: the fork was deleted
    head_ref: str = "feature"


class FakeGitHub:
    def __init__(self, repository: str = "acme/users", login: str = "perfci-bot") -> None:
        self.repository = repository
        self.login: str | None = login  # None: GET /user answers 403, as for GITHUB_TOKEN
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.pulls: list[PullRequest] = []
        self.commit_pulls_miss: bool = False  # /commits/{sha}/pulls returns [] (as it can for forks)
        self.check_runs: list[dict[str, Any]] = []
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._next_id = 1000
        self._lock = threading.Lock()
        self.url = ""

    # -- state helpers for tests ------------------------------------------------------------------------
    def add_comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        with self._lock:
            return self._new_comment(number, body, login)

    def _new_comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        self._next_id += 1
        cid = self._next_id
        comment = {
            "id": cid,
            "body": body,
            "user": {"login": login, "id": hash(login) % 10_000, "type": "Bot" if "[bot]" in login else "User"},
            "url": f"{self.url}/repos/{self.repository}/issues/comments/{cid}",
            "html_url": f"https://github.example/{self.repository}/pull/{number}#issuecomment-{cid}",
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z",
        }
        self.comments.setdefault(number, []).append(comment)
        return comment

    def calls(self, method: str, pattern: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # -- request handling -------------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        route = path.split("?", 1)[0]
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path_pattern, route):
                    fault.times -= 1
                    if fault.after_success:
                        self._route(method, route, path, body)
                    return fault.status, fault.body, fault.headers
            return self._route(method, route, path, body)

    def _route(self, method: str, route: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        repo = f"/repos/{self.repository}"
        not_found: tuple[int, Any, dict[str, str]] = (404, {"message": "Not Found"}, {})
        if method == "GET" and route == "/user":
            if self.login is None:
                return 403, {"message": "Resource not accessible by integration"}, {}
            return 200, {"login": self.login, "id": 1, "type": "User"}, {}
        if match := re.fullmatch(rf"{re.escape(repo)}/issues/(\d+)/comments", route):
            number = int(match.group(1))
            if not any(p.number == number for p in self.pulls):
                return not_found
            if method == "GET":
                return 200, self.comments.get(number, []), {}
            if method == "POST":
                return 201, self._new_comment(number, body["body"], self.login or "github-actions[bot]"), {}
        if method == "PATCH" and (match := re.fullmatch(rf"{re.escape(repo)}/issues/comments/(\d+)", route)):
            cid = int(match.group(1))
            for comment in (c for cs in self.comments.values() for c in cs):
                if comment["id"] == cid:
                    if comment["user"]["login"] != (self.login or "github-actions[bot]"):
                        return 403, {"message": "You cannot edit another user's comment"}, {}
                    comment["body"] = body["body"]
                    return 200, comment, {}
            return not_found
        if method == "GET" and (match := re.fullmatch(rf"{re.escape(repo)}/commits/([0-9a-f]+)/pulls", route)):
            if self.commit_pulls_miss:
                return 200, [], {}
            return 200, [self._pull(p) for p in self.pulls if p.head_sha == match.group(1)], {}
        if method == "GET" and route == f"{repo}/pulls":
            state = "open" if "state=open" in path else "all"
            return 200, [self._pull(p) for p in self.pulls if state == "all" or p.state == state], {}
        if method == "POST" and route == f"{repo}/check-runs":
            run = {
                "id": len(self.check_runs) + 1,
                **body,
                "html_url": f"https://github.example/runs/{len(self.check_runs) + 1}",
            }
            self.check_runs.append(run)
            return 201, run, {}
        return not_found

    def _pull(self, pull: PullRequest) -> dict[str, Any]:
        return {
            "number": pull.number,
            "state": pull.state,
            "url": f"{self.url}/repos/{self.repository}/pulls/{pull.number}",
            "head": {
                "sha": pull.head_sha,
                "ref": pull.head_ref,
                "repo": None if pull.head_repository is None else {"full_name": pull.head_repository},
            },
        }


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            status, payload, headers = fake.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the recorded requests are the log."""

    return Handler


@contextmanager
def serve(fake: FakeGitHub) -> Iterator[FakeGitHub]:
    """Serve `fake` on 127.0.0.1 at a free port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
