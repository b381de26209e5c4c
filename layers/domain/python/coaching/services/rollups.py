"""Rollups: keep each org month's report cells equal to the sum of its people's contributions.

An event about a person (a session outcome, an engagement starting or ending, a promotion, a termination)
recomputes that person's contribution to the months it touches FROM SOURCE (person record, bookings,
engagements: `coaching.domain.rollups.contribution_of`) and, when it changed, stores it and adds the
difference to every cell it is in, in one transaction conditional on the stored contribution's version.
A replayed or duplicated event recomputes the same contribution and writes nothing: the consumer is
idempotent by construction, not only by its event-id record.

The daily rebuild does the same for every person of every org (the current and the previous month), then
compares each cell with the sum of the contributions and rewrites any that drifted; it also refreshes the
month's settings copy (minimum group, priorities, spend from the ledger). The monthly run rebuilds the month
just closed and writes one `ReportDue` per org through the outbox; report_generation renders the artefacts.

The programmes' events are about a group session or a workshop, not a person: `on_programme_event` reads the
session (or workshop) and recomputes each of its participants' contribution to the month it started in. A
`CohortEnrolled` is about one person: their GROW cohort holds from the cohort's start month on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from coaching.auth import Principal, Role
from coaching.domain.booking import Booking
from coaching.domain.common import Clock, StrictModel
from coaching.domain.engagements import Engagement
from coaching.domain.errors import InvalidInput, NotFound
from coaching.domain.events import (
    CohortEnrolled,
    EngagementEnded,
    EngagementStarted,
    Event,
    GroupSessionCompleted,
    PersonPromoted,
    PersonTerminated,
    ReportDue,
    SessionEvent,
    WorkshopEnded,
    stable_event_id,
)
from coaching.domain.grow import Cohort, GroupSession
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.reporting import CellKey, Contribution, pseudonym
from coaching.domain.rollups import Counters, contribution_of, delta, period_of, sum_counters
from coaching.domain.workshops import Workshop

# A concurrent change of the same person's contribution: read again and re-apply, this many times.
_ATTEMPTS = 8
# How far back an event may reach (older months are closed: their reports were written).
_MAX_MONTHS_BACK = 24


class RollupMeta(StrictModel):
    """The org month's copy of what reports need beside the cells: nobody's data in it."""

    org_id: str
    period: str
    min_group_size: int
    priorities: list[str]
    spend_minor: int = 0
    currency: str = ""
    built_at: datetime
    rebuilt: bool


class PersonSource(StrictModel):
    person: Person | None
    bookings: list[Booking] = []
    engagements: list[Engagement] = []
    group_sessions: list[GroupSession] = []  # of the person's GROW cohorts
    workshops: list[Workshop] = []  # the TOGETHER workshops they were booked into
    cohorts: list[Cohort] = []  # the GROW cohorts they are enrolled in


def contribution(source: PersonSource, period: str, priorities: Sequence[str]) -> Contribution | None:
    """`contribution_of` a person's source records (None without a person record)."""
    if source.person is None:
        return None
    return contribution_of(source.person, source.bookings, source.engagements, period, priorities,
                           group_sessions=source.group_sessions, workshops=source.workshops,
                           cohorts=source.cohorts)  # fmt: skip


class RollupSource(Protocol):
    """Source records (the rollups function may read them; report_generation may not)."""

    def org(self, org_id: str) -> Org | None: ...

    def org_ids(self) -> Iterable[str]: ...

    def person(self, org_id: str, person_id: str) -> PersonSource: ...

    def people(self, org_id: str) -> Iterable[PersonSource]: ...

    def cohort(self, org_id: str, cohort_id: str) -> Cohort | None: ...

    def group_session(self, org_id: str, cohort_id: str, session_id: str) -> GroupSession | None: ...

    def workshop(self, org_id: str, workshop_id: str) -> Workshop | None: ...

    def priorities(self, org_id: str) -> list[str]: ...

    def spend(self, org_id: str, period: str) -> tuple[int, str]: ...


