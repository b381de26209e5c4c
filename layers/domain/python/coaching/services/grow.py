"""GROW cohort use cases: open, enrol, match coaches, run group sessions (the wait-list trigger that opens
cohorts and enrols people waiting is `coaching.services.grow_waitlist`).

Enrolment takes a place with a conditional counter in the enrolment's own transaction, so
concurrent enrolments can never overfill a cohort. Coaches come from the optimal assignment
solver (`coaching.domain.cohort.match_cohort`) over the approved network, with the GROW
certification, the cohort's language and every curriculum date in the coach's availability as
hard constraints. Group sessions claim the coaches' calendar locks, the same items as 1:1s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from coaching.auth import Principal, Role
from coaching.domain.availability import AvailabilityPolicy, offers
from coaching.domain.cohort import match_cohort
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.competencies import default_framework
from coaching.domain.engagements import Engagement, require_active_person
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, SlotTaken
from coaching.domain.events import (
    CohortEnrolled,
    CohortMatched,
    CohortOpened,
    EngagementStarted,
    Event,
    GroupSessionCompleted,
    GroupSessionScheduled,
    stable_event_id,
)
from coaching.domain.grow import (
    AttendanceMark,
    AttendanceRequest,
    Cohort,
    Enrolment,
    GroupSession,
    GrowCohortRequest,
    WaitEntry,
    coaches_needed,
    default_curriculum,
)
from coaching.domain.invoicing import LedgerEntry, usage_entry
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.pricing import Outcome, PriceBook, programme_charge
from coaching.domain.programmes import GrowSettings, ProgrammeCatalogue, ProgrammePolicy
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.taxonomy import Program
from coaching.ids import new_id

ADMINS = (Role.ORG_ADMIN, Role.OPERATOR)


# ---------------------------------------------------------------------------- ports


class WaitListReader(Protocol):
    """The GROW wait-list, read port: the HR integration's promotion wait-list or this branch's store.

    The one thing GROW needs from any wait-list: who waits for a cohort of a transition, with the
    language they would be coached in and since when. An adapter over another store (e.g. the HR
    integration's `ORG#<org>#WAITLIST#<transition>` entries) maps its entries to `WaitEntry`; the
    store's `enrol` must take an enrolled person off that same list in the enrolment's transaction,
    conditional on them still waiting, so a person is never enrolled from it twice.
    """

    def waiting(self, org_id: str, transition: str) -> list[WaitEntry]:
        """Everyone waiting for a cohort of `transition`, longest waiting first."""
        ...


class WaitListWriter(Protocol):
    def add(self, entry: WaitEntry) -> bool:
        """Put a person on the wait-list; False when they already wait."""
        ...


class GrowStore(Protocol):
    def catalogue(self, org_id: str) -> tuple[ProgrammeCatalogue, int | None]: ...

    def org(self, org_id: str) -> Org | None: ...

    def people(self, org_id: str, person_ids: Sequence[str]) -> Mapping[str, Person]: ...

    def price_book(self, org_id: str) -> PriceBook | None: ...

    def open_cohort(self, cohort: Cohort, events: Sequence[Event]) -> None: ...

    def cohort(self, org_id: str, cohort_id: str) -> tuple[Cohort, int] | None: ...

    def cohorts(self, org_id: str) -> list[Cohort]: ...

    def members(self, org_id: str, cohort_id: str) -> list[Enrolment]: ...

    def waitlist_cohort(self, org_id: str, transition: str, language: str) -> str | None:
        """The cohort the wait-list last opened for `transition` and `language` (a consistent read), if any."""
        ...

    def open_waitlist_cohort(self, cohort: Cohort, previous: str | None, events: Sequence[Event]) -> bool:
        """Open `cohort` and make it the wait-list's cohort of its transition and language, in one transaction,
        conditional on that still being `previous`; False (nothing written) when another trigger opened one."""
        ...

    def enrol(self, cohort: Cohort, enrolment: Enrolment, events: Sequence[Event]) -> None:
        """Take a place (conditional on the seats counter staying within `cohort.size`), the member item,
        the person's participation item and the events, in one transaction; the person leaves the wait-list in
        it too (an enrolment from the wait-list only if they still wait). Raises Conflict when full
        (field cohort_id), already enrolled or no longer waiting (field person_id)."""
        ...

    def loads(self) -> Mapping[str, int]: ...

    def schedule(self, session: GroupSession, events: Sequence[Event]) -> None:
        """The group session and one lock per bucket on each of its coaches' calendars; SlotTaken when any is taken."""
        ...

    def unschedule(self, session: GroupSession) -> None:
        """Remove a group session this request scheduled (compensation when a later step fails)."""
        ...

    def commit_match(
        self, cohort: Cohort, version: int, engagements: Sequence[Engagement], events: Sequence[Event]
    ) -> None:
        """The matched cohort (conditional on `version`), each participant's engagement and active marker."""
        ...

    def group_sessions(self, org_id: str, cohort_id: str) -> list[tuple[GroupSession, int]]: ...

    def complete_group_session(
        self,
        session: GroupSession,
        version: int,
        units: Mapping[str, tuple[str, str]],
        entries: Sequence[LedgerEntry],
        events: Sequence[Event],
    ) -> None:
        """The recorded session, a locator per participant unit (unit id -> (person, status)) and every usage
        entry with its guard, in one transaction in the first open billing month."""
        ...


class RosterReader(Protocol):
    def get(self) -> Roster | None: ...


@dataclass
class GrowContext:
    store: GrowStore
    waitlist: WaitListReader
    waitlist_writer: WaitListWriter
    roster: RosterReader
    clock: Clock


# ---------------------------------------------------------------------------- views


class CohortView(DeferredModel):
    cohort: Cohort
    enrolled: list[str]
    sessions: list[GroupSession]


# ---------------------------------------------------------------------------- helpers


def admin_org(caller: Principal, org_id: str) -> None:
    if caller.has(Role.OPERATOR):
        return
    caller.require_same_org(org_id, Role.ORG_ADMIN)


def grow_settings(ctx: GrowContext, org_id: str) -> tuple[Org, GrowSettings]:
    org = ctx.store.org(org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    catalogue = ctx.store.catalogue(org_id)[0]
    if not catalogue.GROW.enabled:
        raise InvalidInput("your organisation has not enabled GROW", field="program")
    return org, catalogue.GROW


def eligible_person(ctx: GrowContext, org_id: str, person_id: str, settings: GrowSettings) -> Person:
    person = ctx.store.people(org_id, [person_id]).get(person_id)
    if person is None:
        raise NotFound(f"person {person_id} not found")
    require_active_person(person)
    if person.level not in settings.eligible_levels:
        levels = ", ".join(level.value for level in settings.eligible_levels)
        raise InvalidInput(f"GROW is for {levels}; this person is {person.level.value}", field="person_id")
    return person


def _cohort(ctx: GrowContext, org_id: str, cohort_id: str) -> tuple[Cohort, int]:
    found = ctx.store.cohort(org_id, cohort_id)
    if found is None:
        raise NotFound(f"cohort {cohort_id} not found")
    return found


def enrolment_events(cohort: Cohort, person_id: str, source: str, now: datetime) -> list[Event]:
    event_id = stable_event_id(CohortEnrolled.detail_type, cohort.cohort_id, person_id)
    return [
        CohortEnrolled(
            event_id=event_id,
            occurred_at=now,
            org_id=cohort.org_id,
            cohort_id=cohort.cohort_id,
            person_id=person_id,
            source_of=source,
        )
    ]


def opened_event(cohort: Cohort, now: datetime) -> CohortOpened:
    return CohortOpened(
        event_id=stable_event_id(CohortOpened.detail_type, cohort.cohort_id),
        occurred_at=now,
        org_id=cohort.org_id,
        cohort_id=cohort.cohort_id,
        transition=cohort.transition,
        size=cohort.size,
        start_date=cohort.start_date.isoformat(),
        from_waitlist=cohort.opened_from_waitlist,
    )


def new_cohort(
    org: Org, settings: GrowSettings, request: GrowCohortRequest, now: datetime, *, cohort_id: str, from_waitlist: bool
) -> Cohort:
    if request.size > settings.max_size or request.size < settings.min_size:
        raise InvalidInput(
            f"your organisation's GROW cohorts have {settings.min_size} to {settings.max_size} places", field="size"
        )
    framework = org.framework or default_framework()
    curriculum = request.curriculum or default_curriculum(
        settings, request.start_date, org.time_zone, [c.id for c in framework.competencies]
    )
    return Cohort.open(
        cohort_id=cohort_id,
        org_id=org.org_id,
        request=request,
        curriculum=curriculum,
        policy=ProgrammePolicy.of(Program.GROW, settings),
        known_competencies=framework.ids(),
        now=now,
        from_waitlist=from_waitlist,
    )


# ---------------------------------------------------------------------------- opening and enrolment


def open_cohort(caller: Principal, org_id: str, request: GrowCohortRequest, ctx: GrowContext) -> Cohort:
    """An org admin opens a cohort by hand; people are enrolled next (by hand or from the wait-list)."""
    admin_org(caller, org_id)
    org, settings = grow_settings(ctx, org_id)
    now = ctx.clock()
    cohort = new_cohort(org, settings, request, now, cohort_id=new_id(), from_waitlist=False)
    ctx.store.open_cohort(cohort, [opened_event(cohort, now)])
    return cohort


def enrol(caller: Principal, org_id: str, cohort_id: str, person_id: str, ctx: GrowContext) -> Enrolment:
    """An org admin enrols a person; the place is taken atomically (a full cohort refuses, 409)."""
    admin_org(caller, org_id)
    _, settings = grow_settings(ctx, org_id)
    cohort, _ = _cohort(ctx, org_id, cohort_id)
    cohort.require_forming()
    eligible_person(ctx, org_id, person_id, settings)
    now = ctx.clock()
    enrolment = Enrolment(cohort_id=cohort_id, org_id=org_id, person_id=person_id, enrolled_at=now, source="admin")
    ctx.store.enrol(cohort, enrolment, enrolment_events(cohort, person_id, "admin", now))
    return enrolment


def get_cohort(caller: Principal, org_id: str, cohort_id: str, ctx: GrowContext) -> CohortView:
    admin_org(caller, org_id)
    cohort, _ = _cohort(ctx, org_id, cohort_id)
    members = [m.person_id for m in ctx.store.members(org_id, cohort_id)]
    sessions = [s for s, _ in ctx.store.group_sessions(org_id, cohort_id)]
    return CohortView(cohort=cohort, enrolled=sorted(members), sessions=sessions)


def list_cohorts(caller: Principal, org_id: str, ctx: GrowContext) -> list[Cohort]:
    admin_org(caller, org_id)
    return ctx.store.cohorts(org_id)


# ---------------------------------------------------------------------------- coaches


def _offers_all(coach: RosterCoach, cohort: Cohort, now: datetime) -> bool:
    """Every curriculum date is a slot the coach offers (rules, exceptions, notice, horizon, grid)."""
    policy = AvailabilityPolicy.from_coach(coach)
    length = cohort.policy.session_minutes
    return all(offers(policy, planned.start.astimezone(UTC), length, now) for planned in cohort.curriculum)


def _score(coach: RosterCoach, cohort: Cohort) -> int:
    """Curriculum competencies the coach specialises in, and whether they have held the transition's role."""
    covered = {c for planned in cohort.curriculum for c in planned.competencies}
    held = any(role.level.value == cohort.transition for role in coach.roles_held)
    return 10 * len(covered & set(coach.specialties)) + (5 if held else 0)


def _assign_coaches(
    cohort: Cohort, participants: int, roster: Roster, loads: Mapping[str, int], now: datetime
) -> list[str]:
    """The solver's optimal coaches: GROW-certified, speaking the cohort's language, not employed by the org,
    with room for their share of 1:1 coachees, offering every curriculum date."""
    needed = coaches_needed(participants)
    share = -(-participants // needed)
    eligible = [
        c
        for c in roster.coaches
        if Program.GROW.value in c.programs
        and cohort.language in c.languages
        and cohort.org_id not in c.employer_org_ids
        and c.capacity - loads.get(c.coach_id, 0) >= share
        and _offers_all(c, cohort, now)
    ]
    if len(eligible) < needed:
        raise Conflict(
            f"the network has {len(eligible)} GROW coach(es) speaking {cohort.language!r} with room and every "
            f"curriculum date free; this cohort needs {needed}",
            field="cohort_id",
        )
    places = [f"{cohort.cohort_id}#{n}" for n in range(needed)]
    edges = [(place, c.coach_id, _score(c, cohort)) for place in places for c in eligible]
    result = match_cohort(places, {c.coach_id: 1 for c in eligible}, edges, mode="everyone_matched")
    return sorted(result.assignments[place] for place in places)


def _group_sessions(cohort: Cohort, members: list[str], roster: Roster, zone: str, now: datetime) -> list[GroupSession]:
    by_id = {c.coach_id: c for c in roster.coaches}
    buffer = max(by_id[c].buffer_minutes for c in cohort.coach_ids)
    length = cohort.policy.session_minutes
    return [
        GroupSession(
            session_id=cohort.session_id(index),
            cohort_id=cohort.cohort_id,
            org_id=cohort.org_id,
            index=index,
            start=planned.start.astimezone(UTC),
            end=planned.start.astimezone(UTC) + timedelta(minutes=length),
            time_zone=zone,
            buffer_minutes=buffer,
            coach_ids=cohort.coach_ids,
            participants=members,
            competencies=planned.competencies,
            policy=cohort.policy,
            created_at=now,
            updated_at=now,
        )
        for index, planned in enumerate(cohort.curriculum)
    ]


def match_coaches(caller: Principal, org_id: str, cohort_id: str, ctx: GrowContext) -> CohortView:
    """Assign the cohort's coaches, put every group session on their calendars, and start each participant's
    engagement with a cohort coach (so 1:1s in between go through the ordinary booking).

    Group sessions are written first, each with its locks; if any time is taken meanwhile, the ones
    already written are removed and nothing else is (409 naming the session)."""
    admin_org(caller, org_id)
    org, settings = grow_settings(ctx, org_id)
    cohort, version = _cohort(ctx, org_id, cohort_id)
    cohort.require_forming()
    members = sorted(m.person_id for m in ctx.store.members(org_id, cohort_id))
    if len(members) < settings.min_size:
        raise Conflict(
            f"a cohort starts with at least {settings.min_size} participants; {len(members)} enrolled",
            field="cohort_id",
        )
    roster = ctx.roster.get()
    if roster is None:
        raise Conflict("the coach network is not available yet; try again shortly", field="cohort_id")
    now = ctx.clock()
    matched = cohort.matched_to(_assign_coaches(cohort, len(members), roster, ctx.store.loads(), now), now)
    sessions = _group_sessions(matched, members, roster, org.time_zone, now)
    written: list[GroupSession] = []
    try:
        for session in sessions:
            ctx.store.schedule(session, [_scheduled(session, now)])
            written.append(session)
        engagements = [
            Engagement.start(
                engagement_id=matched.engagement_id(person),
                org_id=org_id,
                person_id=person,
                coach_id=matched.coach_for(n),
                program=Program.GROW,
                now=now,
            )
            for n, person in enumerate(members)
        ]
        events: list[Event] = [
            CohortMatched(
                event_id=stable_event_id(CohortMatched.detail_type, cohort_id),
                occurred_at=now,
                org_id=org_id,
                cohort_id=cohort_id,
                coach_ids=matched.coach_ids,
                participant_ids=members,
            ),
            *(
                EngagementStarted(
                    event_id=stable_event_id(EngagementStarted.detail_type, e.engagement_id),
                    occurred_at=now,
                    org_id=org_id,
                    person_id=e.person_id,
                    match_id=None,
                    engagement_id=e.engagement_id,
                    coach_id=e.coach_id,
                    program=Program.GROW.value,
                )
                for e in engagements
            ),
        ]
        ctx.store.commit_match(matched, version, engagements, events)
    except (SlotTaken, Conflict) as refusal:
        for session in written:
            ctx.store.unschedule(session)
        if isinstance(refusal, SlotTaken) and len(written) < len(sessions):
            failed = sessions[len(written)]
            raise SlotTaken(
                f"group session {failed.index + 1} ({failed.start.isoformat()}) collides with another session "
                "of the coach; match again",
                field="curriculum",
            ) from refusal
        raise
    return CohortView(cohort=matched, enrolled=members, sessions=sessions)


def _scheduled(session: GroupSession, now: datetime) -> GroupSessionScheduled:
    return GroupSessionScheduled(
        event_id=stable_event_id(GroupSessionScheduled.detail_type, session.session_id, str(session.sequence)),
        occurred_at=now,
        org_id=session.org_id,
        cohort_id=session.cohort_id,
        session_id=session.session_id,
        coach_ids=session.coach_ids,
        participant_ids=session.participants,
        start=session.start,
        end=session.end,
    )


# ---------------------------------------------------------------------------- group sessions


def _session(ctx: GrowContext, org_id: str, cohort_id: str, session_id: str) -> tuple[GroupSession, int]:
    for session, version in ctx.store.group_sessions(org_id, cohort_id):
        if session.session_id == session_id:
            return session, version
    raise NotFound(f"group session {session_id} not found")


def _visible_session(caller: Principal, org_id: str, cohort_id: str, session_id: str, ctx: GrowContext) -> GroupSession:
    """A participant (their own org), one of the session's coaches, or the org's admin."""
    session, _ = _session(ctx, org_id, cohort_id, session_id)
    if caller.has(Role.COACH) and caller.person_id in session.coach_ids:
        return session
    if caller.org_id == org_id and (
        caller.has(Role.ORG_ADMIN) or (caller.has(Role.EMPLOYEE) and caller.person_id in session.participants)
    ):
        return session
    if caller.has(Role.OPERATOR):
        return session
    raise NotFound(f"group session {session_id} not found")


def invite(caller: Principal, org_id: str, cohort_id: str, session_id: str, ctx: GrowContext) -> str:
    """The RFC 5545 invite every participant (and coach) gets; one UID per group session."""
    session = _visible_session(caller, org_id, cohort_id, session_id, ctx)
    from coaching.services.workshops import group_invite

    summary = f"GROW group session {session.index + 1}: " + ", ".join(session.competencies)
    return group_invite(
        uid=session.session_id,
        sequence=session.sequence,
        start=session.start,
        end=session.end,
        zone=session.time_zone,
        summary=summary,
        attendees=len(session.participants),
        cancelled=False,
        now=ctx.clock(),
    )


def record_attendance(
    caller: Principal, org_id: str, cohort_id: str, session_id: str, body: AttendanceRequest, ctx: GrowContext
) -> GroupSession:
    """The session's coach records each participant; billed participants get their usage entry in the same
    transaction (per participant-session, deterministic keys: billed exactly once)."""
    caller.require(Role.COACH)
    session, version = _session(ctx, org_id, cohort_id, session_id)
    if caller.person_id not in session.coach_ids:
        raise NotFound(f"group session {session_id} not found")
    roster = ctx.roster.get()
    if roster is None or all(c.coach_id != caller.person_id for c in roster.coaches):
        raise Forbidden(
            f"coach {caller.person_id} is not approved: only an approved coach records sessions", field="coach_id"
        )
    org = ctx.store.org(org_id)
    if org is None:
        raise NotFound(f"group session {session_id} not found")
    now = ctx.clock()
    done = session.record(body.attendance, now)
    if done is session:
        return session
    book = ctx.store.price_book(org_id)
    if book is None:
        raise Conflict("the organisation has no price book; an operator must set one", field="price_book")
    price_version = book.version_for(session.start.astimezone(ZoneInfo(org.time_zone)).date())
    billed = done.billed_marks()
    entries = []
    units: dict[str, tuple[str, str]] = {}
    for person, mark in done.attendance.items():
        unit = done.unit_id(person)
        status = {AttendanceMark.ATTENDED: "completed", AttendanceMark.NO_SHOW: "no_show"}.get(mark, "cancelled")
        if person not in billed:
            status = "cancelled"
        units[unit] = (person, status)
        if person in billed:
            outcome = Outcome.COMPLETED if mark is AttendanceMark.ATTENDED else Outcome.NO_SHOW
            charge = programme_charge(price_version, Program.GROW, done.length_minutes, outcome)
            entries.append(
                usage_entry(
                    org_id=org_id,
                    booking_id=unit,
                    person_id=person,
                    program=Program.GROW,
                    length_minutes=done.length_minutes,
                    outcome=outcome,
                    charge=charge,
                    occurred_at=done.start,
                    time_zone=org.time_zone,
                    actor=caller.person_id,
                    now=now,
                )
            )
    marks = list(done.attendance.values())
    event = GroupSessionCompleted(
        event_id=stable_event_id(GroupSessionCompleted.detail_type, session_id),
        occurred_at=now,
        org_id=org_id,
        cohort_id=cohort_id,
        session_id=session_id,
        attended=marks.count(AttendanceMark.ATTENDED),
        no_shows=marks.count(AttendanceMark.NO_SHOW),
        excused=marks.count(AttendanceMark.EXCUSED),
        billed_units=len(entries),
    )
    ctx.store.complete_group_session(done, version, units, entries, [event])
    return done


def list_sessions(caller: Principal, org_id: str, cohort_id: str, ctx: GrowContext) -> list[GroupSession]:
    """The cohort's group sessions: for its coaches, its participants and the org's admin."""
    sessions = [s for s, _ in ctx.store.group_sessions(org_id, cohort_id)]
    cohort = ctx.store.cohort(org_id, cohort_id)
    if cohort is None:
        raise NotFound(f"cohort {cohort_id} not found")
    coach = caller.has(Role.COACH) and caller.person_id in cohort[0].coach_ids
    member = caller.org_id == org_id and (
        caller.has(Role.ORG_ADMIN)
        or (caller.has(Role.EMPLOYEE) and any(caller.person_id in s.participants for s in sessions))
    )
    if not (coach or member or caller.has(Role.OPERATOR)):
        raise NotFound(f"cohort {cohort_id} not found")
    return sessions
