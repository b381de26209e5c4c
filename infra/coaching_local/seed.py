"""A deterministic demo: two orgs, 1,000 people and 300 approved coaches in 12+ languages.

It goes through the same domain services as the API, so the demo obeys the platform's
rules (vetting thresholds, import validation) rather than writing items behind its back.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from typing import Any

from coaching.adapters.billing_store import BillingStore
from coaching.adapters.dynamo import CoachRepository, admin_ports
from coaching.adapters.roster_store import RosterStore
from coaching.auth import Principal, Role
from coaching.domain.coaches import AvailabilityRule, CoachCreate, RoleHeld, VettingDecision, VettingStatus
from coaching.domain.competencies import default_framework
from coaching.domain.orgs import OrgCreate
from coaching.domain.pricing import PriceBook, PriceBookVersionInput, Tier, minor_units
from coaching.domain.taxonomy import Industry, JobFunction, Level, Program
from coaching.ids import person_id_for
from coaching.services import admin
from coaching.services.roster import rebuild_roster

OPERATOR = Principal(person_id="operator-demo", org_id=None, roles=frozenset({Role.OPERATOR}))

# (language, a time zone where it is spoken, a few names)
LOCALES: list[tuple[str, str, list[str]]] = [
    ("en", "Europe/London", ["Olivia Hughes", "James Patel", "Amelia Clarke", "Noah Turner"]),
    ("en", "America/New_York", ["Emma Johnson", "Liam Brooks", "Ava Martinez", "Ethan Reed"]),
    ("es", "Europe/Madrid", ["Lucía García", "Hugo Fernández", "Martina López", "Pablo Ruiz"]),
    ("es", "America/Mexico_City", ["Sofía Hernández", "Mateo Ramírez", "Valentina Cruz", "Diego Torres"]),
    ("de", "Europe/Berlin", ["Mia Schneider", "Leon Fischer", "Hannah Weber", "Felix Wagner"]),
    ("fr", "Europe/Paris", ["Chloé Martin", "Louis Bernard", "Léa Dubois", "Gabriel Moreau"]),
    ("it", "Europe/Rome", ["Giulia Rossi", "Lorenzo Bianchi", "Sofia Romano", "Matteo Colombo"]),
    ("pt", "America/Sao_Paulo", ["Ana Souza", "João Oliveira", "Beatriz Lima", "Pedro Santos"]),
    ("nl", "Europe/Amsterdam", ["Emma de Vries", "Daan Jansen", "Sanne Bakker", "Lars Visser"]),
    ("sv", "Europe/Stockholm", ["Elsa Lindberg", "Oskar Nilsson", "Maja Eriksson", "Hugo Larsson"]),
    ("pl", "Europe/Warsaw", ["Zofia Nowak", "Jakub Kowalski", "Maja Wiśniewska", "Antoni Wójcik"]),
    ("ja", "Asia/Tokyo", ["Yui Sato", "Haruto Suzuki", "Aoi Takahashi", "Sota Tanaka"]),
    ("zh", "Asia/Shanghai", ["Li Na", "Wang Wei", "Zhang Min", "Liu Yang"]),
    ("hi", "Asia/Kolkata", ["Aarav Sharma", "Ananya Iyer", "Vivaan Gupta", "Diya Reddy"]),
    ("ar", "Asia/Dubai", ["Layla Haddad", "Omar Khalil", "Noor Aziz", "Yusuf Salem"]),
    ("ko", "Asia/Seoul", ["Kim Seo-yeon", "Lee Min-jun", "Park Ji-woo", "Choi Do-yun"]),
    ("tr", "Europe/Istanbul", ["Elif Yılmaz", "Mehmet Kaya", "Zeynep Demir", "Can Şahin"]),  # noqa: RUF001
]

DEMO_ORGS = [
    {"name": "Northwind Software", "time_zone": "Europe/Berlin", "currency": "EUR", "industry": Industry.TECHNOLOGY},
    {
        "name": "Contoso Bank",
        "time_zone": "America/New_York",
        "currency": "USD",
        "industry": Industry.FINANCIAL_SERVICES,
    },
]
PEOPLE_PER_ORG = 500
COACHES = 300
DEPARTMENTS = ["Platform", "Payments", "Growth", "Data", "Sales EMEA", "Sales Americas", "Finance", "People Ops"]
LEVEL_WEIGHTS = [
    (Level.INDIVIDUAL_CONTRIBUTOR, 55),
    (Level.FIRST_TIME_MANAGER, 18),
    (Level.MANAGER, 17),
    (Level.SENIOR_LEADER, 8),
    (Level.EXECUTIVE, 2),
]


def _weekly_hours(rng: random.Random) -> list[AvailabilityRule]:
    days = rng.sample(range(5), k=rng.randint(2, 4))
    rules = []
    for day in sorted(days):
        start = rng.choice([8, 9, 10, 13])
        rules.append(AvailabilityRule(weekday=day, start=time(start), end=time(start + rng.choice([3, 4]))))
    return rules


def coach_profiles(count: int, seed: int = 7, locales: list[tuple[str, str, list[str]]] = LOCALES) -> list[CoachCreate]:
    """Realistic, vettable coach profiles; reused by benchmarks for larger pools."""
    rng = random.Random(seed)
    competencies = sorted(default_framework().ids())
    profiles = []
    for index in range(count):
        language, zone, names = locales[index % len(locales)]
        extra = rng.sample([loc[0] for loc in locales if loc[0] != language], k=rng.randint(0, 2))
        languages = list(dict.fromkeys([language, *(["en"] if rng.random() < 0.6 else []), *extra]))
        industries = rng.sample(list(Industry), k=rng.randint(1, 3))
        functions = rng.sample(list(JobFunction), k=rng.randint(1, 2))
        roles = [
            RoleHeld(
                level=level, function=rng.choice(functions), industry=rng.choice(industries), years=rng.randint(2, 8)
            )
            for level in rng.sample(
                [Level.FIRST_TIME_MANAGER, Level.MANAGER, Level.SENIOR_LEADER, Level.EXECUTIVE], k=rng.randint(1, 3)
            )
        ]
        senior = any(r.level in {Level.SENIOR_LEADER, Level.EXECUTIVE} for r in roles)
        programs = [Program.SCALE, Program.GROW] + ([Program.EXEC] if senior and rng.random() < 0.7 else [])
        if rng.random() < 0.3:
            programs.append(Program.TOGETHER)
        name = names[index % len(names)]
        profiles.append(
            CoachCreate(
                name=f"{name} ({index + 1})",
                email=f"coach{index + 1}@coaches.example",
                bio=f"Former {roles[0].level.value.replace('_', ' ')} in {roles[0].function.value}.",
                languages=languages,
                time_zone=zone,
                industries=industries,
                functions=functions,
                roles_held=roles,
                specialties=rng.sample(competencies, k=rng.randint(3, 6)),
                certifications=rng.sample(["ICF PCC", "ICF MCC", "EMCC Senior Practitioner", "ICF ACC"], k=1),
                operating_experience_years=rng.randint(10, 30),
                paid_coaching_hours=rng.randint(250, 4000),
                programs=programs,
                capacity=rng.randint(4, 15),
                weekly_availability=_weekly_hours(rng),
            )
        )
    return profiles


def people_rows(org_id: str, count: int, seed: int, home_zone: str) -> list[dict[str, Any]]:
    """HR-import rows with a real reporting line: managers come first, reports name them."""
    rng = random.Random(seed)
    levels = [level for level, weight in LEVEL_WEIGHTS for _ in range(weight)]
    rows: list[dict[str, Any]] = []
    managers: list[str] = []
    for index in range(count):
        language, zone, names = rng.choice(LOCALES)
        level = Level.EXECUTIVE if index == 0 else rng.choice(levels)
        hr_id = f"E{seed:02d}{index:05d}"
        first, _, last = names[index % len(names)].partition(" ")
        row: dict[str, Any] = {
            "external_hr_id": hr_id,
            "name": f"{first} {last or 'Demo'}",
            "email": f"{hr_id.lower()}@{org_id[:8]}.example",
            "level": level.value,
            "function": rng.choice(list(JobFunction)).value,
            "department": rng.choice(DEPARTMENTS),
            "location": zone.split("/")[-1].replace("_", " "),
            "languages": list(dict.fromkeys([language, "en"])),
            "time_zone": zone if rng.random() < 0.6 else home_zone,
        }
        if managers:
            row["manager_external_hr_id"] = rng.choice(managers[-40:])
        if level is not Level.INDIVIDUAL_CONTRIBUTOR:
            managers.append(hr_id)
        rows.append(row)
    return rows


def demo_price_book(org_id: str, currency: str, now: datetime | None = None) -> PriceBook:
    """A price book effective from the start of last year: every program at 30, 45 and 60 min,
    half-price late-cancel and no-show fees, a 10 % tier from the 101st session a month."""
    now = now or datetime.now(UTC)
    scale = 10 ** minor_units(currency)
    per_minute = {"SCALE": 3, "GROW": 3, "EXEC": 6, "TOGETHER": 8}  # whole currency units per minute
    version = PriceBookVersionInput(
        effective_from=date(now.year - 1, 1, 1),
        currency=currency,
        session_prices={
            program: {length: rate * length * scale for length in (30, 45, 60)} for program, rate in per_minute.items()
        },
        late_cancel_fee_bps=5000,
        no_show_fee_bps=5000,
        tiers=[Tier(from_session=101, discount_bps=1000)],
        seat_price_minor=40 * scale,
    )
    return PriceBook(org_id=org_id, versions=[]).with_version(version, now=now, actor=OPERATOR.person_id)


def give_price_book(org_id: str, currency: str) -> PriceBook:
    book = demo_price_book(org_id, currency)
    return BillingStore().save_price_book(
        PriceBook(org_id=org_id, versions=[]), lambda current: current if current.versions else book
    )


def seed_demo(
    table_names: dict[str, str] | None = None, *, people_per_org: int = PEOPLE_PER_ORG, coaches: int = COACHES
) -> dict[str, Any]:
    """Seed through the domain services; the caller has set the environment for the tables."""
    ctx = admin.AdminContext(**admin_ports())
    summary: dict[str, Any] = {"orgs": [], "people": 0, "coaches": 0, "languages": []}
    first_people: dict[str, list[dict[str, Any]]] = {}
    for number, spec in enumerate(DEMO_ORGS, start=1):
        org = admin.create_org(OPERATOR, OrgCreate(**spec), ctx)
        give_price_book(org.org_id, org.currency)
        org_admin = Principal(
            person_id=person_id_for(org.org_id, f"E{number:02d}00001"),
            org_id=org.org_id,
            roles=frozenset({Role.ORG_ADMIN}),
        )
        rows = people_rows(org.org_id, people_per_org, seed=number, home_zone=spec["time_zone"])
        report = admin.import_people(org_admin, rows, ctx)
        if report.failed:
            raise RuntimeError(f"demo import refused rows: {report.errors[:3]}")
        summary["orgs"].append({"org_id": org.org_id, "name": org.name, "people": report.created + report.updated})
        summary["people"] += report.created + report.updated
        first_people[org.org_id] = rows

    languages: set[str] = set()
    coach_ids: list[str] = []
    for profile in coach_profiles(coaches):
        coach = admin.create_coach(OPERATOR, profile, ctx)
        admin.set_vetting(
            OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED, reason="demo network"), ctx
        )
        languages.update(coach.languages)
        coach_ids.append(coach.coach_id)
    summary["coaches"] = len(coach_ids)
    summary["languages"] = sorted(languages)
    summary["roster_version"] = rebuild_roster(CoachRepository(), RosterStore()).version

    org_id = summary["orgs"][0]["org_id"]
    rows = first_people[org_id]

    def person(level: Level) -> str:
        hr_id = next(r["external_hr_id"] for r in rows if r["level"] == level.value)
        return person_id_for(org_id, hr_id)

    summary["token_subjects"] = {
        "employee": {"org_id": org_id, "person_id": person(Level.INDIVIDUAL_CONTRIBUTOR)},
        "coach": {"org_id": None, "person_id": coach_ids[0]},
        "org_admin": {"org_id": org_id, "person_id": person_id_for(org_id, rows[1]["external_hr_id"])},
        "leader": {"org_id": org_id, "person_id": person(Level.SENIOR_LEADER)},
        "finance": {"org_id": org_id, "person_id": person_id_for(org_id, rows[2]["external_hr_id"])},
        "operator": {"org_id": None, "person_id": OPERATOR.person_id},
    }
    return summary


def seeded_rows(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The HR rows `seed_demo` imported, per org id, derived again from its summary (the seed is deterministic)."""
    return {
        org["org_id"]: people_rows(org["org_id"], org["people"], seed=number, home_zone=spec["time_zone"])
        for number, (org, spec) in enumerate(zip(summary["orgs"], DEMO_ORGS, strict=True), start=1)
    }
