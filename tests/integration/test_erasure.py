"""Right to erasure on DynamoDB Local: no personal data left in either table, ledger amounts unchanged."""

import json
from datetime import timedelta

import boto3
import pytest
from coaching.adapters import keys
from coaching.adapters.context_store import ContextStore
from coaching.adapters.development_store import DevelopmentStore
from coaching.adapters.dynamo import CoachRepository
from coaching.adapters.hr_store import HrWebhookStore
from coaching.auth import Principal, Role
from coaching.domain.context import ConsentChange
from coaching.domain.feedback import FeedbackRequest
from coaching.domain.goals import GoalCreate
from coaching.services import booking, completion, context, feedback, goals
from coaching.services.context import ContextContext
from coaching.services.feedback import FeedbackContext
from coaching.services.goals import GoalContext

from tests.integration.test_sessions_and_ledger import book, ledger_items, world  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


def _org_items(org_id: str) -> list[dict]:
    """Every item of the org in both tables, and the outbox items about it (a test-side Scan)."""
    found = []
    for name in ("test-MainTable", "test-ConfidentialTable"):
        table = boto3.resource("dynamodb").Table(name)
        page = table.scan()
        while True:
            found += [item for item in page["Items"] if org_id in json.dumps(item, default=repr)]
            if "LastEvaluatedKey" not in page:
                break
            page = table.scan(ExclusiveStartKey=page["LastEvaluatedKey"])
    return found


FEEDBACK_COMMENT = "My manager keeps overruling my delegation plans."
GOAL_TITLE = "Stop rescuing the platform team at midnight"
DISPUTE_REASON = "I left after ten minutes because of my divorce hearing"
CANCEL_REASON = "Cancelling: in hospital for my back surgery"


def _tallies(org_id: str) -> list[dict]:
    return [item for item in _org_items(org_id) if "#TALLY#" in item["pk"]]


def test_erasure_leaves_no_personal_data_and_the_ledger_unchanged(world):  # noqa: F811
    org_id, employee = world["org"].org_id, world["employee"]
    store = ContextStore()
    person, _ = store.person(org_id, employee.person_id)
    hr_id, name, email = person.external_hr_id, person.name, person.email
    # A billed session (its situation in the confidential table), a raw HR payload naming them, a consent.
    made, later = book(world, 0), book(world, 3)
    world["clock"].now = made.end + timedelta(minutes=1)
    completion.complete(world["coach"], made.booking_id, 30, world["completion_ctx"])
    # Reasons in their words on their bookings: a dispute of that session, and a cancel of the next one.
    completion.dispute(employee, made.booking_id, DISPUTE_REASON, world["completion_ctx"])
    booking.cancel(employee, later.booking_id, CANCEL_REASON, world["booking_ctx"])
    raw = json.dumps({"events": [{"type": "employee.updated", "external_hr_id": hr_id, "employee": {"name": name}}]})
    HrWebhookStore().record_receipt(org_id, "msg_erasure", "digest", raw, world["clock"].now)
    ctx = ContextContext(store=store, coaches=CoachRepository(), development=DevelopmentStore(), clock=world["clock"])
    context.set_consent(employee, ConsentChange(share_all_situations=True), ctx)
    # Their feedback on the session (a comment in their words) and a development goal.
    development = DevelopmentStore()
    feedback_ctx = FeedbackContext(store=development, clock=world["clock"])
    answers = FeedbackRequest(satisfaction=5, would_recommend=9, goal_progress=4, comment=FEEDBACK_COMMENT)
    feedback.give(employee, made.booking_id, answers, feedback_ctx)
    goal = GoalCreate.model_validate({"title": GOAL_TITLE, "competencies": ["delegation"], "checkin_every_days": 7})
    goals.set_goal(employee, goal, GoalContext(store=development, clock=world["clock"]))
    tallies_before = _tallies(org_id)
    before = sorted(ledger_items(org_id), key=lambda item: item["sk"])
    assert sum(json.loads(item["body"])["amount_minor"] for item in before) > 0
    assert any(hr_id in json.dumps(item, default=repr) for item in _org_items(org_id))

    operator = Principal(person_id="op", org_id=None, roles=frozenset({Role.OPERATOR}))
    report = context.erase_person(operator, org_id, employee.person_id, ctx)
    assert (report.situations_deleted, report.payloads_redacted, report.development_records_deleted) == (2, 1, 2)
    assert report.booking_reasons_erased == 2
    again = context.erase_person(operator, org_id, employee.person_id, ctx)  # idempotent
    assert again.erased_at == report.erased_at

    items = _org_items(org_id)
    text = json.dumps(items, default=repr)
    for personal in (
        hr_id,
        email,
        f'"{name}"',
        "Preparing a reorganisation conversation.",
        FEEDBACK_COMMENT,
        GOAL_TITLE,
        DISPUTE_REASON,
        CANCEL_REASON,
    ):
        assert personal not in text, personal
    assert not [i for i in items if i["sk"] == keys.CONTEXT_CONSENT_SK]
    # The aggregates the feedback and the goal fed stay as published: the tallies are unchanged.
    assert _tallies(org_id) == tallies_before
    assert any(int(item.get("feedback_responses", 0)) for item in tallies_before)
    # The ledger (and so every invoice built from it) is byte for byte what it was.
    assert sorted(ledger_items(org_id), key=lambda item: item["sk"]) == before
