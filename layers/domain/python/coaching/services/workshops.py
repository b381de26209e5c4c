"""TOGETHER workshop use cases: book with a matched facilitator, complete, cancel, invite.

The facilitator is matched from the approved network (TOGETHER certification, the team's language,
not employed by the org, offering the time) and the workshop claims the facilitator's calendar
locks, the same items as a 1:1, in the booking transaction: a taken time moves on to the next
best facilitator, and nothing can ever overlap. Completion and a late cancel bill in the same
transaction as the new state, with deterministic keys (billed once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from coaching.auth import Principal, Role
from coaching.domain.availability import AvailabilityPolicy, offers
from coaching.domain.common import Clock
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, SlotTaken
from coaching.domain.events import Event, WorkshopBooked, WorkshopEnded, stable_event_id
from coaching.domain.invoicing import LedgerEntry, usage_entry
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.pricing import Outcome, PriceBook, UsageCharge, participant_fee_charge, programme_charge
from coaching.domain.programmes import ProgrammeCatalogue, ProgrammePolicy
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.taxonomy import Program
from coaching.domain.workshops import (
    Workshop,
    WorkshopCancel,
    WorkshopCompletion,
    WorkshopRequest,
    WorkshopStatus,
)
from coaching.ids import new_id

BOOKERS = (Role.LEADER, Role.ORG_ADMIN)
# Facilitators tried in score order when the best one's time was taken at the same moment.
_FACILITATOR_ATTEMPTS = 5
PRODID = "-//coaching-platform//programmes//EN"


class WorkshopStore(Protocol):
    def catalogue(self, org_id: str) -> tuple[ProgrammeCatalogue, int | None]: ...

    def org(self, org_id: str) -> Org | None: ...

    def people(self, org_id: str, person_ids: Sequence[str]) -> Mapping[str, Person]: ...

    def price_book(self, org_id: str) -> PriceBook | None: ...

    def loads(self) -> Mapping[str, int]: ...

    def book_workshop(self, workshop: Workshop, events: Sequence[Event]) -> None:
        """The workshop, the facilitator's calendar locks and each participant's participation item, at once;
        SlotTaken when the facilitator's time is taken."""
        ...

    def workshop(self, org_id: str, workshop_id: str) -> tuple[Workshop, int] | None: ...

    def end_workshop(
        self,
        workshop: Workshop,
        version: int,
        *,
        release: bool,
        units: Mapping[str, tuple[str, str]],
        entries: Sequence[LedgerEntry],
        events: Sequence[Event],
    ) -> None: ...


class RosterReader(Protocol):
    def get(self) -> Roster | None: ...


@dataclass
class WorkshopContext:
    store: WorkshopStore
    roster: RosterReader
    clock: Clock


def _offers(coach: RosterCoach, start: datetime, length: int, now: datetime) -> bool:
    return offers(AvailabilityPolicy.from_coach(coach), start, length, now)


def facilitators(
    roster: Roster, org_id: str, language: str, start: datetime, length: int, loads: Mapping[str, int], now: datetime
) -> list[RosterCoach]:
    """TOGETHER-certified coaches who speak the team's language, are not the org's employees and offer the
    time; the most experienced leaders first, then the least loaded."""
    eligible = [
        c
        for c in roster.coaches
        if Program.TOGETHER.value in c.programs
        and language in c.languages
        and org_id not in c.employer_org_ids
        and _offers(c, start, length, now)
    ]
    return sorted(eligible, key=lambda c: (-sum(r.years for r in c.roles_held), loads.get(c.coach_id, 0), c.coach_id))


