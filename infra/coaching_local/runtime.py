"""The Lambda runtime, locally: function pools of warm "containers", handler module loading, the context object.

Each container is a separate module object of the function's handler file, so concurrent invocations
of one function run in separate instances, as in Lambda; a pool grows on demand up to its limit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from coaching_local.template import LOCAL_ACCOUNT_ID, LOCAL_REGION, FunctionSpec

log = logging.getLogger("coaching_local.runtime")

MAX_CONTAINERS = 16
# One lock for every handler import: os.environ and sys.path are process-wide.
_IMPORT_LOCK = threading.RLock()


class LocalStackError(RuntimeError):
    """The local stack cannot start: broken template, missing handler, import failure."""


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_function_module(spec: FunctionSpec, module_name: str, env: Mapping[str, str] | None = None) -> ModuleType:
    """Import the function's handler file as its own module object (a fresh resolver per call).

    `env` is applied only while the module executes, then restored; the code folder is on sys.path
    during the import (as /var/task is in Lambda), and sibling modules it pulls in are dropped from
    sys.modules afterwards so another function's same-named helper modules cannot shadow them.
    """
    path = spec.handler_file
    if not path.is_file():
        raise LocalStackError(f"{spec.logical_id}: handler file {path} does not exist")
    with _IMPORT_LOCK:
        saved = {key: os.environ.get(key) for key in (env or {})}
        os.environ.update(env or {})
        before = set(sys.modules)
        code_dir = str(spec.code_dir)
        sys.path.insert(0, code_dir)
        try:
            import_spec = importlib.util.spec_from_file_location(module_name, path)
            if import_spec is None or import_spec.loader is None:
                raise LocalStackError(f"{spec.logical_id}: cannot import {path}")
            module = importlib.util.module_from_spec(import_spec)
            # Registered so pydantic and dataclasses can resolve the module by name.
            sys.modules[module_name] = module
            try:
                import_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(code_dir)
            for name in set(sys.modules) - before - {module_name}:
                file = getattr(sys.modules.get(name), "__file__", None)
                if file and Path(file).resolve().is_relative_to(spec.code_dir):
                    del sys.modules[name]
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return module


class _Container:
    """One warm execution environment: its own module object, one invocation at a time."""

    def __init__(self, number: int, module: ModuleType, handler: Callable[[Any, Any], Any]) -> None:
        self.number = number
        self.module = module
        self.handler = handler
        self.invocations = 0


class FunctionPool:
    """The containers of one function; grows on demand up to `max_containers`, like Lambda scaling."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        import_env: Mapping[str, str],
        prefix: str,
        region: str = LOCAL_REGION,
        max_containers: int = MAX_CONTAINERS,
    ) -> None:
        self.spec = spec
        self.import_env = dict(import_env)
        self.max_containers = max_containers
        self.function_name = f"{prefix}-{spec.logical_id}"
        self.arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"
        self._idle: list[_Container] = []
        self._count = 0
        self._serial = 0
        self._cond = threading.Condition()

    @property
    def size(self) -> int:
        return self._count

    def _new_container(self) -> _Container:
        with self._cond:
            self._serial += 1
            number = self._serial
        started = time.monotonic()
        module = load_function_module(self.spec, f"_coaching_fn_{self.spec.logical_id}_{number}", self.import_env)
        handler = getattr(module, self.spec.handler_attr, None)
        if not callable(handler):
            raise LocalStackError(
                f"{self.spec.logical_id}: {self.spec.handler_file} defines no callable {self.spec.handler_attr!r}"
            )
        log.info(
            "%s: cold start of container %d (%.0f ms)",
            self.spec.logical_id,
            number,
            (time.monotonic() - started) * 1000,
        )
        return _Container(number, module, handler)

    def preload(self) -> None:
        """Start one container now, so import errors surface at startup rather than on first request."""
        with self._cond:
            if self._count:
                return
            self._count += 1
        try:
            container = self._new_container()
        except BaseException:
            with self._cond:
                self._count -= 1
            raise
        self._release(container)

    def _acquire(self) -> _Container:
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._count < self.max_containers:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return self._new_container()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, container: _Container) -> None:
        with self._cond:
            self._idle.append(container)  # LIFO: the warmest container serves next
            self._cond.notify()

    def invoke(self, event: Any) -> Any:
        container = self._acquire()
        request_id = str(uuid.uuid4())
        context = LambdaContext(
            function_name=self.function_name,
            memory_limit_in_mb=self.spec.memory_size,
            invoked_function_arn=self.arn,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{self.function_name}",
            log_stream_name=f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{container.number:032x}",
            timeout_seconds=self.spec.timeout,
        )
        started = time.monotonic()
        try:
            container.invocations += 1
            return container.handler(event, context)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > self.spec.timeout:
                log.error(
                    "%s: invocation %s ran %.1fs, over its %ss Timeout; Lambda would have killed it",
                    self.spec.logical_id,
                    request_id,
                    elapsed,
                    self.spec.timeout,
                )
            self._release(container)


def split_environment(specs: list[FunctionSpec]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(process-wide env, per-function env applied only while each function imports).

    os.environ is process-wide, so a variable every function sets to the same value is set for good;
    one that differs is visible to each function only while its module executes (which is when
    Powertools and the handlers read their settings).
    """
    keys = {key for spec in specs for key in spec.environment}
    shared: dict[str, str] = {}
    per_function: dict[str, dict[str, str]] = {spec.logical_id: {} for spec in specs}
    for key in sorted(keys):
        values = {spec.environment.get(key) for spec in specs}
        if len(values) == 1 and None not in values:
            shared[key] = str(values.pop())
            continue
        for spec in specs:
            if key in spec.environment:
                per_function[spec.logical_id][key] = spec.environment[key]
        if key != "POWERTOOLS_SERVICE_NAME":
            log.warning(
                "%s differs between functions; each sees its own value only at import time, "
                "because os.environ is process-wide",
                key,
            )
    return shared, per_function
