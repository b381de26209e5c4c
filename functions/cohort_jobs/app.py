"""Cohort jobs: the worker that plans (and commits) a large cohort launch, invoked asynchronously.

The matching function stores the job and invokes this one with InvocationType=Event and the payload
{"cohort_job": {"org_id": ..., "job_id": ...}}; progress and the result are written on the job, which
GET /cohorts/jobs/{job_id} shows. Lambda retries a failed invocation, then sends it to the on-failure
destination (template.yaml); the job itself says `failed` with the error.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.booking_store import BookingStore
from coaching.adapters.cohort_job_store import CohortJobStore
from coaching.adapters.dynamo import OrgRepository, PersonRepository
from coaching.adapters.matching_store import MatchingStore
from coaching.adapters.roster_store import RosterStore
from coaching.config import settings
from coaching.domain.common import utc_now
from coaching.services import cohort_jobs
from coaching.services.cohort_jobs import CohortJobContext
from coaching.services.cohorts import CohortContext
from coaching.services.roster import RosterCache

logger = Logger()
tracer = Tracer()
metrics = Metrics()

roster_cache = RosterCache(RosterStore(), ttl_seconds=settings().roster_cache_ttl_seconds)
ctx = CohortJobContext(
    cohorts=CohortContext(
        roster=roster_cache,
        store=MatchingStore(),
        orgs=OrgRepository(),
        people=PersonRepository(),
        bookings=BookingStore(),
        clock=utc_now,
    ),
    jobs=CohortJobStore(),
    clock=utc_now,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    target = event["cohort_job"]
    job = cohort_jobs.run_job(str(target["org_id"]), str(target["job_id"]), ctx)
    if job.result is not None:
        metrics.add_metric(name="CohortMatched", unit=MetricUnit.Count, value=job.result.matched)
        logger.info(
            "cohort job: not assigned, by reason", extra={"unassigned_by_reason": job.result.unassigned_by_reason}
        )
    return {"job_id": job.job_id, "status": job.status}
