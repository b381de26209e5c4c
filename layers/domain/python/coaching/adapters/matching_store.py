"""Persistence for matching: match requests, engagements, coach loads, gaps and situations.

A person's matching history lives in their own partition (``ORG#<org>#PERSON#<person>``),
so one Query returns everything continuity and exclusions need. Choosing a coach is one
transaction: the engagement, the person's one-active-engagement-per-program marker, the
coach's load (conditional on capacity) and the match request (conditional on its version).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.adapters.dynamo import (
    MainItem,
    MainTableMeta,
    MarkerItem,
    SituationItem,
    connection,
    is_transaction_conflict,
)
from coaching.domain.engagements import Engagement, MatchRecord
from coaching.domain.errors import ChooseRefused, Conflict


class LoadItem(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="coach_load")
    active = NumberAttribute(null=True)


GAPS_INDEX_PK = "PLATFORM#GAPS"


def _load_sk(coach_id: str) -> str:
    return f"LOAD#{coach_id}"


def _engagement_item(engagement: Engagement) -> MainItem:
    item = MainItem(
        keys.person_pk(engagement.org_id, engagement.person_id),
        f"ENGAGEMENT#{engagement.engagement_id}",
        kind="engagement",
        body=engagement.model_dump_json(),
    )
    item.gsi1pk = f"COACH#{engagement.coach_id}#ENGAGEMENTS"
    item.gsi1sk = f"ENGAGEMENT#{engagement.engagement_id}"
    return item


def _match_item(match: MatchRecord, version: int | None) -> MainItem:
    item = MainItem(
        keys.person_pk(match.org_id, match.person_id),
        f"MATCH#{match.match_id}",
        kind="match",
        body=match.model_dump_json(),
    )
    if version is not None:
        item.version = version
    return item


@dataclass(frozen=True, slots=True)
class PersonHistory:
    matches: list[tuple[MatchRecord, int]]
    engagements: list[tuple[Engagement, int]]


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

    def match(self, org_id: str, person_id: str, match_id: str) -> tuple[MatchRecord, int] | None:
        try:
            item = MainItem.get(keys.person_pk(org_id, person_id), f"MATCH#{match_id}", consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return MatchRecord.model_validate_json(item.body), int(item.version or 0)

    def engagement(self, org_id: str, person_id: str, engagement_id: str) -> tuple[Engagement, int] | None:
        try:
            item = MainItem.get(keys.person_pk(org_id, person_id), f"ENGAGEMENT#{engagement_id}", consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Engagement.model_validate_json(item.body), int(item.version or 0)

    def coach_engagement(self, coach_id: str, engagement_id: str) -> Engagement | None:
        for item in MainItem.gsi1.query(
            f"COACH#{coach_id}#ENGAGEMENTS", MainItem.gsi1sk == f"ENGAGEMENT#{engagement_id}"
        ):
            return Engagement.model_validate_json(item.body)
        return None

    def loads(self, coach_ids: Iterable[str]) -> dict[str, int]:
        """Active coachees per coach (BatchGetItem; a coach without a load item has none)."""
        wanted = list(dict.fromkeys(coach_ids))
        found = dict.fromkeys(wanted, 0)
        for item in LoadItem.batch_get([(keys.COACHES_PK, _load_sk(c)) for c in wanted]):
            found[item.sk.removeprefix("LOAD#")] = int(item.active or 0)
        return found

    def all_loads(self) -> dict[str, int]:
        """Every coach's load in one Query (the cohort matcher needs them all)."""
        return {
            item.sk.removeprefix("LOAD#"): int(item.active or 0)
            for item in LoadItem.query(keys.COACHES_PK, LoadItem.sk.startswith("LOAD#"))
        }

    def gaps(self, limit: int) -> list[dict]:
        """Newest first across orgs, through the platform index (operators only)."""
        results = MainItem.gsi1.query(GAPS_INDEX_PK, scan_index_forward=False, limit=limit)
        return [json.loads(item.body) for item in results]

    # ------------------------------------------------------------------ writes

    def save_new_match(self, match: MatchRecord, situation: str | None, *, exists_ok: bool = False) -> None:
        """The request and what the person wrote, together or not at all (one round trip).

        `exists_ok` makes a retried, deterministic id (an event's re-match) a no-op.
        """
        try:
            self._insert_match(match, situation)
        except TransactWriteError as exc:
            if not (exists_ok and is_transaction_conflict(exc)):
                raise

    def _insert_match(self, match: MatchRecord, situation: str | None) -> None:
        with TransactWrite(connection=connection()) as transaction:
            transaction.save(_match_item(match, None), condition=MainItem.pk.does_not_exist())
            if situation is not None:
                transaction.save(
                    SituationItem(
                        keys.person_pk(match.org_id, match.person_id),
                        f"SITUATION#{match.match_id}",
                        text=situation,
                        created_at=match.created_at.isoformat(),
                    )
                )

    def update_match(self, match: MatchRecord, version: int) -> None:
        item = _match_item(match, version)
        try:
            item.save()
        except Exception as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise Conflict("this match changed while you were deciding; load it again") from exc
            raise

    def record_gap(self, org_id: str, at: datetime, gap_id: str, detail: dict) -> None:
        """Kept in the org's partition; the platform index lets operators see every org's gaps."""
        item = MainItem(f"ORG#{org_id}#GAPS", f"{at.isoformat()}#{gap_id}", kind="gap", body=json.dumps(detail))
        item.gsi1pk, item.gsi1sk = GAPS_INDEX_PK, f"{at.isoformat()}#{gap_id}"
        item.save()

    def choose(
        self,
        match: MatchRecord,
        match_version: int,
        engagement: Engagement,
        capacity: int,
        ends: Sequence[tuple[Engagement, int]] = (),
    ) -> None:
        """Create the engagement and take one unit of capacity, atomically, or refuse."""
        marker = MarkerItem(
            keys.person_pk(engagement.org_id, engagement.person_id),
            f"ACTIVE#{engagement.program.value}",
            kind="active_engagement",
            ref=engagement.engagement_id,
        )
        load = LoadItem(keys.COACHES_PK, _load_sk(engagement.coach_id))
        ended_ids = {e.engagement_id for e, _ in ends}
        try:
            with TransactWrite(connection=connection()) as transaction:
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
                transaction.update(
                    load,
                    actions=[LoadItem.active.add(1)],
                    condition=LoadItem.active.does_not_exist() | (LoadItem.active < capacity),
                )
                for ended, _ in ends:
                    transaction.update(
                        LoadItem(keys.COACHES_PK, _load_sk(ended.coach_id)),
                        actions=[LoadItem.active.add(-1)],
                        condition=LoadItem.active > 0,
                    )
        except TransactWriteError as exc:
            raise _choose_refusal(exc, ends) from exc

    def start_engagement(self, engagement: Engagement, capacity: int) -> None:
        """An engagement without a match request (cohort launch): same marker and capacity rules."""
        marker = MarkerItem(
            keys.person_pk(engagement.org_id, engagement.person_id),
            f"ACTIVE#{engagement.program.value}",
            kind="active_engagement",
            ref=engagement.engagement_id,
        )
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(_engagement_item(engagement), condition=MainItem.pk.does_not_exist())
                transaction.save(marker, condition=MarkerItem.pk.does_not_exist())
                transaction.update(
                    LoadItem(keys.COACHES_PK, _load_sk(engagement.coach_id)),
                    actions=[LoadItem.active.add(1)],
                    condition=LoadItem.active.does_not_exist() | (LoadItem.active < capacity),
                )
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons or []
            if len(reasons) > 1 and reasons[1] is not None and reasons[1].code == "ConditionalCheckFailed":
                raise ChooseRefused("already has an active engagement in this programme", field="program") from exc
            raise ChooseRefused("the coach reached capacity before this engagement", field="coach_id") from exc

    def end(self, engagement: Engagement, version: int) -> None:
        """End an engagement: free the person's program slot and the coach's capacity."""
        item = _engagement_item(engagement)
        item.version = version
        marker = MarkerItem(
            keys.person_pk(engagement.org_id, engagement.person_id), f"ACTIVE#{engagement.program.value}"
        )
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(item)
                transaction.delete(marker, condition=MarkerItem.ref == engagement.engagement_id)
                transaction.update(
                    LoadItem(keys.COACHES_PK, _load_sk(engagement.coach_id)),
                    actions=[LoadItem.active.add(-1)],
                    condition=LoadItem.active > 0,
                )
        except TransactWriteError as exc:
            raise Conflict("this engagement changed at the same time; load it again") from exc


def _choose_refusal(exc: TransactWriteError, ends: Sequence[tuple[Engagement, int]]) -> Conflict:
    reasons = exc.cancellation_reasons or []
    failed = [i for i, reason in enumerate(reasons) if reason is not None and reason.code == "ConditionalCheckFailed"]
    if not failed:
        return Conflict("the choice could not be saved; try again")
    # Item order: match, engagement, ended engagements..., marker, load, old loads...
    marker_index = 2 + len(ends)
    load_index = marker_index + 1
    index = failed[0]
    if index == 0:
        return ChooseRefused("this match was already decided; load it again", field="match_id")
    if index == marker_index:
        return ChooseRefused("you already have an active engagement in this programme", field="program")
    if index == load_index:
        return ChooseRefused("this coach has just reached capacity; choose another coach", field="coach_id")
    return Conflict("the choice could not be saved; try again")
