"""Shared pieces of the user-study tests: one small run saved with --save-outputs (made once per
test session), studies made from it, the server as a real subprocess on the loopback address,
and a voter that speaks HTTP as the page's script does (cookies, JSON votes)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from bench.run import main as run_main
from bench.study.create import CreateConfig, create_study

METHODS = ["telea", "ns", "patchmatch"]
_RUNS: dict[str, Path] = {}
LOOPBACK = "127.0.0.1"


def saved_run(tmp_path_factory) -> Path:
    """8 demo photos × 4 free-form masks at 64 px, telea, ns and patchmatch, outputs saved."""
    if "run" not in _RUNS:
        folder = tmp_path_factory.mktemp("study-run") / "run"
        arguments = ["--methods", ",".join(METHODS), "--size", "64", "--masks-per-bucket", "1"]
        arguments += ["--save-outputs", "--no-progress", "--out", str(folder), "--report", ""]
        assert run_main(arguments) == 0
        _RUNS["run"] = folder
    return _RUNS["run"]


def make_study(run: Path, out: Path, **options) -> Path:
    config = CreateConfig(run=run, out=out, methods=options.pop("methods", METHODS), **options)
    create_study(config)
    return out


class Server:
    """`python -m bench.study serve STUDY --port 0` in a subprocess; port and admin token read
    from what it prints."""

    def __init__(self, study: Path, *extra: str) -> None:
        command = [sys.executable, "-m", "bench.study", "serve", str(study), "--port", "0", *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"admin: http://([^/]+):(\d+)/admin\?token=(\S+)", line)
            if found:
                self.host, self.port, self.token = found.group(1), int(found.group(2)), found.group(3)
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
        self.stop()
        raise AssertionError(f"the server did not start: {''.join(self.lines)}")

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


class Voter:
    """One browser: its own session cookie; every request on the loopback address only."""

    def __init__(self, server: Server) -> None:
        assert server.host == LOOPBACK
        self.port = server.port
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
        try:
            sent = {"Cookie": self.cookie} if self.cookie else {}
            connection.request(method, path, body=body, headers={**sent, **(headers or {})})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, dict(response.getheaders()), data

    def start(self) -> None:
        status, headers, _ = self.request("POST", "/start")
        assert status == 303 and headers["Location"].endswith("/trial"), status

    def trial(self) -> dict | None:
        """The current trial as the page shows it (None once every trial is answered)."""
        status, headers, data = self.request("GET", "/trial")
        if status == 303:
            return None
        assert status == 200, status
        page = data.decode()
        return {
            "voter": re.search(r'data-voter="([0-9a-f]+)"', page).group(1),
            "trial": re.search(r'data-trial="([0-9a-f]+)"', page).group(1),
            "choices": re.findall(r'data-choice="([0-9a-f]+)"', page),
            "page": page,
        }

    def vote(self, shown: dict, choice: str, vote_id: str | None = None, **changes):
        body = {"vote_id": vote_id or str(uuid.uuid4()), "voter": shown["voter"], "trial": shown["trial"]}
        body.update(choice=choice, ms=1234)
        body.update(changes)
        return self.post_json(body)

    def post_json(self, body, raw: bytes | None = None, content_type: str = "application/json"):
        data = raw if raw is not None else json.dumps(body).encode()
        status, _, answer = self.request("POST", "/vote", data, {"Content-Type": content_type})
        return status, answer
