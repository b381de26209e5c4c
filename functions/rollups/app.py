"""Rollups: keep each org month's report cells equal to the sum of its people's contributions.

Consumes the events that change what a person contributes to a month (session outcomes, engagements,
promotions, terminations, GROW enrolments; a GROW group session's attendance and a TOGETHER workshop's end for
each of their participants): each recomputes that person's contribution from source and adds the difference to
the cells in one transaction. RollupsDaily rebuilds the current and previous month of every org from source
and repairs any cell that drifted; ReportsMonthly rebuilds the month just closed and writes one ReportDue per
org, which report_generation turns into the month's artefacts; operators can run one org month now. Reports are read
through report_generation, which may read the cells this function writes but never its sources.
"""

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.rollup_store import RollupSourceStore, RollupStore
from coaching.api import Caller, PathId, add_health_route, function_entry, rest_resolver
from coaching.domain.common import utc_now
from coaching.domain.events import (
    CohortEnrolled,
    EngagementEnded,
    EngagementStarted,
    Event,
    GroupSessionCompleted,
    PersonPromoted,
    PersonTerminated,
    SessionCancelled,
    SessionCompleted,
    SessionCredited,
    SessionRescheduled,
    WorkshopEnded,
)
from coaching.domain.invoicing import PERIOD_DESCRIPTION, PERIOD_PATTERN
from coaching.services import rollups
from coaching.services.rollups import MonthRun, RollupContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/rollups/health", service="rollups")
ctx = RollupContext(source=RollupSourceStore(), store=RollupStore(), clock=utc_now)


PeriodPath = Annotated[str, Path(pattern=PERIOD_PATTERN, description=f"The month: {PERIOD_DESCRIPTION}")]


@app.post(
    "/orgs/<org_id>/reports/<period>/run",
    summary="Rebuild one org month from source and write its report artefacts now (operator)",
    description="The same idempotent run as the ReportsMonthly schedule, for one org and month (the current one "
    "included): the artefacts follow on the bus (ReportDue), and download from GET .../download.",
    tags=["reports"],
)
def run_month(caller: Caller, org_id: PathId, period: PeriodPath) -> MonthRun:
    return rollups.run_month_now(caller, org_id, period, ctx)


def on_person_event(event: Event) -> dict[str, Any]:
    result = rollups.on_person_event(event, ctx)
    changed = sum(result.periods.values())
    metrics.add_metric(name="ContributionsChanged", unit=MetricUnit.Count, value=changed)
    return result.model_dump(mode="json")


def on_schedule(name: str) -> dict[str, Any]:
    if name == "RollupsDaily":
        run = rollups.run_daily_rebuild(ctx)
    elif name == "ReportsMonthly":
        run = rollups.run_monthly_reports(ctx)
    else:
        raise ValueError(f"rollups has no schedule named {name!r}")
    repaired = sum(r.cells_rewritten for r in run.rebuilt)
    metrics.add_metric(name="RollupCellsRepaired", unit=MetricUnit.Count, value=repaired)
    logger.info("rollups rebuilt", extra={"schedule": name, "orgs": run.orgs, "cells_repaired": repaired,
                                          "events": run.events})  # fmt: skip
    return run.model_dump(mode="json")


def on_programme_event(event: GroupSessionCompleted | WorkshopEnded) -> dict[str, Any]:
    result = rollups.on_programme_event(event, ctx)
    metrics.add_metric(name="ContributionsChanged", unit=MetricUnit.Count, value=sum(result.people.values()))
    return result.model_dump(mode="json")


def _consumer() -> Callable[[Event], dict[str, Any]]:
    # One function object per event type: coaching.api's idempotency wrapper is built per consumer function.
    def consume(event: Event) -> dict[str, Any]:
        if isinstance(event, GroupSessionCompleted | WorkshopEnded):
            return on_programme_event(event)
        return on_person_event(event)

    return consume


CONSUMED = (
    SessionCompleted,
    SessionCancelled,
    SessionRescheduled,
    SessionCredited,
    EngagementStarted,
    EngagementEnded,
    PersonPromoted,
    PersonTerminated,
    CohortEnrolled,
    GroupSessionCompleted,
    WorkshopEnded,
)
lambda_handler = function_entry(
    app,
    name="rollups",
    logger=logger,
    tracer=tracer,
    metrics=metrics,
    on_events={kind: _consumer() for kind in CONSUMED},
    on_schedule=on_schedule,
)
