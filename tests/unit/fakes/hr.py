"""In-memory HR webhook store: the DynamoDB store's conditions (marker absent, versions unchanged), thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from coaching.domain.events import Event
from coaching.domain.hr import EventOutcome, HrRecord, HrState
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.taxonomy import Transition
from coaching.domain.transitions import WaitlistEntry


class FakeHrStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.receipts: dict[tuple[str, str], str] = {}
        self.payloads: dict[tuple[str, str], str] = {}
        self.markers: dict[tuple[str, str, int], EventOutcome] = {}
        self.records: dict[tuple[str, str], tuple[HrRecord, int]] = {}
        self.people: dict[tuple[str, str], tuple[Person, int]] = {}
        self.outbox: list[Event] = []
        self.person_writes = 0
        self.batch_reads = 0
        self.orgs: dict[str, Org] = {}
        self.waitlists: dict[tuple[str, str, str], WaitlistEntry] = {}  # (org, transition, person)

    def org(self, org_id: str) -> Org | None:
        return self.orgs.get(org_id)

    def waitlist(self, org_id: str, transition: Transition) -> list[WaitlistEntry]:
        with self._lock:
            entries = [e for (o, t, _), e in self.waitlists.items() if o == org_id and t == transition.value]
        return sorted(entries, key=lambda entry: (entry.joined_at, entry.person_id))

    def people_of(self, org_id: str) -> list[tuple[Person, HrRecord | None]]:
        with self._lock:
            return [
                (person, self.records.get((org, pid), (None, 0))[0])
                for (org, pid), (person, _) in self.people.items()
                if org == org_id
            ]

    def record_receipt(self, org_id: str, webhook_id: str, digest: str, raw: str, now: datetime) -> str | None:
        with self._lock:
            key = (org_id, webhook_id)
            if key in self.receipts:
                return self.receipts[key]
            self.receipts[key] = digest
            self.payloads[key] = raw
            return None

    def read(self, org_id: str, person_id: str) -> HrState:
        with self._lock:
            state = HrState()
            if (org_id, person_id) in self.records:
                state.record, state.record_version = self.records[(org_id, person_id)]
            if (org_id, person_id) in self.people:
                state.person, state.person_version = self.people[(org_id, person_id)]
            return state

    def read_many(self, org_id: str, person_ids: Sequence[str]) -> dict[str, HrState]:
        self.batch_reads += 1
        return {person_id: self.read(org_id, person_id) for person_id in person_ids}

    def commit_event(
        self,
        org_id: str,
        webhook_id: str,
        outcome: EventOutcome,
        read: HrState,
        after: HrState,
        events: Sequence[Event],
        now: datetime,
        waitlist: Sequence[WaitlistEntry] = (),
    ) -> EventOutcome | None:
        with self._lock:
            marker = (org_id, webhook_id, outcome.index)
            if marker in self.markers:
                return self.markers[marker].model_copy(update={"duplicate": True})
            if after.record is not None:
                current = self.records.get((org_id, after.record.person_id))
                if (current[1] if current else None) != read.record_version:
                    return None
            if after.person is not None:
                current_person = self.people.get((org_id, after.person.person_id))
                if (current_person[1] if current_person else None) != read.person_version:
                    return None
            if {e.event_id for e in events} & {e.event_id for e in self.outbox}:
                raise AssertionError("an outbox event id was committed twice")
            self.markers[marker] = outcome
            if after.record is not None:
                self.records[(org_id, after.record.person_id)] = (after.record, (read.record_version or 0) + 1)
            if after.person is not None:
                self.people[(org_id, after.person.person_id)] = (after.person, (read.person_version or 0) + 1)
                self.person_writes += 1
            self.outbox.extend(events)
            for entry in waitlist:
                self.waitlists.setdefault((org_id, entry.transition.value, entry.person_id), entry)
            return outcome
