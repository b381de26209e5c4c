"""Contextual matching: hard constraints that are never broken, and a soft score with reasons.

Pure functions over the roster snapshot: no I/O. The service layer supplies the person's
context, their history and coaches' current loads, and persists what is chosen.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, overload

from pydantic import Field

from coaching.domain.availability import zone_info
from coaching.domain.common import DeferredModel, LanguageCode, StrictModel
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.taxonomy import JobFunction, Level, Program

LEVEL_RANK = {
    Level.INDIVIDUAL_CONTRIBUTOR: 0,
    Level.FIRST_TIME_MANAGER: 1,
    Level.MANAGER: 2,
    Level.SENIOR_LEADER: 3,
    Level.EXECUTIVE: 4,
}
# From this level up, a coach must have led at the person's level or above: an executive
# is not coached by someone who never sat at that table.
SENIORITY_GATED_FROM = LEVEL_RANK[Level.SENIOR_LEADER]
PROPOSALS = 3
WORKING_HOURS = (time(9), time(17))
WORKING_DAYS = range(0, 5)

LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "de": "German",
    "fr": "French",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "sv": "Swedish",
    "pl": "Polish",
    "ja": "Japanese",
    "zh": "Chinese",
    "hi": "Hindi",
    "ar": "Arabic",
    "ko": "Korean",
    "tr": "Turkish",
    "da": "Danish",
    "fi": "Finnish",
    "no": "Norwegian",
    "cs": "Czech",
    "el": "Greek",
    "he": "Hebrew",
    "id": "Indonesian",
    "ms": "Malay",
    "th": "Thai",
    "vi": "Vietnamese",
    "uk": "Ukrainian",
    "ro": "Romanian",
    "hu": "Hungarian",
    "ru": "Russian",
    "bn": "Bengali",
}

LANGUAGE_NAMES.update(
    {
        "is": "Icelandic",
        "mt": "Maltese",
        "ga": "Irish",
        "cy": "Welsh",
        "lv": "Latvian",
        "lt": "Lithuanian",
        "et": "Estonian",
        "sq": "Albanian",
        "sk": "Slovak",
        "sl": "Slovenian",
        "hr": "Croatian",
        "bg": "Bulgarian",
        "sr": "Serbian",
        "ca": "Catalan",
        "eu": "Basque",
        "gl": "Galician",
        "sw": "Swahili",
        "tl": "Tagalog",
    }
)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


class MatchWeights(StrictModel):
    """How much each factor counts (0 to 100). Orgs may tune them; these are the defaults."""

    has_done_the_job: Annotated[int, Field(ge=0, le=100)] = 30
    industry: Annotated[int, Field(ge=0, le=100)] = 10
    competencies: Annotated[int, Field(ge=0, le=100)] = 25
    time_zone_overlap: Annotated[int, Field(ge=0, le=100)] = 15
    continuity: Annotated[int, Field(ge=0, le=100)] = 60
    load_balance: Annotated[int, Field(ge=0, le=100)] = 10
    preferred_language: Annotated[int, Field(ge=0, le=100)] = 5


CohortMode = Literal["best_fit", "everyone_matched"]


class MatchingSettings(StrictModel):
    min_bookable_hours: Annotated[int, Field(ge=0, le=40)] = 2
    weights: MatchWeights = Field(default_factory=MatchWeights)
    # Cohort launches: the best total fit, or as many people matched as possible first.
    cohort_mode: CohortMode = "best_fit"


@dataclass(frozen=True, slots=True)
class PersonContext:
    """What matching knows about the person: their record, their org, what they face now."""

    person_id: str
    org_id: str
    level: Level
    function: str
    industry: str
    languages: tuple[str, ...]
    time_zone: str
    program: Program
    focus: tuple[str, ...]  # default-framework competency ids (calibrated ids already mapped)
    preferred_languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class History:
    declined: frozenset[str] = frozenset()  # coaches this person declined or ended with
    previous_coach: str | None = None  # the most recent coach the person did not leave


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    value: float  # 0..1 before weighting
    points: float  # weighted contribution
    reason: str | None


@dataclass(frozen=True, slots=True)
class ScoredCoach:
    coach: CompiledCoach
    points: int  # exact: sum of weight x factor value (values scaled to 0..SCALE)
    factors: tuple[Factor, ...]

    @property
    def score(self) -> float:
        return round(self.points / SCALE, 2)

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.factors if f.reason and f.points > 0]


class NoEligibleCoach(Exception):
    """No coach passes the hard constraints; `constraint` names the one that bound."""

    def __init__(self, constraint: str, message: str) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.message = message


# ---------------------------------------------------------------------------- compiled roster


@dataclass(frozen=True, slots=True)
class CompiledCoach:
    """A roster coach with the lookups scoring needs, built once per roster version."""

    coach: RosterCoach
    coach_id: str
    languages: frozenset[str]
    programs: frozenset[str]
    employers: frozenset[str]
    industries: frozenset[str]
    specialties: frozenset[str]
    exact_years: Mapping[tuple[str, str], int]  # (level, function) -> years in that job
    level_function: Mapping[str, str]  # level -> a function it was held in
    function_ranks: Mapping[str, frozenset[int]]  # function -> level ranks held in it
    highest_rank: int
    capacity: int


def compile_coach(coach: RosterCoach) -> CompiledCoach:
    exact: dict[tuple[str, str], int] = {}
    level_function: dict[str, str] = {}
    ranks: dict[str, set[int]] = {}
    for role in coach.roles_held:
        key = (role.level.value, role.function.value)
        exact[key] = max(exact.get(key, 0), role.years)
        level_function.setdefault(role.level.value, role.function.value)
        ranks.setdefault(role.function.value, set()).add(LEVEL_RANK[role.level])
    return CompiledCoach(
        coach=coach,
        coach_id=coach.coach_id,
        languages=frozenset(coach.languages),
        programs=frozenset(coach.programs),
        employers=frozenset(coach.employer_org_ids),
        industries=frozenset(coach.industries) | {r.industry.value for r in coach.roles_held},
        specialties=frozenset(coach.specialties),
        exact_years=exact,
        level_function=level_function,
        function_ranks={f: frozenset(r) for f, r in ranks.items()},
        highest_rank=max((LEVEL_RANK[r.level] for r in coach.roles_held), default=-1),
        capacity=coach.capacity,
    )


@dataclass(frozen=True, slots=True)
class CompiledRoster:
    """The roster with everything scoring needs that depends on the roster alone, built when a snapshot loads.

    Eligibility is answered from indexes (programme, employer, seniority, language), and the points that
    depend only on a person's (level, function), industry and time zone are kept as one table per key.
    A request then scores only what depends on the person alone: focus, preferred languages, continuity.
    """

    version: int
    coaches: tuple[CompiledCoach, ...]
    by_language: Mapping[str, tuple[int, ...]]
    position: Mapping[str, int] = field(default_factory=dict)  # coach id -> position
    by_program: Mapping[str, frozenset[int]] = field(default_factory=dict)
    by_employer: Mapping[str, frozenset[int]] = field(default_factory=dict)
    by_industry: Mapping[str, frozenset[int]] = field(default_factory=dict)
    specialists: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # competency -> positions
    led_at_least: tuple[frozenset[int], ...] = ()  # level rank -> positions who led at that rank or above
    job_points: Mapping[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)  # (level, function)
    # Per roster version, filled on first use and bounded: per-zone overlap values and the static tables.
    _zone_values: dict[tuple[str, datetime], tuple[int, ...]] = field(default_factory=dict)
    _tables: dict[tuple[object, ...], tuple[int, ...]] = field(default_factory=dict)

    def speaking(self, languages: Iterable[str]) -> list[CompiledCoach]:
        """Coaches who share a language with the person, via the index, in coach-id order."""
        positions = sorted({i for code in languages for i in self.by_language.get(code, ())})
        return [self.coaches[i] for i in positions]

    def zone_values(self, zone: str, now: datetime) -> tuple[int, ...]:
        """Per coach, the time-zone factor (0..SCALE) for a person in `zone` this UTC week: once per zone."""
        week = _week_start(now)
        values = self._zone_values.get((zone, week))
        if values is None:
            # The person's working minutes of the week as a prefix sum: a coach's overlap is then one
            # subtraction per availability span (both sides are merged, so this is their intersection).
            working = [0] * (_WEEK_MINUTES + 1)
            for start, end in OverlapCalculator(zone, now).person_spans():
                for minute in range(start, end):
                    working[minute + 1] = 1
            for minute in range(1, _WEEK_MINUTES + 1):
                working[minute] += working[minute - 1]
            found = []
            for c in self.coaches:
                minutes = sum(working[b] - working[a] for a, b in _coach_spans(c.coach, week))
                found.append(min(minutes * SCALE // FULL_OVERLAP_MINUTES, SCALE))
            values = tuple(found)
            if len(self._zone_values) >= _ZONE_TABLES:
                self._zone_values.clear()
            self._zone_values[(zone, week)] = values
        return values

    def _table(self, key: tuple[object, ...], build: Callable[[], tuple[int, ...]]) -> tuple[int, ...]:
        table = self._tables.get(key)
        if table is None:
            if len(self._tables) >= _TABLES:
                self._tables.clear()
            table = self._tables[key] = build()
        return table

    def job_table(self, person: PersonContext, weights: tuple[int, ...]) -> tuple[int, ...]:
        """Per coach, the weighted points of the person's job and industry, and of load balance."""
        w_job, w_industry, _, _, _, _, w_load = weights
        level, function, industry = person.level, person.function, person.industry

        def build() -> tuple[int, ...]:
            jobs = self.job_points.get((level.value, function)) or _job_points(self.coaches, level, function)
            within = self.by_industry.get(industry, frozenset())
            return tuple(
                w_job * jobs[i] + (w_industry * SCALE if i in within else 0) + (w_load * SCALE if c.capacity else 0)
                for i, c in enumerate(self.coaches)
            )

        return self._table(("job", level.value, function, industry, w_job, w_industry, w_load), build)

    def zone_table(self, zone: str, now: datetime, w_tz: int) -> tuple[int, ...]:
        """Per coach, the weighted time-zone points for a person in `zone` this UTC week."""
        return self._table(
            ("zone", zone, _week_start(now), w_tz), lambda: tuple(w_tz * v for v in self.zone_values(zone, now))
        )

    def focus_table(self, focus: tuple[str, ...], w_comp: int) -> tuple[int, ...]:
        """Per coach, the weighted competency points for this focus (shared competencies over the focus)."""

        def build() -> tuple[int, ...]:
            shared = [0] * len(self.coaches)
            for competency in frozenset(focus):
                for i in self.specialists.get(competency, ()):
                    shared[i] += 1
            return tuple(w_comp * (count * SCALE // len(focus)) for count in shared)

        return self._table(("focus", frozenset(focus), len(focus), w_comp), build)

    def eligible_positions(self, person: PersonContext, declined: Iterable[str]) -> list[int]:
        """Positions passing every hard constraint (static_constraints' rules, from the indexes), in order."""
        rank_ = LEVEL_RANK[person.level]
        gated = rank_ if rank_ >= SENIORITY_GATED_FROM else -1
        key = ("eligible", tuple(sorted(person.languages)), person.program.value, person.org_id, gated)

        def build() -> tuple[int, ...]:
            found = {i for code in person.languages for i in self.by_language.get(code, ())}
            found &= self.by_program.get(person.program.value, frozenset())
            found -= self.by_employer.get(person.org_id, frozenset())
            if gated >= 0:
                found &= self.led_at_least[gated]
            return tuple(sorted(found))

        positions = self._table(key, build)
        excluded = {self.position[c] for c in declined if c in self.position}
        return [i for i in positions if i not in excluded] if excluded else list(positions)


# Bounds on the per-roster tables filled on first use (a few dozen zones, job profiles, focus sets and
# eligibility sets in practice); past them a table is simply built again.
_ZONE_TABLES = 256
_TABLES = 4096


def _job_points(coaches: Sequence[CompiledCoach], level: Level, function: str) -> tuple[int, ...]:
    """The has-done-the-job value (0..SCALE) of every coach for a person at `level` in `function`."""
    exact_key = (level.value, function)
    rank_ = LEVEL_RANK[level]
    neighbours = {rank_ - 1, rank_ + 1}
    same_level, near = SCALE * 6 // 10, SCALE * 4 // 10
    values = []
    for coach in coaches:
        if exact_key in coach.exact_years:
            values.append(SCALE)
        elif level.value in coach.level_function:
            values.append(same_level)
        else:
            held = coach.function_ranks.get(function)
            values.append(near if held and not neighbours.isdisjoint(held) else 0)
    return tuple(values)


_compiled: dict[int, CompiledRoster] = {}


def compile_roster(roster: Roster) -> CompiledRoster:
    """Compiled once per roster version per container (when the snapshot loads); later calls are a dict lookup."""
    cached = _compiled.get(roster.version)
    if cached is not None and len(cached.coaches) == len(roster.coaches):
        return cached
    coaches = tuple(compile_coach(c) for c in sorted(roster.coaches, key=lambda c: c.coach_id))
    index: dict[str, list[int]] = {}
    programs: dict[str, set[int]] = {}
    employers: dict[str, set[int]] = {}
    industries: dict[str, set[int]] = {}
    specialists: dict[str, list[int]] = {}
    for position, coach in enumerate(coaches):
        for code in coach.languages:
            index.setdefault(code, []).append(position)
        for program in coach.programs:
            programs.setdefault(program, set()).add(position)
        for org_id in coach.employers:
            employers.setdefault(org_id, set()).add(position)
        for industry in coach.industries:
            industries.setdefault(industry, set()).add(position)
        for competency in coach.specialties:
            specialists.setdefault(competency, []).append(position)
    ranks = range(max(LEVEL_RANK.values()) + 1)
    compiled = CompiledRoster(
        roster.version,
        coaches,
        {k: tuple(v) for k, v in index.items()},
        position={c.coach_id: i for i, c in enumerate(coaches)},
        by_program={k: frozenset(v) for k, v in programs.items()},
        by_employer={k: frozenset(v) for k, v in employers.items()},
        by_industry={k: frozenset(v) for k, v in industries.items()},
        specialists={k: tuple(v) for k, v in specialists.items()},
        led_at_least=tuple(frozenset(i for i, c in enumerate(coaches) if c.highest_rank >= r) for r in ranks),
        job_points={
            (level.value, function.value): _job_points(coaches, level, function.value)
            for level in Level
            for function in JobFunction
        },
    )
    _compiled.clear()  # keep only the current version
    _compiled[roster.version] = compiled
    return compiled


# ---------------------------------------------------------------------------- hard constraints


def _languages_text(codes: Iterable[str]) -> str:
    names = [language_name(c) for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True, slots=True)
class Constraint:
    name: str
    allows: Callable[[CompiledCoach], bool]
    when_none_left: str


def static_constraints(person: PersonContext, history: History) -> list[Constraint]:
    """The constraints decidable from the roster alone, in the order they are explained."""
    program = person.program.value
    speaks = _languages_text(person.languages)
    constraints = [
        Constraint("program", lambda c: program in c.programs, f"no approved coach is certified for {program}"),
        Constraint(
            "language",
            lambda c: not c.languages.isdisjoint(person.languages),
            f"no approved {program} coach speaks {speaks}",
        ),
        Constraint(
            "not_a_colleague",
            lambda c: person.org_id not in c.employers,
            f"every approved {program} coach who speaks {speaks} works for your organisation",
        ),
    ]
    if LEVEL_RANK[person.level] >= SENIORITY_GATED_FROM:
        level = person.level.value.replace("_", " ")
        constraints.append(
            Constraint(
                "seniority",
                lambda c: c.highest_rank >= LEVEL_RANK[person.level],
                f"no approved {program} coach who speaks {speaks} has led at the {level} level",
            )
        )
    constraints.append(
        Constraint(
            "not_declined",
            lambda c: c.coach_id not in history.declined,
            "you have declined or ended with every coach who fits; ask your programme admin to widen the search",
        )
    )
    return constraints


def eligible(roster: Sequence[CompiledCoach], constraints: Sequence[Constraint]) -> list[CompiledCoach]:
    """Apply constraints in order; raise naming the first one that leaves nobody."""
    remaining = list(roster)
    for constraint in constraints:
        remaining = [coach for coach in remaining if constraint.allows(coach)]
        if not remaining:
            raise NoEligibleCoach(constraint.name, constraint.when_none_left)
    return remaining


# ---------------------------------------------------------------------------- time-zone overlap

_WEEK_MINUTES = 7 * 24 * 60


def _week_start(moment: datetime) -> datetime:
    monday = moment.astimezone(UTC).date() - timedelta(days=moment.astimezone(UTC).weekday())
    return datetime.combine(monday, time(0), tzinfo=UTC)


def _local_windows_utc(
    zone: str, windows: Iterable[tuple[int, time, time]], week_start: datetime
) -> list[tuple[int, int]]:
    """Weekly local windows as minutes since Monday 00:00 UTC, for the days of this week."""
    tz = zone_info(zone)
    by_weekday: dict[int, list[tuple[time, time]]] = {}
    for weekday, start, end in windows:
        by_weekday.setdefault(weekday, []).append((start, end))
    spans: list[tuple[int, int]] = []
    # Local calendar days around the UTC week, so zones far east or west are covered.
    first_day: date = week_start.date() - timedelta(days=1)
    for offset in range(9):
        day = first_day + timedelta(days=offset)
        for start, end in by_weekday.get(day.weekday(), ()):
            begin = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
            finish = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
            a = int((begin - week_start).total_seconds() // 60)
            b = int((finish - week_start).total_seconds() // 60)
            a, b = max(a, 0), min(b, _WEEK_MINUTES)
            if a < b:
                spans.append((a, b))
    return sorted(spans)


def _overlap_minutes(left: list[tuple[int, int]], right: list[tuple[int, int]]) -> int:
    total, i, j = 0, 0, 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            total += end - start
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return total


@dataclass
class OverlapCalculator:
    """Weekly overlap between a person's working hours and each coach's availability.

    Computed for the current UTC week and cached per coach, so scoring a whole roster costs
    one interval merge per coach, not a calendar expansion.
    """

    person_zone: str
    now: datetime
    _person: list[tuple[int, int]] = field(init=False)
    _week: datetime = field(init=False)
    _cache: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self._week = _week_start(self.now)
        windows = [(day, *WORKING_HOURS) for day in WORKING_DAYS]
        self._person = _merge(_local_windows_utc(self.person_zone, windows, self._week))
        key = (self.person_zone, self._week)
        if key not in _overlap_cache and len(_overlap_cache) > 200:
            _overlap_cache.clear()
        self._cache = _overlap_cache.setdefault(key, {})

    def person_spans(self) -> list[tuple[int, int]]:
        """The person's working hours this week, merged, as minutes since Monday 00:00 UTC."""
        return self._person

    def known_minutes(self) -> dict[str, int]:
        """What is already computed for this zone and week (read-only view for hot loops)."""
        return self._cache

    def weekly_minutes(self, coach: RosterCoach) -> int:
        minutes = self._cache.get(coach.coach_id)
        if minutes is None:
            minutes = self._cache[coach.coach_id] = _overlap_minutes(self._person, _coach_spans(coach, self._week))
        return minutes


# Per (person zone, week): coach id -> minutes. People share a few dozen zones, so after
# the first request from a zone, overlap is a dict lookup per coach.
_overlap_cache: dict[tuple[str, datetime], dict[str, int]] = {}


_coach_span_cache: dict[tuple[str, str, datetime], list[tuple[int, int]]] = {}


def _coach_spans(coach: RosterCoach, week: datetime) -> list[tuple[int, int]]:
    key = (coach.coach_id, coach.time_zone, week)
    spans = _coach_span_cache.get(key)
    if spans is None:
        if len(_coach_span_cache) > 50_000:
            _coach_span_cache.clear()
        windows = [(rule.weekday, rule.start, rule.end) for rule in coach.weekly_availability]
        spans = _merge(_local_windows_utc(coach.time_zone, windows, week))
        _coach_span_cache[key] = spans
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# ---------------------------------------------------------------------------- soft score


def _job_value(person: PersonContext, coach: CompiledCoach) -> int:
    level = person.level.value
    if (level, person.function) in coach.exact_years:
        return SCALE
    if level in coach.level_function:
        return SCALE * 6 // 10
    rank_ = LEVEL_RANK[person.level]
    held = coach.function_ranks.get(person.function, frozenset())
    return SCALE * 4 // 10 if (rank_ - 1) in held or (rank_ + 1) in held else 0


def _job_reason(person: PersonContext, coach: CompiledCoach, value: int) -> str | None:
    level_text = person.level.value.replace("_", " ")
    function_text = person.function.replace("_", " ")
    if value == SCALE:
        years = coach.exact_years[(person.level.value, person.function)]
        return f"was a {level_text} in {function_text} for {years} years"
    if value == SCALE * 6 // 10:
        return f"was a {level_text} (in {coach.level_function[person.level.value].replace('_', ' ')})"
    if value == SCALE * 4 // 10:
        rank_ = LEVEL_RANK[person.level]
        held = coach.function_ranks[person.function]
        other = next(level for level, r in LEVEL_RANK.items() if r in held and abs(r - rank_) == 1)
        return f"led in {function_text} as a {other.value.replace('_', ' ')}"
    return None


SCALE = 10_000  # factor values are integers in 0..SCALE, so scores are exact integer sums
FULL_OVERLAP_MINUTES = len(WORKING_DAYS) * 5 * 60  # five shared hours a working day is as good as it gets


def factor_values(
    person: PersonContext, coach: CompiledCoach, history: History, active_load: int, weekly_overlap_minutes: int
) -> tuple[int, int, int, int, int, int, int]:
    """Each factor in 0..SCALE, in FACTOR_NAMES order: the one place the score is defined."""
    focus = person.focus
    shared = sum(1 for c in focus if c in coach.specialties)
    preferred = any(c in coach.languages for c in person.preferred_languages)
    spare = max(coach.capacity - active_load, 0) * SCALE // coach.capacity if coach.capacity else 0
    return (
        _job_value(person, coach),
        SCALE if person.industry in coach.industries else 0,
        shared * SCALE // len(focus) if focus else 0,
        min(weekly_overlap_minutes * SCALE // FULL_OVERLAP_MINUTES, SCALE),
        SCALE if preferred else 0,
        SCALE if history.previous_coach == coach.coach_id else 0,
        spare,
    )


FACTOR_NAMES = (
    "has_done_the_job",
    "industry",
    "competencies",
    "time_zone_overlap",
    "preferred_language",
    "continuity",
    "load_balance",
)


def weight_vector(weights: MatchWeights) -> tuple[int, ...]:
    return tuple(getattr(weights, name) for name in FACTOR_NAMES)


def scored_candidates(
    roster: CompiledRoster,
    person: PersonContext,
    weights: MatchWeights,
    history: History,
    now: datetime,
    exclude: frozenset[str] = frozenset(),
) -> Ranked:
    """Every eligible coach's score with no load yet, best first, ties in coach-id order: the hot path of a match.

    Eligibility comes from the roster's indexes and the points from its static table for the person's job,
    industry and zone; only focus, preferred languages and continuity are added per request. The points
    equal factor_values' sum with no load (tests hold them equal, and equal to the reference scorer's).
    Raises NoEligibleCoach naming the first constraint, in static_constraints' order, that leaves nobody.
    """
    declined = history.declined | exclude
    positions = roster.eligible_positions(person, declined)
    if not positions:
        raise _binding_constraint(roster, static_constraints(person, History(declined)))
    vector = weight_vector(weights)
    _, _, w_comp, w_tz, w_pref, w_cont, _ = vector
    jobs = roster.job_table(person, vector)
    zones = roster.zone_table(person.time_zone, now, w_tz)
    extra: dict[int, int] = {}
    if person.preferred_languages and w_pref:
        for i in {i for code in person.preferred_languages for i in roster.by_language.get(code, ())}:
            extra[i] = w_pref * SCALE
    previous = roster.position.get(history.previous_coach) if history.previous_coach else None
    if previous is not None and w_cont:
        extra[previous] = extra.get(previous, 0) + w_cont * SCALE
    # One integer per coach, points then inverse position: a plain integer sort gives best first and,
    # on equal points, coach-id order (the roster is sorted by id).
    n = len(roster.coaches)
    last = n - 1
    if person.focus and w_comp:
        focus = roster.focus_table(person.focus, w_comp)
        keys = [(jobs[i] + zones[i] + focus[i]) * n + last - i for i in positions]
    else:
        keys = [(jobs[i] + zones[i]) * n + last - i for i in positions]
    if extra:
        keys = [key + extra.get(last - key % n, 0) * n for key in keys]
    return Ranked(keys, n, roster.coaches)


class Ranked(Sequence[tuple[int, CompiledCoach]]):
    """(points, coach), best first, ordered only as far as it is read: the first RANKED_TOP by a partial
    selection, the rest sorted on first access beyond them. A match reads a handful and a cohort launch
    twenty per person, so they never pay for ordering thousands."""

    __slots__ = ("_coaches", "_keys", "_n", "_order")

    def __init__(self, keys: list[int], n: int, coaches: tuple[CompiledCoach, ...]) -> None:
        self._keys, self._n, self._coaches = keys, n, coaches
        self._order: list[int] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def _ordered(self, upto: int) -> list[int]:
        order = self._order
        if order is None or (len(order) < upto and len(order) < len(self._keys)):
            if upto <= RANKED_TOP and len(self._keys) > RANKED_TOP:
                order = heapq.nlargest(RANKED_TOP, self._keys)
            else:
                order = sorted(self._keys, reverse=True)
            self._order = order
        return order

    def _decode(self, key: int) -> tuple[int, CompiledCoach]:
        return key // self._n, self._coaches[self._n - 1 - key % self._n]

    @overload
    def __getitem__(self, index: int) -> tuple[int, CompiledCoach]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, CompiledCoach]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, CompiledCoach] | list[tuple[int, CompiledCoach]]:
        if isinstance(index, slice):
            start, stop, _ = index.indices(len(self._keys))
            return [self._decode(key) for key in self._ordered(max(stop, start + 1))[index]]
        if index < 0:
            index += len(self._keys)
        if not 0 <= index < len(self._keys):
            raise IndexError(index)
        return self._decode(self._ordered(index + 1)[index])


# Candidates ordered by a partial selection before the whole list is sorted (Ranked).
RANKED_TOP = 64


def _binding_constraint(roster: CompiledRoster, constraints: Sequence[Constraint]) -> NoEligibleCoach:
    """The first constraint that leaves nobody over the whole network, as the error explaining it."""
    remaining: Sequence[CompiledCoach] = roster.coaches
    for constraint in constraints:
        remaining = [coach for coach in remaining if constraint.allows(coach)]
        if not remaining:
            return NoEligibleCoach(constraint.name, constraint.when_none_left)
    last = constraints[-1]
    return NoEligibleCoach(last.name, last.when_none_left)


def score_coach(
    person: PersonContext,
    coach: CompiledCoach,
    *,
    weights: MatchWeights,
    history: History,
    active_load: int,
    weekly_overlap_minutes: int,
) -> ScoredCoach:
    """The score with a readable reason per factor, for the coaches a person will see.

    Its `points` equal scored_candidates' for the same coach with no load (a property test holds them equal).
    """
    values = factor_values(person, coach, history, active_load, weekly_overlap_minutes)
    weight_values = weight_vector(weights)
    shared = [c for c in person.focus if c in coach.specialties]
    preferred = [c for c in person.preferred_languages if c in coach.languages]
    daily_hours = weekly_overlap_minutes / 60 / len(WORKING_DAYS)
    reasons = (
        _job_reason(person, coach, values[0]),
        f"knows {person.industry.replace('_', ' ')}" if values[1] else None,
        f"specialises in {', '.join(shared)}" if shared else None,
        f"{daily_hours:.0f} h overlap with your working day" if daily_hours >= 0.5 else None,
        f"speaks {_languages_text(preferred)}" if preferred else None,
        "your previous coach" if values[5] else None,
        None,
    )
    factors = [
        Factor(name, value / SCALE, weight * value / SCALE, reason)
        for name, value, weight, reason in zip(FACTOR_NAMES, values, weight_values, reasons, strict=True)
    ]
    common = [language_name(c) for c in coach.coach.languages if c in person.languages]
    if not preferred and common:
        # Always say which language the sessions can be in, even if not a scored preference.
        factors.append(Factor("language", 1.0, 0.0, f"speaks {common[0]}"))
    points = sum(w * v for w, v in zip(weight_values, values, strict=True))
    return ScoredCoach(coach=coach, points=points, factors=tuple(factors))


def readable(scored: ScoredCoach) -> list[str]:
    """Reasons in the order a person reads them; the language line always comes through."""
    reasons = [f.reason for f in scored.factors if f.reason and (f.points > 0 or f.name == "language")]
    return reasons


def rank(scored: Iterable[ScoredCoach]) -> list[ScoredCoach]:
    # Ties break on coach id so the same input always gives the same list.
    return sorted(scored, key=lambda s: (-s.points, s.coach.coach_id))


def map_focus(focus: Sequence[str], calibrated: Mapping[str, str | None]) -> tuple[str, ...]:
    """Translate an org's calibrated competency ids into the default vocabulary coaches use."""
    mapped = [calibrated.get(item) or item for item in focus]
    return tuple(dict.fromkeys(mapped))


class MatchPreferences(StrictModel):
    languages: Annotated[list[LanguageCode], Field(max_length=3)] = []


class MatchRequestIn(StrictModel):
    program: Program
    focus_competencies: Annotated[list[str], Field(min_length=1, max_length=5)]
    situation: Annotated[str, Field(min_length=10, max_length=2000)]
    preferences: MatchPreferences = Field(default_factory=MatchPreferences)


class Proposal(DeferredModel):
    coach_id: str
    name: str
    headline: str
    score: float
    reasons: list[str]
    factors: dict[str, float]


def proposal(scored: ScoredCoach) -> Proposal:
    return Proposal(
        coach_id=scored.coach.coach_id,
        name=scored.coach.coach.name,
        headline=scored.coach.coach.headline,
        score=scored.score,
        reasons=readable(scored),
        factors={f.name: round(f.points, 2) for f in scored.factors if f.name != "language"},
    )