class RollupPort(Protocol):
    def fact(self, org_id: str, period: str, pid: str) -> tuple[Contribution | None, int | None]: ...

    def facts(self, org_id: str, period: str) -> dict[str, tuple[Contribution, int]]: ...

    def apply(
        self,
        org_id: str,
        period: str,
        pid: str,
        version: int | None,
        new: Contribution | None,
        changes: dict[CellKey, Counters],
    ) -> bool: ...

    def cells(self, org_id: str, period: str) -> dict[CellKey, Counters]: ...

    def rewrite_cells(self, org_id: str, period: str, cells: dict[CellKey, Counters]) -> None: ...

    def meta(self, org_id: str, period: str) -> RollupMeta | None: ...

    def write_meta(self, meta: RollupMeta) -> None: ...

    def publish(self, events: Sequence[Event]) -> None: ...


@dataclass(frozen=True, slots=True)
class RollupContext:
    source: RollupSource
    store: RollupPort
    clock: Clock


class PersonRollup(StrictModel):
    org_id: str
    person_id: str
    periods: dict[str, bool]  # period -> whether the contribution changed


class RebuildResult(StrictModel):
    org_id: str
    period: str
    people: int
    contributions_changed: int
    cells_rewritten: int


def _changed(old: Contribution | None, new: Contribution | None) -> bool:
    return (old.model_dump() if old else None) != (new.model_dump() if new else None)


def _meta(org: Org, period: str, ctx: RollupContext, *, rebuilt: bool) -> RollupMeta:
    spend, currency = ctx.source.spend(org.org_id, period)
    return RollupMeta(
        org_id=org.org_id,
        period=period,
        min_group_size=org.min_reporting_group_size,
        priorities=sorted(ctx.source.priorities(org.org_id)),
        spend_minor=spend,
        currency=currency,
        built_at=ctx.clock(),
        rebuilt=rebuilt,
    )


def _apply_person(org_id: str, person_id: str, period: str, priorities: Sequence[str], ctx: RollupContext) -> bool:
    pid = pseudonym(org_id, person_id)
    for _ in range(_ATTEMPTS):
        source = ctx.source.person(org_id, person_id)
        new = contribution(source, period, priorities)
        old, version = ctx.store.fact(org_id, period, pid)
        if not _changed(old, new):
            return False
        if ctx.store.apply(org_id, period, pid, version, new, delta(old, new)):
            return True
    raise RuntimeError(f"the contribution of a person of {org_id} to {period} kept changing under us")


def _months_since(moment: datetime, now: datetime) -> list[str]:
    month = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    found = []
    for _ in range(_MAX_MONTHS_BACK):
        if period_of(month) > period_of(now):
            break
        found.append(period_of(month))
        month = (month + timedelta(days=32)).replace(day=1)
    return found


def periods_touched(event: Event, now: datetime, since: datetime | None = None) -> list[str]:
    """The months an event can change a person's contribution to, never after the current month (`since`: the
    start of the enrolment's cohort, when earlier than the enrolment)."""
    found = {period_of(now)}
    if isinstance(event, SessionEvent):
        found.add(period_of(event.start.astimezone(UTC)))
    elif isinstance(event, EngagementStarted | EngagementEnded):
        # Engaged, programme, cohort and coached hold from the engagement's month up to now.
        month = event.occurred_at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        for _ in range(_MAX_MONTHS_BACK):
            if period_of(month) > period_of(now):
                break
            found.add(period_of(month))
            month = (month + timedelta(days=32)).replace(day=1)
    elif isinstance(event, CohortEnrolled):
        # The GROW cohort holds from the earlier of the enrolment and the cohort's start up to now.
        found.update(_months_since(min(event.occurred_at, since or event.occurred_at), now))
    elif isinstance(event, PersonPromoted):
        found.add(event.effective_date[:7])
    elif isinstance(event, PersonTerminated):
        found.add(event.terminated_on[:7])
    current = period_of(now)
    return sorted(p for p in found if p <= current)


