"""Rollups on DynamoDB: contributions, cells, the month's META, and the reports' read side.

Write side (the rollups function): `RollupSourceStore` reads source records (org, people, a person's
bookings, engagements and programme participation markers, the group sessions and cohort item of their GROW
cohorts, their TOGETHER workshops, the ledger for spend); `RollupStore` keeps one versioned contribution item per
person and month (`ORG#<org>#CONTRIB#<month>` / `P#<pseudonym>`) and the month's cells
(`ORG#<org>#ROLLUP#<month>` / `CELL#<digest>`, integer counters as attributes) in one TransactWriteItems:
the contribution conditional on the version read, and an `ADD` of the difference to every cell.

Read side (report_generation): `ReportReader` Queries the rollup partition (cells and META), the tally
partition and the report partition; nothing else, which is all its IAM role allows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pynamodb.exceptions import TransactWriteError

from coaching.adapters import keys
from coaching.adapters.dynamo import MainItem, OrgRepository, batch_read, connection, get_entity
from coaching.adapters.outbox import commit_events
from coaching.config import settings
from coaching.domain.booking import Booking
from coaching.domain.engagements import Engagement
from coaching.domain.events import Event
from coaching.domain.grow import Cohort, GroupSession
from coaching.domain.measures import Dimensions, TallyCell
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.domain.report_views import CachedTrendPoint
from coaching.domain.reporting import CellKey, Contribution
from coaching.domain.rollups import Counters
from coaching.domain.workshops import Workshop
from coaching.services.rollups import PersonSource, RollupMeta

_NOT_COUNTERS = {"pk", "sk", "kind", "key", "dims", "org_id", "period", "body", "version"}
_ORG_PAGE = 100


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def cell_digest(key: CellKey) -> str:
    return hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()[:24]


def _query(pk: str, prefix: str | None = None, *, consistent: bool = False) -> Iterator[dict[str, Any]]:
    """Every item of a partition (optionally of a sort-key prefix), page by page, as DynamoDB JSON."""
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {
            "TableName": settings().main_table,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": _s(pk)} | ({":prefix": _s(prefix)} if prefix else {}),
            "ConsistentRead": consistent,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if start:
            request["ExclusiveStartKey"] = start
        response = connection().dispatch("Query", request)
        QUERY_STATS.add(response)
        yield from response.get("Items", [])
        start = response.get("LastEvaluatedKey")
        if not start:
            return


class _QueryStats:
    """Read capacity the Queries of this process consumed (the reports bench prints it)."""

    def __init__(self) -> None:
        self.read_units = 0.0
        self.queries = 0
        self.items = 0

    def add(self, response: dict[str, Any]) -> None:
        self.queries += 1
        self.items += int(response.get("Count", 0))
        self.read_units += float((response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0))

    def reset(self) -> None:
        self.read_units, self.queries, self.items = 0.0, 0, 0


QUERY_STATS = _QueryStats()


def _cell_of(raw: dict[str, Any]) -> tuple[CellKey, Counters]:
    key: CellKey = tuple((d, v) for d, v in json.loads(raw["key"]["S"]))
    counters = {name: int(value["N"]) for name, value in raw.items() if name not in _NOT_COUNTERS and "N" in value}
    return key, counters


def read_cells(org_id: str, period: str, *, consistent: bool = False) -> dict[CellKey, Counters]:
    cells = dict(_cell_of(raw) for raw in _query(keys.rollup_pk(org_id, period), keys.CELL_PREFIX,
                                                  consistent=consistent))  # fmt: skip
    return dict(sorted(cells.items()))


class RollupSourceStore:
    """Source records for the rollups (never granted to report_generation)."""

    def org(self, org_id: str) -> Org | None:
        return OrgRepository().get(org_id)

    def org_ids(self) -> Iterable[str]:
        cursor: str | None = None
        while True:
            page = OrgRepository().list(limit=_ORG_PAGE, cursor=cursor)
            yield from (org.org_id for org in page.items)
            cursor = page.next_cursor
            if not cursor:
                return

    def _history(
        self,
        org_id: str,
        person_id: str,
        person: Person | None,
        seen: dict[tuple[str, str], tuple[Cohort | None, list[GroupSession]]] | None = None,
    ) -> PersonSource:
        """The person's bookings, engagements and programme participation (`seen`: cohorts already read)."""
        bookings: list[Booking] = []
        engagements: list[Engagement] = []
        pk = keys.person_pk(org_id, person_id)
        for item in MainItem.query(pk, MainItem.sk.startswith(keys.BOOKING_PREFIX), consistent_read=True):
            bookings.append(Booking.model_validate_json(item.body))
        for item in MainItem.query(pk, MainItem.sk.startswith(keys.engagement_sk("")), consistent_read=True):
            engagements.append(Engagement.model_validate_json(item.body))
        cohort_prefix, workshop_prefix = keys.participation_sk("COHORT", ""), keys.participation_sk("WORKSHOP", "")
        cohort_ids: list[str] = []
        workshop_keys: list[tuple[str, str]] = []
        for item in MainItem.query(pk, MainItem.sk.startswith(keys.PROGRAMME_PREFIX), consistent_read=True):
            if item.sk.startswith(cohort_prefix):
                cohort_ids.append(item.sk.removeprefix(cohort_prefix))
            elif item.sk.startswith(workshop_prefix):
                workshop_id = item.sk.removeprefix(workshop_prefix)
                workshop_keys.append((keys.workshop_pk(org_id, workshop_id), keys.WORKSHOP_SK))
        seen = {} if seen is None else seen
        cohorts: list[Cohort] = []
        sessions: list[GroupSession] = []
        for cohort_id in sorted(cohort_ids):
            if (org_id, cohort_id) not in seen:
                seen[(org_id, cohort_id)] = (self.cohort(org_id, cohort_id), self._sessions(org_id, cohort_id))
            cohort, found = seen[(org_id, cohort_id)]
            cohorts.extend([cohort] if cohort else [])
            sessions.extend(found)
        workshops = [Workshop.model_validate_json(i["body"]["S"]) for i in batch_read(workshop_keys).values()]
        return PersonSource(person=person, bookings=bookings, engagements=engagements, group_sessions=sessions,
                            workshops=workshops, cohorts=cohorts)  # fmt: skip

    def person(self, org_id: str, person_id: str) -> PersonSource:
        person = get_entity(keys.people_pk(org_id), keys.person_sk(person_id), Person)
        return self._history(org_id, person_id, person)

    def people(self, org_id: str) -> Iterable[PersonSource]:
        seen: dict[tuple[str, str], tuple[Cohort | None, list[GroupSession]]] = {}  # one read per cohort
        for item in MainItem.query(keys.people_pk(org_id), MainItem.sk.startswith(keys.PERSON_PREFIX)):
            person = Person.model_validate_json(item.body)
            yield self._history(org_id, person.person_id, person, seen)

    def cohort(self, org_id: str, cohort_id: str) -> Cohort | None:
        return get_entity(keys.cohort_pk(org_id, cohort_id), keys.COHORT_SK, Cohort)

    @staticmethod
    def _sessions(org_id: str, cohort_id: str) -> list[GroupSession]:
        items = MainItem.query(keys.cohort_pk(org_id, cohort_id), MainItem.sk.startswith(keys.GROUP_SESSION_PREFIX),
                               consistent_read=True)  # fmt: skip
        return [GroupSession.model_validate_json(item.body) for item in items]

    def group_session(self, org_id: str, cohort_id: str, session_id: str) -> GroupSession | None:
        return next((s for s in self._sessions(org_id, cohort_id) if s.session_id == session_id), None)

    def workshop(self, org_id: str, workshop_id: str) -> Workshop | None:
        return get_entity(keys.workshop_pk(org_id, workshop_id), keys.WORKSHOP_SK, Workshop)

    def priorities(self, org_id: str) -> list[str]:
        item = _get(keys.report_pk(org_id), keys.REPORT_SETTINGS_SK)
        return list(json.loads(item["body"]["S"]).get("priorities", [])) if item else []

    def spend(self, org_id: str, period: str) -> tuple[int, str]:
        """What the ledger bills for the month (entries billed in it, reversals included)."""
        total, currency = 0, ""
        for item in MainItem.query(keys.ledger_pk(org_id, period), MainItem.sk.startswith(keys.ENTRY_PREFIX)):
            entry = json.loads(item.body)
            total += int(entry["amount_minor"])
            currency = str(entry["currency"])
        return total, currency


