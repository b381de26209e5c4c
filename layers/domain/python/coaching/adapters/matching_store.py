"""Persistence for matching: match requests, engagements, coach loads, gaps and situations.

A person's matching history lives in their own partition (``ORG#<org>#PERSON#<person>``),
so one Query returns everything continuity and exclusions need. Choosing a coach is one
transaction: the engagement, the person's one-active-engagement-per-program marker, the
coach's load (conditional on capacity) and the match request (conditional on its version).
Every write that changes state commits its events in the same transaction (the outbox).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.adapters.dynamo import (
    MainItem,
    MainTableMeta,
    MarkerItem,
    SituationItem,
    batch_read,
    connection,
    failed_keys,
)
from coaching.adapters.outbox import add_events
from coaching.domain.engagements import Engagement, HistorySummary, MatchRecord, PersonHistory
from coaching.domain.errors import ChooseRefused, Conflict
from coaching.domain.events import Event
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.programmes import ProgrammeCatalogue

__all__ = ["GAPS_INDEX_PK", "HistoryItem", "LoadItem", "MatchingStore", "PersonHistory"]


class LoadItem(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="coach_load")
    active = NumberAttribute(null=True)


class HistoryItem(Model):
    """A person's match-history summary (HistorySummary): add-only string sets, updated inside the
    transactions that change the history, so no write needs to read it first."""

    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="history_summary")
    declined = UnicodeSetAttribute(null=True)
    started = UnicodeSetAttribute(null=True)
    ended = UnicodeSetAttribute(null=True)


def _summary_update(
    transaction: TransactWrite,
    org_id: str,
    person_id: str,
    *,
    declined: Iterable[str] = (),
    started: Iterable[Engagement] = (),
    ended: Iterable[Engagement] = (),
) -> None:
    """One update of the summary item (a transaction may touch an item once): the sets only grow."""
    actions: list[Action] = []
    for attribute, values in (
        (HistoryItem.declined, set(declined)),
        (HistoryItem.started, {HistorySummary.started_entry(e) for e in started}),
        (HistoryItem.ended, {HistorySummary.ended_entry(e) for e in ended}),
    ):
        if values:
            actions.append(attribute.add(values))
    if actions:
        actions.append(HistoryItem.kind.set("history_summary"))
        transaction.update(HistoryItem(*keys.history_summary_key(org_id, person_id)), actions=actions)


def _summary(item: dict[str, Any] | None) -> HistorySummary:
    if item is None:
        return HistorySummary()
    return HistorySummary(
        declined=frozenset(item.get("declined", {}).get("SS", ())),
        started=frozenset(item.get("started", {}).get("SS", ())),
        ended=frozenset(item.get("ended", {}).get("SS", ())),
    )


def catalogue_from_item(org_id: str, item: dict[str, Any] | None) -> tuple[ProgrammeCatalogue, int | None]:
    """The catalogue item as read raw (BatchGetItem) and its version; the shipped defaults with None when absent."""
    if item is None:
        return ProgrammeCatalogue.defaults(org_id), None
    version = int(item["version"]["N"]) if "version" in item else 0
    return ProgrammeCatalogue.model_validate_json(item["body"]["S"]), version


# Imported from here by other modules; its one home is `keys`.
GAPS_INDEX_PK = keys.GAPS_INDEX_PK


def _engagement_item(engagement: Engagement) -> MainItem:
    item = MainItem(
        keys.person_pk(engagement.org_id, engagement.person_id),
        keys.engagement_sk(engagement.engagement_id),
        kind="engagement",
        body=engagement.model_dump_json(),
    )
    item.gsi1pk = keys.coach_engagements_pk(engagement.coach_id)
    item.gsi1sk = keys.engagement_sk(engagement.engagement_id)
    return item


def _marker(engagement: Engagement) -> MarkerItem:
    return MarkerItem(
        keys.person_pk(engagement.org_id, engagement.person_id),
        keys.active_sk(engagement.program.value),
        kind="active_engagement",
        ref=engagement.engagement_id,
    )


def _situation(match: MatchRecord, text: str) -> SituationItem:
    return SituationItem(
        keys.person_pk(match.org_id, match.person_id),
        keys.match_situation_sk(match.match_id),
        text=text,
        created_at=match.created_at.isoformat(),
    )


def _match_key(match: MatchRecord) -> tuple[str, str]:
    return keys.person_pk(match.org_id, match.person_id), keys.match_sk(match.match_id)


def _match_item(match: MatchRecord, version: int | None) -> MainItem:
    item = MainItem(
        *_match_key(match),
        kind="match",
        body=match.model_dump_json(),
    )
    if version is not None:
        item.version = version
    return item


class MatchingStore:
    # ------------------------------------------------------------------ reads

    def history(self, org_id: str, person_id: str) -> PersonHistory:
        matches: list[tuple[MatchRecord, int]] = []
        engagements: list[tuple[Engagement, int]] = []
        for item in MainItem.query(keys.person_pk(org_id, person_id), consistent_read=True):
            if item.kind == "match":
                matches.append((MatchRecord.model_validate_json(item.body), int(item.version or 0)))
            elif item.kind == "engagement":
                engagements.append((Engagement.model_validate_json(item.body), int(item.version or 0)))
        return PersonHistory(matches=matches, engagements=engagements)

    def person_with_history(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None, HistorySummary]:
        """The org, the person and their history summary in one strongly consistent BatchGetItem."""
        org, person, summary, _ = self._read_person(org_id, person_id, with_catalogue=False)
        return org, person, summary

    def person_for_request(
        self, org_id: str, person_id: str
    ) -> tuple[Org | None, Person | None, HistorySummary, ProgrammeCatalogue]:
        """The org, the person, their history summary and the org's programme catalogue (the shipped
        defaults when never changed): one strongly consistent BatchGetItem for a match request."""
        return self._read_person(org_id, person_id, with_catalogue=True)

    def _read_person(
        self, org_id: str, person_id: str, *, with_catalogue: bool
    ) -> tuple[Org | None, Person | None, HistorySummary, ProgrammeCatalogue]:
        org_key = (keys.org_pk(org_id), keys.ORG_PROFILE_SK)
        person_key = (keys.people_pk(org_id), keys.person_sk(person_id))
        summary_key = keys.history_summary_key(org_id, person_id)
        catalogue_key = (keys.org_pk(org_id), keys.PROGRAMMES_SK)
        found = batch_read([org_key, person_key, summary_key, *([catalogue_key] if with_catalogue else [])])
        org, person = found.get(org_key), found.get(person_key)
        return (
            Org.model_validate_json(org["body"]["S"]) if org else None,
            Person.model_validate_json(person["body"]["S"]) if person else None,
            _summary(found.get(summary_key)),
            catalogue_from_item(org_id, found.get(catalogue_key))[0],
        )

    def catalogue(self, org_id: str) -> tuple[ProgrammeCatalogue, int | None]:
        """The org's programme catalogue (who each programme is for), the shipped defaults when never changed.

        Here, not only in the programme store, so the matching function reads it without loading the
        programme store and the billing code it brings."""
        key = (keys.org_pk(org_id), keys.PROGRAMMES_SK)
        return catalogue_from_item(org_id, batch_read([key]).get(key))

    def summaries(self, org_id: str, person_ids: Iterable[str]) -> dict[str, HistorySummary]:
        """Each person's history summary: BatchGetItem, 100 keys a round trip (cohort launches)."""
        wanted = {keys.history_summary_key(org_id, pid): pid for pid in dict.fromkeys(person_ids)}
        found = batch_read(wanted)
        return {pid: _summary(found.get(key)) for key, pid in wanted.items()}

    def match(self, org_id: str, person_id: str, match_id: str) -> tuple[MatchRecord, int] | None:
        try:
            item = MainItem.get(keys.person_pk(org_id, person_id), keys.match_sk(match_id), consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return MatchRecord.model_validate_json(item.body), int(item.version or 0)

    def engagement(self, org_id: str, person_id: str, engagement_id: str) -> tuple[Engagement, int] | None:
        try:
            item = MainItem.get(
                keys.person_pk(org_id, person_id), keys.engagement_sk(engagement_id), consistent_read=True
            )
        except MainItem.DoesNotExist:
            return None
        return Engagement.model_validate_json(item.body), int(item.version or 0)

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None:
        for item in MainItem.gsi1.query(
            keys.coach_engagements_pk(coach_id), MainItem.gsi1sk == keys.engagement_sk(engagement_id)
        ):
            return Engagement.model_validate_json(item.body)
        return None

    def coach_engagements(self, coach_id: str) -> list[Engagement]:
        """Every engagement of a coach, past and present, through the coach's index (gsi1).

        The index is eventually consistent: callers re-read an engagement before changing it.
        """
        items = MainItem.gsi1.query(keys.coach_engagements_pk(coach_id))
        return [Engagement.model_validate_json(item.body) for item in items]

    def loads(self, coach_ids: Iterable[str]) -> dict[str, int]:
        """Active coachees per coach (BatchGetItem; a coach without a load item has none)."""
        wanted = list(dict.fromkeys(coach_ids))
        found = dict.fromkeys(wanted, 0)
        for item in LoadItem.batch_get([(keys.COACHES_PK, keys.load_sk(c)) for c in wanted]):
            found[keys.coach_id_from_load_sk(item.sk)] = int(item.active or 0)
        return found

    def all_loads(self) -> dict[str, int]:
        """Every coach's load in one Query (the cohort matcher needs them all)."""
        return {
            keys.coach_id_from_load_sk(item.sk): int(item.active or 0)
            for item in LoadItem.query(keys.COACHES_PK, LoadItem.sk.startswith(keys.LOAD_PREFIX))
        }

    def gaps(self, limit: int) -> list[dict[str, Any]]:
        """Newest first across orgs, through the platform index (operators only)."""
        results = MainItem.gsi1.query(keys.GAPS_INDEX_PK, scan_index_forward=False, limit=limit)
        return [json.loads(item.body) for item in results]

    # ------------------------------------------------------------------ writes

    def save_new_match(
        self, match: MatchRecord, situation: str | None, events: Sequence[Event] = (), *, exists_ok: bool = False
    ) -> None:
        """The request, what the person wrote and its events, together or not at all (one round trip).

        `exists_ok` makes a retried, deterministic id (an event's re-match) a no-op: the match
        (or its stable event id) is already there, so nothing is written twice.
        """
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                transaction.save(_match_item(match, None), condition=MainItem.pk.does_not_exist())
                if situation is not None:
                    transaction.save(_situation(match, situation))
                add_events(transaction, events)
        except TransactWriteError as exc:
            if not (exists_ok and failed_keys(transaction, exc)):
                raise

    def update_match(self, match: MatchRecord, version: int) -> None:
        """Conditional on `version`; the coaches it declined join the history summary in the same transaction."""
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                transaction.save(_match_item(match, version))
                _summary_update(transaction, match.org_id, match.person_id, declined=match.declined)
        except TransactWriteError as exc:
            if _match_key(match) in failed_keys(transaction, exc):
                raise Conflict("this match changed while you were deciding; load it again") from exc
            raise

    def record_gap(self, org_id: str, at: datetime, gap_id: str, detail: dict[str, Any]) -> None:
        """Kept in the org's partition; the platform index lets operators see every org's gaps."""
        item = MainItem(keys.gaps_pk(org_id), keys.gap_sk(at, gap_id), kind="gap", body=json.dumps(detail))
        item.gsi1pk, item.gsi1sk = keys.GAPS_INDEX_PK, keys.gap_sk(at, gap_id)
        item.save()

    def choose(
        self,
        match: MatchRecord,
        match_version: int,
        engagement: Engagement,
        capacity: int,
        ends: Sequence[tuple[Engagement, int]] = (),
        events: Sequence[Event] = (),
    ) -> None:
        """Create the engagement and take one unit of capacity, atomically, or refuse.

        `ends` are engagements the new one replaces (a promotion re-match): they end in the
        same transaction, handing the programme's marker over and freeing their coach's place.
        """
        marker = _marker(engagement)
        ended_ids = {e.engagement_id for e, _ in ends}
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                transaction.save(_match_item(match, match_version))
                transaction.save(_engagement_item(engagement), condition=MainItem.pk.does_not_exist())
                for ended, version in ends:
                    item = _engagement_item(ended)
                    item.version = version
                    transaction.save(item)
                if any(e.program == engagement.program for e, _ in ends):
                    # The replaced engagement's marker is handed over to the new one.
                    transaction.save(marker, condition=MarkerItem.ref.is_in(*ended_ids))
                else:
                    transaction.save(marker, condition=MarkerItem.pk.does_not_exist())
                _take_place(transaction, engagement.coach_id, capacity)
                for ended, _ in ends:
                    _free_place(transaction, ended.coach_id)
                _summary_update(
                    transaction,
                    engagement.org_id,
                    engagement.person_id,
                    started=[engagement],
                    ended=[e for e, _ in ends],
                )
                add_events(transaction, events)
        except TransactWriteError as exc:
            raise _refusal(failed_keys(transaction, exc), match, engagement) from exc

    def start_engagement(self, engagement: Engagement, capacity: int, events: Sequence[Event] = ()) -> None:
        """An engagement without a match request (cohort launch): same marker and capacity rules."""
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                transaction.save(_engagement_item(engagement), condition=MainItem.pk.does_not_exist())
                transaction.save(_marker(engagement), condition=MarkerItem.pk.does_not_exist())
                _take_place(transaction, engagement.coach_id, capacity)
                _summary_update(transaction, engagement.org_id, engagement.person_id, started=[engagement])
                add_events(transaction, events)
        except TransactWriteError as exc:
            refusal = _refusal(failed_keys(transaction, exc), None, engagement)
            # Cohort launches report refusals per participant, in the third person.
            message = _COHORT_REFUSALS.get(refusal.field or "", refusal.message)
            raise type(refusal)(message, field=refusal.field) from exc

    def end_and_propose(
        self,
        ended: Engagement,
        version: int,
        match: MatchRecord,
        situation: str | None,
        events: Sequence[Event] = (),
    ) -> None:
        """A change of coach in one transaction: the engagement ends, the new request is stored.

        Either the person has their new proposals and their old coach's place is free, or
        nothing happened: never an ended engagement without the request that replaces it.
        """
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                _add_end(transaction, ended, version)
                transaction.save(_match_item(match, None), condition=MainItem.pk.does_not_exist())
                if situation is not None:
                    transaction.save(_situation(match, situation))
                add_events(transaction, events)
        except TransactWriteError as exc:
            raise Conflict("this engagement changed at the same time; load it again") from exc

    def end_engagement(self, ended: Engagement, version: int, events: Sequence[Event] = ()) -> None:
        """The platform ends an engagement with nothing to propose instead (nobody else fits,
        or the person is inactive): the engagement, its marker and the coach's place, with its events."""
        transaction = TransactWrite(connection=connection())
        try:
            with transaction:
                _add_end(transaction, ended, version)
                add_events(transaction, events)
        except TransactWriteError as exc:
            raise Conflict("this engagement changed at the same time; load it again") from exc


_COHORT_REFUSALS = {
    "program": "already has an active engagement in this programme",
    "coach_id": "the coach reached capacity before this engagement",
}


def _take_place(transaction: TransactWrite, coach_id: str, capacity: int) -> None:
    transaction.update(
        LoadItem(keys.COACHES_PK, keys.load_sk(coach_id)),
        actions=[LoadItem.active.add(1)],
        condition=LoadItem.active.does_not_exist() | (LoadItem.active < capacity),
    )


def _free_place(transaction: TransactWrite, coach_id: str) -> None:
    transaction.update(
        LoadItem(keys.COACHES_PK, keys.load_sk(coach_id)),
        actions=[LoadItem.active.add(-1)],
        condition=LoadItem.active > 0,
    )


def _add_end(transaction: TransactWrite, engagement: Engagement, version: int) -> None:
    item = _engagement_item(engagement)
    item.version = version
    marker = MarkerItem(
        keys.person_pk(engagement.org_id, engagement.person_id), keys.active_sk(engagement.program.value)
    )
    transaction.save(item)
    transaction.delete(marker, condition=MarkerItem.ref == engagement.engagement_id)
    _free_place(transaction, engagement.coach_id)
    _summary_update(transaction, engagement.org_id, engagement.person_id, ended=[engagement])


def _refusal(failed: list[tuple[str, str]], match: MatchRecord | None, engagement: Engagement) -> Conflict:
    """The first failed condition, as the rule it enforces."""
    person = keys.person_pk(engagement.org_id, engagement.person_id)
    for key in failed:
        if match is not None and key == _match_key(match):
            return ChooseRefused("this match was already decided; load it again", field="match_id")
        if key == (person, keys.active_sk(engagement.program.value)):
            return ChooseRefused("you already have an active engagement in this programme", field="program")
        if key == (keys.COACHES_PK, keys.load_sk(engagement.coach_id)):
            return ChooseRefused("this coach has just reached capacity; choose another coach", field="coach_id")
    return Conflict("the choice could not be saved; try again")
