"""Seeded synthetic coach networks and people for benchmarks: realistic, large, repeatable.

4,000 coaches over 30 languages, 12 industries, 8 functions, 5 levels and time zones on
every continent; people drawn from the same world so matches are neither trivial nor empty.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time
from typing import Any

from coaching.domain.coaches import AvailabilityRule, Coach, RoleHeld, VettingStatus
from coaching.domain.competencies import default_framework
from coaching.domain.taxonomy import Industry, JobFunction, Level, Program

# (language, weight, time zones where it is spoken)
LANGUAGES: list[tuple[str, int, list[str]]] = [
    ("en", 30, ["Europe/London", "America/New_York", "America/Chicago", "America/Los_Angeles", "Australia/Sydney"]),
    ("es", 10, ["Europe/Madrid", "America/Mexico_City", "America/Bogota", "America/Argentina/Buenos_Aires"]),
    ("de", 8, ["Europe/Berlin", "Europe/Vienna", "Europe/Zurich"]),
    ("fr", 8, ["Europe/Paris", "America/Montreal", "Africa/Casablanca"]),
    ("pt", 5, ["America/Sao_Paulo", "Europe/Lisbon"]),
    ("it", 4, ["Europe/Rome"]),
    ("nl", 3, ["Europe/Amsterdam", "Europe/Brussels"]),
    ("sv", 2, ["Europe/Stockholm"]),
    ("da", 2, ["Europe/Copenhagen"]),
    ("no", 2, ["Europe/Oslo"]),
    ("fi", 2, ["Europe/Helsinki"]),
    ("pl", 3, ["Europe/Warsaw"]),
    ("cs", 2, ["Europe/Prague"]),
    ("ro", 2, ["Europe/Bucharest"]),
    ("hu", 1, ["Europe/Budapest"]),
    ("el", 1, ["Europe/Athens"]),
    ("tr", 2, ["Europe/Istanbul"]),
    ("ar", 3, ["Asia/Dubai", "Asia/Riyadh", "Africa/Cairo"]),
    ("he", 1, ["Asia/Jerusalem"]),
    ("hi", 4, ["Asia/Kolkata"]),
    ("bn", 1, ["Asia/Dhaka"]),
    ("zh", 5, ["Asia/Shanghai", "Asia/Singapore", "Asia/Hong_Kong"]),
    ("ja", 4, ["Asia/Tokyo"]),
    ("ko", 2, ["Asia/Seoul"]),
    ("id", 1, ["Asia/Jakarta"]),
    ("ms", 1, ["Asia/Kuala_Lumpur"]),
    ("th", 1, ["Asia/Bangkok"]),
    ("vi", 1, ["Asia/Ho_Chi_Minh"]),
    ("uk", 1, ["Europe/Kyiv"]),
    ("sw", 1, ["Africa/Nairobi"]),
]
LEVELS = list(Level)
SENIOR_LEVELS = [Level.FIRST_TIME_MANAGER, Level.MANAGER, Level.SENIOR_LEADER, Level.EXECUTIVE]


def _language(rng: random.Random) -> tuple[str, list[str]]:
    language, _, zones = rng.choices(LANGUAGES, weights=[w for _, w, _ in LANGUAGES])[0]
    return language, zones


def coaches(count: int, seed: int = 2026) -> list[Coach]:
    """Approved coaches (bench data skips the vetting workflow, not the model's validation)."""
    rng = random.Random(seed)
    competencies = sorted(default_framework().ids())
    now = datetime(2026, 11, 1, tzinfo=UTC)
    out: list[Coach] = []
    for index in range(count):
        language, zones = _language(rng)
        languages = list(dict.fromkeys([language, *(["en"] if rng.random() < 0.55 else [])]))
        if rng.random() < 0.2:
            languages.append(_language(rng)[0])
        industries = rng.sample(list(Industry), k=rng.randint(1, 3))
        functions = rng.sample(list(JobFunction), k=rng.randint(1, 2))
        roles = [
            RoleHeld(level=lv, function=rng.choice(functions), industry=rng.choice(industries), years=rng.randint(2, 9))
            for lv in rng.sample(SENIOR_LEVELS, k=rng.randint(1, 3))
        ]
        senior = any(r.level in {Level.SENIOR_LEADER, Level.EXECUTIVE} for r in roles)
        programs = [Program.SCALE, Program.GROW] + ([Program.EXEC] if senior and rng.random() < 0.6 else [])
        days = sorted(rng.sample(range(5), k=rng.randint(2, 5)))
        rules = []
        for day in days:
            start = rng.choice([7, 8, 9, 10, 12, 14])
            rules.append(
                AvailabilityRule(weekday=day, start=time(start), end=time(min(start + rng.choice([3, 4, 6]), 22)))
            )
        out.append(
            Coach(
                coach_id=f"c{seed:04d}-{index:05d}",
                name=f"Coach {index}",
                email=f"coach{index}@bench.example",
                bio="Synthetic benchmark coach.",
                languages=list(dict.fromkeys(languages)),
                time_zone=rng.choice(zones),
                industries=industries,
                functions=functions,
                roles_held=roles,
                specialties=rng.sample(competencies, k=rng.randint(3, 6)),
                certifications=["ICF PCC"],
                operating_experience_years=rng.randint(10, 30),
                paid_coaching_hours=rng.randint(250, 4000),
                programs=programs,
                capacity=rng.randint(3, 12),
                weekly_availability=rules,
                vetting_status=VettingStatus.APPROVED,
                created_at=now,
                updated_at=now,
            )
        )
    return out


def people(org_id: str, count: int, seed: int = 7) -> list[dict[str, Any]]:
    """HR-import rows for people spread over the same languages and zones."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        language, zones = _language(rng)
        rows.append(
            {
                "external_hr_id": f"S{index:06d}",
                "name": f"Person {index}",
                "email": f"s{index}@{org_id[:8]}.example",
                "level": rng.choices(LEVELS, weights=[50, 20, 18, 9, 3])[0].value,
                "function": rng.choice(list(JobFunction)).value,
                "languages": list(dict.fromkeys([language, "en"] if rng.random() < 0.7 else [language])),
                "time_zone": rng.choice(zones),
            }
        )
    return rows
