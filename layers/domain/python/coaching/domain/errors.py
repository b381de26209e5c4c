"""Every domain error, in one place. The API layer maps each to one HTTP status (coaching.api).

Adapters never define errors: they map a failed transaction's cancellation reasons to these.
"""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base class: a request the domain refuses. Never a bug."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, details: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details: dict[str, object] = dict(details or {})


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidInput(DomainError):
    """Well-formed input that breaks a business rule; `field` names the culprit."""

    status = 422
    code = "invalid"


class NoEligibleCoachError(InvalidInput):
    code = "no_eligible_coach"


class SlotTaken(Conflict):
    """A calendar bucket of the coach or the person is already held by another session."""


class PolicyRefused(InvalidInput):
    """A rule of the org's policy refused the booking; the message says which and when it resets."""

    code = "policy_refused"


class AllowanceExhausted(PolicyRefused):
    """A counter (allowance, session cap or budget) has no room; `message` names the rule."""


class UsageMoved(Conflict):
    """An org meter moved since it was read, but there is still room: re-read and retry."""

    def __init__(self, rule: str, used: int) -> None:
        super().__init__("the organisation's usage changed at the same time; try again", field="program")
        self.rule = rule
        self.used = used


class AlreadyBilled(Conflict):
    """The session already has this ledger record: the caller's earlier attempt committed."""


class ChooseRefused(Conflict):
    """Choosing a coach lost a race (capacity, a newer match version, another active engagement)."""


class RosterVersionConflict(RuntimeError):
    """Another rebuild published first; the caller may retry on top of it.

    Not a DomainError: it never reaches a client, the rebuild retries."""


class GroupTooSmall(InvalidInput):
    """A report filter (or pair of filters) selects a group hidden by the minimum-group or complementary rule."""

    code = "group_too_small"
