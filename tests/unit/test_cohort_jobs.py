"""Cohort launches as background jobs, on in-memory ports: the job, the worker's progress, its plan, re-runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from coaching.domain.errors import InvalidInput, NotFound
from coaching.services import cohort_jobs, cohorts
from coaching.services.cohort_jobs import CohortJob, CohortJobContext
from coaching.services.cohorts import NOT_ASSIGNABLE, CohortPlan, CohortRequest

from .fakes.matching import MatchingWorld, make_coach, make_org


@dataclass
class FakeJobs:
    jobs: dict[tuple[str, str], CohortJob] = field(default_factory=dict)
    requests: dict[tuple[str, str], tuple[CohortRequest, str]] = field(default_factory=dict)
    results: dict[tuple[str, str], CohortPlan] = field(default_factory=dict)
    progress_seen: list[tuple[str, int]] = field(default_factory=list)

    def create(self, job: CohortJob, request: CohortRequest, created_by: str) -> None:
        self.jobs[(job.org_id, job.job_id)] = job.model_copy()
        self.requests[(job.org_id, job.job_id)] = (request, created_by)

    def get(self, org_id: str, job_id: str, *, with_result: bool = True) -> CohortJob | None:
        job = self.jobs.get((org_id, job_id))
        if job is None:
            return None
        copy = job.model_copy()
        if with_result:
            copy.result = self.results.get((org_id, job_id))
        return copy

    def request(self, org_id: str, job_id: str) -> tuple[CohortRequest, str] | None:
        return self.requests.get((org_id, job_id))

    def progress(self, job: CohortJob) -> None:
        self.progress_seen.append((job.status, job.phase_done))
        self.jobs[(job.org_id, job.job_id)] = job.model_copy(update={"result": None})

    def finish(self, job: CohortJob, result: CohortPlan | None) -> None:
        if result is not None:
            self.results[(job.org_id, job.job_id)] = result
        self.jobs[(job.org_id, job.job_id)] = job.model_copy(update={"result": None})


@dataclass
class FakeLauncher:
    launched: list[tuple[str, str]] = field(default_factory=list)

    def launch(self, org_id: str, job_id: str) -> None:
        self.launched.append((org_id, job_id))


def job_world(people: int) -> tuple[MatchingWorld, CohortJobContext, FakeJobs, FakeLauncher, list[str]]:
    world = MatchingWorld()
    world.coaches(*(make_coach(f"c{i}", languages=["eu"], capacity=100, programs=["GROW"]) for i in range(4)))
    ids = [world.person(languages=["eu"]).person_id for _ in range(people)]
    jobs, launcher = FakeJobs(), FakeLauncher()
    return world, CohortJobContext(world.cohort_ctx, jobs, world.clock, launcher), jobs, launcher, ids


def test_a_job_is_launched_then_the_worker_plans_and_commits_it_reporting_progress() -> None:
    world, ctx, jobs, launcher, ids = job_world(520)
    request = CohortRequest(program="GROW", participant_ids=ids, commit=True)
    job = cohort_jobs.start_job(world.admin(), request, ctx)
    assert (job.status, job.participants, job.commit) == ("queued", 520, True)
    assert launcher.launched == [(world.org.org_id, job.job_id)]
    assert world.store.engagements == {}  # nothing is planned before the worker runs

    done = cohort_jobs.run_job(world.org.org_id, job.job_id, ctx)
    assert done.status == "succeeded"
    assert ("planning", 0) in jobs.progress_seen
    assert ("planning", 250) in jobs.progress_seen
    assert ("planning", 520) in jobs.progress_seen
    assert ("committing", 250) in jobs.progress_seen
    seen = cohort_jobs.get_job(world.admin(), job.job_id, ctx)
    assert seen.status == "succeeded"
    assert seen.result is not None
    assert (seen.result.participants, seen.result.matched, seen.result.committed) == (520, 400, True)
    assert {u["reason"] for u in seen.result.unmatched} == {NOT_ASSIGNABLE}
    assert len(world.store.engagements) == 400
    # The same plan the synchronous path gives for the same request (without commit, on a fresh world).
    world2, _, _, _, ids2 = job_world(520)
    sync = cohorts.match_cohort_for_org(
        world2.admin(), CohortRequest(program="GROW", participant_ids=ids2), world2.cohort_ctx
    )
    assert (sync.matched, sync.objective) == (seen.result.matched, seen.result.objective)

    # A redelivered invocation of a finished job changes nothing.
    writes = world.store.writes
    again = cohort_jobs.run_job(world.org.org_id, job.job_id, ctx)
    assert again.status == "succeeded"
    assert world.store.writes == writes


def test_bad_participants_are_refused_before_any_job_exists_and_jobs_are_per_org() -> None:
    world, ctx, jobs, launcher, ids = job_world(3)
    with pytest.raises(InvalidInput) as refused:
        cohort_jobs.start_job(world.admin(), CohortRequest(program="GROW", participant_ids=[*ids, "nobody"]), ctx)
    assert refused.value.field == "participant_ids[3]"
    assert jobs.jobs == {}
    assert launcher.launched == []
    job = cohort_jobs.start_job(world.admin(), CohortRequest(program="GROW", participant_ids=ids), ctx)
    other = MatchingWorld(org=make_org("org-2"))
    with pytest.raises(NotFound):
        cohort_jobs.get_job(other.admin(), job.job_id, ctx)


def test_a_failing_worker_marks_the_job_failed_and_raises_so_lambda_retries() -> None:
    world, ctx, _, _, ids = job_world(3)
    job = cohort_jobs.start_job(world.admin(), CohortRequest(program="GROW", participant_ids=ids), ctx)
    world.network.roster = None  # the roster is gone: planning cannot run
    with pytest.raises(Exception, match="network is empty"):
        cohort_jobs.run_job(world.org.org_id, job.job_id, ctx)
    failed = cohort_jobs.get_job(world.admin(), job.job_id, ctx)
    assert failed.status == "failed"
    assert failed.error is not None
    assert "network is empty" in failed.error
    world.network.publish()  # a retry after the cause is gone succeeds
    assert cohort_jobs.run_job(world.org.org_id, job.job_id, ctx).status == "succeeded"
