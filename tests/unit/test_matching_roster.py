"""The roster snapshot: rebuilt from approved coaches, retried on a lost race, cached per version."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from coaching.domain.coaches import Coach, VettingStatus
from coaching.domain.errors import RosterVersionConflict
from coaching.domain.roster import Roster, RosterCoach
from coaching.services import roster as roster_service
from coaching.services.roster import RosterCache, rebuild_roster

from .fakes.matching import NOW, make_coach


@dataclass
class Pointer:
    roster_version: float


@dataclass
class FakeRosterStore:
    """Publishes versions like adapters/roster_store.py; `lose` races lost before a publish wins."""

    versions: dict[int, Roster] = field(default_factory=dict)
    lose: int = 0
    pointer_reads: int = 0
    loads: int = 0

    def publish(self, coaches: list[RosterCoach]) -> int:
        if self.lose:
            self.lose -= 1
            raise RosterVersionConflict("another run published first")
        version = max(self.versions, default=0) + 1
        self.versions[version] = Roster(version=version, built_at=NOW, coaches=coaches)
        return version

    def current_pointer(self) -> Pointer | None:
        self.pointer_reads += 1
        return Pointer(max(self.versions)) if self.versions else None

    def load(self, pointer: Pointer) -> Roster:
        self.loads += 1
        return self.versions[int(pointer.roster_version)]


@dataclass
class ChangingNetwork:
    """Approved-coach reads; each read may see a newer network (someone approved a coach)."""

    reads: list[list[Coach]]
    count: int = 0

    def all_approved(self) -> list[Coach]:
        self.count += 1
        return self.reads[min(self.count, len(self.reads)) - 1]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(roster_service, "_backoff", lambda attempt: None)


def test_a_rebuild_holds_approved_coaches_only():
    approved, pending = make_coach("approved"), make_coach("pending", status=VettingStatus.PENDING)
    store = FakeRosterStore()
    result = rebuild_roster(ChangingNetwork([[approved, pending]]), store)
    assert (result.version, result.coach_count) == (1, 1)
    assert [c.coach_id for c in store.versions[1].coaches] == [approved.coach_id]


def test_a_rebuild_that_lost_the_race_reads_the_coaches_again():
    first, second = make_coach("first"), make_coach("second")
    network = ChangingNetwork([[first], [first, second]])
    store = FakeRosterStore(lose=1)
    result = rebuild_roster(network, store)
    # The published version reflects a read that began after the winner's: it has both coaches.
    assert (network.count, result.coach_count) == (2, 2)
    with pytest.raises(RosterVersionConflict):
        rebuild_roster(ChangingNetwork([[first]]), FakeRosterStore(lose=100))


def test_the_cache_rereads_the_pointer_after_its_ttl_and_loads_only_a_new_version(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(roster_service.time, "monotonic", lambda: clock[0])
    store = FakeRosterStore()
    cache = RosterCache(store, ttl_seconds=30)
    assert cache.get() is None  # nothing built yet
    rebuild_roster(ChangingNetwork([[make_coach("one")]]), store)
    clock[0] += 31
    first = cache.get()
    assert first is not None
    assert (first.version, store.loads) == (1, 1)
    clock[0] += 10
    assert cache.get() is first  # within the TTL: no read at all
    reads = store.pointer_reads
    clock[0] += 31
    assert cache.get() is first  # same version: the pointer is read, the roster is not
    assert (store.pointer_reads, store.loads) == (reads + 1, 1)
    rebuild_roster(ChangingNetwork([[make_coach("two")]]), store)
    clock[0] += 31
    second = cache.get()
    assert second is not None
    assert (second.version, store.loads) == (2, 2)


def test_a_pointer_the_caller_read_names_the_roster_and_its_coaches():
    store = FakeRosterStore()
    coach = make_coach("one")
    rebuild_roster(ChangingNetwork([[coach]]), store)
    cache = RosterCache(store)
    found = cache.coach(Pointer(1), coach.coach_id)
    assert found is not None
    assert found.coach_id == coach.coach_id
    assert cache.coach(Pointer(1), "suspended-or-unknown") is None
    assert cache.coach(None, coach.coach_id) is None
    assert store.loads == 1
    assert store.pointer_reads == 0  # the caller's pointer was enough
