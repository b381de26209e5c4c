"""360 rounds on in-memory fakes: the release rule at its boundaries, what a result shows (groups below 3
withheld and not folded, the manager alone only by policy and notice), single-use links, who may read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from coaching.auth import Principal, Role
from coaching.domain.assessments import (
    AnswerRequest,
    AssessmentRequest,
    DevelopmentPolicy,
    RaterGroup,
    ReleaseReason,
)
from coaching.domain.engagements import Engagement
from coaching.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from coaching.domain.events import AssessmentAnswered, AssessmentReleased, EngagementEnded, FollowUpDue
from coaching.services import assessments
from coaching.services.assessments import AssessmentContext, Participation

from .fakes.booking import Clock, make_org, make_person
from .fakes.development import FakeDevelopmentStore

ORG, PERSON, COACH = "org-1", "person-1", "coach-1"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
COMPETENCIES = ["delegation", "giving-feedback", "communication"]


def me() -> Principal:
    return Principal(person_id=PERSON, org_id=ORG, roles=frozenset({Role.EMPLOYEE}))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store() -> FakeDevelopmentStore:
    store = FakeDevelopmentStore()
    store.orgs[ORG] = make_org()
    store.people[(ORG, PERSON)] = make_person(PERSON)
    store.engagements.add((ORG, PERSON, COACH))
    return store


@pytest.fixture
def ctx(store: FakeDevelopmentStore, clock: Clock) -> AssessmentContext:
    return AssessmentContext(store=store, clock=clock)


def open_round(ctx: AssessmentContext, groups: dict[str, int], **request: object) -> tuple[str, list[tuple[str, str]]]:
    raters = [{"group": group} for group, count in groups.items() for _ in range(count)]
    body = AssessmentRequest.model_validate({"competencies": COMPETENCIES, "raters": raters, **request})
    opened = assessments.open_round(me(), body, ctx)
    return opened.assessment.assessment_id, [(i.group.value, i.token) for i in opened.invites]


def rate(value: int) -> dict[str, int]:
    return dict.fromkeys(COMPETENCIES, value)


def answer(ctx: AssessmentContext, token: str, value: int) -> None:
    assessments.answer_by_link(token, rate(value), ctx)


def status(store: FakeDevelopmentStore, assessment_id: str) -> tuple[str, ReleaseReason | None]:
    found = store.assessment(ORG, PERSON, assessment_id)
    assert found is not None
    return found[0].status.value, found[0].release_reason


def test_released_when_self_is_done_and_every_invited_rater_answered(ctx, store):
    assessment_id, links = open_round(ctx, {"manager": 1, "peer": 3})
    for _, token in links:
        answer(ctx, token, 4)
    assert status(store, assessment_id) == ("open", None)  # everyone but the person
    view = assessments.answer_self(me(), assessment_id, rate(3), ctx)
    assert (view.status.value, view.release_reason) == ("released", "complete")
    released = [e for e in store.outbox if isinstance(e, AssessmentReleased)]
    assert len(released) == 1
    assert released[0].reason == "complete"
    assert [e.group for e in store.outbox if isinstance(e, AssessmentAnswered)] == ["manager", "peer", "peer", "peer",
                                                                                    "self"]  # fmt: skip


def test_self_done_but_a_rater_missing_waits_for_the_quorum_rule_or_the_deadline(ctx, store, clock):
    assessment_id, links = open_round(ctx, {"peer": 6})
    assessments.answer_self(me(), assessment_id, rate(3), ctx)
    for _, token in links[:5]:
        answer(ctx, token, 4)
    clock.now = NOW + timedelta(days=14) - timedelta(seconds=1)
    assert assessments.release_due(ctx) == 0  # five answered, not yet 14 days
    clock.now = NOW + timedelta(days=14)
    assert assessments.release_due(ctx) == 1
    assert status(store, assessment_id) == ("released", ReleaseReason.QUORUM)
    assert assessments.release_due(ctx) == 0  # once


def test_four_raters_after_14_days_wait_for_21_days_then_release_whatever_the_answers(ctx, store, clock):
    assessment_id, links = open_round(ctx, {"peer": 6})
    for _, token in links[:4]:
        answer(ctx, token, 4)
    clock.now = NOW + timedelta(days=20, hours=23)
    assert assessments.release_due(ctx) == 0
    assert status(store, assessment_id) == ("open", None)
    clock.now = NOW + timedelta(days=21)
    assert assessments.release_due(ctx) == 1
    assert status(store, assessment_id) == ("released", ReleaseReason.DEADLINE)
    with pytest.raises(Forbidden):  # the remaining links have expired with the round
        answer(ctx, links[5][1], 3)


def test_a_quorum_reached_after_14_days_releases_on_the_answer_itself(ctx, store, clock):
    assessment_id, links = open_round(ctx, {"peer": 7})
    for _, token in links[:4]:
        answer(ctx, token, 4)
    clock.now = NOW + timedelta(days=15)
    answer(ctx, links[4][1], 2)  # the fifth answer: the rule is evaluated on answer too
    assert status(store, assessment_id) == ("released", ReleaseReason.QUORUM)


def test_a_link_is_single_use_unknown_links_are_not_found_and_ratings_must_be_complete(ctx, store):
    _, links = open_round(ctx, {"peer": 3})
    with pytest.raises(InvalidInput) as missing:
        assessments.answer_by_link(links[0][1], {"delegation": 4}, ctx)
    assert missing.value.field == "ratings.giving-feedback"
    with pytest.raises(InvalidInput) as extra:
        assessments.answer_by_link(links[0][1], rate(4) | {"hiring": 2}, ctx)
    assert extra.value.field == "ratings.hiring"
    answer(ctx, links[0][1], 4)
    with pytest.raises(Conflict):
        answer(ctx, links[0][1], 5)
    with pytest.raises(NotFound):
        answer(ctx, "not-a-token-of-this-platform-at-all", 5)
    # Only hashes are kept.
    ((assessment, _),) = store.round_items.values()
    assert all(token not in assessment.model_dump_json() for _, token in links)


def test_a_group_below_three_is_withheld_and_not_folded_into_the_others(ctx):
    values = {"self": 5, "manager": 1, "peer": 4, "direct_report": 2}
    assessment_id, links = open_round(ctx, {"manager": 1, "peer": 3, "direct_report": 2})
    for group, token in links:
        answer(ctx, token, values[group])
    assessments.answer_self(me(), assessment_id, rate(5), ctx)
    result = assessments.result(me(), ORG, PERSON, assessment_id, ctx)
    groups = {g.group: g for g in result.groups}
    assert groups[RaterGroup.PEER].shown
    assert groups[RaterGroup.PEER].scores == rate(4)
    assert not groups[RaterGroup.DIRECT_REPORT].shown
    assert groups[RaterGroup.DIRECT_REPORT].scores == {}
    assert groups[RaterGroup.DIRECT_REPORT].withheld_because == "fewer than 3 responses"
    # Without the policy the manager is not shown alone either, and neither is folded into "others".
    assert not groups[RaterGroup.MANAGER].shown
    assert result.others == rate(4)
    assert result.others_overall == 4.0


def test_the_manager_shows_alone_only_under_the_policy_and_with_the_notice_on_the_invite(ctx, store):
    store.policies[ORG] = DevelopmentPolicy(show_manager_alone=True)
    assessment_id, links = open_round(ctx, {"manager": 1, "peer": 3})
    for group, token in links:
        answer(ctx, token, 1 if group == "manager" else 4)
    assessments.answer_self(me(), assessment_id, rate(5), ctx)
    result = assessments.result(me(), ORG, PERSON, assessment_id, ctx)
    assert result.group(RaterGroup.MANAGER).shown
    assert result.others_overall == round((1 + 4 * 3) / 4, 2)
    # A round opened before the policy changed: the manager was not told, so stays hidden.
    store.policies[ORG] = DevelopmentPolicy(show_manager_alone=False)
    earlier, links = open_round(ctx, {"manager": 1, "peer": 3})
    store.policies[ORG] = DevelopmentPolicy(show_manager_alone=True)
    for group, token in links:
        answer(ctx, token, 1 if group == "manager" else 4)
    assessments.answer_self(me(), earlier, rate(5), ctx)
    assert not assessments.result(me(), ORG, PERSON, earlier, ctx).group(RaterGroup.MANAGER).shown


def test_only_the_person_and_their_engaged_coach_read_a_result(ctx, store):
    assessment_id, links = open_round(ctx, {"peer": 3})
    for _, token in links:
        answer(ctx, token, 4)
    assessments.answer_self(me(), assessment_id, rate(4), ctx)
    coach = Principal(person_id=COACH, org_id=None, roles=frozenset({Role.COACH}))
    assert assessments.result(coach, ORG, PERSON, assessment_id, ctx).others_overall == 4.0
    outsiders = [
        Principal(person_id="leader-1", org_id=ORG, roles=frozenset({Role.LEADER})),
        Principal(person_id="admin-1", org_id=ORG, roles=frozenset({Role.ORG_ADMIN})),
        Principal(person_id="person-2", org_id=ORG, roles=frozenset({Role.EMPLOYEE})),
        Principal(person_id="coach-2", org_id=None, roles=frozenset({Role.COACH})),
        Principal(person_id="op", org_id=None, roles=frozenset({Role.OPERATOR})),
    ]
    for outsider in outsiders:
        with pytest.raises(NotFound):
            assessments.result(outsider, ORG, PERSON, assessment_id, ctx)
    store.engagements.clear()  # the engagement ended: the coach sees no more
    with pytest.raises(NotFound):
        assessments.result(coach, ORG, PERSON, assessment_id, ctx)


def test_a_follow_up_compares_with_its_baseline_and_adds_growth_to_the_tally(ctx, store):
    baseline, links = open_round(ctx, {"peer": 3, "direct_report": 3})
    for _, token in links:
        answer(ctx, token, 2)
    assessments.answer_self(me(), baseline, rate(3), ctx)
    with pytest.raises(ValueError, match="names its baseline_id"):
        AssessmentRequest.model_validate({"kind": "follow_up", "raters": [{"group": "peer"}]})
    follow_up, links = open_round(ctx, {"peer": 3, "direct_report": 3}, kind="follow_up", baseline_id=baseline)
    for _, token in links:
        answer(ctx, token, 3)
    assessments.answer_self(me(), follow_up, rate(3), ctx)
    (growth,) = assessments.growth(me(), ORG, PERSON, ctx)
    assert growth.change_overall == 1.0
    assert growth.change_percent == 50.0
    period = NOW.strftime("%Y-%m")
    assert store.total(ORG, period, "growth_people") == 1
    assert (store.total(ORG, period, "growth_baseline_x100"), store.total(ORG, period, "growth_follow_up_x100")) == (
        200,
        300,
    )
    assert store.total(ORG, period, "managers_rated") == 2  # three direct reports, shown, in both rounds
    assert store.total(ORG, period, "manager_score_x100") == 200 + 300


def test_a_follow_up_needs_a_released_baseline_of_ones_own(ctx):
    baseline, _ = open_round(ctx, {"peer": 3})
    with pytest.raises(InvalidInput):
        open_round(ctx, {"peer": 3}, kind="follow_up", baseline_id=baseline)
    with pytest.raises(NotFound):
        open_round(ctx, {"peer": 3}, kind="follow_up", baseline_id="someone-elses")


def test_the_self_rating_is_given_once_and_not_by_invite():
    with pytest.raises(ValueError, match="own account"):
        AssessmentRequest.model_validate({"raters": [{"group": "self"}]})
    with pytest.raises(ValueError, match="one manager"):
        AssessmentRequest.model_validate({"raters": [{"group": "manager"}, {"group": "manager"}]})
    assert AnswerRequest.model_validate({"ratings": rate(5)}).ratings == rate(5)


def test_competencies_default_to_the_role_profile_then_the_framework(ctx, store):
    from coaching.domain.goals import RoleProfile

    body = AssessmentRequest.model_validate({"raters": [{"group": "peer"}] * 3})
    opened = assessments.open_round(me(), body, ctx)
    assert len(opened.assessment.competencies) == 8
    store.profiles[(ORG, "manager")] = RoleProfile.model_validate(
        {
            "org_id": ORG,
            "level": "manager",
            "name": "Manager",
            "updated_at": NOW,
            "competencies": [{"competency": "hiring", "behaviours": ["Hires for the gap"]}],
        }
    )
    assert assessments.open_round(me(), body, ctx).assessment.competencies == ["hiring"]


# ---------------------------------------------------------------------------- the follow-up, nudged


def released_baseline(ctx: AssessmentContext) -> str:
    baseline, links = open_round(ctx, {"peer": 3})
    for _, token in links:
        answer(ctx, token, 3)
    assessments.answer_self(me(), baseline, rate(3), ctx)
    return baseline


def follow_ups_due(store: FakeDevelopmentStore) -> list[FollowUpDue]:
    return [event for event in store.outbox if isinstance(event, FollowUpDue)]


def test_the_daily_run_nudges_a_baselines_follow_up_on_its_date_once_and_not_after_one_is_opened(ctx, store, clock):
    baseline = released_baseline(ctx)  # the org's default: 16 weeks later
    due_on = (NOW + timedelta(weeks=16)).date()
    assert assessments.nudge_follow_ups(due_on - timedelta(days=1), ctx) == []  # not before its date
    clock.now = datetime.combine(due_on, NOW.timetz())
    (nudge,) = assessments.nudge_follow_ups(due_on, ctx)
    assert (nudge.baseline_id, nudge.person_id, nudge.due_on, nudge.reason) == (
        baseline,
        PERSON,
        due_on.isoformat(),
        "scheduled",
    )
    assessments.nudge_follow_ups(due_on, ctx)  # a re-run of the day adds nothing: the id is stable
    assert follow_ups_due(store) == [nudge]
    # A run that missed a few days still finds it; once the person opens the follow-up, nothing is due.
    clock.now += timedelta(days=3)
    assert [e.event_id for e in assessments.nudge_follow_ups(due_on + timedelta(days=3), ctx)] == [nudge.event_id]
    open_round(ctx, {"peer": 3}, kind="follow_up", baseline_id=baseline)
    assert assessments.nudge_follow_ups(due_on + timedelta(days=4), ctx) == []


def test_the_end_of_the_persons_coaching_nudges_a_follow_up_of_a_baseline_at_least_four_weeks_old(ctx, store, clock):
    baseline = released_baseline(ctx)
    ended = EngagementEnded(org_id=ORG, person_id=PERSON, engagement_id="e1", coach_id=COACH, program="SCALE")
    clock.now = NOW + timedelta(weeks=3)
    assert assessments.on_engagement_ended(ended, ctx) == []  # too soon to measure growth
    clock.now = NOW + timedelta(weeks=5)
    still_coached = Engagement.start(engagement_id="e2", org_id=ORG, person_id=PERSON, coach_id="coach-2",
                                     program="SCALE", now=clock.now)  # fmt: skip
    store.participations[(ORG, PERSON)] = Participation(engagements=[still_coached])
    assert assessments.on_engagement_ended(ended, ctx) == []  # a change of coach: the coaching goes on
    store.participations[(ORG, PERSON)] = Participation()
    (nudge,) = assessments.on_engagement_ended(ended, ctx)
    today = clock.now.date().isoformat()
    assert (nudge.baseline_id, nudge.reason, nudge.due_on) == (baseline, "programme_ended", today)
    assessments.on_engagement_ended(ended, ctx)  # redelivered: nothing more
    assert follow_ups_due(store) == [nudge]


def test_nobody_who_left_the_organisation_is_nudged(ctx, store, clock):
    released_baseline(ctx)
    store.people[(ORG, PERSON)] = store.people[(ORG, PERSON)].model_copy(update={"active": False})
    clock.now = NOW + timedelta(weeks=8)
    ended = EngagementEnded(org_id=ORG, person_id=PERSON, engagement_id="e1", coach_id=COACH, program="SCALE")
    assert assessments.on_engagement_ended(ended, ctx) == []
