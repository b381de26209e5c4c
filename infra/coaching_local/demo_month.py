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
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


def _call(base_url: str, token: str | None, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the local stack's URL)
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise DemoHttpError(f"{method} {path} -> {error.code}: {error.read().decode('utf-8', 'replace')}") from error


def _ratings(rng: random.Random, competencies: Sequence[str], low: int, high: int) -> dict[str, int]:
    return {c: rng.randint(low, high) for c in competencies}


def drive_capture(
    base_url: str,
    org_id: str,
    admin_token: str,
    participants: Sequence[Participant],
    *,
    seed: int = 11,
    progress: Callable[[int], None] | None = None,
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
    for done, person in enumerate(participants):
        if progress is not None:
            progress(done)
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


# ----------------------------------------------------------------------------- the seeded demo's month

# The seeded demo's participants per org: most in three departments (groups well above the minimum), and
# two people in a department of their own, whose figures the reports must suppress.
DEMO_DEPARTMENTS = ("Platform", "Payments", "Growth")
SUPPRESSED_DEPARTMENT = "Finance"
SUPPRESSED_PEOPLE = 2
DEMO_LEVELS = ("individual_contributor", "first_time_manager", "manager")
NO_SHOW_EVERY = 7  # every seventh second session is a no-show: attendance below 100 %
ONE_SESSION_EVERY = 4  # every fourth person books only one session: utilisation is not one bucket
# The org's North Star priorities; about half the sessions also aim at one. (Hyphenated competency ids such as
# giving-feedback are refused as report priorities today.)
PRIORITIES = ["delegation", "resilience"]
PRIORITY_SHARE = 0.5


@dataclass
class DemoPerson:
    org_id: str
    person_id: str
    level: str
    department: str
    hr_id: str = ""  # the HR id: the same every seed (org and person ids are new each time)
    engagement_id: str = ""
    coach_id: str = ""
    bookings: list[tuple[str, datetime]] = field(default_factory=list)  # (booking id, end)
    completed: list[str] = field(default_factory=list)


@dataclass
class DemoMonthResult:
    period: str
    participants: int = 0
    sessions_booked: int = 0
    sessions_completed: int = 0
    no_shows: int = 0
    capture: dict[str, int] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)  # org id → the report's API path
    per_org: dict[str, dict[str, int]] = field(default_factory=dict)  # org id → participants, booked, completed…

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "participants": self.participants,
            "sessions_booked": self.sessions_booked,
            "sessions_completed": self.sessions_completed,
            "no_shows": self.no_shows,
            "capture": self.capture,
            "reports": self.reports,
            "per_org": self.per_org,
        }


def demo_period(now: datetime) -> tuple[str, datetime]:
    """The demo month is the calendar month before `now` (UTC): its name and its first instant."""
    first_of_this = datetime(now.year, now.month, 1, tzinfo=UTC)
    start = (first_of_this - timedelta(days=1)).replace(day=1)
    return start.strftime("%Y-%m"), start


def move_clock(base_url: str, destination: datetime | None) -> dict[str, Any]:
    """`POST /_local/clock` (or `DELETE` with None): the stack's clock, moved over HTTP."""
    if destination is None:
        return dict(_call(base_url, None, "DELETE", "/_local/clock"))
    return dict(_call(base_url, None, "POST", "/_local/clock", {"travel_to": destination.isoformat()}))


def drain(base_url: str, timeout: float = 120.0) -> None:
    """Wait until every table stream is read and delivered, so events are handled in the time they happened."""
    result = _call(base_url, None, "POST", f"/_local/streams/drain?timeout={timeout}")
    if not result.get("drained"):
        raise DemoHttpError(f"the streams did not drain: {result}")


def pick_participants(org_id: str, rows: Sequence[dict[str, Any]], count: int) -> list[DemoPerson]:
    """`count` people from the HR rows, in row order: all but two in the three demo departments (round
    robin), two in the suppressed one; at the demo levels only."""
    from coaching.ids import person_id_for

    wanted = dict.fromkeys(DEMO_DEPARTMENTS, 0)
    main = count - SUPPRESSED_PEOPLE
    for index in range(main):
        wanted[DEMO_DEPARTMENTS[index % len(DEMO_DEPARTMENTS)]] += 1
    wanted[SUPPRESSED_DEPARTMENT] = SUPPRESSED_PEOPLE
    chosen: list[DemoPerson] = []
    for row in rows:
        department = row["department"]
        if row["level"] in DEMO_LEVELS and wanted.get(department, 0) > 0:
            wanted[department] -= 1
            person_id = person_id_for(org_id, row["external_hr_id"])
            chosen.append(DemoPerson(org_id, person_id, row["level"], department, hr_id=row["external_hr_id"]))
    if any(wanted.values()):
        raise DemoHttpError(f"the seeded org {org_id} has too few people for the demo month: {wanted} missing")
    return chosen


