"""Drive `python -m coaching_local serve` as a subprocess from tests (used by tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from coaching_local import tokens

TRACEBACK_MARKER = "Traceback (most recent call last)"


class _ChildProcess:
    """A `python -m coaching_local ...` subprocess whose output is kept, ready once it prints its ready line."""

    def __init__(self) -> None:
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()

    def _launch(self, command: list[str], env: dict[str, str], *, name: str, timeout: float, poll: float,
                failure: str, tail: int) -> None:  # fmt: skip
        """Start `command`, read its output on a thread, and wait for the ready line (or fail with the tail)."""
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, stdin=subprocess.DEVNULL
        )
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(poll):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(failure + "\n" + "".join(self.output[-tail:]))

    def _read(self) -> None:
        stream = self._process.stdout if self._process is not None else None
        if stream is None:
            return
        for line in stream:
            self.output.append(line)
            if self._is_ready(line):
                self._ready.set()

    def _is_ready(self, line: str) -> bool:
        raise NotImplementedError

    def stop(self, timeout: float = 20.0) -> int | None:
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()  # SIGTERM: the CLI stops the gateway cleanly
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return process.returncode

    def tracebacks(self) -> list[str]:
        """Every traceback the subprocess printed, each with the lines that follow it."""
        text = "".join(self.output)
        chunks = text.split(TRACEBACK_MARKER)[1:]
        return [TRACEBACK_MARKER + chunk[:20000] for chunk in chunks]


class StackProcess(_ChildProcess):
    """The gateway in its own process, as the end-to-end tests and developers see it."""

    def __init__(
        self,
        *,
        dynamodb_endpoint: str,
        prefix: str = "test",
        port: int = 0,
        template: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        signing_key: bytes | None = None,
        scheduler: bool = True,
        streams_paused: bool = False,
    ) -> None:
        self.dynamodb_endpoint = dynamodb_endpoint
        self.prefix = prefix
        self.port = port
        self.template = template
        self.extra_env = dict(env or {})
        self.signing_key = signing_key if signing_key is not None else tokens.signing_key()
        self.scheduler = scheduler
        self.streams_paused = streams_paused
        self.url = ""
        super().__init__()

    def start(self, timeout: float = 90.0) -> StackProcess:
        command = [
            sys.executable,
            "-m",
            "coaching_local",
            "serve",
            "--port",
            str(self.port),
            "--dynamodb-endpoint",
            self.dynamodb_endpoint,
            "--table-prefix",
            self.prefix,
        ]
        if self.template is not None:
            command += ["--template", str(self.template)]
        if not self.scheduler:
            command.append("--no-scheduler")
        if self.streams_paused:
            command.append("--streams-paused")
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
            tokens.SIGNING_KEY_ENV: self.signing_key.decode("utf-8", "surrogateescape"),
        }
        self._launch(command, env, name="stack-output", timeout=timeout, poll=0.1,
                     failure="the local stack did not become ready:", tail=200)  # fmt: skip
        return self

    def _is_ready(self, line: str) -> bool:
        if not line.startswith("READY "):
            return False
        self.url = line.split(" ", 1)[1].strip()
        return True

    def kill(self) -> int | None:
        """SIGKILL: the process dies on the spot, as a crashed Lambda host would (no clean stop)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return process.returncode

    # ------------------------------------------------------------------ conveniences

    def token(self, roles: str | Iterable[str], org_id: str | None = None, person_id: str | None = None) -> str:
        return tokens.dev_token(roles, org_id, person_id, self.signing_key)

    def call(self, method: str, path: str, timeout: float = 60.0) -> tuple[int, Any]:
        """(status, parsed JSON) of a request to the stack; POST sends an empty body."""
        return self._call(method, path, timeout)

    def _call(self, method: str, path: str, timeout: float = 60.0) -> tuple[int, Any]:
        url = self.url + path  # always the http:// URL the subprocess printed
        request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our own URL
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def fire(self, schedule_name: str) -> dict[str, Any]:
        return self._call("POST", f"/_local/schedules/{urllib.parse.quote(schedule_name, safe='')}/fire")[1]

    def deliveries(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_local/deliveries")[1]

    def dead_letters(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_local/dead-letters")[1]

    def wait_for_delivery(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.deliveries():
                if predicate(record):
                    return record
            time.sleep(0.05)
        raise TimeoutError(f"no matching delivery within {timeout}s; deliveries: {self.deliveries()}")

    # ------------------------------------------------------------------ DynamoDB stream sources

    def streams(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_local/streams")[1]

    def stream_dead_letters(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_local/streams/dead-letters")[1]

    def pause_stream(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/_local/streams/{urllib.parse.quote(name, safe='')}/pause")[1]

    def resume_stream(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/_local/streams/{urllib.parse.quote(name, safe='')}/resume")[1]

    def drain_streams(self, timeout: float = 30.0, name: str | None = None) -> dict[str, Any]:
        """Wait until the stream(s) are read to their end and delivered; `drained` says whether they were."""
        where = "" if name is None else f"/{urllib.parse.quote(name, safe='')}"
        return self._call("POST", f"/_local/streams{where}/drain?timeout={timeout}", timeout=timeout + 30)[1]


class UpProcess(_ChildProcess):
    """`python -m coaching_local up` as a subprocess, as a developer runs it (`make up`): the seeded demo.

    It starts DynamoDB Local on `dynamodb_port` (or reuses one already answering there) and seeds its own
    tables (`prefix`), so it disturbs no other stack. `start()` returns once the demo is seeded and the stack
    says it is up; `.url` is its API, `.summary` the seed marker it wrote (orgs, the demo month, its reports).
    """

    READY_LINE = "Ctrl-C stops everything."

    def __init__(
        self,
        *,
        dynamodb_port: int,
        data_dir: Path,
        prefix: str,
        port: int,
        scale: str = "small",
        signing_key: bytes | None = None,
    ) -> None:
        self.dynamodb_port = dynamodb_port
        self.data_dir = data_dir
        self.prefix = prefix
        self.port = port
        self.scale = scale
        self.signing_key = signing_key if signing_key is not None else tokens.signing_key()
        self.url = f"http://127.0.0.1:{port}"
        self.summary: dict[str, Any] = {}
        super().__init__()

    def start(self, timeout: float = 900.0) -> UpProcess:
        command = [
            sys.executable, "-m", "coaching_local", "up", "--scale", self.scale, "--port", str(self.port),
            "--dynamodb-port", str(self.dynamodb_port), "--data-dir", str(self.data_dir),
            "--table-prefix", self.prefix,
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            tokens.SIGNING_KEY_ENV: self.signing_key.decode("utf-8", "surrogateescape"),
        }
        self._launch(command, env, name="up-output", timeout=timeout, poll=0.2,
                     failure="`coaching_local up` did not come up:", tail=300)  # fmt: skip
        self.summary = json.loads((self.data_dir / "seeded.json").read_text(encoding="utf-8"))
        return self

    def _is_ready(self, line: str) -> bool:
        return line.strip() == self.READY_LINE

    def stop(self, timeout: float = 30.0) -> int | None:
        return super().stop(timeout)  # seeding may be mid-write: a longer grace than the stack's

    def lines(self, prefix: str) -> list[str]:
        """The lines of output that start with `prefix` (after leading spaces)."""
        return [line.strip() for line in self.output if line.strip().startswith(prefix)]
