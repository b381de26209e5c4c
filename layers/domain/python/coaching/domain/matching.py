"""Contextual matching: hard constraints that are never broken, and a soft score with reasons.

Pure functions over the roster snapshot: no I/O. The service layer supplies the person's
context, their history and coaches' current loads, and persists what is chosen. The precomputed
roster scoring reads is `coaching.domain.compiled_roster`; the time-zone overlap, `coaching.domain.overlap`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, overload

from pydantic import Field

from coaching.domain.common import DeferredModel, LanguageCode, StrictModel
from coaching.domain.compiled_roster import (
    LEVEL_RANK,
    SCALE,
    SENIORITY_GATED_FROM,
    CompiledCoach,
    CompiledRoster,
)
from coaching.domain.overlap import FULL_OVERLAP_MINUTES, WORKING_DAYS
from coaching.domain.taxonomy import Level, Program

PROPOSALS = 3

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
