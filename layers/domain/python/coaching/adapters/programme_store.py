"""Persistence for the programmes: the catalogue, GROW cohorts and their group sessions, the GROW
wait-list (this branch's minimal store), TOGETHER workshops and a person's cross-programme history.

Group sessions and workshops claim the coach calendar lock items the booking store claims for a
1:1 (`keys.coach_calendar_pk` / `keys.calendar_lock_sk`, one per 5-minute bucket, conditional
on absence), so whichever is written second fails its transaction. Billable units (a participant's
group session, a workshop, a workshop participant's fee) get the booking locator and the ledger
guard a 1:1 gets, so billing is exactly once and reconciliation treats them like sessions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys, outbox
from coaching.adapters.billing_store import BillingPeriodItem, entry_item
from coaching.adapters.booking_store import BookingStore, CounterItem, LocatorItem
from coaching.adapters.dynamo import (
    MainItem,
    MarkerItem,
    batch_read,
    connection,
    failed_keys,
    get_entity,
    lost_to_another_transaction,
)
from coaching.adapters.matching_store import MatchingStore, catalogue_from_item
from coaching.domain.booking import Booking
from coaching.domain.coaches import Coach
from coaching.domain.engagements import Engagement
from coaching.domain.errors import AlreadyBilled, Conflict, SlotTaken
from coaching.domain.events import Event
from coaching.domain.grow import Cohort, Enrolment, GroupSession, WaitEntry
from coaching.domain.invoicing import LedgerEntry
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.pricing import PriceBook
from coaching.domain.programmes import ProgrammeCatalogue
from coaching.domain.taxonomy import Program, Transition
from coaching.domain.transitions import WaitlistEntry, WaitlistStatus
from coaching.domain.workshops import Workshop

_MAX_MONTHS_AHEAD = 12
_BATCH = 100


def _version(item: dict[str, Any]) -> int:
    return int(item["version"]["N"]) if "version" in item else 0


def _entity_item(pk: str, sk: str, kind: str, body: str, version: int | None) -> MainItem:
    item = MainItem(pk, sk, kind=kind, body=body)
    if version is not None:
        item.version = version
    return item


def _locks(coach_ids: Sequence[str], buckets: Sequence[str], ref: str) -> list[MarkerItem]:
    return [
        MarkerItem(keys.coach_calendar_pk(coach), keys.calendar_lock_sk(bucket), kind="coach_lock", ref=ref)
        for coach in coach_ids
        for bucket in buckets
    ]


def _unit_locator(org_id: str, unit_id: str, person_id: str, coach_id: str, status: str, period: str) -> LocatorItem:
    return LocatorItem(
        *keys.locator_key(unit_id),
        org_id=org_id,
        person_id=person_id,
        coach_id=coach_id,
        status=status,
        gsi1pk=keys.sessions_index_pk(org_id, period),
        gsi1sk=keys.sessions_index_sk(unit_id),
    )


def _commit(transaction: TransactWrite, on_failure: Any) -> None:
    try:
        with transaction:
            pass
    except TransactWriteError as exc:
        raise on_failure(failed_keys(transaction, exc)) from exc


def _commit_billed(write: Any, entries: Sequence[LedgerEntry], refusal: Any) -> None:
    """`write`'s items and every entry (with its guard) in one transaction, in the first open month: the
    same rule as `billing_store.commit_with_entry`, for several entries under one month check."""
    candidates = list(entries)
    for _ in range(_MAX_MONTHS_AHEAD):
        transaction = TransactWrite(connection=connection())
        write(transaction)
        if candidates:
            first = candidates[0]
            transaction.condition_check(
                BillingPeriodItem,
                *keys.period_key(first.org_id, first.billed_in),
                condition=BillingPeriodItem.closed_at.does_not_exist(),
            )
        for entry in candidates:
            transaction.save(entry_item(entry), condition=MainItem.pk.does_not_exist())
            guard = MarkerItem(
                *keys.guard_key(entry.org_id, entry.booking_id, entry.kind.value),
                kind="ledger_guard",
                ref=keys.guard_ref(entry.billed_in, entry.entry_id),
            )
            transaction.save(guard, condition=MarkerItem.pk.does_not_exist())
        try:
            with transaction:
                pass
        except TransactWriteError as exc:
            failed = failed_keys(transaction, exc)
            guards = {keys.guard_key(e.org_id, e.booking_id, e.kind.value) for e in candidates}
            if guards & set(failed):
                raise AlreadyBilled("this is already billed", field="booking_id") from exc
            period = keys.period_key(candidates[0].org_id, candidates[0].billed_in) if candidates else None
            others = [key for key in failed if key != period]
            if others or not failed:
                raise refusal(others) from exc
            candidates = [entry.billed_next_month() for entry in candidates]
            continue
        return
    raise Conflict("no open billing month within a year", field="period")


def _conflict(message: str, field: str) -> Any:
    def refusal(failed: list[tuple[str, str]]) -> Exception:
        if any(keys.is_coach_calendar_pk(pk) for pk, _ in failed):
            return SlotTaken("the coach already has a session at that time", field="start")
        return Conflict(message, field=field)

    return refusal


class ProgrammeStore:
    """Every read and write of the programmes; each change is one transaction with its events (the outbox)."""

    def __init__(self) -> None:
        self._matching = MatchingStore()
        self._bookings = BookingStore()

    # ------------------------------------------------------------------ shared reads

    def org(self, org_id: str) -> Org | None:
        return get_entity(keys.org_pk(org_id), keys.ORG_PROFILE_SK, Org)

    def people(self, org_id: str, person_ids: Sequence[str]) -> Mapping[str, Person]:
        wanted = [(keys.people_pk(org_id), keys.person_sk(p)) for p in dict.fromkeys(person_ids)]
        found: dict[str, Person] = {}
        for start in range(0, len(wanted), _BATCH):
            for item in batch_read(wanted[start : start + _BATCH]).values():
                person = Person.model_validate_json(item["body"]["S"])
                found[person.person_id] = person
        return found

    def price_book(self, org_id: str) -> PriceBook | None:
        return get_entity(keys.org_pk(org_id), keys.PRICE_BOOK_SK, PriceBook)

    def loads(self) -> Mapping[str, int]:
        return self._matching.all_loads()

    def coach(self, coach_id: str) -> Coach | None:
        return get_entity(keys.COACHES_PK, keys.coach_sk(coach_id), Coach)

    # ------------------------------------------------------------------ catalogue

    def catalogue(self, org_id: str) -> tuple[ProgrammeCatalogue, int | None]:
        return self._matching.catalogue(org_id)

    def org_and_catalogue(self, org_id: str) -> tuple[Org, int, ProgrammeCatalogue, int | None] | None:
        """The org and its catalogue, each with its version, in one BatchGetItem; None when there is no such org."""
        org_key = (keys.org_pk(org_id), keys.ORG_PROFILE_SK)
        catalogue_key = (keys.org_pk(org_id), keys.PROGRAMMES_SK)
        found = batch_read([org_key, catalogue_key])
        org = found.get(org_key)
        if org is None:
            return None
        catalogue, version = catalogue_from_item(org_id, found.get(catalogue_key))
        return Org.model_validate_json(org["body"]["S"]), _version(org), catalogue, version

    def save_catalogue(self, catalogue: ProgrammeCatalogue, version: int | None, org: Org, org_version: int) -> bool:
        item = _entity_item(
            keys.org_pk(catalogue.org_id),
            keys.PROGRAMMES_SK,
            "programme_catalogue",
            catalogue.model_dump_json(),
            version,
        )
        # The org's body only (its index keys stay), conditional on the version read with the catalogue.
        org_item = MainItem(keys.org_pk(org.org_id), keys.ORG_PROFILE_SK, version=org_version or None)
        transaction = TransactWrite(connection=connection())
        transaction.save(item)
        transaction.update(org_item, actions=[MainItem.body.set(org.model_dump_json())])
        try:
            with transaction:
                pass
        except TransactWriteError:
            return False
        return True

    # ------------------------------------------------------------------ cohorts

    def open_cohort(self, cohort: Cohort, events: Sequence[Event]) -> None:
        item = _entity_item(
            keys.cohort_pk(cohort.org_id, cohort.cohort_id), keys.COHORT_SK, "cohort", cohort.model_dump_json(), None
        )
        item.gsi1pk = keys.cohorts_index_pk(cohort.org_id)
        item.gsi1sk = keys.cohort_index_sk(cohort.start_date.isoformat(), cohort.cohort_id)
        transaction = TransactWrite(connection=connection())
        transaction.save(item)
        outbox.add_events(transaction, events)
        _commit(transaction, _conflict("this cohort already exists", "cohort_id"))

    def waitlist_cohort(self, org_id: str, transition: str, language: str) -> str | None:
        try:
            item = MarkerItem.get(
                keys.waitlist_pk(org_id, transition),
                keys.waitlist_cohort_sk(transition, language),
                consistent_read=True,
            )
        except MarkerItem.DoesNotExist:
            return None
        return str(item.ref)

    def open_waitlist_cohort(self, cohort: Cohort, previous: str | None, events: Sequence[Event]) -> bool:
        item = _entity_item(
            keys.cohort_pk(cohort.org_id, cohort.cohort_id), keys.COHORT_SK, "cohort", cohort.model_dump_json(), None
        )
        item.gsi1pk = keys.cohorts_index_pk(cohort.org_id)
        item.gsi1sk = keys.cohort_index_sk(cohort.start_date.isoformat(), cohort.cohort_id)
        pointer = MarkerItem(
            keys.waitlist_pk(cohort.org_id, cohort.transition),
            keys.waitlist_cohort_sk(cohort.transition, cohort.language),
            kind="waitlist_cohort",
            ref=cohort.cohort_id,
        )
        transaction = TransactWrite(connection=connection())
        transaction.save(item, condition=MainItem.pk.does_not_exist())
        transaction.save(
            pointer,
            condition=MarkerItem.pk.does_not_exist() if previous is None else MarkerItem.ref == previous,
        )
        outbox.add_events(transaction, events)
        try:
            with transaction:
                pass
        except TransactWriteError as exc:
            if failed_keys(transaction, exc) or lost_to_another_transaction(exc):
                return False
            raise
        return True

    def cohort(self, org_id: str, cohort_id: str) -> tuple[Cohort, int] | None:
        try:
            item = MainItem.get(keys.cohort_pk(org_id, cohort_id), keys.COHORT_SK, consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Cohort.model_validate_json(item.body), int(item.version or 0)

    def cohorts(self, org_id: str) -> list[Cohort]:
        items = MainItem.gsi1.query(keys.cohorts_index_pk(org_id), scan_index_forward=False)
        return [Cohort.model_validate_json(item.body) for item in items]

    def members(self, org_id: str, cohort_id: str) -> list[Enrolment]:
        items = MainItem.query(
            keys.cohort_pk(org_id, cohort_id), MainItem.sk.startswith(keys.MEMBER_PREFIX), consistent_read=True
        )
        return [Enrolment.model_validate_json(item.body) for item in items]

    def enrol(self, cohort: Cohort, enrolment: Enrolment, events: Sequence[Event]) -> None:
        partition = keys.cohort_pk(cohort.org_id, cohort.cohort_id)
        transaction = TransactWrite(connection=connection())
        transaction.condition_check(MainItem, partition, keys.COHORT_SK, condition=MainItem.pk.exists())
        seats = CounterItem(partition, keys.COHORT_SEATS_SK)
        transaction.update(
            seats,
            actions=[CounterItem.used.add(1), CounterItem.kind.set("cohort_seats")],
            condition=CounterItem.used.does_not_exist() | (CounterItem.used < cohort.size),
        )
        member = _entity_item(
            partition, keys.member_sk(enrolment.person_id), "cohort_member", enrolment.model_dump_json(), None
        )
        transaction.save(member)
        participation = MarkerItem(
            keys.person_pk(cohort.org_id, enrolment.person_id),
            keys.participation_sk("COHORT", cohort.cohort_id),
            kind="participation",
            ref=cohort.cohort_id,
        )
        transaction.save(participation)
        wait = MarkerItem(keys.waitlist_pk(cohort.org_id, cohort.transition), keys.waitlist_sk(enrolment.person_id))
        # From the wait-list: only while they still wait, so two cohorts never both take one person.
        transaction.delete(wait, condition=MarkerItem.pk.exists() if enrolment.source == "waitlist" else None)
        outbox.add_events(transaction, events)

        def refusal(failed: list[tuple[str, str]]) -> Exception:
            if (partition, keys.COHORT_SEATS_SK) in failed:
                return Conflict(f"this cohort is full ({cohort.size} places)", field="cohort_id")
            if (partition, keys.member_sk(enrolment.person_id)) in failed:
                return Conflict("this person is already enrolled in the cohort", field="person_id")
            if (wait.pk, wait.sk) in failed:
                return Conflict("this person no longer waits: another cohort took them", field="person_id")
            return Conflict("the cohort changed at the same time; try again", field="cohort_id")

        _commit(transaction, refusal)

    def schedule(self, session: GroupSession, events: Sequence[Event]) -> None:
        transaction = TransactWrite(connection=connection())
        item = _entity_item(
            keys.cohort_pk(session.org_id, session.cohort_id),
            keys.group_session_sk(session.index),
            "group_session",
            session.model_dump_json(),
            None,
        )
        transaction.save(item)
        for lock in _locks(session.coach_ids, session.coach_buckets(), session.session_id):
            transaction.save(lock, condition=MarkerItem.pk.does_not_exist())
        outbox.add_events(transaction, events)
        _commit(transaction, _conflict("this group session is already scheduled", "curriculum"))

    def unschedule(self, session: GroupSession) -> None:
        transaction = TransactWrite(connection=connection())
        # By key (a marker has no version attribute, so no version condition): the item this request wrote.
        transaction.delete(
            MarkerItem(keys.cohort_pk(session.org_id, session.cohort_id), keys.group_session_sk(session.index))
        )
        for lock in _locks(session.coach_ids, session.coach_buckets(), session.session_id):
            transaction.delete(lock, condition=MarkerItem.ref == session.session_id)
        _commit(transaction, _conflict("the group session changed at the same time", "curriculum"))

    def commit_match(
        self, cohort: Cohort, version: int, engagements: Sequence[Engagement], events: Sequence[Event]
    ) -> None:
        transaction = TransactWrite(connection=connection())
        item = _entity_item(
            keys.cohort_pk(cohort.org_id, cohort.cohort_id), keys.COHORT_SK, "cohort", cohort.model_dump_json(), version
        )
        item.gsi1pk = keys.cohorts_index_pk(cohort.org_id)
        item.gsi1sk = keys.cohort_index_sk(cohort.start_date.isoformat(), cohort.cohort_id)
        transaction.save(item)
        for engagement in engagements:
            partition = keys.person_pk(engagement.org_id, engagement.person_id)
            entity = _entity_item(
                partition,
                keys.engagement_sk(engagement.engagement_id),
                "engagement",
                engagement.model_dump_json(),
                None,
            )
            entity.gsi1pk = keys.coach_engagements_pk(engagement.coach_id)
            entity.gsi1sk = keys.engagement_sk(engagement.engagement_id)
            transaction.save(entity)
            marker = MarkerItem(
                partition, keys.active_sk(engagement.program.value), kind="active", ref=engagement.engagement_id
            )
            transaction.save(marker, condition=MarkerItem.pk.does_not_exist())
        outbox.add_events(transaction, events)

        def refusal(failed: list[tuple[str, str]]) -> Exception:
            active = [pk for pk, sk in failed if sk.startswith(keys.ACTIVE_PREFIX)]
            if active:
                return Conflict(
                    f"{len(active)} participant(s) already have an active GROW engagement", field="cohort_id"
                )
            return Conflict("the cohort changed at the same time; load it again", field="cohort_id")

        _commit(transaction, refusal)

    def group_sessions(self, org_id: str, cohort_id: str) -> list[tuple[GroupSession, int]]:
        items = MainItem.query(
            keys.cohort_pk(org_id, cohort_id), MainItem.sk.startswith(keys.GROUP_SESSION_PREFIX), consistent_read=True
        )
        return [(GroupSession.model_validate_json(item.body), int(item.version or 0)) for item in items]

    def complete_group_session(
        self,
        session: GroupSession,
        version: int,
        units: Mapping[str, tuple[str, str]],
        entries: Sequence[LedgerEntry],
        events: Sequence[Event],
    ) -> None:
        from coaching.domain.booking import period_of

        org = self.org(session.org_id)
        period = period_of(session.start, org.time_zone if org else "UTC")

        def write(transaction: TransactWrite) -> None:
            transaction.save(
                _entity_item(
                    keys.cohort_pk(session.org_id, session.cohort_id),
                    keys.group_session_sk(session.index),
                    "group_session",
                    session.model_dump_json(),
                    version,
                )
            )
            for unit, (person, status) in units.items():
                locator = _unit_locator(session.org_id, unit, person, session.coach_ids[0], status, period)
                transaction.save(locator, condition=LocatorItem.pk.does_not_exist())
            outbox.add_events(transaction, events)

        _commit_billed(write, entries, _conflict("this group session changed at the same time", "attendance"))

    # ------------------------------------------------------------------ wait-list
    # One wait-list per org and transition, shared with the HR integration: a promotion puts a person on it
    # (hr_store, WaitlistEntry), and so does an org admin here; an enrolment takes them off it.

    def waiting(self, org_id: str, transition: str) -> list[WaitEntry]:
        items = MainItem.query(
            keys.waitlist_pk(org_id, transition), MainItem.sk.startswith(keys.PERSON_PREFIX), consistent_read=True
        )
        entries = [WaitlistEntry.model_validate_json(item.body) for item in items]
        waiting = [
            WaitEntry(
                org_id=entry.org_id,
                person_id=entry.person_id,
                transition=entry.transition.value,
                language=entry.language,
                source=entry.source,
                since=entry.joined_at,
            )
            for entry in entries
            # An entry written before entries carried a language cannot join a cohort of one language.
            if entry.status is WaitlistStatus.WAITING and entry.language
        ]
        return sorted(waiting, key=lambda e: (e.since, e.person_id))

    def add(self, entry: WaitEntry) -> bool:
        waiting = WaitlistEntry(
            org_id=entry.org_id,
            transition=Transition(entry.transition),
            program=Program.GROW,
            person_id=entry.person_id,
            joined_at=entry.since,
            source="admin",
            language=entry.language,
        )
        item = _entity_item(
            keys.waitlist_pk(entry.org_id, entry.transition),
            keys.waitlist_sk(entry.person_id),
            "waitlist_entry",
            waiting.model_dump_json(),
            None,
        )
        # Never over a promotion's entry (or an earlier one): the person already waits. No event rides with it,
        # so a conditional PutItem does.
        try:
            item.save(condition=MainItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ------------------------------------------------------------------ workshops

    def book_workshop(self, workshop: Workshop, events: Sequence[Event]) -> None:
        transaction = TransactWrite(connection=connection())
        transaction.save(
            _entity_item(
                keys.workshop_pk(workshop.org_id, workshop.workshop_id),
                keys.WORKSHOP_SK,
                "workshop",
                workshop.model_dump_json(),
                None,
            )
        )
        for lock in _locks([workshop.facilitator_id], workshop.coach_buckets(), workshop.workshop_id):
            transaction.save(lock, condition=MarkerItem.pk.does_not_exist())
        for person in workshop.participants:
            transaction.save(
                MarkerItem(
                    keys.person_pk(workshop.org_id, person),
                    keys.participation_sk("WORKSHOP", workshop.workshop_id),
                    kind="participation",
                    ref=workshop.workshop_id,
                )
            )
        outbox.add_events(transaction, events)
        _commit(transaction, _conflict("this workshop already exists", "workshop_id"))

    def workshop(self, org_id: str, workshop_id: str) -> tuple[Workshop, int] | None:
        try:
            item = MainItem.get(keys.workshop_pk(org_id, workshop_id), keys.WORKSHOP_SK, consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Workshop.model_validate_json(item.body), int(item.version or 0)

    def end_workshop(
        self,
        workshop: Workshop,
        version: int,
        *,
        release: bool,
        units: Mapping[str, tuple[str, str]],
        entries: Sequence[LedgerEntry],
        events: Sequence[Event],
    ) -> None:
        from coaching.domain.booking import period_of

        org = self.org(workshop.org_id)
        period = period_of(workshop.start, org.time_zone if org else "UTC")

        def write(transaction: TransactWrite) -> None:
            transaction.save(
                _entity_item(
                    keys.workshop_pk(workshop.org_id, workshop.workshop_id),
                    keys.WORKSHOP_SK,
                    "workshop",
                    workshop.model_dump_json(),
                    version,
                )
            )
            if release:
                for lock in _locks([workshop.facilitator_id], workshop.coach_buckets(), workshop.workshop_id):
                    transaction.delete(lock, condition=MarkerItem.ref == workshop.workshop_id)
            for unit, (person, status) in units.items():
                locator = _unit_locator(workshop.org_id, unit, person, workshop.facilitator_id, status, period)
                transaction.save(locator, condition=LocatorItem.pk.does_not_exist())
            outbox.add_events(transaction, events)

        _commit_billed(write, entries, _conflict("this workshop changed at the same time", "workshop_id"))

    # ------------------------------------------------------------------ timeline

    def person_records(
        self, org_id: str, person_id: str
    ) -> tuple[list[Engagement], list[Booking], list[GroupSession], list[Workshop]]:
        """One Query of the person's partition, then the group sessions of their cohorts and their workshops."""
        engagements: list[Engagement] = []
        bookings: list[Booking] = []
        cohort_ids: list[str] = []
        workshop_keys: list[tuple[str, str]] = []
        for item in MainItem.query(keys.person_pk(org_id, person_id), consistent_read=True):
            if item.sk.startswith(keys.engagement_sk("")):
                engagements.append(Engagement.model_validate_json(item.body))
            elif item.sk.startswith(keys.BOOKING_PREFIX):
                bookings.append(Booking.model_validate_json(item.body))
            elif item.sk.startswith(keys.participation_sk("COHORT", "")):
                cohort_ids.append(item.sk.removeprefix(keys.participation_sk("COHORT", "")))
            elif item.sk.startswith(keys.participation_sk("WORKSHOP", "")):
                workshop_id = item.sk.removeprefix(keys.participation_sk("WORKSHOP", ""))
                workshop_keys.append((keys.workshop_pk(org_id, workshop_id), keys.WORKSHOP_SK))
        sessions = [s for cohort_id in cohort_ids for s, _ in self.group_sessions(org_id, cohort_id)]
        workshops = [Workshop.model_validate_json(i["body"]["S"]) for i in batch_read(workshop_keys).values()]
        return engagements, bookings, sessions, workshops

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None:
        return self._matching.coach_engagement(coach_id, engagement_id)
