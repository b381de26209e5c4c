"""Keep the roster snapshot current: on coach events, on a schedule, and for readers."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from coaching.domain.coaches import Coach
from coaching.domain.errors import RosterVersionConflict
from coaching.domain.roster import Roster, RosterCoach, roster_entries

_PUBLISH_ATTEMPTS = 8
_BACKOFF_SECONDS = 0.01


class ApprovedCoaches(Protocol):
    def all_approved(self) -> Sequence[Coach]: ...


class PublishedPointer(Protocol):
    """What the stored pointer says about the snapshot it names."""

    @property
    def roster_version(self) -> float: ...

    @property
    def coach_count(self) -> float: ...

    @property
    def covers(self) -> float | None:
        """The last rebuild request taken before this snapshot's coach read began (None: built before requests)."""
        ...


class RosterPublisher[PointerT: PublishedPointer](Protocol):
    def request_rebuild(self) -> int:
        """Number one more rebuild request; numbers grow in the order the requests were taken."""
        ...

    def current_pointer(self) -> PointerT | None: ...

    def publish(self, coaches: list[RosterCoach], covers: int, over: PointerT | None) -> int:
        """Publish on top of `over` (raise RosterVersionConflict if it is no longer current); return the version."""
        ...


class RosterPointerLike(Protocol):
    """What a stored pointer tells a reader: which roster version is current."""

    @property
    def roster_version(self) -> float: ...


class RosterSource[PointerT: RosterPointerLike](Protocol):
    def current_pointer(self) -> PointerT | None: ...

    def load(self, pointer: PointerT) -> Roster: ...


@dataclass(frozen=True, slots=True)
class RebuildResult:
    version: int
    coach_count: int
    # True when another rebuild had already published a snapshot read after this one's request: nothing to publish.
    coalesced: bool = False


def _backoff(attempt: int) -> None:
    """Jittered exponential pause before publishing again on top of the winner."""
    time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**attempt))


def _covering(pointer: PublishedPointer | None, request: int) -> RebuildResult | None:
    """The published snapshot as a result if its coach read began after `request` was taken, else None."""
    if pointer is None or (pointer.covers or 0) < request:
        return None
    return RebuildResult(version=int(pointer.roster_version), coach_count=int(pointer.coach_count), coalesced=True)


def rebuild_roster[PointerT: PublishedPointer](
    coaches: ApprovedCoaches, store: RosterPublisher[PointerT]
) -> RebuildResult:
    """Rebuild from the approved-coach index, unless another rebuild already covers this one.

    A rebuild first takes a request number (the coach change that triggered it has committed
    by then), reads the coaches, and publishes stamped `covers` = that number. Any snapshot
    whose `covers` is at least this rebuild's first number was read after the change, so it
    already holds it: the rebuild stops there, before publishing or after losing the race.
    Only a loss to an older read (a smaller `covers`) reads again, under a new number, and
    retries; the pointer's `covers` only grows, so the published roster always reflects a
    read that began after the latest change.
    """
    needed = store.request_rebuild()
    request = needed
    attempt = 0
    while True:
        entries = roster_entries(list(coaches.all_approved()))
        current = store.current_pointer()
        covered = _covering(current, needed)
        if covered is not None:
            return covered
        try:
            version = store.publish(entries, covers=request, over=current)
        except RosterVersionConflict:
            covered = _covering(store.current_pointer(), needed)
            if covered is not None:
                return covered
            attempt += 1
            if attempt >= _PUBLISH_ATTEMPTS:
                raise
            _backoff(attempt)
            request = store.request_rebuild()
            continue
        return RebuildResult(version=version, coach_count=len(entries))


class RosterCache[PointerT: RosterPointerLike]:
    """What a warm Lambda keeps: the decoded roster, re-checked at most every `ttl` seconds."""

    def __init__(self, store: RosterSource[PointerT], ttl_seconds: float = 30.0) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._roster: Roster | None = None
        self._checked_at = 0.0
        self._by_id: dict[str, RosterCoach] = {}
        self._indexed_version: int | None = None

    def get(self) -> Roster | None:
        now = time.monotonic()
        if self._roster is not None and now - self._checked_at < self._ttl:
            return self._roster
        pointer = self._store.current_pointer()
        self._checked_at = now
        if pointer is None:
            return None
        if self._roster is None or self._roster.version != int(pointer.roster_version):
            self._roster = self._store.load(pointer)
        return self._roster

    def invalidate(self) -> None:
        """Re-check the pointer on the next read (this container has just published a roster)."""
        self._checked_at = float("-inf")

    def at(self, pointer: PointerT | None) -> Roster | None:
        """The roster a pointer the caller has just read names: no extra read unless it is new.

        Booking reads the pointer in the same BatchGetItem as the rest of its state, so it is
        as fresh as a consistent read and costs no round trip of its own.
        """
        self._checked_at = time.monotonic()
        if pointer is None:
            self._roster = None
        elif self._roster is None or self._roster.version != int(pointer.roster_version):
            self._roster = self._store.load(pointer)
        return self._roster

    def coach(self, pointer: PointerT | None, coach_id: str) -> RosterCoach | None:
        """An approved coach in the current roster, or None (suspended, removed, unknown)."""
        roster = self.at(pointer)
        if roster is None:
            return None
        if self._indexed_version != roster.version:
            self._by_id = {coach.coach_id: coach for coach in roster.coaches}
            self._indexed_version = roster.version
        return self._by_id.get(coach_id)
