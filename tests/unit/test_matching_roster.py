"""The roster snapshot: rebuilt from approved coaches, coalesced or retried on a lost race, cached per version."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import pytest
from coaching.domain.coaches import Coach, VettingStatus
from coaching.domain.errors import RosterVersionConflict
from coaching.domain.roster import Roster, RosterCoach, roster_entries
from coaching.services import roster as roster_service
from coaching.services.roster import RosterCache, rebuild_roster

from .fakes.matching import NOW, make_coach


@dataclass
class Pointer:
    roster_version: float
    coach_count: float = 0
    covers: float | None = None


@dataclass
class Rival:
    """Another rebuild that publishes just before ours lands; `covers` None: it took its number after ours."""

    coaches: list[RosterCoach]
    covers: int | None = None


@dataclass
class FakeRosterStore:
    """Publishes like adapters/roster_store.py: numbered requests, conditional pointer moves, unchanged = restamp.

    Each method is atomic (one DynamoDB request); `rivals` publish first, one per publish call.
    """

    versions: dict[int, Roster] = field(default_factory=dict)
    pointer: Pointer | None = None
    requests: int = 0
    rivals: list[Rival] = field(default_factory=list)
    publishes: int = 0
    pointer_reads: int = 0
    loads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request_rebuild(self) -> int:
        with self.lock:
            self.requests += 1
            return self.requests

    def current_pointer(self) -> Pointer | None:
        with self.lock:
            self.pointer_reads += 1
            return None if self.pointer is None else replace(self.pointer)

    def publish(self, coaches: list[RosterCoach], covers: int, over: Pointer | None) -> int:
        if self.rivals:
            rival = self.rivals.pop(0)
            rival_covers = self.request_rebuild() if rival.covers is None else rival.covers
            self._put(rival.coaches, rival_covers, self.pointer)
        return self._put(coaches, covers, over)

    def _put(self, coaches: list[RosterCoach], covers: int, over: Pointer | None) -> int:
        with self.lock:
            self.publishes += 1
            if over != self.pointer:
                raise RosterVersionConflict("another run moved the pointer first")
            if over is not None and self.versions[int(over.roster_version)].coaches == coaches:
                self.pointer = replace(over, covers=covers)
                return int(over.roster_version)
            version = max(self.versions, default=0) + 1
            self.versions[version] = Roster(version=version, built_at=NOW, coaches=coaches)
            self.pointer = Pointer(version, coach_count=len(coaches), covers=covers)
            return version

    def load(self, pointer: Pointer) -> Roster:
        self.loads += 1
        return self.versions[int(pointer.roster_version)]

    def published_ids(self) -> set[str]:
        assert self.pointer is not None
        return {coach.coach_id for coach in self.versions[int(self.pointer.roster_version)].coaches}


@dataclass
class ChangingNetwork:
    """Approved-coach reads; each read may see a newer network (someone approved a coach)."""

    reads: list[list[Coach]]
    count: int = 0
    during_read: Callable[[], None] | None = None

    def all_approved(self) -> list[Coach]:
        self.count += 1
        if self.during_read is not None:
            self.during_read()
        return self.reads[min(self.count, len(self.reads)) - 1]


@dataclass
class SharedNetwork:
    """The coach index many workers change at once; a read yields so other workers interleave."""

    coaches: dict[str, Coach] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def change(self, add: Coach | None = None, remove: str | None = None) -> None:
        with self.lock:
            if add is not None:
                self.coaches[add.coach_id] = add
            if remove is not None:
                del self.coaches[remove]

    def all_approved(self) -> list[Coach]:
        with self.lock:
            snapshot = list(self.coaches.values())
        time.sleep(0)  # let another worker run between the read and the publish
        return snapshot


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(roster_service, "_backoff", lambda attempt: None)


def test_a_rebuild_holds_approved_coaches_only():
    approved, pending = make_coach("approved"), make_coach("pending", status=VettingStatus.PENDING)
    store = FakeRosterStore()
    result = rebuild_roster(ChangingNetwork([[approved, pending]]), store)
    assert (result.version, result.coach_count, result.coalesced) == (1, 1, False)
    assert [c.coach_id for c in store.versions[1].coaches] == [approved.coach_id]
    assert store.pointer == Pointer(1, coach_count=1, covers=1)


def test_a_rebuild_that_lost_to_an_older_read_reads_the_coaches_again():
    first, second = make_coach("first"), make_coach("second")
    network = ChangingNetwork([[first], [first, second]])
    store = FakeRosterStore()
    # The rival took its number before this rebuild did: its read may predate this change.
    store.rivals = [Rival(roster_entries([first]), covers=store.request_rebuild())]
    result = rebuild_roster(network, store)
    # The published version reflects a read that began after the winner's: it has both coaches.
    assert (network.count, result.coach_count, result.coalesced) == (2, 2, False)
    assert store.published_ids() == {first.coach_id, second.coach_id}


def test_a_rebuild_that_lost_to_a_newer_read_stops_there_without_retrying(caplog):
    first, second = make_coach("first"), make_coach("second")
    network = ChangingNetwork([[first], [first, second]])
    store = FakeRosterStore(rivals=[Rival(roster_entries([first, second]))])
    result = rebuild_roster(network, store)
    # The rival's read began after this rebuild's number was taken, so it holds this change: no second read.
    assert (network.count, result.coalesced, result.version, result.coach_count) == (1, True, 1, 2)
    assert store.publishes == 2  # the rival's and ours, which lost
    assert store.published_ids() == {first.coach_id, second.coach_id}


def test_a_rebuild_already_covered_when_its_read_ends_publishes_nothing():
    coach = make_coach("one")
    store = FakeRosterStore()
    network = ChangingNetwork([[coach]])
    # While this rebuild reads, another one takes a later number, reads and publishes.
    network.during_read = lambda: rebuild_roster(ChangingNetwork([[coach]]), store) if network.count == 1 else None
    result = rebuild_roster(network, store)
    assert (result.coalesced, result.version, store.publishes) == (True, 1, 1)


def test_unchanged_content_keeps_the_version_and_moves_the_covered_request():
    coach = make_coach("one")
    store = FakeRosterStore()
    rebuild_roster(ChangingNetwork([[coach]]), store)
    again = rebuild_roster(ChangingNetwork([[coach]]), store)
    assert (again.version, again.coalesced, set(store.versions)) == (1, False, {1})
    assert store.pointer == Pointer(1, coach_count=1, covers=2)


def test_only_genuine_failures_exhaust_the_attempts():
    first = make_coach("first")
    store = FakeRosterStore()
    # Eight runs that began before this one each win a race in turn: every loss is to an older read.
    older = [store.request_rebuild() for _ in range(8)]
    store.rivals = [Rival(roster_entries([first]) if n % 2 else [], covers=n) for n in older]
    with pytest.raises(RosterVersionConflict):
        rebuild_roster(ChangingNetwork([[first]]), store)


def test_a_burst_of_concurrent_rebuilds_ends_on_the_latest_network_without_exhausting_attempts():
    workers, changes = 16, 6
    network, store = SharedNetwork(), FakeRosterStore()
    lanes = [[make_coach(f"w{w}c{c}") for c in range(changes)] for w in range(workers)]
    start = threading.Barrier(workers)

    def worker(lane: list[Coach]) -> list[roster_service.RebuildResult]:
        start.wait()
        results = []
        for coach in lane:
            network.change(add=coach)
            results.append(rebuild_roster(network, store))
        network.change(remove=lane[0].coach_id)  # a suspension: the roster must also lose coaches
        results.append(rebuild_roster(network, store))
        return results

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: races between read and publish are the point
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = [result for lane_results in pool.map(worker, lanes) for result in lane_results]
    finally:
        sys.setswitchinterval(switch)
    expected = {coach.coach_id for lane in lanes for coach in lane[1:]}
    assert store.published_ids() == expected
    assert len(results) == workers * (changes + 1)
    assert store.pointer is not None
    assert all(result.version <= store.pointer.roster_version for result in results)
    # Fewer snapshots than rebuilds whenever rebuilds overlapped; never more.
    assert len(store.versions) <= len(results)


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
    reads = store.pointer_reads
    cache = RosterCache(store)
    found = cache.coach(Pointer(1), coach.coach_id)
    assert found is not None
    assert found.coach_id == coach.coach_id
    assert cache.coach(Pointer(1), "suspended-or-unknown") is None
    assert cache.coach(None, coach.coach_id) is None
    assert store.loads == 1
    assert store.pointer_reads == reads  # the caller's pointer was enough