def on_person_event(event: Event, ctx: RollupContext) -> PersonRollup:
    """Recompute the event's person's contributions from source (idempotent: an unchanged one writes nothing)."""
    org_id, person_id = str(getattr(event, "org_id")), str(getattr(event, "person_id"))  # noqa: B009
    org = ctx.source.org(org_id)
    if org is None:
        return PersonRollup(org_id=org_id, person_id=person_id, periods={})
    priorities = ctx.source.priorities(org_id)
    since = None
    if isinstance(event, CohortEnrolled):
        cohort = ctx.source.cohort(org_id, event.cohort_id)
        since = datetime.combine(cohort.start_date, datetime.min.time(), tzinfo=UTC) if cohort else None
    periods: dict[str, bool] = {}
    for period in periods_touched(event, ctx.clock(), since):
        periods[period] = _apply_person(org_id, person_id, period, priorities, ctx)
        if ctx.store.meta(org_id, period) is None:
            ctx.store.write_meta(_meta(org, period, ctx, rebuilt=False))
    return PersonRollup(org_id=org_id, person_id=person_id, periods=periods)


class ProgrammeRollup(StrictModel):
    org_id: str
    period: str | None  # the month the session or workshop started in (None: not found, or not yet begun)
    people: dict[str, bool]  # participant -> whether their contribution changed


def on_programme_event(event: GroupSessionCompleted | WorkshopEnded, ctx: RollupContext) -> ProgrammeRollup:
    """Recompute every participant of a recorded group session or an ended workshop (idempotent like a person's)."""
    org_id = event.org_id
    org = ctx.source.org(org_id)
    if isinstance(event, GroupSessionCompleted):
        found: GroupSession | Workshop | None = ctx.source.group_session(org_id, event.cohort_id, event.session_id)
    else:
        found = ctx.source.workshop(org_id, event.workshop_id)
    if org is None or found is None:
        return ProgrammeRollup(org_id=org_id, period=None, people={})
    period = period_of(found.start.astimezone(UTC))
    if period > period_of(ctx.clock()):
        return ProgrammeRollup(org_id=org_id, period=None, people={})
    priorities = ctx.source.priorities(org_id)
    # A group session can begin the person's cohort early (their GROW cohort from then on): every month since.
    months = _months_since(found.start, ctx.clock()) if isinstance(found, GroupSession) else [period]
    people: dict[str, bool] = {}
    for person_id in sorted(set(found.participants)):
        changed = [_apply_person(org_id, person_id, month, priorities, ctx) for month in months]
        people[person_id] = any(changed)
    for month in months:
        if ctx.store.meta(org_id, month) is None:
            ctx.store.write_meta(_meta(org, month, ctx, rebuilt=False))
    return ProgrammeRollup(org_id=org_id, period=period, people=people)