class DemoMonth:
    """The seeded demo's month, over HTTP against the stack at `base_url`.

    Before the base seed, `begin()` moves the stack's clock to the first morning of the previous calendar
    month, so the seeded people joined before it. `run()` then, for each org's participants: match →
    engagement → two sessions booked in their coach's real availability (one in each half of the month) →
    the clock moves to mid-month, the first sessions are completed → to the month's end, the second ones
    are completed or marked no-show → feedback, goals, check-ins and a 360 round (`drive_capture`) →
    the clock returns to now → the monthly report run for the month just closed → the report's link.
    """

    def __init__(
        self,
        base_url: str,
        signing_key: bytes,
        *,
        participants_per_org: int = 30,
        seed: int = 11,
        progress: Callable[[str], None] = print,
        now: datetime | None = None,
    ) -> None:
        self.base_url = base_url
        self.key = signing_key
        self.participants_per_org = participants_per_org
        self.seed = seed
        self.progress = progress
        self.period, self.start = demo_period(now or datetime.now(UTC))

    def token(self, role: str, org_id: str | None, person_id: str | None) -> str:
        from coaching_local import tokens

        # Minted against the stack's clock of the moment (this process's): valid for the phase at hand.
        return tokens.dev_token(role, org_id, person_id, self.key)

    def call(self, token: str | None, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        return _call(self.base_url, token, method, path, body, timeout)

    def begin(self) -> None:
        moved = move_clock(self.base_url, self.start + timedelta(hours=6))
        self.progress(f"[demo month] the stack's clock moved to {moved['now']} (the demo month is {self.period})")

    def run(self, orgs: Sequence[dict[str, Any]], rows: dict[str, list[dict[str, Any]]]) -> DemoMonthResult:
        result = DemoMonthResult(self.period)
        rng = random.Random(self.seed)
        people: list[DemoPerson] = []
        for org in orgs:
            org_id = org["org_id"]
            admin = self.token("org_admin", org_id, f"demo-admin-{org_id[:8]}")
            cost = {level: {"factor": 1.5, "average_salary_minor": 6_000_000} for level in DEMO_LEVELS}
            settings = {"priorities": PRIORITIES, "currency": org.get("currency", "EUR"), "replacement_cost": cost}
            self.call(admin, "PUT", f"/orgs/{org_id}/report-settings", settings)
            chosen = pick_participants(org_id, rows[org_id], self.participants_per_org)
            for index, person in enumerate(chosen, start=1):
                self._engage(person)
                self._book(person, rng, sessions=1 if index % ONE_SESSION_EVERY == 0 else 2)
                if index % 10 == 0 or index == len(chosen):
                    self.progress(f"[demo month] {org['name']}: {index}/{len(chosen)} engaged and booked")
            people += chosen
        result.participants = len(people)
        result.sessions_booked = sum(len(p.bookings) for p in people)
        drain(self.base_url)
        # Mid-month, after every first session; then the month's end, after every second one.
        middle, end = self.start + timedelta(days=13, hours=20), self.start + timedelta(days=26, hours=20)
        for half, moment in ((0, middle), (1, end)):
            move_clock(self.base_url, moment)
            self.progress(f"[demo month] the clock moved to {moment.isoformat()}: sessions take place")
            second = [p for p in people if len(p.bookings) > half]
            for number, person in enumerate(second, start=1):
                booking_id, _ = person.bookings[half]
                coach = self.token("coach", None, person.coach_id)
                counts = result.per_org.setdefault(person.org_id, {"participants": 0, "booked": 0, "completed": 0,
                                                                    "no_shows": 0})  # fmt: skip
                counts["participants"] += 1 if half == 0 else 0
                counts["booked"] += 1
                if half == 1 and number % NO_SHOW_EVERY == 0:
                    self.call(coach, "POST", f"/coach/sessions/{booking_id}/no-show")
                    result.no_shows += 1
                    counts["no_shows"] += 1
                else:
                    self.call(coach, "POST", f"/coach/sessions/{booking_id}/complete", {"actual_minutes": 30})
                    person.completed.append(booking_id)
                    result.sessions_completed += 1
                    counts["completed"] += 1
            drain(self.base_url)
        self.progress("[demo month] feedback, goals, check-ins and a 360 round (baseline and follow-up)")
        totals: dict[str, int] = {}
        for org in orgs:
            org_id = org["org_id"]
            participants = [
                Participant(token=self.token("employee", org_id, p.person_id), level=p.level,
                            completed_booking_ids=p.completed)
                for p in people if p.org_id == org_id
            ]  # fmt: skip
            admin = self.token("org_admin", org_id, f"demo-admin-{org_id[:8]}")
            name = org["name"]

            def shown(done: int, name: str = name, count: int = len(participants)) -> None:
                if done and done % 10 == 0:
                    self.progress(f"[demo month] {name}: {done}/{count} gave feedback, set goals and ran a 360")

            captured = drive_capture(self.base_url, org_id, admin, participants, seed=self.seed, progress=shown)
            for name, value in vars(captured).items():
                totals[name] = totals.get(name, 0) + int(value)
        result.capture = totals
        drain(self.base_url)
        # Returning to real time crosses the 1st at 13:00 UTC (unless it is the 1st before then): the monthly
        # schedule then fires by itself for the month just closed. Otherwise the operator runs it.
        schedules = _call(self.base_url, None, "GET", "/_local/schedules")
        monthly = next(s for s in schedules if s["event"].endswith(".ReportsMonthly"))
        back = move_clock(self.base_url, None)
        operator = self.token("operator", None, "operator-demo")
        for org in orgs:
            result.reports[org["org_id"]] = f"/orgs/{org['org_id']}/reports/{self.period}"
        if monthly["next_fire"] and datetime.fromisoformat(monthly["next_fire"]) <= datetime.fromisoformat(back["now"]):
            self.progress(f"[demo month] the clock is back at {back['now']}: {monthly['name']} reports {self.period}")
        else:
            self.progress(f"[demo month] the clock is back at {back['now']}: the {self.period} report runs")
            for org_id in result.reports:
                self.call(operator, "POST", f"/orgs/{org_id}/reports/{self.period}/run", timeout=900)
        for org_id in result.reports:
            self.wait_for_report(org_id, timeout=900)
        return result

    def wait_for_report(self, org_id: str, *, period: str | None = None, timeout: float = 120.0) -> str:
        """The short-lived link to the org's HTML report, once report_generation has written it."""
        leader = self.token("leader", org_id, f"demo-leader-{org_id[:8]}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                return str(self.call(leader, "GET", f"/orgs/{org_id}/reports/{period or self.period}/download")["url"])
            except DemoHttpError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _engage(self, person: DemoPerson) -> None:
        employee = self.token("employee", person.org_id, person.person_id)
        match = self.call(employee, "POST", "/matches", {
            "program": "SCALE", "focus_competencies": [PROFILE_COMPETENCIES[person.level][0][0]],
            "situation": "I want to grow into my role this quarter.",
        })  # fmt: skip
        if not match.get("proposals"):
            raise DemoHttpError(f"no coach proposed for {person.person_id}: {match}")
        coach_id = match["proposals"][0]["coach_id"]
        engagement = self.call(employee, "POST", f"/matches/{match['match_id']}/choose", {"coach_id": coach_id})
        person.engagement_id, person.coach_id = engagement["engagement_id"], engagement["coach_id"]

    def _book(self, person: DemoPerson, rng: random.Random, sessions: int) -> None:
        """`sessions` (1 or 2) sessions, one in each half of the month, at times the coach really offers."""
        own = random.Random(f"{self.seed}:{person.hr_id}")
        employee = self.token("employee", person.org_id, person.person_id)
        since, until = self.start + timedelta(days=1), self.start + timedelta(days=26)
        query = urllib.parse.urlencode({"from": since.isoformat(), "to": until.isoformat()})
        slots = self.call(employee, "GET", f"/engagements/{person.engagement_id}/slots?{query}")["items"]
        middle = self.start + timedelta(days=13)
        halves = [
            [s for s in slots if datetime.fromisoformat(s["start_utc"]) < middle - timedelta(hours=1)],
            [s for s in slots if datetime.fromisoformat(s["start_utc"]) >= middle + timedelta(days=1)],
        ]
        for half in halves[:sessions]:
            # What the session is about draws on the person's own generator: the same whichever coach and slots.
            focus = [own.choice(PROFILE_COMPETENCIES[person.level])[0]]
            focus += [own.choice(PRIORITIES)] if own.random() < PRIORITY_SHARE else []
            for slot in rng.sample(half, k=min(len(half), 5)):
                body = {"engagement_id": person.engagement_id, "start": slot["start"],
                        "focus_competencies": sorted(set(focus)),
                        "situation": "Preparing a conversation that matters."}  # fmt: skip
                try:
                    booked = self.call(employee, "POST", "/bookings", body)
                except DemoHttpError as error:
                    if "-> 409" in str(error):  # the slot went to someone else of the same coach: the next one
                        continue
                    raise
                person.bookings.append((booked["booking_id"], datetime.fromisoformat(booked["end"])))
                break
            else:
                days = sorted({s["start_utc"][:10] for s in slots})
                raise DemoHttpError(
                    f"no slot could be booked with coach {person.coach_id} for {person.person_id} in one half of "
                    f"{self.period}; the coach offers time on {days}"
                )


def report_link(base_url: str, signing_key: bytes, org_id: str, period: str) -> str:
    """A fresh short-lived link to the org's HTML report for `period`, asked for as a leader."""
    return DemoMonth(base_url, signing_key).wait_for_report(org_id, period=period, timeout=0)