def book(caller: Principal, request: WorkshopRequest, ctx: WorkshopContext) -> Workshop:
    org_id = caller.require_org(*BOOKERS)
    org = ctx.store.org(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    settings = ctx.store.catalogue(org_id)[0].TOGETHER
    if not settings.enabled:
        raise Forbidden("your organisation has not enabled TOGETHER", field="program")
    participants = list(dict.fromkeys(request.participant_ids))
    if not settings.min_participants <= len(participants) <= settings.max_participants:
        raise InvalidInput(
            f"a TOGETHER workshop has {settings.min_participants} to {settings.max_participants} different "
            "participants",
            field="participant_ids",
        )
    if not settings.min_minutes <= request.length_minutes <= settings.max_minutes:
        raise InvalidInput(
            f"your organisation's workshops last {settings.min_minutes} to {settings.max_minutes} minutes",
            field="length_minutes",
        )
    people = ctx.store.people(org_id, participants)
    missing = [p for p in participants if p not in people or not people[p].active]
    if missing:
        raise InvalidInput(f"not active people of your organisation: {', '.join(missing)}", field="participant_ids")
    now = ctx.clock()
    start = request.start.astimezone(UTC)
    if start <= now:
        raise InvalidInput("a workshop is booked ahead", field="start")
    roster = ctx.roster.get()
    if roster is None:
        raise Conflict("the coach network is not available yet; try again shortly", field="start")
    candidates = facilitators(roster, org_id, request.language, start, request.length_minutes, ctx.store.loads(), now)
    if not candidates:
        raise Conflict(
            f"no TOGETHER facilitator speaking {request.language!r} offers {request.start.isoformat()} for "
            f"{request.length_minutes} minutes; try another time",
            field="start",
        )
    policy = ProgrammePolicy.of(Program.TOGETHER, settings, request.length_minutes)
    workshop_id = new_id()
    for coach in candidates[:_FACILITATOR_ATTEMPTS]:
        workshop = Workshop(
            workshop_id=workshop_id,
            org_id=org_id,
            team_name=request.team_name,
            goal=request.goal,
            booked_by=caller.person_id,
            facilitator_id=coach.coach_id,
            participants=participants,
            start=start,
            end=start + timedelta(minutes=request.length_minutes),
            time_zone=org.time_zone,
            buffer_minutes=coach.buffer_minutes,
            language=request.language,
            policy=policy,
            created_at=now,
            updated_at=now,
        )
        event = WorkshopBooked(
            event_id=stable_event_id(WorkshopBooked.detail_type, workshop_id),
            occurred_at=now,
            org_id=org_id,
            workshop_id=workshop_id,
            facilitator_id=coach.coach_id,
            goal=request.goal.value,
            participants=len(participants),
            start=workshop.start,
            end=workshop.end,
        )
        try:
            ctx.store.book_workshop(workshop, [event])
        except SlotTaken:
            continue
        return workshop
    raise SlotTaken("every matching facilitator is busy at that time; pick another", field="start")


def _visible(caller: Principal, org_id: str, workshop_id: str, ctx: WorkshopContext) -> tuple[Workshop, int]:
    found = ctx.store.workshop(org_id, workshop_id)
    if found is None:
        raise NotFound(f"workshop {workshop_id} not found")
    workshop = found[0]
    if caller.has(Role.COACH) and caller.person_id == workshop.facilitator_id:
        return found
    if caller.org_id == org_id and (
        caller.has(Role.ORG_ADMIN)
        or caller.person_id == workshop.booked_by
        or (caller.has(Role.EMPLOYEE) and caller.person_id in workshop.participants)
    ):
        return found
    raise NotFound(f"workshop {workshop_id} not found")


def get_workshop(caller: Principal, workshop_id: str, ctx: WorkshopContext, org_id: str | None = None) -> Workshop:
    return _visible(caller, org_id or caller.require_org(Role.EMPLOYEE, *BOOKERS), workshop_id, ctx)[0]


def _entries(
    workshop: Workshop, org: Org, book: PriceBook | None, outcome: Outcome, actor: str, now: datetime
) -> tuple[dict[str, tuple[str, str]], list[LedgerEntry]]:
    if book is None:
        raise Conflict("the organisation has no price book; an operator must set one", field="price_book")
    version = book.version_for(workshop.start.astimezone(ZoneInfo(org.time_zone)).date())
    base, per_person = workshop.units()
    length = workshop.length_minutes
    charge = programme_charge(version, Program.TOGETHER, length, outcome)

    def entry(unit: str, person: str, charge: UsageCharge) -> LedgerEntry:
        return usage_entry(
            org_id=workshop.org_id,
            booking_id=unit,
            person_id=person,
            program=Program.TOGETHER,
            length_minutes=length,
            outcome=outcome,
            charge=charge,
            occurred_at=workshop.start,
            time_zone=org.time_zone,
            actor=actor,
            now=now,
        )

    units = {base: (workshop.booked_by, outcome.value)}
    entries = [entry(base, workshop.booked_by, charge)]
    fee = participant_fee_charge(version) if outcome is Outcome.COMPLETED else None
    if fee is not None:
        for person, unit in per_person.items():
            units[unit] = (person, outcome.value)
            entries.append(entry(unit, person, fee))
    return units, entries


def _ended(workshop: Workshop, billed: int, now: datetime) -> WorkshopEnded:
    return WorkshopEnded(
        event_id=stable_event_id(WorkshopEnded.detail_type, workshop.workshop_id),
        occurred_at=now,
        org_id=workshop.org_id,
        workshop_id=workshop.workshop_id,
        facilitator_id=workshop.facilitator_id,
        status=workshop.status.value,
        billed_units=billed,
    )


def complete(
    caller: Principal, org_id: str, workshop_id: str, body: WorkshopCompletion, ctx: WorkshopContext
) -> Workshop:
    """The facilitator records the workshop as delivered: billed per workshop (+ per participant), once."""
    caller.require(Role.COACH)
    found = ctx.store.workshop(org_id, workshop_id)
    if found is None or found[0].facilitator_id != caller.person_id:
        raise NotFound(f"workshop {workshop_id} not found")
    roster = ctx.roster.get()
    if roster is None or all(c.coach_id != caller.person_id for c in roster.coaches):
        raise Forbidden(f"coach {caller.person_id} is not approved", field="coach_id")
    workshop, version = found
    now = ctx.clock()
    done = workshop.complete(body.actual_minutes, now)
    if done is workshop:
        return workshop
    org = ctx.store.org(org_id)
    if org is None:
        raise NotFound(f"workshop {workshop_id} not found")
    units, entries = _entries(done, org, ctx.store.price_book(org_id), Outcome.COMPLETED, caller.person_id, now)
    ctx.store.end_workshop(
        done, version, release=False, units=units, entries=entries, events=[_ended(done, len(entries), now)]
    )
    return done


def cancel(caller: Principal, workshop_id: str, body: WorkshopCancel, ctx: WorkshopContext) -> Workshop:
    """The booker (or an org admin) cancels: free before the late-cancel window snapshotted at booking, billed
    per the programme's late-cancel policy inside it. The facilitator's calendar is free again at once."""
    org_id = caller.require_org(*BOOKERS)
    workshop, version = _visible(caller, org_id, workshop_id, ctx)
    if not (caller.has(Role.ORG_ADMIN) or caller.person_id == workshop.booked_by):
        raise Forbidden("only the workshop's booker or an org admin can cancel it", field="workshop_id")
    now = ctx.clock()
    ended = workshop.cancel(body.reason, now)
    units: dict[str, tuple[str, str]] = {}
    entries: list[LedgerEntry] = []
    if ended.status is WorkshopStatus.LATE_CANCELLED:
        org = ctx.store.org(org_id)
        if org is None:
            raise NotFound(f"workshop {workshop_id} not found")
        units, entries = _entries(
            ended, org, ctx.store.price_book(org_id), Outcome.LATE_CANCELLED, caller.person_id, now
        )
    ctx.store.end_workshop(
        ended, version, release=True, units=units, entries=entries, events=[_ended(ended, len(entries), now)]
    )
    return ended


def invite(caller: Principal, workshop_id: str, ctx: WorkshopContext, org_id: str | None = None) -> str:
    workshop = _visible(caller, org_id or caller.require_org(Role.EMPLOYEE, *BOOKERS), workshop_id, ctx)[0]
    cancelled = workshop.status in {WorkshopStatus.CANCELLED, WorkshopStatus.LATE_CANCELLED}
    return group_invite(
        uid=workshop.workshop_id,
        sequence=workshop.sequence,
        start=workshop.start,
        end=workshop.end,
        zone=workshop.time_zone,
        summary=f"TOGETHER workshop: {workshop.team_name} ({workshop.goal})",
        attendees=len(workshop.participants),
        cancelled=cancelled,
        now=ctx.clock(),
    )


def group_invite(
    *,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    zone: str,
    summary: str,
    attendees: int,
    cancelled: bool,
    now: datetime,
) -> str:
    """An RFC 5545 invite for a group session or workshop, like a 1:1's: one stable UID, SEQUENCE for changes,
    wall times in the org's zone with its VTIMEZONE. Names no participant (the invite is forwarded)."""
    from icalendar import Calendar, Event, Timezone

    tz = ZoneInfo(zone)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    calendar.add_component(
        Timezone.from_tzinfo(tz, tzid=zone, first_date=date(start.year, 1, 1), last_date=date(start.year + 1, 12, 31))
    )
    event = Event()
    event.add("uid", f"{uid}@coaching-platform")
    event.add("sequence", sequence)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", start.astimezone(tz))
    event.add("dtend", end.astimezone(tz))
    event.add("summary", summary)
    event.add("description", f"{attendees} participants")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    text: bytes = calendar.to_ical()
    return text.decode()
