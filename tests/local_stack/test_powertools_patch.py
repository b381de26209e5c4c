"""The local stack runs every function in one process: Powertools state must stay per invocation thread."""

from __future__ import annotations

import json
import threading

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from coaching_local.powertools_patch import make_powertools_thread_safe


def test_one_functions_flush_never_takes_another_functions_metrics(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LocalTest")
    make_powertools_thread_safe()
    booking, relay = Metrics(service="booking"), Metrics(service="event_relay")
    booking.add_metric(name="SessionBooked", unit=MetricUnit.Count, value=1)

    def relay_invocation() -> None:
        relay.add_metric(name="EventsRelayed", unit=MetricUnit.Count, value=3)
        relay.flush_metrics(raise_on_empty_metrics=True)

    other = threading.Thread(target=relay_invocation)
    other.start()
    other.join()
    # Unpatched, the relay's flush would have published and cleared the booking's metric too, and
    # the booking's own flush would then fail with "Must contain at least one metric".
    booking.flush_metrics(raise_on_empty_metrics=True)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    published = {line["service"]: sorted(k for k in line if k not in {"_aws", "service"}) for line in lines}
    assert published == {"event_relay": ["EventsRelayed"], "booking": ["SessionBooked"]}


def test_patch_is_idempotent():
    make_powertools_thread_safe()
    make_powertools_thread_safe()
    metrics = Metrics(service="admin", namespace="LocalTest")
    metrics.add_metric(name="Once", unit=MetricUnit.Count, value=1)
    assert list(metrics.provider.metric_set) == ["Once"]
    metrics.provider.clear_metrics()
    with pytest.raises(Exception, match="at least one metric"):
        metrics.flush_metrics(raise_on_empty_metrics=True)
