"""The one place the local stack patches a library: Powertools' per-process "current request".

Why it exists: Powertools' REST resolver keeps `current_event` and `lambda_context` as class
attributes of its router, one value per process. In Lambda that is right, because a process
serves one invocation at a time. The local stack runs many invocations of many functions in one
process, on threads, so without this patch concurrent requests would read each other's events
(a handler could act on another caller's claims). Making both attributes per-thread restores
Lambda's isolation.

Metrics have the same shape: every `Metrics()` shares one class-level metric set, so one function's
flush could clear (or publish under its own service) the metrics another function is adding, and a
handler whose set was cleared under it failed with "Must contain at least one metric". The EMF
provider's sets are made per thread and per provider instance, as one Lambda process would have them.

Remove this module when the local stack runs each container in its own process, or when
Powertools stores the current event per resolve() call instead of on the class.
"""

from __future__ import annotations

import threading
from typing import Any


class _PerThread:
    """A resolver attribute whose value is per thread."""

    def __init__(self, state: threading.local, name: str) -> None:
        self.state = state
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return getattr(self.state, self.name, None)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(self.state, self.name, value)


class _PerThreadSet:
    """An EMF provider's metric, dimension or metadata set: one per thread and provider instance.

    The value assigned at construction (Powertools passes its class-level dict) seeds each thread's
    own copy, so defaults set then are kept and nothing is shared after it.
    """

    def __init__(self, name: str, factory: type) -> None:
        self.name = name
        self.factory = factory
        self.state = threading.local()
        self.seeds: dict[int, Any] = {}

    def _sets(self) -> dict[int, Any]:
        sets: dict[int, Any] | None = getattr(self.state, "sets", None)
        if sets is None:
            sets = self.state.sets = {}
        return sets

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        sets = self._sets()
        if id(obj) not in sets:
            sets[id(obj)] = self.factory(self.seeds.get(id(obj), self.factory()))
        return sets[id(obj)]

    def __set__(self, obj: Any, value: Any) -> None:
        self.seeds[id(obj)] = self.factory(value)
        self._sets()[id(obj)] = self.factory(value)


def _make_metrics_thread_safe() -> None:
    try:
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch
    except ImportError:
        return
    provider = cloudwatch.AmazonCloudWatchEMFProvider
    if getattr(provider, "_coaching_local_thread_safe", False):
        return
    for name in ("metric_set", "dimension_set", "metadata_set"):
        setattr(provider, name, _PerThreadSet(name, dict))
    provider.dimension_sets = _PerThreadSet("dimension_sets", list)  # type: ignore[assignment]
    provider._coaching_local_thread_safe = True  # type: ignore[attr-defined]


def make_powertools_thread_safe() -> None:
    """Give every thread its own `app.current_event`, `app.lambda_context` and metric sets (idempotent)."""
    _make_metrics_thread_safe()
    try:
        from aws_lambda_powertools.event_handler import api_gateway
    except ImportError:  # handlers that do not use Powertools need nothing
        return
    resolver = api_gateway.ApiGatewayResolver
    if getattr(resolver, "_coaching_local_thread_safe", False):
        return
    state = threading.local()
    original_resolve = resolver.resolve
    original_resolve_async = resolver.resolve_async

    def _remember(self: Any, event: Any, context: Any) -> None:
        raw = getattr(event, "raw_event", event)
        state.current_event = self._to_proxy_event(raw)
        state.lambda_context = context

    def resolve(self: Any, event: Any, context: Any) -> dict[str, Any]:
        _remember(self, event, context)
        return original_resolve(self, event, context)

    async def resolve_async(self: Any, event: Any, context: Any) -> dict[str, Any]:
        _remember(self, event, context)
        return await original_resolve_async(self, event, context)

    resolver.current_event = _PerThread(state, "current_event")  # type: ignore[assignment]
    resolver.lambda_context = _PerThread(state, "lambda_context")  # type: ignore[assignment]
    resolver.resolve = resolve  # type: ignore[method-assign]
    resolver.resolve_async = resolve_async  # type: ignore[method-assign]
    resolver._coaching_local_thread_safe = True  # type: ignore[attr-defined]