def rebuild(org_id: str, period: str, ctx: RollupContext) -> RebuildResult:
    """Recompute every person's contribution to the org month from source; repair any cell that drifted."""
    org = ctx.source.org(org_id)
    if org is None:
        return RebuildResult(org_id=org_id, period=period, people=0, contributions_changed=0, cells_rewritten=0)
    priorities = ctx.source.priorities(org_id)
    stored = ctx.store.facts(org_id, period)
    seen: set[str] = set()
    changed = 0
    target: list[Contribution] = []
    for source in ctx.source.people(org_id):
        if source.person is None:
            continue
        pid = pseudonym(org_id, source.person.person_id)
        seen.add(pid)
        new = contribution(source, period, priorities)
        if new is not None:
            target.append(new)
        old, version = stored.get(pid, (None, None))
        if _changed(old, new):
            changed += 1
            if not ctx.store.apply(org_id, period, pid, version, new, delta(old, new)):
                _apply_person(org_id, source.person.person_id, period, priorities, ctx)  # an event got there first
    for pid, (old_fact, version) in sorted(stored.items()):
        if pid not in seen:  # the person record is gone: their contribution goes too
            changed += 1
            ctx.store.apply(org_id, period, pid, version, None, delta(old_fact, None))
    wanted = sum_counters(target)
    current = ctx.store.cells(org_id, period)
    drifted = {key: wanted.get(key, {}) for key in sorted(set(wanted) | set(current))
               if _nonzero(wanted.get(key, {})) != _nonzero(current.get(key, {}))}  # fmt: skip
    if drifted:
        ctx.store.rewrite_cells(org_id, period, drifted)
    ctx.store.write_meta(_meta(org, period, ctx, rebuilt=True))
    return RebuildResult(
        org_id=org_id,
        period=period,
        people=len(target),
        contributions_changed=changed,
        cells_rewritten=len(drifted),
    )


def _nonzero(counters: Counters) -> Counters:
    return {name: value for name, value in sorted(counters.items()) if value}


def recent_periods(now: datetime) -> list[str]:
    """The months the daily rebuild refreshes: the previous one (late outcomes land there) and the current."""
    first = now.astimezone(UTC).replace(day=1)
    return [period_of(first - timedelta(days=1)), period_of(first)]


def month_just_closed(now: datetime) -> str:
    return period_of(now.astimezone(UTC).replace(day=1) - timedelta(days=1))


class ScheduleRun(StrictModel):
    schedule: str
    orgs: int
    rebuilt: list[RebuildResult]
    events: int = 0


def run_daily_rebuild(ctx: RollupContext) -> ScheduleRun:
    now = ctx.clock()
    results = [
        rebuild(org_id, period, ctx) for org_id in sorted(ctx.source.org_ids()) for period in recent_periods(now)
    ]
    return ScheduleRun(schedule="RollupsDaily", orgs=len({r.org_id for r in results}), rebuilt=results)


def report_due(org_id: str, period: str, now: datetime, *, run: str = "monthly") -> ReportDue:
    """The schedule's ReportDue has one id per org month, so its retries render once; an operator's run names
    itself (`run`), so a month re-run after late data is rendered again rather than skipped as already seen."""
    parts = [org_id, period] if run == "monthly" else [org_id, period, run]
    return ReportDue(event_id=stable_event_id(ReportDue.detail_type, *parts), occurred_at=now, org_id=org_id,
                     period=period)  # fmt: skip


def run_monthly_reports(ctx: RollupContext) -> ScheduleRun:
    """Rebuild the month just closed for every org, then one ReportDue per org (same ids on a re-run)."""
    now = ctx.clock()
    period = month_just_closed(now)
    org_ids = sorted(ctx.source.org_ids())
    results = [rebuild(org_id, period, ctx) for org_id in org_ids]
    events = [report_due(org_id, period, now) for org_id in org_ids]
    ctx.store.publish(events)
    return ScheduleRun(schedule="ReportsMonthly", orgs=len(org_ids), rebuilt=results, events=len(events))


class MonthRun(StrictModel):
    rebuilt: RebuildResult
    report_due: bool


def run_month_now(caller: Principal, org_id: str, period: str, ctx: RollupContext) -> MonthRun:
    """Operators: the monthly run for one org month now (rebuild from source, then ReportDue); idempotent."""
    caller.require(Role.OPERATOR)
    if ctx.source.org(org_id) is None:
        raise NotFound("no such organisation")
    if period > period_of(ctx.clock()):
        raise InvalidInput("the month has not started yet", field="period")
    result = rebuild(org_id, period, ctx)
    now = ctx.clock()
    ctx.store.publish([report_due(org_id, period, now, run=f"operator {caller.person_id} {now.isoformat()}")])
    return MonthRun(rebuilt=result, report_due=True)
