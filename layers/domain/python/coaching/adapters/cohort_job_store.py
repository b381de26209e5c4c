"""Cohort jobs on the main table, and the worker's asynchronous launch through Lambda's Invoke API.

One partition per job (keys.cohort_job_pk): the status item (small, rewritten as progress is made),
the request (written once) and the result in pieces of at most RESULT_PIECE characters, since a
5,000-person plan is larger than one item may be.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coaching.adapters import keys
from coaching.adapters.dynamo import MainTableMeta, connection
from coaching.services.cohort_jobs import CohortJob
from coaching.services.cohorts import CohortPlan, CohortRequest

RESULT_PIECE = 300_000  # characters of the plan's JSON per item (items hold at most 400 KB)
# The worker's function name (template: !Ref CohortJobFunction), read by the launching function at import.
WORKER_ENV = "COHORT_JOB_FUNCTION"


class JobItem(Model):
    class Meta(MainTableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="cohort_job")
    body = UnicodeAttribute()


class CohortJobStore:
    def create(self, job: CohortJob, request: CohortRequest, created_by: str) -> None:
        pk = keys.cohort_job_pk(job.org_id, job.job_id)
        stored = json.dumps({"request": request.model_dump(mode="json"), "created_by": created_by})
        transaction = TransactWrite(connection=connection())
        with transaction:
            transaction.save(JobItem(pk, keys.COHORT_JOB_SK, body=job.model_dump_json()))
            transaction.save(JobItem(pk, keys.COHORT_JOB_REQUEST_SK, kind="cohort_job_request", body=stored))

    def get(self, org_id: str, job_id: str, *, with_result: bool = True) -> CohortJob | None:
        pk = keys.cohort_job_pk(org_id, job_id)
        try:
            item = JobItem.get(pk, keys.COHORT_JOB_SK, consistent_read=True)
        except JobItem.DoesNotExist:
            return None
        job = CohortJob.model_validate_json(item.body)
        if with_result and job.status == "succeeded":
            pieces = JobItem.query(pk, JobItem.sk.startswith(keys.COHORT_JOB_RESULT_PREFIX), consistent_read=True)
            job.result = CohortPlan.model_validate_json("".join(piece.body for piece in pieces))
        return job

    def request(self, org_id: str, job_id: str) -> tuple[CohortRequest, str] | None:
        try:
            item = JobItem.get(keys.cohort_job_pk(org_id, job_id), keys.COHORT_JOB_REQUEST_SK, consistent_read=True)
        except JobItem.DoesNotExist:
            return None
        stored: dict[str, Any] = json.loads(item.body)
        return CohortRequest.model_validate(stored["request"]), str(stored["created_by"])

    def progress(self, job: CohortJob) -> None:
        JobItem(keys.cohort_job_pk(job.org_id, job.job_id), keys.COHORT_JOB_SK, body=job.model_dump_json()).save()

    def finish(self, job: CohortJob, result: CohortPlan | None) -> None:
        """The result's pieces and the status in one transaction: a job reads succeeded only with its whole result."""
        pk = keys.cohort_job_pk(job.org_id, job.job_id)
        transaction = TransactWrite(connection=connection())
        with transaction:
            if result is not None:
                text = result.model_dump_json()
                for part, start in enumerate(range(0, len(text), RESULT_PIECE)):
                    body = text[start : start + RESULT_PIECE]
                    transaction.save(JobItem(pk, keys.cohort_job_result_sk(part), kind="cohort_job_result", body=body))
            transaction.save(JobItem(pk, keys.COHORT_JOB_SK, body=job.model_dump_json(exclude={"result"})))


@cache
def _lambda() -> Any:
    import boto3  # on first launch only: the functions that import this module start without it

    return boto3.client("lambda")


class LambdaJobLauncher:
    """Invokes the worker with InvocationType=Event: Lambda queues it, retries it and, after its retries,
    sends it to the worker's on-failure destination (template.yaml)."""

    def __init__(self, function_name: str | None = None) -> None:
        # Read when the function module loads: locally, a function's own variables are set only then.
        self.function_name = function_name or os.environ.get(WORKER_ENV, "")

    def launch(self, org_id: str, job_id: str) -> None:
        if not self.function_name:
            raise RuntimeError(f"{WORKER_ENV} is not set: this function cannot launch cohort jobs")
        payload = json.dumps({"cohort_job": {"org_id": org_id, "job_id": job_id}}).encode()
        _lambda().invoke(FunctionName=self.function_name, InvocationType="Event", Payload=payload)
