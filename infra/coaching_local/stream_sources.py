"""Every DynamoDB stream event source of the template, started and stopped with the stack.

The pollers need a DynamoDB endpoint (DynamoDB Local); without one they are listed but not run, so
a local stack can never read a real account's streams.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from coaching_local.deliveries import DeliveryLog
from coaching_local.runtime import FunctionPool
from coaching_local.stream_io import CheckpointStore, StreamClient
from coaching_local.streams import StreamPoller
from coaching_local.template import StreamSource

log = logging.getLogger("coaching_local.streams")


class StreamSources:
    def __init__(self, delivery_log: DeliveryLog, region: str, endpoint: str | None, retry_base_delay: float) -> None:
        self.log = delivery_log
        self.region = region
        self.endpoint = endpoint
        self.retry_base_delay = retry_base_delay
        self.pollers: list[StreamPoller] = []

    def add(self, source: StreamSource, pool: FunctionPool, table_name: str) -> None:
        endpoint = self.endpoint or "http://127.0.0.1:1"  # never a real account; not started without one
        poller = StreamPoller(source, pool, table_name, endpoint, self.region, self.log, self.retry_base_delay)
        self.pollers.append(poller)

    def prepare(self) -> None:
        """Create the checkpoint table (before anything starts, so a DynamoDB problem fails the start)."""
        if self.pollers and self.endpoint is not None:
            CheckpointStore(StreamClient(self.endpoint, self.region)).ensure()

    def start(self, *, paused: bool = False) -> None:
        """Start every poller; `paused` starts them paused (resume each through its control route)."""
        if not self.pollers:
            return
        if self.endpoint is None:
            log.warning("no DynamoDB endpoint: the %d stream source(s) are not polled", len(self.pollers))
            return
        for poller in self.pollers:
            if paused:
                poller.pause()
            poller.start()
        log.info("polling %s", ", ".join(f"{p.table_name} → {p.name}" for p in self.pollers))

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()

    def find(self, name: str) -> StreamPoller:
        """By `Function.Event`, or by the event or function name alone when only one stream has it."""
        found = [p for p in self.pollers if name in (p.name, p.source.event_name, p.pool.spec.logical_id)]
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise LookupError(f"{name} is ambiguous: use one of {[p.name for p in found]}")
        return found[0]

    def listing(self) -> list[dict[str, Any]]:
        return [p.state() for p in self.pollers]

    def pause(self, name: str) -> dict[str, Any]:
        poller = self.find(name)
        poller.pause()
        return poller.state()

    def resume(self, name: str) -> dict[str, Any]:
        poller = self.find(name)
        poller.resume()
        return poller.state()

    def drain(self, timeout: float, name: str | None = None) -> dict[str, Any]:
        """Wait until the stream(s) are read to their end and every batch is processed (or dead-lettered).

        `drained` is false with `paused` naming them when a stream is paused (it cannot drain), and
        false when `timeout` seconds passed first.
        """
        pollers = [self.find(name)] if name is not None else list(self.pollers)
        paused = [p.name for p in pollers if p.paused]
        if paused:
            return {"drained": False, "paused": paused, "streams": [p.state() for p in pollers]}
        deadline = time.monotonic() + timeout
        drained = all(p.drain(max(0.0, deadline - time.monotonic())) for p in pollers)
        return {"drained": drained, "paused": [], "streams": [p.state() for p in pollers]}
