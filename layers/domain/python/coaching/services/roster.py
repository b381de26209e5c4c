"""Keep the roster snapshot current: on coach events, on a schedule, and for readers."""

from __future__ import annotations

import time
from dataclasses import dataclass

from coaching.adapters.dynamo import CoachRepository, backoff
from coaching.adapters.roster_store import RosterPointer, RosterStore
from coaching.domain.errors import RosterVersionConflict
from coaching.domain.roster import Roster, RosterCoach, roster_entries

_PUBLISH_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class RebuildResult:
    version: int
    coach_count: int


def rebuild_roster(coaches: CoachRepository, store: RosterStore) -> RebuildResult:
    """Rebuild from the approved-coach index.

    A rebuild that loses the race to publish reads the coaches again and retries, so the
    last published version always reflects a read that began after the latest change.
    """
    attempt = 0
    while True:
        entries = roster_entries(coaches.all_approved())
        try:
            version = store.publish(entries)
        except RosterVersionConflict:
            attempt += 1
            if attempt >= _PUBLISH_ATTEMPTS:
                raise
            backoff(attempt)
            continue
        return RebuildResult(version=version, coach_count=len(entries))


class RosterCache:
    """What a warm Lambda keeps: the decoded roster, re-checked at most every `ttl` seconds."""

    def __init__(self, store: RosterStore, ttl_seconds: float = 30.0) -> None:
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

    def at(self, pointer: RosterPointer | None) -> Roster | None:
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

    def coach(self, pointer: RosterPointer | None, coach_id: str) -> RosterCoach | None:
        """An approved coach in the current roster, or None (suspended, removed, unknown)."""
        roster = self.at(pointer)
        if roster is None:
            return None
        if self._indexed_version != roster.version:
            self._by_id = {coach.coach_id: coach for coach in roster.coaches}
            self._indexed_version = roster.version
        return self._by_id.get(coach_id)
