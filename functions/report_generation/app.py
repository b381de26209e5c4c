"""Report generation: the org's suppressed figures for leaders, org admins and finance; the operator aggregate.

Reads only rollup cells, capture tallies and its own report partition (its IAM role allows nothing else:
tests/unit/test_template_security.py). Every figure goes through the suppression of the month's whole linked
system (coaching.domain.reporting); a filter or pair of filters selecting a hidden group answers 422
`group_too_small` naming the rule. The ReportDue event (monthly, from the rollups function) writes the month's
self-contained HTML report and CSVs; a download is a link valid for five minutes.
"""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.artefact_store import artefacts_from_environment
from coaching.adapters.report_render import ReportRenderer
from coaching.adapters.rollup_store import ReportReader, ReportWriter
from coaching.api import Caller, PathId, add_health_route, function_entry, rest_resolver
from coaching.domain.common import utc_now
from coaching.domain.events import ReportDue
from coaching.domain.invoicing import PERIOD_DESCRIPTION, PERIOD_PATTERN
from coaching.domain.report_views import CoachTopics, Report, ReportSettings, filters_from
from coaching.services import reports
from coaching.services.reports import ARTEFACT_FILES, DownloadLink, ReportContext, Trends

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/reports/health", service="report_generation")


class _LazyArtefacts:
    """The artefact store, built on first use: reads need no bucket and no boto3."""

    def __init__(self) -> None:
        self._store: Any = None

    def _get(self) -> Any:
        if self._store is None:
            self._store = artefacts_from_environment()
        return self._store

    def store(self, org_id: str, period: str, files: Any) -> None:
        self._get().store(org_id, period, files)

    def link(self, org_id: str, period: str, name: str, expires_at: Any) -> str:
        return str(self._get().link(org_id, period, name, expires_at))


ctx = ReportContext(reader=ReportReader(), writer=ReportWriter(), artefacts=_LazyArtefacts(),
                    renderer=ReportRenderer(), clock=utc_now)  # fmt: skip

PeriodPath = Annotated[str, Path(pattern=PERIOD_PATTERN, description=f"The report month: {PERIOD_DESCRIPTION}")]
FilterValue = Annotated[
    str | None,
    Query(min_length=1, max_length=200, description="Only this group (at most two filters; 422 when hidden)."),
]
FileName = Annotated[str, Query(pattern=r"^(report\.html|figures\.csv|trends\.csv)$",
                                description=f"One of {', '.join(ARTEFACT_FILES)}.")]  # fmt: skip
Months = Annotated[int, Query(ge=1, le=24, description="How many months, ending with the path's month.")]


@app.get(
    "/orgs/<org_id>/reports/<period>",
    summary="The month's report: leading, lagging, business, North Star and topics (leader, org_admin, finance)",
    description="Every figure counts at least the org's minimum group of distinct people or is shown suppressed "
    "with its rule. Filters are dimensions (at most two); a filter whose group, or whose remainder, is hidden "
    "answers 422 `group_too_small` naming the rule.",
    tags=["reports"],
)
def get_report(
    caller: Caller,
    org_id: PathId,
    period: PeriodPath,
    programme: FilterValue = None,
    level: FilterValue = None,
    department: FilterValue = None,
    location: FilterValue = None,
    grow_cohort: FilterValue = None,
    newly_promoted: FilterValue = None,
    coached: FilterValue = None,
) -> Report:
    filters = filters_from(
        {
            "programme": programme,
            "level": level,
            "department": department,
            "location": location,
            "grow_cohort": grow_cohort,
            "newly_promoted": newly_promoted,
            "coached": coached,
        }
    )
    return reports.get_report(caller, org_id, period, filters, ctx)


@app.get(
    "/orgs/<org_id>/reports/<period>/trends",
    summary="Monthly trends up to this month (leader, org_admin, finance)",
    description="A month whose selected group is hidden shows its figures as suppressed, with the rule.",
    tags=["reports"],
)
def get_trends(
    caller: Caller,
    org_id: PathId,
    period: PeriodPath,
    months: Months = 12,
    programme: FilterValue = None,
    level: FilterValue = None,
    department: FilterValue = None,
    location: FilterValue = None,
    grow_cohort: FilterValue = None,
    newly_promoted: FilterValue = None,
    coached: FilterValue = None,
) -> Trends:
    filters = filters_from(
        {
            "programme": programme,
            "level": level,
            "department": department,
            "location": location,
            "grow_cohort": grow_cohort,
            "newly_promoted": newly_promoted,
            "coached": coached,
        }
    )
    return reports.get_trends(caller, org_id, period, months, filters, ctx)


@app.get(
    "/orgs/<org_id>/reports/<period>/download",
    summary="A link to the month's HTML report or a CSV, valid for five minutes (leader, org_admin, finance)",
    tags=["reports"],
)
def download(caller: Caller, org_id: PathId, period: PeriodPath, file: FileName = "report.html") -> DownloadLink:
    metrics.add_metric(name="ReportDownloadLink", unit=MetricUnit.Count, value=1)
    return reports.download_link(caller, org_id, period, file, ctx)


@app.get(
    "/orgs/<org_id>/report-settings",
    summary="North Star priorities and replacement costs per level (leader, org_admin, finance)",
    tags=["reports"],
)
def get_settings(caller: Caller, org_id: PathId) -> ReportSettings:
    return reports.get_settings(caller, org_id, ctx)


@app.put(
    "/orgs/<org_id>/report-settings",
    summary="Set North Star priorities and replacement costs per level (org_admin)",
    description="The priorities apply to the rollups from their next build (events, or the daily rebuild).",
    tags=["reports"],
)
def put_settings(caller: Caller, org_id: PathId, body: Annotated[ReportSettings, Body()]) -> ReportSettings:
    return reports.put_settings(caller, org_id, body, ctx)


@app.get(
    "/reports/coach-topics/<period>",
    summary="What coaching is about across every org, in aggregate (operator)",
    description="Sums of each org's published focus figures only.",
    tags=["reports"],
)
def coach_topics(caller: Caller, period: PeriodPath) -> CoachTopics:
    return reports.coach_topics(caller, period, ctx)


def on_report_due(event: ReportDue) -> dict[str, Any]:
    artefact = reports.on_report_due(event, ctx)
    metrics.add_metric(name="ReportArtefactsWritten", unit=MetricUnit.Count, value=1)
    return artefact.model_dump(mode="json")


lambda_handler = function_entry(
    app,
    name="report_generation",
    logger=logger,
    tracer=tracer,
    metrics=metrics,
    on_events={ReportDue: on_report_due},
)
