"""Roster rebuilds on DynamoDB Local: a burst of coach changes, each followed by its rebuild, coalesces."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from coaching.adapters.dynamo import CoachRepository, admin_ports
from coaching.adapters.roster_store import RosterStore
from coaching.domain.coaches import VettingDecision, VettingStatus
from coaching.domain.errors import RosterVersionConflict
from coaching.domain.roster import roster_entries
from coaching.services import admin
from coaching.services.roster import RebuildResult, rebuild_roster
from coaching_local.seed import OPERATOR, coach_profiles

pytestmark = pytest.mark.integration

WORKERS = 16
CHANGES_PER_WORKER = 4


@pytest.fixture
def ctx(dynamodb_local) -> admin.AdminContext:
    return admin.AdminContext(**admin_ports())


def test_a_burst_of_rebuilds_publishes_the_latest_roster_without_exhausting_attempts(ctx):
    """16 workers each approve coaches (and suspend one), each change followed by its rebuild, as the consumer does."""
    profiles = coach_profiles(WORKERS * CHANGES_PER_WORKER, seed=4242)
    created = [admin.create_coach(OPERATOR, profile, ctx) for profile in profiles]
    lanes = [created[i::WORKERS] for i in range(WORKERS)]
    start = Barrier(WORKERS)
    approve = VettingDecision(status=VettingStatus.APPROVED)
    suspend = VettingDecision(status=VettingStatus.SUSPENDED, reason="burst test")

    def worker(lane: list) -> list[RebuildResult]:
        coaches, store, results = CoachRepository(), RosterStore(), []
        start.wait()
        for coach in lane:
            admin.set_vetting(OPERATOR, coach.coach_id, approve, ctx)
            results.append(rebuild_roster(coaches, store))
        # The lane's first coach is suspended again: the roster must lose them, not only gain coaches.
        admin.set_vetting(OPERATOR, lane[0].coach_id, suspend, ctx)
        results.append(rebuild_roster(coaches, store))
        return results

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = [result for lane_results in pool.map(worker, lanes) for result in lane_results]

    store = RosterStore()
    pointer = store.current_pointer()
    assert pointer is not None
    published = {coach.coach_id for coach in store.load(pointer).coaches}
    suspended = {lane[0].coach_id for lane in lanes}
    still_approved = {coach.coach_id for coach in created} - suspended
    assert still_approved <= published
    assert not suspended & published
    # Exactly the approved network (other tests' coaches included): no change was lost to a race.
    assert published == {coach.coach_id for coach in CoachRepository().all_approved()}
    assert len(results) == WORKERS * (CHANGES_PER_WORKER + 1)
    # Every rebuild ended on a version at or before the last one; its change is in the last one (above).
    assert all(result.version <= int(pointer.roster_version) for result in results)
    assert (pointer.covers or 0) >= 1


def test_a_rebuild_that_read_an_older_pointer_cannot_replace_or_restamp_a_newer_snapshot(ctx):
    store = RosterStore()
    coach = admin.create_coach(OPERATOR, coach_profiles(1, seed=4343)[0], ctx)
    admin.set_vetting(OPERATOR, coach.coach_id, VettingDecision(status=VettingStatus.APPROVED), ctx)
    rebuild_roster(CoachRepository(), store)
    stale = store.current_pointer()
    older_read = roster_entries(list(CoachRepository().all_approved()))
    slow, fast = store.request_rebuild(), store.request_rebuild()
    assert fast == slow + 1
    # The fast rebuild publishes a snapshot without the coach (as if it had been suspended since).
    without = [entry for entry in older_read if entry.coach_id != coach.coach_id]
    published = store.publish(without, covers=fast, over=stale)
    assert published == int(stale.roster_version) + 1
    # The slow one read the pointer before that: neither a new version nor a covers stamp gets through.
    with pytest.raises(RosterVersionConflict):
        store.publish(older_read, covers=slow, over=stale)
    current = store.current_pointer()
    assert (int(current.roster_version), current.covers) == (published, fast)
    unchanged = store.publish(without, covers=store.request_rebuild(), over=current)
    assert unchanged == published  # same content: the version stays, only the covered request moves
    assert store.current_pointer().covers == fast + 1
    assert coach.coach_id not in {entry.coach_id for entry in store.load(store.current_pointer()).coaches}
