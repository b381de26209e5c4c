"""Capture on DynamoDB: feedback, goals, role profiles, 360 rounds and the capture tallies.

Every capture is one TransactWriteItems across both tables: the individual record (confidential table,
conditional on not existing, so it is written once), the round or goal (main table, conditional on
the version read), the tally cell (`ADD` of integer counters) and the outbox items. The tally cell's
counters are attributes named after the counters (`coaching.domain.measures`), which PynamoDB's
fixed models cannot express, so transactions are built as DynamoDB JSON here and sent through
PynamoDB's connection (`Connection.transact_write_items`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from coaching.adapters import keys
from coaching.adapters.dynamo import (
    ConfidentialTableMeta,
    MainItem,
    batch_read,
    connection,
    get_entity,
    get_org_and_person,
)
from coaching.adapters.outbox import commit_events, outbox_item
from coaching.config import settings
from coaching.domain.assessments import Assessment, AssessmentResult, AssessmentStatus, DevelopmentPolicy, RaterAnswer
from coaching.domain.booking import Booking
from coaching.domain.engagements import Engagement
from coaching.domain.errors import Conflict, PolicyRefused
from coaching.domain.events import Event
from coaching.domain.feedback import SessionFeedback
from coaching.domain.goals import MAX_ACTIVE_GOALS, Goal, RoleProfile
from coaching.domain.grow import Cohort, GroupSession
from coaching.domain.measures import Dimensions, TallyCell, TallyDelta, period_of
from coaching.domain.orgs import Org
from coaching.domain.people import Person
from coaching.services.assessments import InviteRef, Participation
from coaching.services.feedback import FeedbackRead

# An invite's lookup item outlives its round's close by this much (TTL), so a late click reads "expired".
INVITE_RETENTION = timedelta(days=30)
_NON_COUNTERS = {"pk", "sk", "kind", "dims", "org_id", "period"}


class CaptureItem(Model):
    """An individual record in the confidential table: feedback, a rater's answer, a released result."""

    class Meta(ConfidentialTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    body = UnicodeAttribute()


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


@dataclass
class _Transaction:
    """One TransactWriteItems; `commit` returns the labels of the operations whose condition failed."""

    puts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def put(self, label: str, table: str, item: dict[str, Any], condition: str | None = None,
            values: dict[str, Any] | None = None) -> None:  # fmt: skip
        operation: dict[str, Any] = {"TableName": table, "Item": item}
        if condition:
            operation["ConditionExpression"] = condition
        if values:
            operation["ExpressionAttributeValues"] = values
        self.puts.append((label, operation))

    def update(self, label: str, table: str, key: tuple[str, str], expression: str, names: dict[str, str],
               values: dict[str, Any], condition: str | None = None) -> None:  # fmt: skip
        operation: dict[str, Any] = {
            "TableName": table,
            "Key": {"pk": _s(key[0]), "sk": _s(key[1])},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if condition:
            operation["ConditionExpression"] = condition
        self.updates.append((label, operation))

    def events(self, events: Sequence[Event]) -> None:
        for event in events:
            self.put("outbox", settings().main_table, outbox_item(event).serialize(), "attribute_not_exists(pk)")

    def tally(self, delta: TallyDelta) -> None:
        counters = {name: value for name, value in sorted(delta.add.items()) if value}
        names = {"#kind": "kind", "#dims": "dims"}
        values: dict[str, Any] = {":kind": _s("tally"), ":dims": _s(delta.dimensions.model_dump_json())}
        adds = []
        for index, (name, value) in enumerate(counters.items()):
            names[f"#c{index}"] = name
            values[f":c{index}"] = _n(value)
            adds.append(f"#c{index} :c{index}")
        expression = "SET #kind = :kind, #dims = if_not_exists(#dims, :dims)"
        if adds:
            expression += " ADD " + ", ".join(adds)
        key = (keys.tally_pk(delta.org_id, delta.period), keys.cell_sk(delta.dimensions.cell_id()))
        self.update("tally", settings().main_table, key, expression, names, values)
        for name in delta.first_counts:
            if delta.person_id is None:
                raise ValueError("a distinct-people count needs the person")
            marker = {"pk": _s(keys.person_pk(delta.org_id, delta.person_id)),
                      "sk": _s(keys.measured_sk(delta.period, name)), "kind": _s("measured"),
                      "body": _s(delta.dimensions.model_dump_json()), "version": _n(1)}  # fmt: skip
            self.put("marker", settings().main_table, marker, "attribute_not_exists(pk)")

    def commit(self) -> list[str]:
        """Commit; the labels whose condition failed, `["conflict"]` if only another transaction was in the way."""
        labels = [label for label, _ in self.puts] + [label for label, _ in self.updates]
        try:
            connection().transact_write_items([], [], [op for _, op in self.puts], [op for _, op in self.updates])
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons or []
            codes = [(label, reason.code) for label, reason in zip(labels, reasons, strict=False) if reason is not None]
            failed = [label for label, code in codes if code == "ConditionalCheckFailed"]
            if failed:
                return failed
            if any(code == "TransactionConflict" for _, code in codes):
                return ["conflict"]
            raise
        return []


def _main_item(entity: Any, pk: str, sk: str, kind: str, version: int | None,
               gsi1: tuple[str, str] | None = None) -> tuple[dict[str, Any], str, dict[str, Any]]:  # fmt: skip
    """A versioned main-table item (readable by MainItem) and the condition on the version read."""
    item = {"pk": _s(pk), "sk": _s(sk), "kind": _s(kind), "body": _s(entity.model_dump_json()),
            "version": _n((version or 0) + 1)}  # fmt: skip
    if gsi1:
        item["gsi1pk"], item["gsi1sk"] = _s(gsi1[0]), _s(gsi1[1])
    if version is None:
        return item, "attribute_not_exists(pk)", {}
    return item, "version = :v", {":v": _n(version)}


def _confidential(entity: Any, pk: str, sk: str, kind: str) -> dict[str, Any]:
    return {"pk": _s(pk), "sk": _s(sk), "kind": _s(kind), "body": _s(entity.model_dump_json())}


def _confidential_get[T: Any](pk: str, sk: str, model: type[T]) -> T | None:
    try:
        item = CaptureItem.get(pk, sk, consistent_read=True)
    except CaptureItem.DoesNotExist:
        return None
    return model.model_validate_json(item.body)  # type: ignore[no-any-return]


def _goal_index(goal: Goal) -> tuple[str, str] | None:
    if goal.next_checkin_on is None:
        return None
    return keys.checkins_index_pk(goal.next_checkin_on.isoformat()), keys.checkins_index_sk(
        goal.org_id, goal.person_id, goal.goal_id
    )


class DevelopmentStore:
    # ------------------------------------------------------------------ shared reads
    def org_and_person(self, org_id: str, person_id: str) -> tuple[Org | None, Person | None]:
        return get_org_and_person(org_id, person_id)

    def org(self, org_id: str) -> Org | None:
        try:
            item = MainItem.get(keys.org_pk(org_id), keys.ORG_PROFILE_SK, consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Org.model_validate_json(item.body)

    def commit_events(self, events: Sequence[Event]) -> None:
        commit_events(events)

    # ------------------------------------------------------------------ feedback
    def read_for_feedback(self, org_id: str, person_id: str, booking_id: str) -> FeedbackRead:
        booking_key = (keys.person_pk(org_id, person_id), keys.booking_sk(booking_id))
        person_key = (keys.people_pk(org_id), keys.person_sk(person_id))
        found = batch_read([booking_key, person_key])
        booking = Booking.model_validate_json(found[booking_key]["body"]["S"]) if booking_key in found else None
        person = Person.model_validate_json(found[person_key]["body"]["S"]) if person_key in found else None
        existing = _confidential_get(keys.person_pk(org_id, person_id), keys.feedback_sk(booking_id), SessionFeedback)
        counted: Dimensions | None = None
        if booking is not None:
            marker_sk = keys.measured_sk(period_of(booking.start), booking.program.value)
            try:
                marker = MainItem.get(keys.person_pk(org_id, person_id), marker_sk, consistent_read=True)
                counted = Dimensions.model_validate_json(marker.body)
            except MainItem.DoesNotExist:
                counted = None
        return FeedbackRead(booking=booking, person=person, existing=existing, counted_in=counted)

    def give_feedback(
        self, feedback: SessionFeedback, delta: TallyDelta, first_this_month: bool, events: Sequence[Event]
    ) -> None:
        pk = keys.person_pk(feedback.org_id, feedback.person_id)
        tx = _Transaction()
        tx.put("feedback", settings().confidential_table,
               _confidential(feedback, pk, keys.feedback_sk(feedback.booking_id), "feedback"),
               "attribute_not_exists(pk)")  # fmt: skip
        if first_this_month:
            marker = {"pk": _s(pk), "sk": _s(keys.measured_sk(feedback.period, feedback.program)),
                      "kind": _s("measured"), "body": _s(delta.dimensions.model_dump_json()),
                      "version": _n(1)}  # fmt: skip
            tx.put("marker", settings().main_table, marker, "attribute_not_exists(pk)")
        tx.tally(delta)
        tx.events(events)
        if tx.commit():
            raise Conflict("feedback on this session changed at the same time", field="booking_id")

    def feedback(self, org_id: str, person_id: str, booking_id: str) -> SessionFeedback | None:
        return _confidential_get(keys.person_pk(org_id, person_id), keys.feedback_sk(booking_id), SessionFeedback)

    # ------------------------------------------------------------------ goals
    def counted(self, org_id: str, person_id: str, period: str, names: Sequence[str]) -> set[str]:
        pk = keys.person_pk(org_id, person_id)
        wanted = {(pk, keys.measured_sk(period, name)): name for name in names}
        return {wanted[key] for key in batch_read(wanted)}

    def add_goal(self, goal: Goal, delta: TallyDelta, events: Sequence[Event]) -> None:
        pk = keys.person_pk(goal.org_id, goal.person_id)
        table = settings().main_table
        tx = _Transaction()
        item, condition, values = _main_item(goal, pk, keys.goal_sk(goal.goal_id), "goal", None, _goal_index(goal))
        tx.put("goal", table, item, condition, values)
        tx.update("active", table, (pk, keys.ACTIVE_GOALS_SK), "SET #kind = :kind ADD #active :one",
                  {"#kind": "kind", "#active": "active"},
                  {":kind": _s("goal_counter"), ":one": _n(1), ":max": _n(MAX_ACTIVE_GOALS)},
                  "attribute_not_exists(#active) OR #active < :max")  # fmt: skip
        tx.tally(delta)
        tx.events(events)
        failed = tx.commit()
        if "active" in failed:
            rule = {"rule": "max_active_goals", "limit": MAX_ACTIVE_GOALS}
            message = f"a person keeps at most {MAX_ACTIVE_GOALS} active goals; close one first"
            raise PolicyRefused(message, field="body", details=rule)
        if failed:
            raise Conflict("your goals changed at the same time; try again")

    def goal(self, org_id: str, person_id: str, goal_id: str) -> tuple[Goal, int] | None:
        try:
            item = MainItem.get(keys.person_pk(org_id, person_id), keys.goal_sk(goal_id), consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return Goal.model_validate_json(item.body), int(item.version or 0)

    def goals(self, org_id: str, person_id: str) -> list[Goal]:
        results = MainItem.query(keys.person_pk(org_id, person_id), MainItem.sk.startswith(keys.GOAL_PREFIX))
        return [Goal.model_validate_json(item.body) for item in results]

    def update_goal(
        self, goal: Goal, version: int, delta: TallyDelta, events: Sequence[Event], *, closed: bool
    ) -> None:
        pk = keys.person_pk(goal.org_id, goal.person_id)
        table = settings().main_table
        tx = _Transaction()
        item, condition, values = _main_item(goal, pk, keys.goal_sk(goal.goal_id), "goal", version, _goal_index(goal))
        tx.put("goal", table, item, condition, values)
        if closed:
            tx.update("active", table, (pk, keys.ACTIVE_GOALS_SK), "ADD #active :minus",
                      {"#active": "active"}, {":minus": _n(-1), ":zero": _n(0)}, "#active > :zero")  # fmt: skip
        tx.tally(delta)
        tx.events(events)
        if tx.commit():
            raise Conflict("this goal changed at the same time; load it again", field="goal_id")

    def due_checkins(self, due_on: date) -> list[Goal]:
        results = MainItem.gsi1.query(keys.checkins_index_pk(due_on.isoformat()))
        return [Goal.model_validate_json(item.body) for item in results]

    # ------------------------------------------------------------------ role profiles and policy
    def put_role_profile(self, profile: RoleProfile, events: Sequence[Event]) -> None:
        tx = _Transaction()
        item = {"pk": _s(keys.development_pk(profile.org_id)), "sk": _s(keys.role_profile_sk(profile.level.value)),
                "kind": _s("role_profile"), "body": _s(profile.model_dump_json()), "version": _n(1)}  # fmt: skip
        tx.put("profile", settings().main_table, item)
        tx.events(events)
        if tx.commit():
            raise Conflict("the role profile changed at the same time; try again", field="level")

    def role_profiles(self, org_id: str) -> list[RoleProfile]:
        results = MainItem.query(keys.development_pk(org_id), MainItem.sk.startswith(keys.ROLE_PROFILE_PREFIX))
        return [RoleProfile.model_validate_json(item.body) for item in results]

    def role_profile(self, org_id: str, level: str) -> RoleProfile | None:
        try:
            item = MainItem.get(keys.development_pk(org_id), keys.role_profile_sk(level), consistent_read=True)
        except MainItem.DoesNotExist:
            return None
        return RoleProfile.model_validate_json(item.body)

    def put_policy(self, org_id: str, policy: DevelopmentPolicy, events: Sequence[Event]) -> None:
        tx = _Transaction()
        item = {"pk": _s(keys.development_pk(org_id)), "sk": _s(keys.DEVELOPMENT_POLICY_SK),
                "kind": _s("development_policy"), "body": _s(policy.model_dump_json()), "version": _n(1)}  # fmt: skip
        tx.put("policy", settings().main_table, item)
        tx.events(events)
        if tx.commit():
            raise Conflict("the policy changed at the same time; try again")

    def policy(self, org_id: str) -> DevelopmentPolicy:
        try:
            item = MainItem.get(keys.development_pk(org_id), keys.DEVELOPMENT_POLICY_SK, consistent_read=True)
        except MainItem.DoesNotExist:
            return DevelopmentPolicy()
        return DevelopmentPolicy.model_validate_json(item.body)

    # ------------------------------------------------------------------ 360 rounds
    def open_assessment(self, assessment: Assessment, events: Sequence[Event]) -> None:
        pk = keys.person_pk(assessment.org_id, assessment.person_id)
        table = settings().main_table
        tx = _Transaction()
        index = (
            keys.OPEN_ASSESSMENTS_INDEX_PK,
            keys.open_assessment_index_sk(assessment.opened_at, assessment.assessment_id),
        )
        item, condition, values = _main_item(assessment, pk, keys.assessment_sk(assessment.assessment_id), "assessment",
                                             None, index)  # fmt: skip
        tx.put("assessment", table, item, condition, values)
        expires = int((assessment.closes_at + INVITE_RETENTION).timestamp())
        for invite in assessment.invites:
            ref = {"org_id": assessment.org_id, "person_id": assessment.person_id,
                   "assessment_id": assessment.assessment_id}  # fmt: skip
            lookup = {"pk": _s(keys.invite_pk(invite.token_hash)), "sk": _s(keys.INVITE_SK), "kind": _s("invite"),
                      "body": _s(json.dumps(ref)), "expires_at": _n(expires)}  # fmt: skip
            tx.put("invite", table, lookup, "attribute_not_exists(pk)")
        tx.events(events)
        if tx.commit():
            raise Conflict("this assessment already exists")

    def assessment(self, org_id: str, person_id: str, assessment_id: str) -> tuple[Assessment, int] | None:
        try:
            item = MainItem.get(keys.person_pk(org_id, person_id), keys.assessment_sk(assessment_id),
                                consistent_read=True)  # fmt: skip
        except MainItem.DoesNotExist:
            return None
        return Assessment.model_validate_json(item.body), int(item.version or 0)

    def invite(self, token_hash: str) -> InviteRef | None:
        found = batch_read([(keys.invite_pk(token_hash), keys.INVITE_SK)])
        if not found:
            return None
        (item,) = found.values()
        ref = json.loads(item["body"]["S"])
        return InviteRef(org_id=ref["org_id"], person_id=ref["person_id"], assessment_id=ref["assessment_id"])

    def _put_round(self, tx: _Transaction, assessment: Assessment, version: int) -> None:
        pk = keys.person_pk(assessment.org_id, assessment.person_id)
        index = None
        if assessment.status is AssessmentStatus.OPEN:
            index = (keys.OPEN_ASSESSMENTS_INDEX_PK,
                     keys.open_assessment_index_sk(assessment.opened_at, assessment.assessment_id))  # fmt: skip
        elif assessment.follow_up_due_on is not None:  # a released baseline: listed by its follow-up date
            due_on = assessment.follow_up_due_on.isoformat()
            index = (keys.FOLLOW_UP_INDEX_PK, keys.follow_up_index_sk(due_on, assessment.assessment_id))
        item, condition, values = _main_item(assessment, pk, keys.assessment_sk(assessment.assessment_id), "assessment",
                                             version, index)  # fmt: skip
        tx.put("assessment", settings().main_table, item, condition, values)

    def record_answer(self, assessment: Assessment, version: int, answer: RaterAnswer, events: Sequence[Event]) -> None:
        tx = _Transaction()
        self._put_round(tx, assessment, version)
        pk = keys.person_pk(answer.org_id, answer.person_id)
        tx.put("answer", settings().confidential_table,
               _confidential(answer, pk, keys.answer_sk(answer.assessment_id, answer.rater_id), "answer"),
               "attribute_not_exists(pk)")  # fmt: skip
        tx.events(events)
        failed = tx.commit()
        if "answer" in failed:
            raise Conflict("this rater already answered", field="token")
        if failed:
            raise Conflict("the assessment changed at the same time; try again", field="assessment_id")

    def answers(self, org_id: str, person_id: str, assessment_id: str) -> list[RaterAnswer]:
        prefix = keys.answer_sk(assessment_id, "")
        results = CaptureItem.query(keys.person_pk(org_id, person_id), CaptureItem.sk.startswith(prefix),
                                    consistent_read=True)  # fmt: skip
        return [RaterAnswer.model_validate_json(item.body) for item in results]

    def release(
        self, assessment: Assessment, version: int, result: AssessmentResult, delta: TallyDelta, events: Sequence[Event]
    ) -> None:
        tx = _Transaction()
        self._put_round(tx, assessment, version)
        pk = keys.person_pk(assessment.org_id, assessment.person_id)
        tx.put("result", settings().confidential_table,
               _confidential(result, pk, keys.result_sk(assessment.assessment_id), "result"),
               "attribute_not_exists(pk)")  # fmt: skip
        tx.tally(delta)
        tx.events(events)
        if tx.commit():
            raise Conflict("the assessment changed at the same time", field="assessment_id")

    def result(self, org_id: str, person_id: str, assessment_id: str) -> AssessmentResult | None:
        return _confidential_get(keys.person_pk(org_id, person_id), keys.result_sk(assessment_id), AssessmentResult)

    def results(self, org_id: str, person_id: str) -> list[AssessmentResult]:
        results = CaptureItem.query(keys.person_pk(org_id, person_id), CaptureItem.sk.startswith(keys.RESULT_PREFIX),
                                    consistent_read=True)  # fmt: skip
        return [AssessmentResult.model_validate_json(item.body) for item in results]

    def open_assessments(self) -> list[tuple[str, str, str]]:
        found = []
        for item in MainItem.gsi1.query(keys.OPEN_ASSESSMENTS_INDEX_PK):
            assessment = Assessment.model_validate_json(item.body)
            found.append((assessment.org_id, assessment.person_id, assessment.assessment_id))
        return found

    def rounds(self, org_id: str, person_id: str) -> list[Assessment]:
        results = MainItem.query(keys.person_pk(org_id, person_id), MainItem.sk.startswith(keys.ASSESSMENT_PREFIX),
                                 consistent_read=True)  # fmt: skip
        return [Assessment.model_validate_json(item.body) for item in results]

    def baselines_due(self, first: date, last: date) -> list[tuple[str, str]]:
        if first > last:
            return []  # DynamoDB refuses an empty BETWEEN
        found: dict[tuple[str, str], None] = {}
        between = MainItem.gsi1sk.between(*keys.follow_up_index_range(first.isoformat(), last.isoformat()))
        for item in MainItem.gsi1.query(keys.FOLLOW_UP_INDEX_PK, between):
            assessment = Assessment.model_validate_json(item.body)
            found[(assessment.org_id, assessment.person_id)] = None
        return list(found)

    def participation(self, org_id: str, person_id: str) -> Participation:
        """The person's engagements and GROW cohorts (with their group sessions): where a 360 counts."""
        pk = keys.person_pk(org_id, person_id)
        engagements = [
            Engagement.model_validate_json(item.body)
            for item in MainItem.query(pk, MainItem.sk.startswith(keys.engagement_sk("")), consistent_read=True)
        ]
        prefix = keys.participation_sk("COHORT", "")
        cohort_ids = sorted(item.sk.removeprefix(prefix) for item in
                            MainItem.query(pk, MainItem.sk.startswith(prefix), consistent_read=True))  # fmt: skip
        cohorts: list[Cohort] = []
        sessions: list[GroupSession] = []
        for cohort_id in cohort_ids:
            cohort = get_entity(keys.cohort_pk(org_id, cohort_id), keys.COHORT_SK, Cohort)
            cohorts.extend([cohort] if cohort else [])
            sessions.extend(GroupSession.model_validate_json(item.body) for item in MainItem.query(
                keys.cohort_pk(org_id, cohort_id), MainItem.sk.startswith(keys.GROUP_SESSION_PREFIX),
                consistent_read=True))  # fmt: skip
        return Participation(engagements=engagements, cohorts=cohorts, group_sessions=sessions)

    def coach_engaged(self, org_id: str, person_id: str, coach_id: str) -> bool:
        results = MainItem.query(keys.person_pk(org_id, person_id), MainItem.sk.startswith(keys.engagement_sk("")))
        for item in results:
            engagement = Engagement.model_validate_json(item.body)
            if engagement.coach_id == coach_id and engagement.is_active:
                return True
        return False


class TallyReader:
    """The reports' read port: an org month's tally cells (one Query), naming nobody."""

    def cells(self, org_id: str, period: str) -> list[TallyCell]:
        response_items = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": settings().main_table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :cell)",
                "ExpressionAttributeValues": {":pk": _s(keys.tally_pk(org_id, period)), ":cell": _s(keys.CELL_PREFIX)},
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = connection().dispatch("Query", request)
            response_items.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        cells = []
        for raw in response_items:
            counters = {
                name: int(value["N"]) for name, value in raw.items() if name not in _NON_COUNTERS and "N" in value
            }
            cell_id = raw["sk"]["S"].removeprefix(keys.CELL_PREFIX)
            dims = Dimensions.model_validate_json(raw["dims"]["S"])
            cells.append(TallyCell(org_id=org_id, period=period, cell_id=cell_id, dimensions=dims, counters=counters))
        return sorted(cells, key=lambda cell: cell.cell_id)
