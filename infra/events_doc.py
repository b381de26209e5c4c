"""Writes docs/events.md from the event catalogue (coaching.domain.events): `make docs`.

The catalogue is the one home of every event's shape; this page is generated from it and a
unit test fails when the two differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from coaching.domain.events import CATALOGUE, Event

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "events.md"

# Which function consumes what: the template's rules, stated here so the page reads alone.
CONSUMERS = {
    "CoachVettingChanged": "matching (rebuilds the roster; a suspension ends the coach's engagements, with re-matches)",
    "CoachProfileUpdated": "matching (rebuilds the roster)",
    "EngagementEnded": "booking (cancels the engagement's future sessions, unbilled); rollups",
    "PersonPromoted": "matching (keeps an eligible coach or proposes a re-match); rollups",
    "InvoiceDue": "metering (draws the org's invoice)",
    "ReconciliationDue": "metering (reconciles the org's month)",
    # rollups: recomputes the person's contribution to the months the event touches, from source.
    "EngagementStarted": "rollups (the person's contribution from source)",
    "SessionCompleted": "rollups (the person's contribution from source)",
    "SessionCancelled": "rollups (the person's contribution from source)",
    "SessionRescheduled": "rollups (the person's contribution from source)",
    "SessionCredited": "rollups (the person's contribution from source)",
    "PersonTerminated": "rollups (the person's contribution from source)",
    "CohortEnrolled": "rollups (the person's GROW cohort, from source)",
    "GroupSessionCompleted": "rollups (each participant's contribution from source)",
    "WorkshopEnded": "rollups (each participant's contribution from source)",
    "ReportDue": "report_generation (writes the month's HTML report and CSVs)",
}

HEADER = """# Events

Generated from `layers/domain/python/coaching/domain/events.py` by `make docs`; do not edit by hand.

Every event is a typed model in that one catalogue. A producer builds the model and hands it to
the store that commits the change; the store writes it as an **outbox item in the same
DynamoDB transaction** (`coaching/adapters/outbox.py`). The main table's stream feeds those
inserts to `event_relay`, which puts them on the custom bus in stream order. A request that dies
right after its commit loses nothing: the item is already in the table and on the stream.

Delivery is at least once. The `detail` of every event carries `event_id` (the platform's own
id, stable across redeliveries), `occurred_at` and `version`; consumers are dispatched by
`coaching.api.function_entry`, which parses the detail into its model and runs the handler once
per `event_id` (Powertools Idempotency, records under `IDEMPOTENCY#<function>`, 7 days). A
detail-type outside the catalogue, a source that does not own the type, or a detail that fails
its model raises, so the bus retries and then dead-letters it.

"""


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("datetime.datetime", "datetime").replace("NoneType", "None")


def _fields(event: type[Event]) -> list[str]:
    rows = []
    for name, field in event.model_fields.items():
        required = "required" if field.is_required() else f"default `{field.default!r}`"
        if name in {"event_id", "occurred_at"}:
            required = "set by the producer"
        rows.append(f"| `{name}` | `{_type_name(field.annotation)}` | {required} |")
    rows.append("| `version` | `int` | the schema version |")
    return rows


def render() -> str:
    parts = [HEADER, "| Event | Source | Version | Consumed by |", "|---|---|---|---|"]
    for event in CATALOGUE:
        consumer = CONSUMERS.get(event.detail_type, "no consumer yet: on the bus for audit and for the reports to come")
        parts.append(f"| [{event.detail_type}](#{event.detail_type.lower()}) | `{event.source}` | {event.version} | "
                     f"{consumer} |")  # fmt: skip
    parts.append("")
    for event in CATALOGUE:
        parts += [f"## {event.detail_type}", "", event.description, "",
                  "| Field | Type | |", "|---|---|---|", *_fields(event), ""]  # fmt: skip
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(CATALOGUE)} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
