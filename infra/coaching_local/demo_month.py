"""The capture half of the demo month, through HTTP only: feedback, goals, role profiles and a 360 round.

`drive_capture` takes what the sessions half produced (each participant's employee token and the ids of
their completed sessions) and, over the API exactly as clients do:

1. the org admin sets the development policy (manager shown alone, told at the invite) and a role profile
   per level;
2. each participant gives feedback on every completed session, sets one to three goals and checks in;
3. each participant runs a 360: a baseline with their manager, three peers and (for managers) three direct
   reports, all answered by link without an account, then the self-assessment, which releases it; then a
   follow-up on the same competencies, answered the same way, so competency growth has a before and after.

Scores are drawn from a seeded generator, so the same participants give the same figures every run.
Uses only the standard library (urllib), so it runs from the local stack, a test or a script alike.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("individual_contributor", "first_time_manager", "manager", "senior_leader", "executive")
PROFILE_COMPETENCIES: dict[str, list[tuple[str, str]]] = {
    "individual_contributor": [("communication", "Explains the why as well as the what"),
                               ("prioritisation", "Says no to work that does not serve the goal"),
                               ("self-awareness", "Asks for feedback after key moments")],
    "first_time_manager": [("delegation", "Hands over outcomes, not tasks"),
                           ("giving-feedback", "Gives specific feedback within a week"),
                           ("transition-to-management", "Spends more time enabling than doing")],
    "manager": [("coaching-others", "Asks before telling in one-to-ones"),
                ("performance-management", "Sets expectations that can be checked"),
                ("difficult-conversations", "Raises problems early and privately")],
    "senior_leader": [("strategic-thinking", "Connects team goals to the company's bets"),
                      ("stakeholder-management", "Maps who must agree before deciding"),
                      ("change-leadership", "Explains what changes and what stays")],
    "executive": [("executive-presence", "Is calm and clear under pressure"),
                  ("decision-making", "Decides with the information at hand and says so"),
                  ("inclusive-leadership", "Makes room for quiet voices")],
}  # fmt: skip


class DemoHttpError(RuntimeError):
    pass


@dataclass
class Participant:
    """One demo person: their employee token, level, and the ids of their completed sessions."""

    token: str
    level: str = "first_time_manager"
    completed_booking_ids: list[str] = field(default_factory=list)


@dataclass
class CaptureSummary:
    feedback_given: int = 0
    goals_set: int = 0
    checkins: int = 0
    assessments_released: int = 0
    rater_answers: int = 0


def _call(base_url: str, token: str | None, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (the local stack's URL)
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise DemoHttpError(f"{method} {path} -> {error.code}: {error.read().decode('utf-8', 'replace')}") from error


def _ratings(rng: random.Random, competencies: Sequence[str], low: int, high: int) -> dict[str, int]:
    return {c: rng.randint(low, high) for c in competencies}


def drive_capture(
    base_url: str, org_id: str, admin_token: str, participants: Sequence[Participant], *, seed: int = 11
) -> CaptureSummary:
    """Feedback, goals, role profiles and a 360 round (baseline and follow-up) for `participants`, over HTTP."""
    rng = random.Random(seed)
    summary = CaptureSummary()
    _call(base_url, admin_token, "PUT", f"/orgs/{org_id}/development-policy",
          {"show_manager_alone": True, "follow_up_weeks": 16})  # fmt: skip
    for level in LEVELS:
        competencies = [{"competency": c, "behaviours": [b]} for c, b in PROFILE_COMPETENCIES[level]]
        _call(base_url, admin_token, "PUT", f"/orgs/{org_id}/role-profiles/{level}",
              {"name": level.replace("_", " ").title(), "competencies": competencies})  # fmt: skip
    for person in participants:
        for booking_id in person.completed_booking_ids:
            answers = {
                "satisfaction": rng.choice([3, 4, 4, 5, 5, 5]),
                "would_recommend": rng.choice([6, 8, 9, 9, 10, 10]),
                "goal_progress": rng.randint(2, 5),
            }
            _call(base_url, person.token, "POST", f"/bookings/{booking_id}/feedback", answers)
            summary.feedback_given += 1
        focus = [c for c, _ in PROFILE_COMPETENCIES.get(person.level, PROFILE_COMPETENCIES["manager"])]
        for index in range(rng.randint(1, 3)):
            aim = {"aim": "target_role", "target_level": "manager"} if index == 2 else {}
            body = {
                "title": f"Grow in {focus[index].replace('-', ' ')}",
                "competencies": [focus[index]],
                "actions": [{"text": "Agree one concrete experiment with my coach"}],
                "checkin_every_days": 14,
            }
            goal = _call(base_url, person.token, "POST", "/goals", body | aim)
            summary.goals_set += 1
            _call(base_url, person.token, "POST", f"/goals/{goal['goal_id']}/check-ins",
                  {"progress": rng.choice([10, 25, 40, 60]), "actions_done": [0]})  # fmt: skip
            summary.checkins += 1
        manages = person.level != "individual_contributor"
        raters = (
            [{"group": "manager"}] + [{"group": "peer"}] * 3 + ([{"group": "direct_report"}] * 3 if manages else [])
        )
        baseline = _round(base_url, person, {"raters": raters}, rng, (2, 4), summary)
        _round(base_url, person, {"kind": "follow_up", "baseline_id": baseline, "raters": raters}, rng, (3, 5),
               summary)  # fmt: skip
    return summary


def _round(base_url: str, person: Participant, request: dict[str, Any], rng: random.Random,
           scores: tuple[int, int], summary: CaptureSummary) -> str:  # fmt: skip
    """Open a round, answer every link without a token, then self-assess (which releases it); its id."""
    opened = _call(base_url, person.token, "POST", "/assessments", request)
    assessment = opened["assessment"]
    for invite in opened["invites"]:
        ratings = _ratings(rng, assessment["competencies"], *scores)
        _call(base_url, None, "POST", "/360/answers", {"token": invite["token"], "ratings": ratings})
        summary.rater_answers += 1
    done = _call(base_url, person.token, "POST", f"/assessments/{assessment['assessment_id']}/self",
                 {"ratings": _ratings(rng, assessment["competencies"], *scores)})  # fmt: skip
    if done["status"] != "released":
        raise DemoHttpError(f"round {assessment['assessment_id']} was not released: {done}")
    summary.assessments_released += 1
    return str(assessment["assessment_id"])
