"""Event consumers run once per event id (Powertools Idempotency on DynamoDB Local), whatever the event type."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from coaching.api_entry import _run_once
from coaching.domain.events import Event, SessionBooked, SessionCancelled

pytestmark = pytest.mark.integration


def _session(model: type[Event], **extra: Any) -> Event:
    fields = {"org_id": "org-1", "person_id": "p-1", "booking_id": str(uuid.uuid4()), "coach_id": "c-1",
              "program": "SCALE", "start": datetime(2027, 3, 1, 9, tzinfo=UTC)}  # fmt: skip
    return model.model_validate(fields | extra)


def test_one_handler_for_two_event_types_sees_each_as_its_own_type_once(dynamodb_local):
    run_once = _run_once(f"test-{uuid.uuid4().hex[:8]}")
    seen: list[tuple[str, str]] = []

    def consume(event: Event) -> dict[str, Any]:
        seen.append((type(event).__name__, event.event_id))
        return {"handled": type(event).__name__}

    booked = _session(SessionBooked)
    cancelled = _session(SessionCancelled, cancelled_by="person", late=True)
    # One handler serves both types: the second type must not be parsed as the first (it was, when the
    # idempotent wrapper was cached per handler only, and a cancellation then failed its model).
    assert run_once(consume, booked, None) == {"handled": "SessionBooked"}
    assert run_once(consume, cancelled, None) == {"handled": "SessionCancelled"}
    # Redelivered: the stored result comes back and the handler does not run again.
    assert run_once(consume, cancelled, None) == {"handled": "SessionCancelled"}
    assert run_once(consume, booked, None) == {"handled": "SessionBooked"}
    assert seen == [("SessionBooked", booked.event_id), ("SessionCancelled", cancelled.event_id)]
