"""Cohort launches as background jobs: above SYNC_COHORT participants, POST /cohorts/match answers 202 with a job.

The request is checked as the synchronous path checks it (bad participants are a 400 before any job
exists), stored with the job, and a worker function, invoked asynchronously, plans it with the same
solver (coaching.services.cohorts), reports progress on the job as it goes, stores the plan and, when
the request asked for it, commits it. GET on the job shows its status, progress and result. A worker
that runs again for a finished job does nothing; one that finds the job failed, planning or committing
from an earlier attempt starts over: planning writes nothing, and a person committed by the earlier
attempt is refused at commit (one active engagement per programme), never engaged twice. After Lambda's
retries, a failing job's invocation goes to the worker's dead-letter queue, and the job says `failed`.
The result carries what the synchronous response carries, nothing more (see cohorts' docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from coaching.auth import Principal, Role
from coaching.domain.common import Clock, DeferredModel
from coaching.domain.errors import InvalidInput, NotFound
from coaching.ids import new_id
from coaching.services.cohorts import CohortContext, CohortPlan, CohortRequest, match_cohort_for_org

JobStatus = Literal["queued", "planning", "committing", "succeeded", "failed"]


class CohortJob(DeferredModel):
    job_id: str
    org_id: str
    status: JobStatus
    participants: int
    phase_done: int = 0  # people planned, or assignments committed, in the current phase
    commit: bool
    created_at: datetime
    updated_at: datetime
    error: str | None = None
    result: CohortPlan | None = None  # once succeeded


class CohortJobStore(Protocol):
    def create(self, job: CohortJob, request: CohortRequest, created_by: str) -> None:
        """The job (queued) and its request, together."""
        ...

    def get(self, org_id: str, job_id: str, *, with_result: bool = True) -> CohortJob | None: ...

    def request(self, org_id: str, job_id: str) -> tuple[CohortRequest, str] | None:
        """The stored request and who made it."""
        ...

    def progress(self, job: CohortJob) -> None:
        """Status and progress only (a small write, many times per job)."""
        ...

    def finish(self, job: CohortJob, result: CohortPlan | None) -> None:
        """The final status with the result, when there is one."""
        ...


class JobLauncher(Protocol):
    def launch(self, org_id: str, job_id: str) -> None:
        """Invoke the worker asynchronously for this job (Lambda's Event invocation)."""
        ...


@dataclass
class CohortJobContext:
    cohorts: CohortContext
    jobs: CohortJobStore
    clock: Clock
    launcher: JobLauncher | None = None  # the worker runs jobs and launches none


def start_job(caller: Principal, request: CohortRequest, ctx: CohortJobContext) -> CohortJob:
    """Check the request as the synchronous path does, store it as a queued job and launch the worker."""
    org_id = caller.require_org(Role.ORG_ADMIN)
    _check_participants(org_id, request, ctx.cohorts)
    now = ctx.clock()
    job = CohortJob(
        job_id=new_id(),
        org_id=org_id,
        status="queued",
        participants=len(dict.fromkeys(request.participant_ids)),
        commit=request.commit,
        created_at=now,
        updated_at=now,
    )
    if ctx.launcher is None:
        raise RuntimeError("this function is not wired to launch cohort jobs")
    ctx.jobs.create(job, request, caller.person_id)
    ctx.launcher.launch(org_id, job.job_id)
    return job


def _check_participants(org_id: str, request: CohortRequest, ctx: CohortContext) -> None:
    """Unknown or inactive participants are refused now (400 naming the first), as the synchronous path does."""
    if ctx.orgs.get(org_id) is None:
        raise NotFound(f"organisation {org_id} not found")
    ids = list(dict.fromkeys(request.participant_ids))
    found = ctx.people.get_many(org_id, ids)
    missing = [pid for pid in ids if pid not in found or not found[pid][0].active]
    if missing:
        index = request.participant_ids.index(missing[0])
        raise InvalidInput(
            f"{len(missing)} participants are not active people in this organisation (first: {missing[0]})",
            field=f"participant_ids[{index}]",
        )


def get_job(caller: Principal, job_id: str, ctx: CohortJobContext) -> CohortJob:
    org_id = caller.require_org(Role.ORG_ADMIN)
    job = ctx.jobs.get(org_id, job_id)
    if job is None:
        raise NotFound(f"cohort job {job_id} not found")
    return job


def run_job(org_id: str, job_id: str, ctx: CohortJobContext) -> CohortJob:
    """The worker: plan (and commit) the stored request, reporting progress; idempotent once finished."""
    job = ctx.jobs.get(org_id, job_id, with_result=False)
    stored = ctx.jobs.request(org_id, job_id)
    if job is None or stored is None:
        raise NotFound(f"cohort job {job_id} not found")
    if job.status == "succeeded":
        return job  # a redelivery of a finished job; a failed one is tried again by Lambda's retries
    request, created_by = stored
    caller = Principal(person_id=created_by, org_id=org_id, roles=frozenset({Role.ORG_ADMIN}))

    def report(phase: str, done: int) -> None:
        job.status = "committing" if phase == "committing" else "planning"
        job.phase_done = done
        job.updated_at = ctx.clock()
        ctx.jobs.progress(job)

    try:
        plan = match_cohort_for_org(caller, request, ctx.cohorts, progress=report)
    except Exception as error:
        job.status, job.error, job.updated_at = "failed", f"{type(error).__name__}: {error}", ctx.clock()
        ctx.jobs.finish(job, None)
        raise
    job.status, job.phase_done, job.updated_at = "succeeded", plan.participants, ctx.clock()
    ctx.jobs.finish(job, plan)
    job.result = plan
    return job