def _get(pk: str, sk: str) -> dict[str, Any] | None:
    response = connection().dispatch(
        "GetItem", {"TableName": settings().main_table, "Key": {"pk": _s(pk), "sk": _s(sk)}, "ConsistentRead": True}
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


class RollupStore:
    """Contributions and cells, written together (the rollups function)."""

    def fact(self, org_id: str, period: str, pid: str) -> tuple[Contribution | None, int | None]:
        item = _get(keys.contribution_pk(org_id, period), keys.contribution_sk(pid))
        if item is None:
            return None, None
        version = int(item["version"]["N"])
        body = item.get("body")
        return (Contribution.model_validate_json(body["S"]) if body else None), version

    def facts(self, org_id: str, period: str) -> dict[str, tuple[Contribution, int]]:
        found = {}
        for raw in _query(keys.contribution_pk(org_id, period), keys.CONTRIBUTION_PREFIX, consistent=True):
            if "body" in raw:
                fact = Contribution.model_validate_json(raw["body"]["S"])
                found[fact.pid] = (fact, int(raw["version"]["N"]))
        return found

    def apply(
        self,
        org_id: str,
        period: str,
        pid: str,
        version: int | None,
        new: Contribution | None,
        changes: dict[CellKey, Counters],
    ) -> bool:
        """The new contribution and its difference to the cells, at once; False when the version moved."""
        table = settings().main_table
        item: dict[str, Any] = {"pk": _s(keys.contribution_pk(org_id, period)), "sk": _s(keys.contribution_sk(pid)),
                                "kind": _s("contribution"), "version": _n((version or 0) + 1)}  # fmt: skip
        if new is not None:
            item["body"] = _s(new.model_dump_json())  # a departed person's item stays, without a body
        put: dict[str, Any] = {"TableName": table, "Item": item}
        if version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": _n(version)}
        updates = [self._cell_update(org_id, period, key, add) for key, add in sorted(changes.items())]
        try:
            connection().transact_write_items([], [], [put], updates)
        except TransactWriteError as exc:
            codes = {reason.code for reason in (exc.cancellation_reasons or []) if reason is not None}
            if codes & {"ConditionalCheckFailed", "TransactionConflict"}:
                return False
            raise
        return True

    @staticmethod
    def _cell_update(org_id: str, period: str, key: CellKey, add: Counters) -> dict[str, Any]:
        names = {"#kind": "kind", "#key": "key"}
        values: dict[str, Any] = {":kind": _s("rollup_cell"), ":key": _s(json.dumps(key))}
        adds = []
        for index, (name, value) in enumerate(sorted(add.items())):
            names[f"#c{index}"] = name
            values[f":c{index}"] = _n(value)
            adds.append(f"#c{index} :c{index}")
        expression = "SET #kind = :kind, #key = if_not_exists(#key, :key)"
        if adds:
            expression += " ADD " + ", ".join(adds)
        return {
            "TableName": settings().main_table,
            "Key": {"pk": _s(keys.rollup_pk(org_id, period)), "sk": _s(keys.rollup_cell_sk(cell_digest(key)))},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def cells(self, org_id: str, period: str) -> dict[CellKey, Counters]:
        return read_cells(org_id, period, consistent=True)

    def rewrite_cells(self, org_id: str, period: str, cells: dict[CellKey, Counters]) -> None:
        """Replace drifted cells with the sum of the contributions (the daily rebuild's repair)."""
        for key, counters in sorted(cells.items()):
            item = {"pk": _s(keys.rollup_pk(org_id, period)), "sk": _s(keys.rollup_cell_sk(cell_digest(key))),
                    "kind": _s("rollup_cell"), "key": _s(json.dumps(key))}  # fmt: skip
            item |= {name: _n(value) for name, value in sorted(counters.items()) if value}
            connection().dispatch("PutItem", {"TableName": settings().main_table, "Item": item})

    def meta(self, org_id: str, period: str) -> RollupMeta | None:
        item = _get(keys.rollup_pk(org_id, period), keys.ROLLUP_META_SK)
        return RollupMeta.model_validate_json(item["body"]["S"]) if item else None

    def write_meta(self, meta: RollupMeta) -> None:
        table = settings().main_table
        body = _s(meta.model_dump_json())
        connection().dispatch("PutItem", {"TableName": table, "Item": {
            "pk": _s(keys.rollup_pk(meta.org_id, meta.period)), "sk": _s(keys.ROLLUP_META_SK),
            "kind": _s("rollup_meta"), "body": body}})  # fmt: skip
        connection().dispatch("PutItem", {"TableName": table, "Item": {
            "pk": _s(keys.rollups_index_pk(meta.period)), "sk": _s(keys.rollups_index_sk(meta.org_id)),
            "kind": _s("rollup_index"), "body": _s(meta.org_id)}})  # fmt: skip

    def publish(self, events: Sequence[Event]) -> None:
        commit_events(events)


class ReportReader:
    """report_generation's only reads: rollup cells and META, tallies, report settings and artefacts."""

    def month(self, org_id: str, period: str) -> tuple[RollupMeta | None, dict[CellKey, Counters]]:
        meta: RollupMeta | None = None
        cells: dict[CellKey, Counters] = {}
        for raw in _query(keys.rollup_pk(org_id, period)):
            if raw["sk"]["S"] == keys.ROLLUP_META_SK:
                meta = RollupMeta.model_validate_json(raw["body"]["S"])
            elif raw["sk"]["S"].startswith(keys.CELL_PREFIX):
                key, counters = _cell_of(raw)
                cells[key] = counters
        return meta, dict(sorted(cells.items()))

    def tallies(self, org_id: str, period: str) -> list[TallyCell]:
        cells = []
        for raw in _query(keys.tally_pk(org_id, period), keys.CELL_PREFIX):
            counters = {n: int(v["N"]) for n, v in raw.items() if n not in _NOT_COUNTERS and "N" in v}
            dims = Dimensions.model_validate_json(raw["dims"]["S"])
            cell_id = raw["sk"]["S"].removeprefix(keys.CELL_PREFIX)
            cells.append(TallyCell(org_id=org_id, period=period, cell_id=cell_id, dimensions=dims, counters=counters))
        return sorted(cells, key=lambda c: c.cell_id)

    def settings_body(self, org_id: str) -> str | None:
        for raw in _query(keys.report_pk(org_id), keys.REPORT_SETTINGS_SK):
            return str(raw["body"]["S"])
        return None

    def artefact(self, org_id: str, period: str) -> str | None:
        for raw in _query(keys.report_pk(org_id), keys.artefact_sk(period)):
            return str(raw["body"]["S"])
        return None

    def orgs_with_rollups(self, period: str) -> list[str]:
        return sorted(str(raw["body"]["S"]) for raw in _query(keys.rollups_index_pk(period)))

    def trend_points(self, org_id: str, view: str) -> dict[str, CachedTrendPoint]:
        prefix = keys.trend_cache_prefix(view)
        return {raw["sk"]["S"].removeprefix(prefix): CachedTrendPoint.model_validate_json(raw["body"]["S"])
                for raw in _query(keys.report_pk(org_id), prefix)}  # fmt: skip


class ReportWriter:
    """report_generation's only writes: its own partition (settings and the artefacts' index)."""

    def put_settings(self, org_id: str, body: str) -> None:
        self._put(org_id, keys.REPORT_SETTINGS_SK, body)

    def put_artefact(self, org_id: str, period: str, body: str) -> None:
        self._put(org_id, keys.artefact_sk(period), body)

    def put_trend_point(self, org_id: str, view: str, period: str, cached: CachedTrendPoint) -> None:
        self._put(org_id, keys.trend_cache_sk(view, period), cached.model_dump_json())

    @staticmethod
    def _put(org_id: str, sk: str, body: str) -> None:
        item = {"pk": _s(keys.report_pk(org_id)), "sk": _s(sk), "kind": _s("report"), "body": _s(body)}
        connection().dispatch("PutItem", {"TableName": settings().main_table, "Item": item})
