"""The precomputed roster: everything scoring needs that depends on the roster alone, built once per roster
version when a snapshot loads (never at import), so a match request scores only what depends on the person.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from coaching.domain.overlap import FULL_OVERLAP_MINUTES, WEEK_MINUTES, OverlapCalculator, coach_spans, week_start
from coaching.domain.roster import Roster, RosterCoach
from coaching.domain.taxonomy import JobFunction, Level

if TYPE_CHECKING:
    from coaching.domain.matching import PersonContext

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
SCALE = 10_000  # factor values are integers in 0..SCALE, so scores are exact integer sums


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
        week = week_start(now)
        values = self._zone_values.get((zone, week))
        if values is None:
            # The person's working minutes of the week as a prefix sum: a coach's overlap is then one
            # subtraction per availability span (both sides are merged, so this is their intersection).
            working = [0] * (WEEK_MINUTES + 1)
            for start, end in OverlapCalculator(zone, now).person_spans():
                for minute in range(start, end):
                    working[minute + 1] = 1
            for minute in range(1, WEEK_MINUTES + 1):
                working[minute] += working[minute - 1]
            found = []
            for c in self.coaches:
                minutes = sum(working[b] - working[a] for a, b in coach_spans(c.coach, week))
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
            ("zone", zone, week_start(now), w_tz), lambda: tuple(w_tz * v for v in self.zone_values(zone, now))
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
