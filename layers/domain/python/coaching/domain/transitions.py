"""Promotion transitions: what an organisation's policy does when HR promotes someone across a threshold.

- individual contributor → first-time manager (or manager): the person joins the wait-list of the next GROW
  cohort for new managers (`WaitlistEntry`, one per org, transition and person), and books at the new level's
  allowance from then on (allowances are per level: `coaching.domain.booking.Allowance.for_level`);
- manager → senior leader or executive: the person becomes eligible for EXEC (`Person.exec_eligible_since`).

Whether the current coach stays is matching's rule (`coaching.services.rematches.on_person_promoted`, on
`PersonPromoted`): kept while still eligible for the new level, else a re-match is proposed.

The policy lives with the org (`Org.transitions`; None means these defaults). `plan_transition` is pure: the
HR service commits what it returns in the same transaction as the promotion itself, with `PersonTransitioned`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from coaching.domain.booking import BookingPolicy
from coaching.domain.common import DeferredModel, StrictModel
from coaching.domain.events import PersonPromoted, PersonTransitioned, stable_event_id
from coaching.domain.people import Person
from coaching.domain.taxonomy import Level, Program, Transition
from coaching.domain.updates import evolved

_MANAGERS = frozenset({Level.FIRST_TIME_MANAGER, Level.MANAGER})
_SENIOR = frozenset({Level.SENIOR_LEADER, Level.EXECUTIVE})


def transition_of(previous: Level, new: Level) -> Transition | None:
    if previous is Level.INDIVIDUAL_CONTRIBUTOR and new in _MANAGERS:
        return Transition.NEW_MANAGER
    if previous not in _SENIOR and new in _SENIOR:
        return Transition.SENIOR_LEADER
    return None


class TransitionPolicy(StrictModel):
    """An org's transition policy (`Org.transitions`); every field has the platform's default."""

    new_manager_waitlist: bool = Field(
        default=True,
        description="Individual contributor → first-time manager: join the wait-list of the next GROW cohort for "
        "new managers.",
    )
    new_manager_program: Literal[Program.GROW] = Field(
        default=Program.GROW, description="The programme whose cohorts new managers wait for."
    )
    exec_eligibility: bool = Field(
        default=True, description="Manager → senior leader or executive: becomes eligible for EXEC."
    )


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    ENROLLED = "enrolled"  # set by the programme that opens a cohort from the wait-list


class WaitlistEntry(DeferredModel):
    """One person waiting for the next cohort of a programme after a transition.

    Stored once per org, transition and person (keys.waitlist_pk / keys.waitlist_sk): a repeated promotion
    writes nothing new. The programmes that open cohorts read the wait-list oldest first (`joined_at`).
    """

    org_id: str
    transition: Transition
    program: Program
    person_id: str
    joined_at: datetime
    status: WaitlistStatus = WaitlistStatus.WAITING
    # Who put them there: a promotion (the fields below are the promotion's), or an org admin by hand.
    source: Literal["promotion", "admin"] = "promotion"
    from_level: Level | None = None
    to_level: Level | None = None
    effective_date: date | None = None
    source_event_id: str | None = Field(
        default=None, description="The PersonPromoted event that put the person on the list."
    )
    # The language the person would be coached in (their first), so a cohort of one language opens from it.
    language: str | None = None


class Waitlist(DeferredModel):
    org_id: str
    transition: Transition
    program: Program | None
    items: list[WaitlistEntry]


@dataclass(frozen=True, slots=True)
class TransitionPlan:
    """What the policy does for one promotion: the person after it, the wait-list entry, the event."""

    person: Person
    transition: Transition | None = None
    waitlist: list[WaitlistEntry] = field(default_factory=list)
    events: list[PersonTransitioned] = field(default_factory=list)
    allowances: dict[str, int] = field(default_factory=dict)


def allowances_at(booking: BookingPolicy | None, level: Level) -> dict[str, int]:
    """Sessions a month per programme at `level` under the org's booking policy (or the default one)."""
    policy = booking or BookingPolicy()
    return {program.value: allowance.for_level(level) for program, allowance in policy.allowances.items()}


def plan_transition(
    policy: TransitionPolicy | None,
    booking: BookingPolicy | None,
    promoted: PersonPromoted,
    person: Person,
    now: datetime,
) -> TransitionPlan:
    """The policy's effects of `promoted` on `person` (already at the new level); none below a threshold."""
    policy = policy or TransitionPolicy()
    transition = transition_of(promoted.previous_level, promoted.new_level)
    if transition is None:
        return TransitionPlan(person=person)
    effective = date.fromisoformat(promoted.effective_date)
    waitlist: list[WaitlistEntry] = []
    waitlisted: Program | None = None
    if transition is Transition.NEW_MANAGER and policy.new_manager_waitlist:
        waitlisted = policy.new_manager_program
        waitlist.append(
            WaitlistEntry(
                org_id=person.org_id,
                transition=transition,
                program=waitlisted,
                person_id=person.person_id,
                from_level=promoted.previous_level,
                to_level=promoted.new_level,
                effective_date=effective,
                joined_at=now,
                source_event_id=promoted.event_id,
                language=person.languages[0],
            )
        )
    exec_eligible = transition is Transition.SENIOR_LEADER and policy.exec_eligibility
    if exec_eligible and person.exec_eligible_since is None:
        person = evolved(person, "person", exec_eligible_since=effective)
    allowances = allowances_at(booking, promoted.new_level)
    event = PersonTransitioned(
        event_id=stable_event_id("PersonTransitioned", promoted.event_id),
        org_id=person.org_id,
        person_id=person.person_id,
        transition=transition.value,
        previous_level=promoted.previous_level,
        new_level=promoted.new_level,
        effective_date=promoted.effective_date,
        waitlisted_program=waitlisted.value if waitlisted else None,
        exec_eligible=exec_eligible,
        allowances=allowances,
    )
    return TransitionPlan(
        person=person, transition=transition, waitlist=waitlist, events=[event], allowances=allowances
    )
