"""Metering: price books, monthly invoices, month-to-date usage and reconciliation.

HTTP routes serve operators, finance and org administrators. The MonthlyInvoicing schedule
writes one InvoiceDue event per org to the outbox and the DailyReconciliation schedule one
ReconciliationDue per org and month; the table's stream relays them to the bus, which delivers
each back to this function, so every invocation handles one org.

This module is the composition root: it builds the invoicing context with the DynamoDB adapters.
Every period, in a path or a query, is validated by its type (`PeriodPath`, `PeriodQuery`): a
month the platform does not bill is a 422 naming the field before any code runs.
"""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from coaching.adapters.billing_store import BillingStore
from coaching.adapters.dynamo import OrgRepository
from coaching.adapters.metering_reads import ActiveHeadcount, SessionReads
from coaching.adapters.outbox import commit_events
from coaching.api import Caller, PathId, add_health_route, created, function_entry, rest_resolver
from coaching.domain.common import utc_now
from coaching.domain.events import InvoiceDue, ReconciliationDue
from coaching.domain.invoicing import PERIOD_DESCRIPTION, PERIOD_PATTERN, Invoice
from coaching.domain.pricing import PriceBook, PriceBookVersionInput
from coaching.services import invoicing, reconciliation
from coaching.services.invoicing import InvoicingContext, MonthToDate
from coaching.services.reconciliation import ReconciliationReport
from pydantic import BaseModel

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/metering/health", service="metering")
ctx = InvoicingContext(
    billing=BillingStore(),
    orgs=OrgRepository(),
    sessions=SessionReads(),
    headcount=ActiveHeadcount(),
    commit_events=commit_events,
    clock=utc_now,
)

PeriodPath = Annotated[str, Path(pattern=PERIOD_PATTERN, description=f"The invoice month: {PERIOD_DESCRIPTION}")]
PeriodQuery = Annotated[str, Query(pattern=PERIOD_PATTERN, description=f"The month: {PERIOD_DESCRIPTION}")]


class InvoiceList(BaseModel):
    items: list[Invoice]


def _count_differences(report: ReconciliationReport) -> None:
    metrics.add_metric(name="ReconciliationDifferences", unit=MetricUnit.Count, value=len(report.differences))
    if report.differences:
        logger.warning(
            "reconciliation found differences",
            extra={"org_id": report.org_id, "period": report.period, "differences": report.differences[:50]},
        )


@app.get("/orgs/<org_id>/price-book", summary="The org's price book and its versions", tags=["billing"])
def get_price_book(caller: Caller, org_id: PathId) -> PriceBook:
    return invoicing.get_price_book(caller, org_id, ctx)


@app.post(
    "/orgs/<org_id>/price-book/versions",
    summary="Post a price book version, effective from the 1st of a month (operator)",
    description="Append-only: a version takes effect after the latest one, in the org's currency, and never in a "
    "month whose invoice has been drawn.",
    tags=["billing"],
)
def add_price_book_version(
    caller: Caller, org_id: PathId, body: Annotated[PriceBookVersionInput, Body()]
) -> Response[PriceBook]:
    return created(invoicing.add_price_book_version(caller, org_id, body, ctx))


@app.get("/orgs/<org_id>/invoices", summary="The org's invoices, newest first", tags=["billing"])
def list_invoices(caller: Caller, org_id: PathId) -> InvoiceList:
    return InvoiceList(items=invoicing.list_invoices(caller, org_id, ctx))


@app.get("/orgs/<org_id>/invoices/<period>", summary="One month's invoice", tags=["billing"])
def get_invoice(caller: Caller, org_id: PathId, period: PeriodPath) -> Invoice:
    return invoicing.get_invoice(caller, org_id, period, ctx)


@app.get(
    "/orgs/<org_id>/invoices/<period>/invoice.csv",
    summary="One month's invoice lines as CSV (exact decimal amounts)",
    tags=["billing"],
)
def invoice_csv(caller: Caller, org_id: PathId, period: PeriodPath) -> Response[str]:
    return Response(
        status_code=200,
        content_type="text/csv; charset=utf-8",
        body=invoicing.invoice_csv_export(caller, org_id, period, ctx),
        headers={"Content-Disposition": f'attachment; filename="invoice-{org_id}-{period}.csv"'},
    )


@app.post(
    "/orgs/<org_id>/invoices/<period>/finalise",
    summary="Finalise a draft invoice (finance, operator)",
    description="A finalised invoice never changes; sessions billed later land on a later invoice as adjustments.",
    tags=["billing"],
)
def finalise_invoice(caller: Caller, org_id: PathId, period: PeriodPath) -> Invoice:
    return invoicing.finalise_invoice(caller, org_id, period, ctx)


@app.post(
    "/orgs/<org_id>/invoices/<period>/run",
    summary="Draw or redraw one org's invoice for a past month now (operator)",
    description="The same idempotent run as the monthly schedule: closes the month to new entries first.",
    tags=["billing"],
)
def run_invoice(caller: Caller, org_id: PathId, period: PeriodPath) -> Invoice:
    invoice = invoicing.run_invoice(caller, org_id, period, ctx)
    metrics.add_metric(name="InvoiceDrawn", unit=MetricUnit.Count, value=1)
    return invoice


@app.get(
    "/orgs/<org_id>/usage/month-to-date",
    summary="This month so far: sessions, amount, cap, allowances and commitment",
    tags=["billing"],
)
def month_to_date(caller: Caller, org_id: PathId) -> MonthToDate:
    return invoicing.month_to_date(caller, org_id, ctx.clock(), ctx)


@app.post(
    "/orgs/<org_id>/billing/reconcile",
    summary="Check sessions, ledger and invoice of a month against each other (operator, finance)",
    tags=["billing"],
)
def reconcile(
    caller: Caller,
    org_id: PathId,
    period: PeriodQuery,
) -> ReconciliationReport:
    report = reconciliation.reconcile_for(caller, org_id, period, ctx)
    _count_differences(report)
    return report


def on_invoice_due(event: InvoiceDue) -> dict[str, Any]:
    outcome = invoicing.on_invoice_due(event, ctx)
    if outcome.status == "skipped":
        logger.warning("invoice run skipped", extra={"org_id": outcome.org_id, "period": outcome.period,
                                                     "reason": outcome.reason})  # fmt: skip
        metrics.add_metric(name="InvoiceSkipped", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="InvoiceDrawn", unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")


def on_reconciliation_due(event: ReconciliationDue) -> dict[str, Any]:
    report = reconciliation.on_reconciliation_due(event, ctx)
    _count_differences(report)
    return report.model_dump(mode="json")


def on_schedule(name: str) -> dict[str, Any]:
    if name == "MonthlyInvoicing":
        fan_out = invoicing.run_monthly_invoicing(ctx.clock(), ctx)
    elif name == "DailyReconciliation":
        fan_out = reconciliation.run_daily_reconciliation(ctx.clock(), ctx)
    else:
        raise ValueError(f"metering has no schedule named {name!r}")
    logger.info("fan-out written to the outbox", extra=fan_out.model_dump())
    return fan_out.model_dump(mode="json")


lambda_handler = function_entry(
    app,
    name="metering",
    logger=logger,
    tracer=tracer,
    metrics=metrics,
    on_events={InvoiceDue: on_invoice_due, ReconciliationDue: on_reconciliation_due},
    on_schedule=on_schedule,
)
